"""Step types mirrors.hunt, mirrors.verify, cdn.check and cdn.purge.

The first three only read (mutates=False): the hunt and the proof send GETs, and cdn.check
probes jsDelivr and unpkg. cdn.purge writes (mutates=True): it asks jsDelivr to purge its cache
only for tags that pointed at the version (which a purge can refresh), never for the static
version (jsDelivr keeps static files permanently; those need a removal request, recorded in
cdn.check's `requests_needed`). A purge is a GET that changes something: it is sent marked
WRITES, so a dry run refuses it at the transport, and the engine shows it as a planned action
(and asks for approval when the runbook says `approval: required`).
"""

from __future__ import annotations

import collections
import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any, ClassVar

from playbook.clock import utcnow
from playbook.errors import RemoteError
from playbook.gaps import Gap, is_outside_failure, reason
from playbook.mirrors.collect import NO_TOKEN, collect
from playbook.mirrors.coverage import Coverage
from playbook.mirrors.fingerprints import Manifest, load_manifest
from playbook.mirrors.model import Candidate, Mirror, MirrorStatus, Verdict
from playbook.mirrors.official import read_official
from playbook.mirrors.track import list_mirrors, recheck
from playbook.mirrors.verify import Verifier, verification_coverage
from playbook.net.governor import Governor
from playbook.services.cdn import cdns, jsdelivr_purge
from playbook.services.github import github_api
from playbook.steps import register
from playbook.steps.base import Action, Outcome, Plan, StepContext, StepOutputs, StepType
from playbook.steps.npm import LookupOutput, ScanOutput
from playbook.store.records import JsonRecord

__all__ = ["CheckCdns", "HuntMirrors", "PurgeCdnTags", "VerifyMirrors", "list_mirrors", "recheck"]
MAX_CDN_PROBES = 4


@dataclass(frozen=True)
class SkippedSource:
    source: str = ""
    reason: str = ""


@dataclass(frozen=True)
class HuntOutput(StepOutputs):
    candidates: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    skipped_sources: tuple[SkippedSource, ...] = ()
    candidates_file: str | None = None
    queries: dict[str, tuple[str, ...]] = field(default_factory=dict)
    github_requests: int = 0
    gaps: tuple[Gap, ...] = ()  # sources that failed (down, slow, garbage): not searched
    coverage: Coverage = field(default_factory=Coverage)


@dataclass(frozen=True)
class VerifyMirrorsOutput(StepOutputs):
    """How many candidates got each verdict, and the copies proved."""

    copy: int = 0
    partial: int = 0
    unrelated: int = 0
    official: int = 0
    disabled: int = 0
    gone: int = 0
    unreachable: int = 0
    copies: int = 0
    unverified: int = 0
    requests: int = 0
    mirrors_file: str | None = None
    copy_urls: tuple[str, ...] = ()
    networks_with_non_copies: tuple[str, ...] = ()
    budget_note: str | None = None
    gaps: tuple[Gap, ...] = ()  # hosts whose candidates could not be verified, and why
    coverage: Coverage = field(default_factory=Coverage)


@dataclass(frozen=True)
class CdnCopy:
    cdn: str = ""
    url: str = ""
    status: int = 0
    file: str = ""
    size: int | None = None


@dataclass(frozen=True)
class Purge:
    url: str = ""
    status: int | str = ""  # "planned" in a dry run
    ok: bool | None = None


@dataclass(frozen=True)
class CdnOutput(StepOutputs):
    copies: tuple[CdnCopy, ...] = ()
    # Kept so incidents stored before cdn.purge existed still load; the purge is cdn.purge's now.
    purge_requested: tuple[Purge, ...] = ()
    requests_needed: tuple[str, ...] = ()
    gaps: tuple[Gap, ...] = ()  # CDNs that could not be probed, and why


def _manifest_file(ctx: StepContext) -> str | None:
    scan = ctx.output(ScanOutput, "scan")
    return scan.manifest_file if scan and scan.manifest_file else None


def _folder(manifest_file: str) -> str:
    """Where this target's mirror files go: beside its scan folder (`<slug>/` when there is one)."""
    parent = PurePosixPath(manifest_file).parent.parent
    return "" if str(parent) == "." else f"{parent}/"


def _manifest(ctx: StepContext) -> tuple[Manifest, str] | None:
    name = _manifest_file(ctx)
    if name is None:
        return None
    return load_manifest(ctx.workdir / name), name


@contextlib.contextmanager
def _quota_progress(ctx: StepContext) -> Iterator[Governor]:
    """Show GitHub's quota and any wait in the live display while the step runs."""
    gov = github_api(ctx.services).governor
    with gov.listening(lambda s: ctx.progress(s.describe()) if s.waiting else None):
        yield gov


