"""What the hunt searched, what it could not, and how complete the list of copies therefore is.

Every source records what it searched (queries, pages, results read of results reported) and
every gap: a rate limit or spent budget that stopped it, GitHub's 1,000-result cap or pages left
unread, a search GitHub could not finish (`incomplete_results`), a host that did not answer, fork
listings not read, trees too big to list whole, candidates left unverified. Some gaps are the
sources' own limits and hold in every run (LIMITS): GitHub code search does not index a fork
unless it has more stars than its parent, so copies in forks are found only by listing the forks
of repositories already found.

The report states the result: "complete" only when no run gap is left, and even then only as far
as the searched sources index (the standing limits are listed beside it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

T = TypeVar("T")


class GapKind(StrEnum):
    NO_TOKEN = "no-token"
    RATE_LIMIT = "rate-limit"
    BUDGET = "budget"
    RESULT_CAP = "result-cap"  # more results than GitHub returns, or pages left unread
    INCOMPLETE = "incomplete-results"  # GitHub's search timed out
    UNREACHABLE = "unreachable"
    FAILED = "failed"
    FORKS_UNLISTED = "forks-unlisted"
    UNINDEXED_FORKS = "unindexed-forks"
    TRUNCATED_TREE = "truncated-tree"
    UNVERIFIED = "unverified"


# Limits of the sources themselves, true of every run: stated, not counted against completeness.
LIMITS = frozenset({GapKind.UNINDEXED_FORKS})

UNINDEXED_FORKS = (
    "GitHub code search does not index a fork unless it has more stars than its parent; forks "
    "are found by listing the forks of every repository found, so a copy in a fork of a "
    "repository no source found is not listed"
)


@dataclass(frozen=True)
class Gap:
    source: str
    kind: str  # a GapKind value
    detail: str


@dataclass(frozen=True)
class Searched:
    """One source and what it searched, in a sentence (`code-search`: "9 queries ...")."""

    source: str
    what: str


@dataclass(frozen=True)
class Coverage:
    searched: tuple[Searched, ...] = ()
    gaps: tuple[Gap, ...] = ()

    @property
    def run_gaps(self) -> tuple[Gap, ...]:
        return tuple(g for g in self.gaps if g.kind not in LIMITS)

    @property
    def limits(self) -> tuple[Gap, ...]:
        return tuple(g for g in self.gaps if g.kind in LIMITS)

    @property
    def complete(self) -> bool:
        return not self.run_gaps

    def statement(self) -> str:
        """One sentence for the report: how complete the list of copies is."""
        if not self.searched and not self.gaps:
            return (
                "No coverage was recorded for this hunt (it ran before respond recorded one): "
                "how complete the list of copies is, is unknown."
            )
        if self.complete:
            return (
                "Complete as far as the searched sources index: every search was read to its "
                "last result and every candidate was verified (standing limits below)."
            )
        kinds = sorted({g.kind for g in self.run_gaps})
        return (
            f"INCOMPLETE: {len(self.run_gaps):,} gap(s) ({', '.join(kinds)}); the copies listed "
            "are a lower bound."
        )

    def merged(self, other: Coverage) -> Coverage:
        return Coverage(_unique(self.searched + other.searched), _unique(self.gaps + other.gaps))


def _unique(items: Iterable[T]) -> tuple[T, ...]:
    return tuple(dict.fromkeys(items))
