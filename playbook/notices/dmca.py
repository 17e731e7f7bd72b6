"""GitHub DMCA specifics: the sworn statements verbatim, fork networks, the network-wide choice."""

from __future__ import annotations

from dataclasses import dataclass, replace

from playbook.config.org import Official
from playbook.mirrors.model import Mirror, Verdict
from playbook.mirrors.official import is_official as on_allowlist
from playbook.notices.claims import Claim, ClaimKind, claims

# GitHub's guide ("Your Complaint Must ...", item 1) asks for this sentence word for word.
READ_GUIDE = "I have read and understand GitHub's Guide to Filing a DMCA Notice."
# The guide's per-fork confirmation (item 3): each fork investigated, the sworn statements
# applying to each identified fork.
FORKS_CONFIRMATION = (
    "I have investigated each individual case, and my sworn statements apply to each "
    "identified fork."
)
# GitHub's guide asks for these two statements word for word (shared/DOMAIN.md).
GOOD_FAITH = (
    "I have a good faith belief that use of the copyrighted materials described above on the "
    "infringing web pages is not authorized by the copyright owner, or its agent, or the law. "
    "I have taken fair use into consideration."
)
PERJURY = (
    "I swear, under penalty of perjury, that the information in this notification is accurate "
    "and that I am the copyright owner, or am authorized to act on behalf of the owner, of an "
    "exclusive right that is allegedly infringed."
)
# Sworn and dangerous: it lets GitHub disable a whole fork network, legitimate forks included.
NETWORK_STATEMENT = (
    "Based on the representative number of forks I have reviewed, I believe that all or most "
    "of the forks are infringing to the same extent as the parent repository."
)
LISTED_VERDICTS = ("copy", "partial")
# Verdicts of repositories the notice leaves out because they were judged not infringing, as
# against those it leaves out because they could not be checked (the forks answer tells apart).
CLEARED_VERDICTS = ("unrelated", "official")


@dataclass(frozen=True)
class Network:
    """One GitHub fork network with the repositories the hunt proved to be copies."""

    root: str
    name: str
    copies: tuple[Mirror, ...]
    partials: tuple[Mirror, ...]
    others: tuple[Mirror, ...]
    has_non_copies: bool | None
    own: tuple[Mirror, ...] = ()  # the organization's own repositories in the network
    claims: tuple[Claim, ...] = ()  # one per listed repository, in listing order
    elsewhere: tuple[Claim, ...] = ()  # claims of this network another notice makes (by_kind)

    @property
    def listed(self) -> tuple[Mirror, ...]:
        return self.copies + self.partials

    @property
    def entire(self) -> tuple[Claim, ...]:
        return tuple(c for c in self.claims if c.entire)

    @property
    def files(self) -> tuple[Claim, ...]:
        return tuple(c for c in self.claims if not c.entire)

    @property
    def cleared(self) -> tuple[Mirror, ...]:
        """Repositories found in the network and judged not infringing (the owner's own too)."""
        own = {m.url for m in self.own}
        return tuple(m for m in self.others if m.verdict in CLEARED_VERDICTS or m.url in own)

    @property
    def unchecked(self) -> tuple[Mirror, ...]:
        """Repositories found in the network that could not be verified either way."""
        cleared = {m.url for m in self.cleared}
        return tuple(m for m in self.others if m.url not in cleared)

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.name.lower()).strip("-")


@dataclass(frozen=True)
class StatementDecision:
    requested: bool
    included: bool
    reason: str


def is_official(mirror: Mirror, official: Official) -> bool:
    """The organization's own: never named in a notice, whatever its overlap with the leak.

    Verified official, or on the [official] allowlist by the hunt's own rule
    (mirrors.official.is_official: GitHub orgs and `owner/repo`, other forges' `host/owner/repo`,
    npm scopes).
    """
    return mirror.verdict is Verdict.OFFICIAL or on_allowlist(mirror, official)


def _is_github_repo(mirror: Mirror) -> bool:
    return mirror.host == "github.com" and mirror.kind == "repo"


def networks(mirrors: tuple[Mirror, ...], official: Official) -> list[Network]:
    """GitHub networks holding at least one verified copy, each repo listed once, with claims."""
    ours = {m.url for m in mirrors if is_official(m, official)}  # once: thousands of mirrors
    claim_of = claims(m for m in mirrors if m.verdict in LISTED_VERDICTS and m.url not in ours)
    groups: dict[str, list[Mirror]] = {}
    for mirror in mirrors:
        if _is_github_repo(mirror):
            groups.setdefault(mirror.network_root or mirror.url, []).append(mirror)
    found = []
    for root, members in sorted(groups.items()):
        own = tuple(m for m in members if m.url in ours)
        listed = [
            m
            for m in members
            if m.verdict in LISTED_VERDICTS and m.status != "resolved" and m.url not in ours
        ]
        if not listed:
            continue
        others = tuple(
            m for m in members if m.verdict not in (*LISTED_VERDICTS, "disabled") or m.url in ours
        )
        flags = [m.network_has_non_copies for m in members]
        has_non = True if True in flags else (None if None in flags else False)
        copies = tuple(m for m in listed if m.verdict == "copy")
        partials = tuple(m for m in listed if m.verdict == "partial")
        found.append(
            Network(
                root=root,
                name=root.rstrip("/").split("github.com/", 1)[-1],
                copies=copies,
                partials=partials,
                others=others,
                has_non_copies=has_non,
                own=own,
                claims=tuple(claim_of[m.url] for m in copies + partials),
            )
        )
    return found


def by_kind(network: Network, kind: ClaimKind) -> Network | None:
    """The network cut down to its claims of one kind (None if it has none of them).

    GitHub's form takes one answer to "Based on the above, I confirm that": the entire
    repository, or specific files. A notice therefore carries claims of one kind; the claims of
    the other kind stay visible in `elsewhere` so the notice can say where they are.
    """
    keep = tuple(c for c in network.claims if c.kind is kind)
    if not keep:
        return None
    urls = {c.mirror.url for c in keep}
    return replace(
        network,
        copies=tuple(m for m in network.copies if m.url in urls),
        partials=tuple(m for m in network.partials if m.url in urls),
        claims=keep,
        elsewhere=tuple(c for c in network.claims if c.kind is not kind),
    )


def decide_statement(network: Network, requested: bool) -> StatementDecision:
    """The network-wide statement: only when asked, and refused unless every repo is a copy."""
    if not requested:
        return StatementDecision(False, False, "not requested; it is never made by default")
    if network.others:
        names = ", ".join(f"{m.name} ({m.verdict})" for m in network.others[:5])
        return StatementDecision(
            True, False, f"the network holds repositories that are not verified copies: {names}"
        )
    if network.has_non_copies:
        return StatementDecision(
            True,
            False,
            "mirrors.verify found repositories in the fork network that are not proven copies",
        )
    if network.has_non_copies is None:
        return StatementDecision(
            True,
            False,
            "the hunt did not establish that every repository in the fork network is a copy",
        )
    if network.partials:
        return StatementDecision(
            True, False, "some repositories hold only part of the work, not the whole of it"
        )
    if network.files:
        return StatementDecision(
            True, False, "some repositories are claimed by their files, not as a whole"
        )
    return StatementDecision(True, True, "every repository in the network is a verified copy")