def _no_manifest(ctx: StepContext) -> Outcome:
    return Outcome(
        skipped=True,
        summary=f"{ctx.target}: no scan manifest (the scan step was skipped), nothing to hunt for",
    )


@register
class HuntMirrors(StepType):
    uses = "mirrors.hunt"
    outputs = HuntOutput
    description = "Find candidate public copies: GitHub searches and forks, npm, archives, forges."
    params = frozenset({"scan", "lookup", "max_code_queries"})

    async def plan(self, ctx: StepContext) -> Plan:
        return Plan(outputs=HuntOutput())

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        loaded = _manifest(ctx)
        if loaded is None:
            return _no_manifest(ctx)
        manifest, manifest_file = loaded
        lookup = ctx.output(LookupOutput, "lookup")
        with _quota_progress(ctx) as gov:
            before = gov.requests
            found = await collect(
                manifest,
                ctx.services,
                official=read_official(ctx.settings),
                published_at=lookup.published_at if lookup else None,
                progress=ctx.progress,
            )
            spent = gov.requests - before
        name = f"{_folder(manifest_file)}mirrors/candidates.json"
        cands = sorted(found.candidates.values(), key=lambda c: c.url)
        ctx.write_file(name, _dump([c.to_json() for c in cands]))
        for cand in cands:
            _record_candidate(ctx, cand, manifest_file)
        outputs = HuntOutput(
            candidates=len(cands),
            by_source=dict(found.by_source),
            skipped_sources=tuple(SkippedSource(**s) for s in found.skipped),
            candidates_file=name,
            queries={k: tuple(v) for k, v in found.queries.items()},
            github_requests=spent,
            gaps=tuple(
                Gap(s["source"], f"{s['source']} was not searched", s["reason"])
                for s in found.skipped
                if s["reason"] != NO_TOKEN
            ),
            coverage=found.coverage,
        )
        summary = f"{len(cands)} candidates from {len(found.by_source)} sources"
        if found.skipped:
            summary += "; skipped: " + ", ".join(s["source"] for s in found.skipped)
        if found.coverage.run_gaps:
            summary += f"; coverage gaps: {len(found.coverage.run_gaps)} (see the report)"
        return Outcome(outputs=outputs, summary=summary)


def _record_candidate(ctx: StepContext, cand: Candidate, manifest_file: str) -> None:
    """A candidate is tracked at once (verdict unverified); a verified record is left alone."""
    mirror = Mirror(
        url=cand.url,
        host=cand.host,
        kind=cand.kind,
        name=cand.name,
        verdict=Verdict.UNVERIFIED,
        description=cand.description,
        parent=cand.parent,
        network_root=cand.source,
        found_by=cand.found_by,
        checked_at=utcnow(),
        evidence="found, not verified yet",
        default_branch=cand.default_branch,
        forks_count=cand.forks_count,
        forks_listed=cand.forks_listed,
        api_id=cand.api_id,
        target=str(ctx.target),
        manifest_file=manifest_file,
    )

    def change(current: Mirror | None) -> Mirror | None:
        if current is not None and current.verdict is not Verdict.UNVERIFIED:
            return None
        return mirror

    ctx.records.update(Mirror, cand.url, change)


COUNTED = ("copy", "partial", "unrelated", "official", "disabled", "gone", "unreachable")


@register
class VerifyMirrors(StepType):
    uses = "mirrors.verify"
    outputs = VerifyMirrorsOutput
    description = "Prove each candidate from its file tree (blob SHA-1s) and give it a verdict."
    params = frozenset({"scan", "hunt", "lookup"})

    async def plan(self, ctx: StepContext) -> Plan:
        return Plan(outputs=VerifyMirrorsOutput())

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        loaded = _manifest(ctx)
        hunt = ctx.output(HuntOutput, "hunt")
        if loaded is None or hunt is None or not hunt.candidates_file:
            return _no_manifest(ctx)
        manifest, manifest_file = loaded
        raw = json.loads((ctx.workdir / hunt.candidates_file).read_bytes())
        verifier = Verifier(
            manifest,
            ctx.services,
            read_official(ctx.settings),
            progress=ctx.progress,
            target=str(ctx.target),
            manifest_file=manifest_file,
            published_at=_published(ctx),
        )
        with _quota_progress(ctx) as gov:
            before = gov.requests
            mirrors = await verifier.run(Candidate.from_json(c) for c in raw)
            spent = gov.requests - before
        for mirror in mirrors:
            _record_mirror(ctx, mirror)
        name = f"{_folder(manifest_file)}mirrors/mirrors.json"
        ctx.write_file(name, _dump([m.to_record() for m in mirrors]))
        return Outcome(
            outputs=_verify_outputs(
                mirrors,
                spent,
                name,
                verifier.budget_note,
                hunt.coverage.merged(verification_coverage(verifier, mirrors)),
            ),
            summary=_verify_summary(mirrors),
        )


