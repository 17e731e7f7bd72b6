"""The hunt's data: candidates, verdicts, the stored mirror record, changes found by a recheck."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, ClassVar

from playbook.codec import from_json, to_json
from playbook.mirrors.coverage import Coverage

# Folders of other people's code a repository carries along: not the repository's own files.
VENDORED = frozenset({"node_modules", "vendor", "third_party", "bower_components"})


def is_vendored(path: str) -> bool:
    return any(part in VENDORED for part in path.split("/")[:-1])


class Verdict(StrEnum):
    COPY = "copy"
    PARTIAL = "partial"
    UNRELATED = "unrelated"
    OFFICIAL = "official"
    DISABLED = "disabled"
    UNREACHABLE = "unreachable"  # the check failed (network, 5xx): proves nothing
    GONE = "gone"  # HTTP 404: deleted, renamed or made private
    UNVERIFIED = "unverified"


class MirrorStatus(StrEnum):
    """Where the takedown of a mirror stands. Only `transition` moves it."""

    OPEN = "open"
    NOTICE_DRAFTED = "notice_drafted"
    NOTICE_SENT = "notice_sent"
    RESOLVED = "resolved"


# The moves a mirror's status may make; staying put is always allowed. A resolved mirror stays
# resolved: a notice sent later for the same copy does not reopen it.
MOVES: dict[MirrorStatus, frozenset[MirrorStatus]] = {
    MirrorStatus.OPEN: frozenset(
        {MirrorStatus.NOTICE_DRAFTED, MirrorStatus.NOTICE_SENT, MirrorStatus.RESOLVED}
    ),
    MirrorStatus.NOTICE_DRAFTED: frozenset({MirrorStatus.NOTICE_SENT, MirrorStatus.RESOLVED}),
    MirrorStatus.NOTICE_SENT: frozenset({MirrorStatus.RESOLVED}),
    MirrorStatus.RESOLVED: frozenset(),
}


class IllegalTransition(ValueError):
    """A status move its owner does not allow."""


class Source(StrEnum):
    """Where a candidate was found (a mirror's `found_by`)."""

    OFFICIAL = "official-allowlist"
    CODE_SEARCH = "code-search"
    REPO_SEARCH = "repo-search"
    FORKS = "forks"
    NETWORK = "network"
    NPM = "npm"
    SWH = "softwareheritage"
    GITLAB = "gitlab"
    CODEBERG = "codeberg"


@dataclass(frozen=True)
class Candidate:
    """Something that may hold a copy; `url` is its canonical address and the record key."""

    url: str
    host: str  # github.com | gitlab.com | codeberg.org | npm | softwareheritage
    kind: str  # repo | package | archive
    name: str  # owner/repo, or name@version for a package
    description: str = ""
    default_branch: str | None = None
    fork: bool = False
    parent: str | None = None  # URL of the repository it was forked from
    source: str | None = None  # URL of its network root, when the host said so
    forks_count: int | None = None
    forks_listed: bool = False  # every page of its direct forks was read
    api_id: str | None = None
    found_by: tuple[str, ...] = ()
    pushed_at: str | None = None  # the host's time of the last push, when a listing gave it
    # From a GraphQL fork listing: the commit the default branch pointed at and its tree oid.
    # A tree oid equal to a verified copy's proves the same files (git addresses content).
    commit_sha: str | None = None
    tree_sha: str | None = None

    def merge(self, other: Candidate) -> Candidate:
        """The same URL found twice: keep what either knows."""
        return replace(
            self,
            description=self.description or other.description,
            default_branch=self.default_branch or other.default_branch,
            fork=self.fork or other.fork,
            parent=self.parent or other.parent,
            source=self.source or other.source,
            forks_count=self.forks_count if self.forks_count is not None else other.forks_count,
            forks_listed=self.forks_listed or other.forks_listed,
            api_id=self.api_id or other.api_id,
            pushed_at=self.pushed_at or other.pushed_at,
            commit_sha=self.commit_sha or other.commit_sha,
            tree_sha=self.tree_sha or other.tree_sha,
            # Sorted: the sources search concurrently, and the same hunt must write the same files
            # whichever of them answered first (a resumed run is compared with a clean one).
            found_by=tuple(sorted(set(self.found_by + other.found_by))),
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["found_by"] = list(self.found_by)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Candidate:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["found_by"] = tuple(known.get("found_by", ()))
        return cls(**known)


@dataclass(frozen=True)
class Mirror:
    """One mirror record (contracts.md, kind "mirror"), plus the keys recheck needs."""

    record_kind: ClassVar[str] = "mirror"

    url: str
    host: str
    kind: str
    name: str
    verdict: Verdict
    description: str = ""
    matched: int = 0
    total: int = 0
    tree_files: int = 0
    sample_paths: tuple[str, ...] = ()
    parent: str | None = None
    network_root: str | None = None
    network_has_non_copies: bool | None = None
    found_by: tuple[str, ...] = ()
    checked_at: str = ""
    evidence: str = ""
    status: MirrorStatus = MirrorStatus.OPEN
    matched_by_blob: int = 0
    matched_by_content: int = 0
    default_branch: str | None = None
    forks_count: int | None = None
    forks_listed: bool = False
    api_id: str | None = None
    target: str = ""
    manifest_file: str = ""
    error: str | None = None  # verification failed (network, 5xx): the verdict proves nothing
    pushed_at: str | None = None
    # The evidence a takedown claim cites (notices/claims.py): the commit and tree checked, every
    # matched file as (path in that tree, leaked path), and the tree's files outside vendored
    # folders (node_modules/, vendor/, third_party/, bower_components/).
    commit_sha: str | None = None
    tree_sha: str | None = None
    matched_paths: tuple[tuple[str, str], ...] = ()
    unvendored_files: int = 0

    @property
    def record_key(self) -> str:
        return self.url

    def to_record(self) -> dict[str, Any]:
        return to_json(self)  # type: ignore[no-any-return]

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Mirror:
        """The one parser of a stored mirror record (unknown keys ignored, bad values refused)."""
        return from_json(cls, data)

    def candidate(self) -> Candidate:
        return Candidate(
            url=self.url,
            host=self.host,
            kind=self.kind,
            name=self.name,
            description=self.description,
            default_branch=self.default_branch,
            fork=self.parent is not None,
            parent=self.parent,
            source=self.network_root,
            forks_count=self.forks_count,
            forks_listed=self.forks_listed,
            api_id=self.api_id,
            found_by=self.found_by,
            pushed_at=self.pushed_at,
        )


def can_move(mirror: Mirror, status: MirrorStatus) -> bool:
    return status is mirror.status or status in MOVES[mirror.status]


def transition(mirror: Mirror, status: MirrorStatus, why: str) -> Mirror:
    """The mirror with its takedown status moved to `status`; raises on a move not allowed."""
    if not can_move(mirror, status):
        raise IllegalTransition(
            f"Mirror {mirror.url} cannot go from {mirror.status} to {status} ({why})."
        )
    return replace(mirror, status=status)


@dataclass(frozen=True)
class Change:
    """A difference a recheck found in a stored mirror (e.g. verdict copy -> disabled)."""

    url: str
    field: str
    old: Any
    new: Any
    at: str


@dataclass(frozen=True)
class Collection:
    """What the hunt found: candidates by URL, counts by source, and sources it had to skip."""

    candidates: Mapping[str, Candidate]
    by_source: Mapping[str, int]
    skipped: tuple[Mapping[str, str], ...] = ()
    queries: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    coverage: Coverage = field(default_factory=Coverage)
