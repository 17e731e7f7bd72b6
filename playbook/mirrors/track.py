"""Mirrors kept with an incident: listing them, and rechecking them later (copy -> disabled)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from playbook.clock import utcnow
from playbook.errors import UsageError
from playbook.mirrors.fingerprints import load_manifest
from playbook.mirrors.model import Change, Mirror, MirrorStatus, Verdict, transition
from playbook.mirrors.official import read_official
from playbook.mirrors.verify import Verifier
from playbook.services.hub import Services
from playbook.store.records import Records
from playbook.store.sqlite import Store

GONE = (Verdict.DISABLED, Verdict.GONE)
WATCHED = ("verdict", "matched", "tree_files")


def list_mirrors(store: Store, incident_id: str) -> list[Mirror]:
    """Every mirror recorded for the incident, copies first, then by URL."""
    store.get_incident(incident_id)  # a clear error for an unknown incident
    mirrors = Records(store, incident_id).all(Mirror)
    rank = {v: n for n, v in enumerate(Verdict)}
    return sorted(mirrors, key=lambda m: (rank[m.verdict], m.url))


def diff(old: Mirror, new: Mirror, at: str) -> list[Change]:
    changes = []
    for name in WATCHED:
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            changes.append(Change(old.url, name, str(before), str(after), at))
    return changes


def settle(old: Mirror, new: Mirror) -> Mirror:
    """Keep the record's status and history; a copy taken down or gone is resolved.

    A recheck that failed (network error, 5xx) proves nothing: the old record stands.
    """
    if new.error:
        return old
    settled = replace(
        new,
        status=old.status,
        found_by=old.found_by,
        target=old.target,
        manifest_file=old.manifest_file,
    )
    if new.verdict in GONE and old.verdict not in (Verdict.UNRELATED, Verdict.OFFICIAL):
        return transition(settled, MirrorStatus.RESOLVED, f"a recheck found it {new.verdict}")
    return settled


async def recheck_mirrors(
    mirrors: Sequence[Mirror],
    manifest_path: Path,
    services: Services,
    published_at: str | None = None,
) -> list[Mirror]:
    """Verify stored mirrors again; cached ETags make unchanged trees cost 304s."""
    manifest = load_manifest(manifest_path)
    verifier = Verifier(
        manifest,
        services,
        read_official(services.settings),
        target=mirrors[0].target if mirrors else "",
        manifest_file=mirrors[0].manifest_file if mirrors else "",
        published_at=published_at,
    )
    return await verifier.run(m.candidate() for m in mirrors)


async def recheck(store: Store, incident_id: str, services: Services) -> list[Change]:
    """Re-verify every mirror of the incident; record and return what changed."""
    mirrors = list_mirrors(store, incident_id)
    at = utcnow()
    changes: list[Change] = []
    for manifest_file, group in _by_manifest(mirrors):
        path = store.incident_dir(incident_id) / manifest_file
        if not path.is_file():
            raise UsageError(
                f"Incident {incident_id} has no scan manifest at {path}; mirrors cannot be "
                "rechecked without it.",
                "Resume the incident so the scan step writes it again.",
            )
        published = _published_at(store, incident_id, group[0].target)
        for new in await recheck_mirrors(group, path, services, published):
            changes += _settle_stored(store, incident_id, new, at)
    store.log(
        incident_id,
        "mirrors.rechecked",
        {"mirrors": len(mirrors), "changes": [c.__dict__ for c in changes]},
    )
    return changes


def _settle_stored(store: Store, incident_id: str, new: Mirror, at: str) -> list[Change]:
    """Settle the new verdict against the record as it is now, in one transaction: a live run
    or a `notice sent` that moved the record while the recheck was out on the network stands."""
    found: list[Change] = []

    def change(now: Mirror | None) -> Mirror | None:
        if now is None:
            return None
        settled = settle(now, new)
        found[:] = diff(now, settled, at)
        return settled

    Records(store, incident_id).update(Mirror, new.url, change)
    return found


def _published_at(store: Store, incident_id: str, target: str) -> str | None:
    """The publish time the incident's npm.lookup step recorded for `target`."""
    for step in store.steps(incident_id):
        if step.uses == "npm.lookup" and (step.target == target or not target):
            value = step.outputs.get("published_at")
            return str(value) if value else None
    return None


def _by_manifest(mirrors: Iterable[Mirror]) -> list[tuple[str, list[Mirror]]]:
    groups: dict[str, list[Mirror]] = {}
    for m in mirrors:
        if m.kind in ("repo", "package") and m.manifest_file:
            groups.setdefault(m.manifest_file, []).append(m)
    return sorted(groups.items())