def _published(ctx: StepContext) -> str | None:
    lookup = ctx.output(LookupOutput, "lookup")
    return lookup.published_at if lookup and lookup.published_at else None


# When an incident has several packages, one repository is checked against each package's
# manifest: it is a copy of the incident's leak if it copies any of them, so a weaker verdict
# from another package's manifest never overwrites a stronger one.
STRENGTH = (
    "unverified",
    "unrelated",
    "unreachable",
    "gone",
    "disabled",
    "partial",
    "copy",
    "official",
)


def _strength(verdict: object) -> int:
    return STRENGTH.index(str(verdict)) if verdict in STRENGTH else 0


def _record_mirror(ctx: StepContext, mirror: Mirror) -> None:
    def change(known: Mirror | None) -> Mirror | None:
        if (
            known is not None
            and known.target not in ("", str(ctx.target))
            and _strength(known.verdict) > _strength(mirror.verdict)
        ):
            return None
        # A new verdict keeps the takedown status the record has now (its owner moves it).
        status = known.status if known else MirrorStatus.OPEN
        return replace(mirror, status=status)

    ctx.records.update(Mirror, mirror.url, change)


def _verify_outputs(
    mirrors: list[Mirror], requests: int, name: str, budget_note: str, coverage: Coverage
) -> VerifyMirrorsOutput:
    counts = collections.Counter(m.verdict.value for m in mirrors)
    copies = [m for m in mirrors if m.verdict is Verdict.COPY]
    return VerifyMirrorsOutput(
        **{v: counts.get(v, 0) for v in COUNTED},
        copies=len(copies),
        unverified=counts.get("unverified", 0),
        requests=requests,
        mirrors_file=name,
        copy_urls=tuple(m.url for m in copies),
        networks_with_non_copies=tuple(
            sorted({str(m.network_root) for m in copies if m.network_has_non_copies is not False})
        ),
        budget_note=budget_note or None,
        gaps=_verify_gaps(mirrors),
        coverage=coverage,
    )


def _verify_gaps(mirrors: list[Mirror]) -> tuple[Gap, ...]:
    """One gap per host whose candidates failed verification, with the first failure's words."""
    failed: dict[str, list[Mirror]] = {}
    for m in mirrors:
        if m.error:
            failed.setdefault(m.host, []).append(m)
    return tuple(
        Gap(host, f"{len(ms)} candidate(s) on {host} not verified", str(ms[0].error))
        for host, ms in sorted(failed.items())
    )


def _verify_summary(mirrors: list[Mirror]) -> str:
    counts = collections.Counter(m.verdict.value for m in mirrors)
    return ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "no candidates"


@register
class CheckCdns(StepType):
    uses = "cdn.check"
    outputs = CdnOutput
    description = "Record jsDelivr and unpkg copies of the version; purge jsDelivr tags only."
    params = frozenset({"scan", "lookup"})

    async def plan(self, ctx: StepContext) -> Plan:
        return Plan(outputs=CdnOutput())

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        loaded = _manifest(ctx)
        files = _probe_files(loaded[0]) if loaded else []
        if not files:
            return Outcome(skipped=True, summary=f"{ctx.target}: no map or source files to probe")
        copies, gaps = await _probe(ctx, files)
        for copy in copies:
            ctx.records.update(Mirror, copy.url, _cdn_record(ctx, copy))
        serving = tuple(sorted({c.cdn for c in copies}))
        outputs = CdnOutput(copies=tuple(copies), requests_needed=serving, gaps=tuple(gaps))
        summary = (
            f"{len(copies)} CDN copies on {', '.join(serving)}; static versions need a "
            "removal request"
            if copies
            else "no CDN serves the version's files"
        )
        if gaps:
            summary += "; not checked: " + ", ".join(g.service for g in gaps)
        return Outcome(outputs=outputs, summary=summary)


def _probe_files(manifest: Manifest) -> list[str]:
    direct = sorted({f.path for f in manifest.files if f.map is None and f.first_party})
    return [*manifest.map_names, *direct][:MAX_CDN_PROBES]


