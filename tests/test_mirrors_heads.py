"""Heads through GraphQL: repositories found by search get their default branch's commit and tree
oid in batches before verification, so each tree is listed at the commit a notice cites, trees
already verified are proven by identity, and no commit request is made; REST stays the path
without a token or when GraphQL fails, and the coverage says which path was taken."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from playbook.clock import Clock
from playbook.config.org import Official
from playbook.mirrors.coverage import Coverage
from playbook.mirrors.fingerprints import manifest_dict, manifest_from_json
from playbook.mirrors.model import Candidate, Mirror, Verdict
from playbook.mirrors.verify import HEADS, Verifier, verification_coverage
from playbook.net.http import ClientOptions, RetryPolicy
from playbook.rehearsal.world import (
    FakeClock,
    FakeRepo,
    FakeWorld,
    Limits,
    World,
    sample_files,
    sample_identifiers,
)
from playbook.rehearsal.world.github import commit_sha, folder_shas
from playbook.rehearsal.world.server import world_settings
from playbook.services.github_graphql import HEADS_PER_QUERY
from playbook.services.hub import MemoryCache, Services
from tests.support.services import run_closing

PKG, VER = "@acme/widget-cli", "2.1.88"
GH = "https://github.com/"
FILES = sample_files(first_party=30, node_modules=0, seed=31)
MANIFEST = manifest_from_json(manifest_dict(FILES, PKG, VER, sample_identifiers(FILES)))
T = TypeVar("T")
TOKEN = "fake-github-token"


def run(
    world: World,
    tmp: Path,
    work: Callable[[Services], Awaitable[T]],
    token: str | None = TOKEN,
    transport: Callable[[FakeWorld], httpx.AsyncBaseTransport] | None = None,
) -> tuple[T, FakeWorld]:
    clock = FakeClock()
    with FakeWorld(world, clock=clock) as fake:
        options = ClientOptions(
            dry_run=False,
            retry=RetryPolicy(attempts=1),
            transport=transport(fake) if transport else None,
        )
        services = Services(
            world_settings(fake, tmp, token=token),
            options,
            MemoryCache(),
            clock=Clock(clock, clock.sleep),
        )

        return run_closing(services, work), fake


def searched(world: World) -> list[Candidate]:
    """The repositories as a search lists them: a name and a branch, no commit."""
    return [
        Candidate(r.url, "github.com", "repo", r.full_name, default_branch=r.default_branch)
        for r in world.repos.values()
    ]


async def verify(services: Services, cands: list[Candidate]) -> tuple[list[Mirror], Coverage]:
    verifier = Verifier(MANIFEST, services, Official())
    mirrors = await verifier.run(cands)
    return mirrors, verification_coverage(verifier, mirrors)


def head(world: World, name: str) -> tuple[str, str]:
    repo = world.repo(name)
    assert repo is not None
    tree = folder_shas(repo)[""]
    return commit_sha(tree), tree


def what(coverage: Coverage) -> str:
    return next(s.what for s in coverage.searched if s.source == HEADS)


def test_search_results_get_their_heads_in_batches_and_need_no_commit_request(
    tmp_path: Path,
) -> None:
    world = World(PKG, VER)
    for i in range(120):  # the same leak under 120 names: one tree
        world.add(FakeRepo(f"copy{i}/leak", dict(FILES), label="copy"))
    for i in range(60):  # each its own code: 60 trees
        world.add(FakeRepo(f"own{i}/tool", {f"src/own{i}.ts": f"export const o = {i};\n".encode()}))
    world.add(FakeRepo("gone/leak", dict(FILES), deleted=True))
    world.add(FakeRepo("blocked/leak", dict(FILES), disabled=True))
    world.add(FakeRepo("empty/repo", {}))
    cands = searched(world)
    (mirrors, coverage), fake = run(world, tmp_path, lambda s: verify(s, cands))
    by_name = {m.name: m for m in mirrors}

    queries = [(t, a) for t, _v, a in fake.graphql.queries if t.startswith("query Heads")]
    assert len(queries) == fake.stats.count("github.graphql") == -(-len(cands) // HEADS_PER_QUERY)
    assert all(a["data"]["rateLimit"]["cost"] == 1 for _t, a in queries)
    assert max(t.count(": repository(") for t, _a in queries) == HEADS_PER_QUERY
    # One tree per distinct tree, listed at its oid; REST tells the three GraphQL did not resolve.
    assert fake.stats.count("github.trees") == 1 + 60 + 3
    assert fake.stats.count("github.commits") == 0
    copies = [by_name[f"copy{i}/leak"] for i in range(120)]
    assert {m.verdict for m in copies} == {Verdict.COPY}
    for m in copies:  # each cites its own head: the commit GraphQL answered, its tree checked
        assert (m.commit_sha, m.tree_sha) == head(world, m.name)
        assert m.matched_paths == copies[0].matched_paths
    assert sum("the same tree SHA" in m.evidence for m in copies) == 119
    assert by_name["gone/leak"].verdict is Verdict.GONE
    assert by_name["blocked/leak"].verdict is Verdict.DISABLED
    assert by_name["empty/repo"].verdict is Verdict.UNRELATED
    assert {by_name[f"own{i}/tool"].verdict for i in range(60)} == {Verdict.UNRELATED}
    text = what(coverage)
    assert text.startswith(f"180 of {len(cands)} GitHub repositories") and "(2 queries)" in text
    assert f"3 of {len(cands)} checked through REST" in text and "3 of them not resolved" in text


@pytest.mark.parametrize(
    ("token", "limits", "why"),
    [
        (None, Limits(), "GraphQL not used: no GitHub token"),
        (TOKEN, Limits(graphql=0), "GraphQL not used: github graphql quota resets"),
    ],
)
def test_without_graphql_rest_pins_each_match_to_its_commit_and_says_so(
    tmp_path: Path, token: str | None, limits: Limits, why: str
) -> None:
    world = World(PKG, VER, limits=limits)
    for i in range(4):
        world.add(FakeRepo(f"copy{i}/leak", dict(FILES), label="copy"))
    world.add(FakeRepo("own/tool", {"src/own.ts": b"export const own = 1;\n"}))
    cands = searched(world)
    (mirrors, coverage), fake = run(world, tmp_path, lambda s: verify(s, cands), token=token)
    # Every tree by branch (no oid to prove identity by), and a commit for each that matched.
    assert fake.stats.count("github.trees") == 5 and fake.stats.count("github.commits") == 4
    for m in mirrors:
        if m.name.startswith("copy"):
            assert m.verdict is Verdict.COPY and (m.commit_sha, m.tree_sha) == head(world, m.name)
    text = what(coverage)
    assert text.startswith(why) and "5 of 5 checked through REST" in text


class DropKept(httpx.AsyncBaseTransport):
    """The real transport; after the GraphQL answer the branch moves and its old commit is gone
    (a force push, then git's garbage collection), so the answered tree oid is not served."""

    def __init__(self, fake: FakeWorld, name: str, files: dict[str, bytes]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.fake, self.name, self.files = fake, name, files

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/graphql"):
            repo = self.fake.world.repo(self.name)
            assert repo is not None
            repo.files = dict(self.files)
            self.fake.github.kept.clear()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_tree_oid_no_longer_served_is_listed_by_branch_and_pinned_by_rest(
    tmp_path: Path,
) -> None:
    world = World(PKG, VER)
    repo = world.add(FakeRepo("moving/leak", {"README.md": b"# mine\n"}))
    before = head(world, "moving/leak")
    pushed = {**FILES, "README.md": b"# all of it\n"}
    cands = searched(world)
    (mirrors, coverage), fake = run(
        world,
        tmp_path,
        lambda s: verify(s, cands),
        transport=lambda f: DropKept(f, "moving/leak", pushed),
    )
    (mirror,) = mirrors
    assert repo.files == pushed and head(world, "moving/leak") != before
    # The answered oid 404s; the branch's tree and its commit (REST) are what is cited.
    assert mirror.verdict is Verdict.COPY
    assert (mirror.commit_sha, mirror.tree_sha) == head(world, "moving/leak")
    assert fake.stats.count("github.trees") == 2 and fake.stats.count("github.commits") == 1
    assert "1 trees not served at their listed oid were listed by branch" in what(coverage)
