"""Candidate collection from every source: GitHub searches and fork networks, npm, archives, forges.

Order matters for cost: searches first (GitHub, Software Heritage, GitLab, Codeberg and npm run
concurrently, each host serial behind its governor), then the GitHub network pass: the parent of
any fork whose parent is unknown (one GET /repos each), then the forks of every candidate, all
pages, recursively, but only into forks whose fork count is not zero (the listing carries it, so
leaf forks cost nothing). With a token the networks are listed through GraphQL (mirrors/forks.py:
many listings a query, each fork with its tree oid); REST lists whatever GraphQL could not.

Code search asks for forks too (`fork:true`: without it GitHub leaves forks out, and it indexes
a fork only when the fork has more stars than its parent). What each source searched and every
gap (limits, caps, unfinished searches, hosts that did not answer, forks not listed) is kept as
the hunt's coverage (playbook.mirrors.coverage).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from playbook.config.org import Official
from playbook.errors import RemoteError
from playbook.gaps import is_outside_failure, reason
from playbook.mirrors.coverage import UNINDEXED_FORKS, Coverage, Gap, GapKind, Searched
from playbook.mirrors.fingerprints import Manifest
from playbook.mirrors.forks import list_networks
from playbook.mirrors.model import Candidate, Collection, Source
from playbook.mirrors.queries import QueryPlan, plan_queries
from playbook.net.governor import BudgetSpent, QuotaExhausted
from playbook.services.archive import SWH, software_heritage
from playbook.services.forge import Forge, ForgeRepo, codeberg, gitlab
from playbook.services.github import GITHUB, SEARCH_CAP, RepoInfo, Search, TreeState, github_api
from playbook.services.github_graphql import ForkNode, github_graphql
from playbook.services.hub import Services

Progress = Callable[[str], None]
CODE_PAGES = 2  # 200 results a code query: the rest is said (a gap), not read (9 requests/minute)
REPO_PAGES = 3
NO_TOKEN = (
    "no GitHub token: code search needs one (set GITHUB_TOKEN); repository search, forks and "
    "the other hosts still ran"
)


def github_candidate(info: RepoInfo, source: str, parent_url: str | None = None) -> Candidate:
    return Candidate(
        url=info.url,
        host=GITHUB,
        kind="repo",
        name=info.full_name,
        description=info.description,
        default_branch=info.default_branch,
        fork=info.fork or parent_url is not None,
        parent=parent_url or (f"https://{GITHUB}/{info.parent}" if info.parent else None),
        source=f"https://{GITHUB}/{info.source}" if info.source else None,
        forks_count=info.forks_count,
        pushed_at=info.pushed_at,
        found_by=(source,),
    )


def fork_candidate(node: ForkNode, parent_url: str) -> Candidate:
    """A fork from a GraphQL listing, with the commit and tree its default branch holds."""
    return Candidate(
        url=node.url,
        host=GITHUB,
        kind="repo",
        name=node.full_name,
        description=node.description,
        default_branch=node.default_branch,
        fork=True,
        parent=parent_url,
        forks_count=node.forks,
        pushed_at=node.pushed_at,
        found_by=(Source.FORKS,),
        commit_sha=node.commit,
        tree_sha=node.tree,
    )


def named_github(full_name: str, source: str) -> Candidate:
    return Candidate(f"https://{GITHUB}/{full_name}", GITHUB, "repo", full_name, found_by=(source,))


def forge_candidate(repo: ForgeRepo, source: str) -> Candidate:
    return Candidate(
        url=repo.url,
        host=repo.host,
        kind="repo",
        name=repo.full_name,
        description=repo.description,
        default_branch=repo.default_branch,
        fork=repo.parent is not None,
        parent=repo.parent,
        api_id=repo.api_id,
        found_by=(source,),
    )


class Collector:
    """Accumulates candidates from every source; a failing source is recorded, never fatal."""

    def __init__(
        self,
        manifest: Manifest,
        services: Services,
        official: Official,
        published_at: str | None,
        progress: Progress,
    ) -> None:
        self.manifest = manifest
        self.services = services
        self.official = official
        self.plan: QueryPlan = plan_queries(manifest, published_at)
        self.progress = progress
        self.found: dict[str, Candidate] = {}
        self.by_source: collections.Counter[str] = collections.Counter()
        self.skipped: list[dict[str, str]] = []
        self.gaps: list[Gap] = []
        self.searched: dict[str, str] = {}
        self.unlistable: set[str] = set()

    def add(self, candidate: Candidate) -> Candidate:
        known = self.found.get(candidate.url)
        if known is None or not set(candidate.found_by) <= set(known.found_by):
            for source in set(candidate.found_by) - set(known.found_by if known else ()):
                self.by_source[str(source)] += 1
        merged = candidate if known is None else known.merge(candidate)
        self.found[candidate.url] = merged
        return merged

    async def guard(self, source: str, work: Awaitable[None]) -> None:
        """Run one source; its failure (down, slow, garbage) is recorded and the hunt goes on."""
        try:
            await work
        except Exception as exc:
            if not is_outside_failure(exc):
                raise
            why = reason(exc)
            self.skipped.append({"source": source, "reason": why})
            self.gaps.append(Gap(str(source), _outside_gap_kind(exc), why))
            self.progress(f"{source} stopped: {why}")

    async def run(self) -> Collection:
        await asyncio.gather(
            self.guard("github", self.github_searches()),
            self.guard(Source.SWH, self.archives()),
            self.guard(Source.GITLAB, self.forge(gitlab(self.services), Source.GITLAB)),
            self.guard(Source.CODEBERG, self.forge(codeberg(self.services), Source.CODEBERG)),
            self.guard(Source.NPM, self.npm()),
        )
        await self.guard(Source.FORKS, self.networks())
        self._forks_left()
        queries = {
            "code": tuple(q.query for q in self.plan.code),
            "repos": self.plan.repos,
            "words": (self.plan.words,),
        }
        # In the sources' fixed order, not the order they finished in: they search concurrently,
        # and the same hunt must write the same coverage (a resumed run is compared byte for
        # byte with a clean one).
        searched = sorted(self.searched.items(), key=lambda kv: _source_rank(kv[0]))
        gaps = sorted(self.gaps, key=lambda g: _source_rank(g.source))
        coverage = Coverage(tuple(Searched(k, v) for k, v in searched), tuple(gaps))
        return Collection(
            dict(self.found), dict(self.by_source), tuple(self.skipped), queries, coverage
        )

    def _forks_left(self) -> None:
        """Candidates whose forks were never listed (the pass stopped early): a gap."""
        left = [
            c.name
            for c in self.found.values()
            if self._wants_forks(c) and c.url not in self.unlistable
        ]
        if left:
            self.gaps.append(
                Gap(
                    Source.FORKS,
                    GapKind.FORKS_UNLISTED,
                    f"the forks of {len(left):,} repositories were not listed "
                    f"(first: {', '.join(sorted(left)[:3])})",
                )
            )

    def _results(self, source: str, query: str, found: Search[Any], max_pages: int) -> None:
        """Gaps of one search: results GitHub could not finish, capped or left unread."""
        if found.incomplete:
            self.gaps.append(
                Gap(
                    source,
                    GapKind.INCOMPLETE,
                    f"{query!r}: GitHub answered incomplete_results (the search timed out); "
                    f"{len(found):,} results read",
                )
            )
        if found.unread:
            why = (
                f"GitHub returns at most {SEARCH_CAP:,} results"
                if found.capped
                else f"{max_pages} pages read"
            )
            self.gaps.append(
                Gap(
                    source,
                    GapKind.RESULT_CAP,
                    f"{query!r}: {len(found):,} of {found.total:,} results read ({why})",
                )
            )

    # GitHub ------------------------------------------------------------------------------------

    async def github_searches(self) -> None:
        gh = github_api(self.services)
        for name in self.official.repositories:
            if "/" in name and "://" not in name:
                self.add(named_github(name, Source.OFFICIAL))
        if self.services.settings.github_token:
            await self.guard(Source.CODE_SEARCH, self.code_search())
        else:
            self.skipped.append({"source": Source.CODE_SEARCH, "reason": NO_TOKEN})
            self.gaps.append(Gap(Source.CODE_SEARCH, GapKind.NO_TOKEN, NO_TOKEN))
        self.gaps.append(Gap(Source.CODE_SEARCH, GapKind.UNINDEXED_FORKS, UNINDEXED_FORKS))
        read = total = 0
        for n, query in enumerate(self.plan.repos, 1):
            self.progress(f"GitHub repository search: {query}")
            found = await gh.search_repos(query, max_pages=REPO_PAGES)
            read, total = read + len(found), total + found.total
            self._results(Source.REPO_SEARCH, query, found, REPO_PAGES)
            for info in found:
                self.add(github_candidate(info, Source.REPO_SEARCH))
            self.searched[Source.REPO_SEARCH] = (
                f"{n} of {len(self.plan.repos)} queries, {read:,} of {total:,} results read"
            )

    async def code_search(self) -> None:
        gh = github_api(self.services)
        read = total = 0
        for n, query in enumerate(self.plan.code, 1):
            self.progress(f"GitHub code search: {query.query}")
            found = await gh.search_code(query.query, max_pages=CODE_PAGES)
            read, total = read + len(found), total + found.total
            self._results(Source.CODE_SEARCH, query.query, found, CODE_PAGES)
            for hit in found:
                self.add(github_candidate(hit.repo, Source.CODE_SEARCH))
            self.searched[Source.CODE_SEARCH] = (
                f"{n} of {len(self.plan.code)} queries (forks included), "
                f"{read:,} of {total:,} results read"
            )

    async def networks(self) -> None:
        """Parents of forks found by search, then every candidate's forks, recursively."""
        gh = github_api(self.services)
        for cand in [c for c in self.found.values() if c.host == GITHUB]:
            if cand.fork and cand.parent is None:
                await self.lookup_parent(cand)
        if self.services.settings.github_token:  # GitHub's GraphQL API needs a token
            await self.graph_networks()
        queue = collections.deque(c.url for c in self.found.values() if self._wants_forks(c))
        listed = forks_found = 0
        while queue:
            cand = self.found[queue.popleft()]
            if not self._wants_forks(cand) or cand.url in self.unlistable:
                continue
            try:
                forks = await gh.forks(cand.name)
            except RemoteError as exc:
                if exc.status not in (403, 404, 451):
                    raise
                # Disabled or gone (verification says which): its forks stay unlisted.
                self.unlistable.add(cand.url)
                self.gaps.append(
                    Gap(
                        Source.FORKS,
                        GapKind.FORKS_UNLISTED,
                        f"{cand.name}: the fork listing answered HTTP {exc.status}",
                    )
                )
                continue
            listed, forks_found = listed + 1, forks_found + len(forks)
            self.searched[Source.FORKS] = (
                f"{listed:,} fork listings read to the last page, {forks_found:,} forks"
            )
            self.found[cand.url] = Candidate.merge(
                cand,
                Candidate(
                    cand.url,
                    cand.host,
                    cand.kind,
                    cand.name,
                    forks_listed=True,
                    forks_count=len(forks),
                ),
            )
            self.progress(f"{cand.name}: {len(forks)} forks")
            for info in forks:
                fork = self.add(github_candidate(info, Source.FORKS, parent_url=cand.url))
                if self._wants_forks(fork):
                    queue.append(fork.url)

    async def graph_networks(self) -> None:
        """Every network through GraphQL (mirrors/forks.py); what it could not list is left
        unlisted, for the REST listing that follows."""
        roots = [c for c in self.found.values() if self._wants_forks(c)]
        if not roots:
            return
        known = [c.name for c in self.found.values() if c.host == GITHUB]
        listing = await list_networks(
            github_graphql(self.services),
            [(c.name, c.forks_count) for c in roots],
            self.progress,
            known=known,
        )
        by_name = {c.name.lower(): c.url for c in self.found.values() if c.host == GITHUB}
        for node in listing.forks:
            parent = by_name.get(node.parent.lower(), f"https://{GITHUB}/{node.parent}")
            by_name[node.full_name.lower()] = self.add(fork_candidate(node, parent)).url
        for name, count in listing.listed.items():
            url = by_name.get(name.lower())
            if url is not None:
                cand = self.found[url]
                listed = Candidate(
                    cand.url, cand.host, cand.kind, cand.name, forks_listed=True, forks_count=count
                )
                self.found[url] = Candidate.merge(listed, cand)
        self.progress(f"GitHub GraphQL: {len(listing.forks):,} forks in {listing.requests} queries")
        self.searched["forks-graphql"] = (
            f"{len(listing.listed):,} networks listed through GraphQL, {len(listing.forks):,} "
            f"forks in {listing.requests:,} queries"
            + (f"; stopped ({listing.stopped}), REST listed the rest" if listing.stopped else "")
        )
        if listing.stopped:
            self.progress(f"GraphQL fork listing stopped: {listing.stopped}; REST goes on")
            reason = f"{listing.stopped} (the REST listing took over what was left)"
            self.skipped.append({"source": f"{Source.FORKS} (GraphQL)", "reason": reason})

    def _wants_forks(self, cand: Candidate) -> bool:
        return cand.host == GITHUB and not cand.forks_listed and cand.forks_count != 0

    async def lookup_parent(self, cand: Candidate) -> None:
        looked = await github_api(self.services).repo(cand.name)
        if looked.state is not TreeState.OK or looked.repo is None:
            return
        self.add(github_candidate(looked.repo, cand.found_by[0] if cand.found_by else "search"))
        for name in (looked.repo.parent, looked.repo.source):
            if name:
                self.add(named_github(name, Source.NETWORK))

    # other hosts -------------------------------------------------------------------------------

    async def archives(self) -> None:
        swh = software_heritage(self.services)
        origins = await swh.search_origins(self.plan.words.replace(" ", "-"))
        self.searched[Source.SWH] = f"origins matching {self.plan.words!r}: {len(origins):,}"
        for origin in origins:
            parts = urlsplit(origin.url)
            if parts.netloc == GITHUB and parts.path.count("/") == 2:
                self.add(named_github(parts.path.strip("/"), Source.SWH))
            self.add(
                Candidate(
                    swh.browse_url(origin.url),
                    SWH,
                    "archive",
                    origin.url,
                    found_by=(Source.SWH,),
                )
            )

    async def forge(self, forge: Forge, source: str) -> None:
        repos = await forge.search(self.plan.words)
        self.searched[source] = f"projects matching {self.plan.words!r}: {len(repos):,}"
        for repo in repos:
            self.add(forge_candidate(repo, source))

    async def npm(self) -> None:
        from playbook.mirrors.npmcopies import search_copies

        cands = await search_copies(self.services, self.manifest.package, self.plan.words)
        self.searched[Source.NPM] = f"packages matching {self.plan.words!r}: {len(cands):,}"
        for cand in cands:
            self.add(cand)