async def _probe(ctx: StepContext, files: list[str]) -> tuple[list[CdnCopy], list[Gap]]:
    """Each CDN's copies; a CDN that fails (down, slow, 5xx) is a gap and the others go on."""
    copies: list[CdnCopy] = []
    gaps: list[Gap] = []
    for cdn in cdns(ctx.services):
        try:
            for file in files:
                probe = await cdn.probe(ctx.target.name, ctx.target.version, file)
                if probe.status >= 500:
                    raise RemoteError(f"{cdn.name} answered HTTP {probe.status} for {probe.url}.")
                if probe.status == 200:
                    copies.append(CdnCopy(cdn.name, probe.url, probe.status, file, probe.size))
        except Exception as exc:
            if not is_outside_failure(exc):
                raise
            gaps.append(Gap(cdn.name, f"whether {cdn.name} serves the version", reason(exc)))
            copies = [c for c in copies if c.cdn != cdn.name]  # a half answer proves nothing
            ctx.progress(f"{cdn.name} not checked: {reason(exc)}")
    return copies, gaps


def _cdn_record(ctx: StepContext, copy: CdnCopy) -> Callable[[Mirror | None], Mirror]:
    host = "cdn.jsdelivr.net" if copy.cdn == "jsdelivr" else "unpkg.com"
    size = f", {copy.size:,} bytes" if copy.size else ""
    mirror = Mirror(
        url=copy.url,
        host=host,
        kind="cdn",
        name=f"{ctx.target}/{copy.file}",
        verdict=Verdict.COPY,
        found_by=("cdn-probe",),
        checked_at=utcnow(),
        evidence=f"serves {copy.file} of {ctx.target} (HTTP 200{size}); a static version "
        "cannot be purged: removal needs a request",
        target=str(ctx.target),
    )

    def change(current: Mirror | None) -> Mirror:
        status = current.status if current is not None else MirrorStatus.OPEN
        return replace(mirror, status=status)

    return change


@dataclass(frozen=True)
class PurgeOutput(StepOutputs):
    purged: tuple[Purge, ...] = ()  # status "planned" in a dry run; "done before" on a re-run
    gaps: tuple[Gap, ...] = ()


@dataclass(frozen=True)
class PurgeRecord(JsonRecord):
    """A jsDelivr purge already asked for (record kind "cdn.purge", keyed by its URL)."""

    record_kind: ClassVar[str] = "cdn.purge"

    url: str = ""  # the key; rows written before it was kept here have none
    ok: bool = False
    status: int = 0

    @property
    def record_key(self) -> str:
        return self.url

    def to_record(self) -> dict[str, Any]:
        return {"ok": self.ok, "status": self.status}  # the row's shape: the key is the URL


def _purge_urls(ctx: StepContext) -> list[tuple[str, str]]:
    """(tag, file) pairs to purge: the tags that pointed at the version x jsDelivr's copies."""
    cdn = ctx.output(CdnOutput, "cdn")
    lookup = ctx.output(LookupOutput, "lookup")
    files = sorted({c.file for c in cdn.copies if c.cdn == "jsdelivr"}) if cdn else []
    tags = sorted(set(lookup.tags_on_version if lookup else ()))
    return [(tag, file) for tag in tags for file in files]


@register
class PurgeCdnTags(StepType):
    uses = "cdn.purge"
    outputs = PurgeOutput
    mutates = True
    description = "Ask jsDelivr to purge its cache of the tags that pointed at the version."
    params = frozenset({"cdn", "lookup"})

    async def plan(self, ctx: StepContext) -> Plan:
        purge = jsdelivr_purge(ctx.services)
        actions, planned = [], []
        for tag, file in _purge_urls(ctx):
            url = purge.url(ctx.target.name, tag, file)
            done = ctx.records.get(PurgeRecord, url)
            if done is not None and done.ok:
                continue  # purged by an earlier run: a purge is idempotent, but not free
            actions.append(Action("GET", url, f"purge jsDelivr's cache of @{tag}/{file}"))
            planned.append(Purge(url, "planned"))
        summary = f"{len(actions)} jsDelivr tag purges" if actions else "nothing to purge"
        return Plan(actions=tuple(actions), outputs=PurgeOutput(tuple(planned)), summary=summary)

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        purge = jsdelivr_purge(ctx.services)
        out: list[Purge] = []
        gaps: list[Gap] = []
        for action in plan.actions:
            try:
                result = await purge.purge_url(action.url)
            except Exception as exc:
                if not is_outside_failure(exc):
                    raise
                gaps.append(Gap("jsdelivr_purge", f"purge of {action.url}", reason(exc)))
                break  # the purge service is failing: the other purges would too
            ctx.records.put(PurgeRecord(action.url, result.ok, result.status))
            out.append(Purge(result.url, result.status, result.ok))
        summary = f"{sum(1 for p in out if p.ok)} of {len(plan.actions)} tag purges accepted"
        return Outcome(
            outputs=PurgeOutput(tuple(out), tuple(gaps)), summary=summary, changed=bool(out)
        )


def _dump(data: Any) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"
