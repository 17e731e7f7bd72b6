"""Candidate collection from every source: GitHub searches and fork networks, npm, archives, forges.

Order matters for cost: searches first (GitHub, Software Heritage, GitLab, Codeberg and npm run
concurrently, each host serial behind its governor), then the GitHub network pass: the parent of
any fork whose parent is unknown (one GET /repos each), then the forks of every candidate, all
pages, recursively, but only into forks whose fork count is not zero (the listing carries it, so
leaf forks cost nothing). With a token the networks are listed through GraphQL (mirrors/forks.py:
many listings a query, each fork with its tree oid); REST lists whatever GraphQL could not.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from playbook.config.org import Official
from playbook.errors import RemoteError, RespondError
from playbook.mirrors.fingerprints import Manifest
from playbook.mirrors.forks import list_networks
from playbook.mirrors.model import Candidate, Collection, Source
from playbook.mirrors.queries import QueryPlan, plan_queries
from playbook.services.archive import SWH, software_heritage
from playbook.services.forge import Forge, ForgeRepo, codeberg, gitlab
from playbook.services.github import GITHUB, RepoInfo, TreeState, github_api
from playbook.services.github_graphql import ForkNode, github_graphql
from playbook.services.hub import Services

Progress = Callable[[str], None]
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

    def add(self, candidate: Candidate) -> Candidate:
        known = self.found.get(candidate.url)
        if known is None or not set(candidate.found_by) <= set(known.found_by):
            for source in set(candidate.found_by) - set(known.found_by if known else ()):
                self.by_source[str(source)] += 1
        merged = candidate if known is None else known.merge(candidate)
        self.found[candidate.url] = merged
        return merged

    async def guard(self, source: str, work: Awaitable[None]) -> None:
        try:
            await work
        except RespondError as exc:
            self.skipped.append({"source": source, "reason": exc.message})
            self.progress(f"{source} stopped: {exc.message}")

    async def run(self) -> Collection:
        await asyncio.gather(
            self.guard("github", self.github_searches()),
            self.guard(Source.SWH, self.archives()),
            self.guard(Source.GITLAB, self.forge(gitlab(self.services), Source.GITLAB)),
            self.guard(Source.CODEBERG, self.forge(codeberg(self.services), Source.CODEBERG)),
            self.guard(Source.NPM, self.npm()),
        )
        await self.guard(Source.FORKS, self.networks())
        queries = {
            "code": tuple(q.query for q in self.plan.code),
            "repos": self.plan.repos,
            "words": (self.plan.words,),
        }
        return Collection(dict(self.found), dict(self.by_source), tuple(self.skipped), queries)

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
        for query in self.plan.repos:
            self.progress(f"GitHub repository search: {query}")
            for info in await gh.search_repos(query):
                self.add(github_candidate(info, Source.REPO_SEARCH))

    async def code_search(self) -> None:
        gh = github_api(self.services)
        for query in self.plan.code:
            self.progress(f"GitHub code search: {query.query}")
            for hit in await gh.search_code(query.query, max_pages=2):
                self.add(github_candidate(hit.repo, Source.CODE_SEARCH))

    async def networks(self) -> None:
        """Parents of forks found by search, then every candidate's forks, recursively."""
        gh = github_api(self.services)
        for cand in [c for c in self.found.values() if c.host == GITHUB]:
            if cand.fork and cand.parent is None:
                await self.lookup_parent(cand)
        if self.services.settings.github_token:  # GitHub's GraphQL API needs a token
            await self.graph_networks()
        queue = collections.deque(c.url for c in self.found.values() if self._wants_forks(c))
        while queue:
            cand = self.found[queue.popleft()]
            if not self._wants_forks(cand):
                continue
            try:
                forks = await gh.forks(cand.name)
            except RemoteError as exc:
                if exc.status not in (403, 404, 451):
                    raise
                continue  # disabled or gone: verification says which
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
        if listing.stopped:
            self.progress(f"GraphQL fork listing stopped: {listing.stopped}; REST goes on")

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
        for origin in await swh.search_origins(self.plan.words.replace(" ", "-")):
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
        for repo in await forge.search(self.plan.words):
            self.add(forge_candidate(repo, source))

    async def npm(self) -> None:
        from playbook.mirrors.npmcopies import search_copies

        for cand in await search_copies(self.services, self.manifest.package, self.plan.words):
            self.add(cand)


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