SOURCE_ORDER = (
    "github",
    Source.CODE_SEARCH,
    Source.REPO_SEARCH,
    Source.SWH,
    Source.GITLAB,
    Source.CODEBERG,
    Source.NPM,
    Source.FORKS,
    "forks-graphql",
)


_RANK = {str(s): n for n, s in enumerate(SOURCE_ORDER)}


def _source_rank(source: str) -> tuple[int, str]:
    return (_RANK.get(source, len(_RANK)), source)


def _outside_gap_kind(exc: BaseException) -> str:
    """A failed source's gap kind: a RespondError says which; a transport error is a host that
    did not answer; anything else (an answer not in the API's shape) a failure."""
    if isinstance(exc, BudgetSpent):
        return GapKind.BUDGET
    if isinstance(exc, QuotaExhausted) or (isinstance(exc, RemoteError) and exc.status == 429):
        return GapKind.RATE_LIMIT
    if isinstance(exc, httpx.HTTPError) or (isinstance(exc, RemoteError) and exc.status is None):
        return GapKind.UNREACHABLE
    return GapKind.FAILED


async def collect(
    manifest: Manifest,
    services: Services,
    *,
    official: Official,
    published_at: str | None,
    progress: Progress = lambda _m: None,
) -> Collection:
    """Every candidate from every source; see the module docstring for the order and its cost."""
    return await Collector(manifest, services, official, published_at, progress).run()
