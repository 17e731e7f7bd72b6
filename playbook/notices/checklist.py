"""The reviewer's checklist at the top of every draft, derived from the data the draft cites."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields

from markupsafe import Markup

from playbook.mirrors.model import Mirror
from playbook.notices.claims import Claim
from playbook.notices.dmca import Network, StatementDecision
from playbook.notices.render import fmt_dt
from playbook.notices.view import IncidentView
from playbook.steps.npm import SecretSummary


@dataclass(frozen=True)
class SecretPlace:
    """One leaked credential in one repository: the file at the commit checked, and its line."""

    claim: Claim
    secret: SecretSummary
    path: str  # as the repository's tree names it

    @property
    def link(self) -> Markup:
        anchor = f"#L{self.secret.line}" if self.secret.line is not None else ""
        return Markup(f"{self.claim.permalink(self.path)}{anchor}")


def secret_places(secrets: Sequence[SecretSummary], claims: Iterable[Claim]) -> list[SecretPlace]:
    """Every repository file that is a leaked file holding a credential (by the matched paths)."""
    places = []
    for claim in claims:
        for tree_path, leaked in claim.mirror.matched_paths:
            places += [SecretPlace(claim, s, tree_path) for s in secrets if s.file == leaked]
    return places


# What only some notices carry. Each field is a template variable of the same name (all of a
# notice's fields, None ones too: a template tells "none" from "not this notice's").


@dataclass(frozen=True)
class DmcaExtra:
    networks: tuple[Network, ...]
    claim_kind: str  # ClaimKind: "entire" or "files"
    sibling: str | None  # the id of the notice with the other claim kind, if there is one
    decisions: Mapping[str, StatementDecision]  # by network root


@dataclass(frozen=True)
class NpmCopiesExtra:
    claims: tuple[Claim, ...]


@dataclass(frozen=True)
class ForgeCopiesExtra:
    host_label: str
    claims: tuple[Claim, ...]


@dataclass(frozen=True)
class SecretsExtra:
    secrets: tuple[SecretSummary, ...]
    places: tuple[SecretPlace, ...]


@dataclass(frozen=True)
class CdnExtra:
    base_url: str
    urls: tuple[str, ...]


Extra = DmcaExtra | NpmCopiesExtra | ForgeCopiesExtra | SecretsExtra | CdnExtra | None


def template_vars(extra: Extra) -> dict[str, object]:
    """The extra's fields as template variables (none for a notice without extras)."""
    if extra is None:
        return {}
    return {f.name: getattr(extra, f.name) for f in fields(extra)}


def checklist(
    view: IncidentView, kind: str, extra: Extra, mirrors: Sequence[Mirror],
    gaps: Sequence[str], now: str,
) -> tuple[str, ...]:  # fmt: skip
    """What a person must check before this draft is sent, from what the draft says."""
    items: list[str] = []
    if isinstance(extra, DmcaExtra):
        networks = extra.networks
        items += _claim_items([c for n in networks for c in n.claims], len(networks))
        if extra.sibling:
            other = "specific-file" if extra.claim_kind == "entire" else "entire-repository"
            items.append(
                f"The {other} claims of this incident are in notice {extra.sibling}: GitHub's form "
                "takes one answer to 'Based on the above, I confirm that', so file it separately."
            )
        items += _statement_items(extra.decisions, networks)
    if isinstance(extra, NpmCopiesExtra | ForgeCopiesExtra):
        items += _claim_items(list(extra.claims), 0)
    if isinstance(extra, SecretsExtra):
        places = extra.places
        repos = {p.claim.mirror.url for p in places}
        items.append(
            f"Credentials: {len(places)} file location(s) in {len(repos)} repositories; revoke "
            "and replace every credential before or while this request is filed."
        )
    left = ", ".join(gaps) if gaps else "none"
    items.append(f"Blanks left ([MISSING: ...] below): {left}.")
    items += _dates(view, mirrors, now)
    items.append(_recheck(view, kind, mirrors))
    return tuple(items)


def _claim_items(claims: list[Claim], networks: int) -> list[str]:
    entire = [c for c in claims if c.entire]
    files = [c for c in claims if not c.entire]
    where = f" in {_count(networks, 'fork network')}" if networks else ""
    packages = all(c.mirror.kind == "package" for c in claims)
    parts = [f"{len(entire)} entire ({'remove' if packages else 'disable'})"] if entire else []
    if files:
        named = sum(len(c.files) for c in files)
        parts.append(f"{len(files)} by files ({_count(named, 'file')} named: remove)")
    items = [f"Claims: {_count(len(claims), 'copy', 'copies')}{where}: {', '.join(parts)}."]
    items += [f"Entire: {c.mirror.name}: {c.reason}." for c in entire]
    if entire and files and packages:
        items.append(
            "GitHub's form takes one answer to 'Based on the above, I confirm that': file the "
            "entire-package claims and the specific-file claims as two submissions."
        )
    unpinned = [c.mirror.name for c in claims if not c.pinned and c.mirror.kind == "repo"]
    if unpinned:
        items.append(
            f"No commit recorded (blanks to fill from each repository's history, as it stood at "
            f"the check) for: {', '.join(unpinned)}."
        )
    return items


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def _statement_items(
    decisions: Mapping[str, StatementDecision], nets: tuple[Network, ...]
) -> list[str]:
    items = []
    for net in nets:
        decision = decisions.get(net.root)
        if decision is not None and decision.included:
            items.append(f"Network-wide statement MADE for {net.name}: {decision.reason}.")
            continue
        if decision is not None and decision.requested:
            items.append(f"Network-wide statement refused for {net.name}: {decision.reason}.")
        if not net.others and net.has_non_copies is False:
            # github/dmca records notices processed against a whole network, later forks
            # included, because they "identified all known forks" (shared/DOMAIN.md).
            items.append(
                f"Every repository found in the fork network of {net.name} is named: GitHub may "
                "then process the whole network, forks made later included. Look for new forks "
                "just before sending."
            )
    return items


def _dates(view: IncidentView, mirrors: Sequence[Mirror], now: str) -> list[str]:
    checked = sorted(m.checked_at for m in mirrors if m.checked_at)
    if checked:
        return [
            f"Last check of these copies: {fmt_dt(checked[-1])} (oldest {fmt_dt(checked[0])}); "
            f"drafted {fmt_dt(now)}."
        ]
    verified = [t.verify.checked_at for t in view.targets if t.verify and t.verify.checked_at]
    when = fmt_dt(max(verified)) if verified else "not recorded"
    return [f"Registry state last verified: {when}; drafted {fmt_dt(now)}."]


def _recheck(view: IncidentView, kind: str, mirrors: Sequence[Mirror]) -> str:
    incident = view.incident.id
    if any(m.host == "github.com" for m in mirrors):
        return (
            f"Before sending: run respond mirrors recheck {incident}, then draft again; open "
            "every link and confirm it shows the commit cited."
        )
    if mirrors:
        return (
            f"Before sending: run respond mirrors recheck {incident}, then draft again; confirm "
            "each copy is still served as described."
        )
    if kind in ("advisory", "customer"):
        return f"Before sending: confirm the versions and times against respond status {incident}."
    return f"Before sending: confirm the copies are still served (respond status {incident})."
