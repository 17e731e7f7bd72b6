"""Fork networks through GitHub's GraphQL API: every fork, every level, a few requests per 1,000.

A query carries a page (up to 100 forks) for each of up to MAX_ALIASES repositories, at most
MAX_NODES forks in all: a repository's next page goes first in the next query (pages of one
listing follow each other through cursors), and the listings of smaller repositories (forks of
forks, known from each fork's `forks { totalCount }`) fill the rest, with `first` cut to what
they hold so the points stay low. Each fork comes with its default branch's commit and tree oid,
which is what lets verification prove an unmodified fork without fetching it (verify.py).

Listing stops, keeping what it found, when the governor says the budget or the quota is spent
or GitHub fails; `stopped` says why, and repositories whose listing was not read to the end are
not marked listed (so the network warning stays "not fully listed").
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from playbook.errors import RespondError
from playbook.services.github import TreeState
from playbook.services.github_graphql import PAGE, ForkNode, GraphQLGitHub, PageWanted

MAX_ALIASES = 20
MAX_NODES = 2000
Progress = Callable[[str], None]


@dataclass
class Listing:
    forks: list[ForkNode] = field(default_factory=list)  # parents before their forks
    listed: dict[str, int] = field(default_factory=dict)  # repo -> forks, listing read to the end
    failed: dict[str, str] = field(default_factory=dict)  # repo -> why its forks are unknown
    requests: int = 0
    stopped: str = ""


async def list_networks(
    gql: GraphQLGitHub,
    roots: Iterable[tuple[str, int | None]],
    progress: Progress = lambda _m: None,
    *,
    known: Iterable[str] = (),
) -> Listing:
    """Every fork below each root (owner/name, forks expected or None), each listed once."""
    out = Listing()
    seen = {name.lower() for name in known}
    counted: collections.Counter[str] = collections.Counter()
    pending: collections.deque[PageWanted] = collections.deque()
    for name, expected in roots:
        seen.add(name.lower())
        if expected != 0:
            pending.append(PageWanted(name, None, _first(expected)))
    while pending:
        batch = _batch(pending)
        try:
            pages = await gql.fork_pages(batch)
        except RespondError as exc:
            out.stopped = exc.message
            out.failed.update((w.repo, exc.message) for w in [*batch, *pending])
            break
        out.requests += 1
        follow: list[PageWanted] = []
        for want, page in zip(batch, pages, strict=True):
            if page.state is not TreeState.OK:
                out.failed[want.repo] = page.reason or str(page.state)
                continue
            counted[want.repo] += len(page.forks)
            for fork in page.forks:
                if fork.full_name.lower() in seen:
                    continue
                seen.add(fork.full_name.lower())
                out.forks.append(fork)
                if fork.forks:
                    pending.append(PageWanted(fork.full_name, None, _first(fork.forks)))
            if page.after is not None:
                left = page.total - counted[want.repo]
                follow.append(PageWanted(want.repo, page.after, _first(left if left > 0 else None)))
            else:
                out.listed[want.repo] = counted[want.repo]
                if page.total > PAGE:
                    progress(f"{want.repo}: {counted[want.repo]:,} forks listed")
        pending.extendleft(reversed(follow))
    return out


def _first(expected: int | None) -> int:
    return PAGE if expected is None else max(1, min(PAGE, expected))


def _batch(pending: collections.deque[PageWanted]) -> list[PageWanted]:
    batch: list[PageWanted] = []
    nodes = 0
    while pending and len(batch) < MAX_ALIASES and nodes + pending[0].first <= MAX_NODES:
        want = pending.popleft()
        batch.append(want)
        nodes += want.first
    return batch
