"""The claim model: entire or files per repository, from evidence the verifier stored.

The repositories are checked by the real verifier against the local GitHub (no mocks), so the
commit SHA, tree SHA and matched paths a claim cites are what GitHub's own endpoints answered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from playbook.config.org import Official
from playbook.mirrors.fingerprints import manifest_dict, manifest_from_json
from playbook.mirrors.model import Candidate, Mirror, Verdict
from playbook.mirrors.verify import Verifier
from playbook.net.http import ClientOptions
from playbook.notices.claims import ENTIRE_RATIO, ClaimKind, claims
from playbook.rehearsal.world import FakeRepo, FakeWorld, World, world_settings
from playbook.services.hub import MemoryCache, Services

PKG, VER = "@acme/cli", "2.1.88"
GH = "https://github.com/"
SHA = re.compile(r"[0-9a-f]{40}")


def leaked_files(n: int = 120) -> dict[str, bytes]:
    return {
        f"src/area{i % 7}/Module{i}.ts": (
            f"// module {i}\nexport function handler{i}V(input: string) {{\n"
            + "".join(f"  const s{j} = step{i * 31 + j}(input);\n" for j in range(8))
            + "  return input;\n}\n"
        ).encode()
        for i in range(n)
    }


def own_files(n: int, tag: str) -> dict[str, bytes]:
    return {
        f"lib/{tag}/file{i}.ts": f"// {tag} {i}\nexport const v{i} = {i * 7};\n".encode()
        for i in range(n)
    }


LEAK = leaked_files()
FIRST_60 = dict(list(LEAK.items())[:60])
REPOS = {
    # The issue's seeded case: 60 of the 120 leaked files beside 200 files of its own.
    "half/app": {**FIRST_60, **own_files(200, "own")},
    "whole/leak": {**LEAK, "README.md": b"# the leak\n", "package.json": b'{"name":"x"}\n'},
    "bundled/leak": {**LEAK, **{f"node_modules/dep{i}/index.js": b"x" * 80 for i in range(300)}},
    "bits/tool": {**dict(list(LEAK.items())[:20]), **own_files(30, "tool")},
}


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Mirror]]:
    world = World(package=PKG, version=VER)
    for name, files in REPOS.items():
        world.add(FakeRepo(name, dict(files), label="copy"))
    world.add(FakeRepo("fork/leak", dict(REPOS["whole/leak"]), parent="whole/leak"))
    home = tmp_path_factory.mktemp("claims")
    manifest = manifest_from_json(manifest_dict(LEAK, PKG, VER))
    with FakeWorld(world) as fake:
        services = Services(
            world_settings(fake, home), ClientOptions(dry_run=False), cache=MemoryCache()
        )

        async def run() -> list[Mirror]:
            try:
                cands = [
                    Candidate(GH + r.full_name, "github.com", "repo", r.full_name, "", "main")
                    for r in world.repos.values()
                ]
                return await Verifier(manifest, services, Official()).run(cands)
            finally:
                await services.aclose()

        yield {m.name: m for m in asyncio.run(run())}


def views(checked: dict[str, Mirror]) -> dict[str, Mirror]:
    """The records as the notices read them: through the store's JSON form."""
    return {name: Mirror.from_record(m.to_record()) for name, m in checked.items()}


def test_the_verifier_stores_commit_tree_and_every_matched_path(checked: dict[str, Mirror]) -> None:
    half = checked["half/app"]
    assert half.verdict is Verdict.COPY  # exactly half: the verdict says the leak is there
    assert half.commit_sha and SHA.fullmatch(half.commit_sha)
    assert half.tree_sha and SHA.fullmatch(half.tree_sha)
    assert sorted(p for p, _ in half.matched_paths) == sorted(FIRST_60)
    assert half.unvendored_files == 260
    # The stored record round-trips: the notices read exactly this.
    assert Mirror.from_record(half.to_record()) == half


def test_identical_trees_share_a_tree_sha_and_a_commit(checked: dict[str, Mirror]) -> None:
    assert checked["fork/leak"].tree_sha == checked["whole/leak"].tree_sha
    assert checked["fork/leak"].commit_sha == checked["whole/leak"].commit_sha
    assert checked["half/app"].tree_sha != checked["whole/leak"].tree_sha


def test_half_the_leak_beside_its_own_code_is_a_files_claim_naming_every_file(
    checked: dict[str, Mirror],
) -> None:
    claim = claims(views(checked).values())[GH + "half/app"]
    assert claim.kind is ClaimKind.FILES
    assert len(claim.files) == 60 and set(claim.files) == set(FIRST_60)
    commit = checked["half/app"].commit_sha
    for path in claim.files:
        assert str(claim.permalink(path)) == f"{GH}half/app/blob/{commit}/{path}"
    assert "60 of its 260 files" in claim.reason and "23.1%" in claim.reason
    assert claim.remedy == "remove the 60 named files from the repository and its history"


def test_a_repository_that_is_the_leak_is_an_entire_claim(checked: dict[str, Mirror]) -> None:
    found = claims(views(checked).values())
    whole = found[GH + "whole/leak"]
    assert whole.kind is ClaimKind.ENTIRE and whole.remedy == "disable the repository"
    assert "120 of its 122 files" in whole.reason
    # Vendored folders are other people's code: they neither help nor hurt the claim.
    assert found[GH + "bundled/leak"].kind is ClaimKind.ENTIRE
    assert found[GH + "bits/tool"].kind is ClaimKind.FILES
    assert len(found[GH + "bits/tool"].files) == 20


def test_the_ratio_is_at_least_ninety_percent(checked: dict[str, Mirror]) -> None:
    base = views(checked)["whole/leak"]
    pairs = tuple((p, p) for p in sorted(LEAK))[:90]
    at = dataclasses.replace(base, matched_paths=pairs, unvendored_files=100)
    below = dataclasses.replace(base, matched_paths=pairs[:89], unvendored_files=100)
    assert ENTIRE_RATIO == 0.9
    assert claims([at])[base.url].kind is ClaimKind.ENTIRE
    assert claims([below])[base.url].kind is ClaimKind.FILES


def test_an_identical_tree_inherits_the_entire_claim_without_a_file_list(
    checked: dict[str, Mirror],
) -> None:
    found = views(checked)
    proven_by_identity = dataclasses.replace(
        found["fork/leak"], matched_paths=(), unvendored_files=0
    )
    claim = claims([found["whole/leak"], proven_by_identity])[GH + "fork/leak"]
    assert claim.kind is ClaimKind.ENTIRE and claim.identical_to == "whole/leak"
    assert "identical" in claim.reason
    alone = claims([proven_by_identity])[GH + "fork/leak"]
    assert alone.kind is ClaimKind.FILES and "recheck" in alone.reason


def test_without_a_recorded_commit_a_permalink_is_a_visible_blank(
    checked: dict[str, Mirror],
) -> None:
    view = views(checked)["bits/tool"]
    old = dataclasses.replace(view, commit_sha=None)
    claim = claims([old])[old.url]
    assert str(claim.permalink(claim.files[0])) == "[MISSING: commit_sha]"


def test_a_notice_cites_nothing_at_head(checked: dict[str, Mirror]) -> None:
    for claim in claims(views(checked).values()).values():
        for path in claim.files:
            assert "/blob/HEAD/" not in str(claim.permalink(path))


class PushBetween(httpx.AsyncBaseTransport):
    """The real transport, plus a push to one repository right after the request `after`."""

    def __init__(self, world: World, name: str, files: dict[str, bytes], after: str) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.world, self.name, self.files, self.after = world, name, files, after

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith(self.after):
            repo = self.world.repo(self.name)
            assert repo is not None
            repo.files = dict(self.files)  # the branch moves
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def moving(tmp_path: Path, after: str, token: str | None) -> tuple[Mirror, FakeWorld, str]:
    """Verify moving/leak (60 leaked files) while a push (all 120) lands right after `after`;
    also the commit its branch pointed at before the push."""
    from playbook.rehearsal.world.github import commit_sha, folder_shas

    world = World(package=PKG, version=VER)
    repo = world.add(FakeRepo("moving/leak", dict(FIRST_60), label="partial"))
    before = commit_sha(folder_shas(repo)[""])
    pushed = {**LEAK, "README.md": b"# all of it now\n"}
    manifest = manifest_from_json(manifest_dict(LEAK, PKG, VER))
    with FakeWorld(world) as fake:
        transport = PushBetween(world, "moving/leak", pushed, after)
        options = ClientOptions(dry_run=False, transport=transport)
        settings = world_settings(fake, tmp_path, token=token)
        services = Services(settings, options, cache=MemoryCache())

        async def run() -> list[Mirror]:
            try:
                cand = Candidate(
                    GH + "moving/leak", "github.com", "repo", "moving/leak", "", "main"
                )
                return await Verifier(manifest, services, Official()).run([cand])
            finally:
                await services.aclose()

        (mirror,) = asyncio.run(run())
    assert repo.files == pushed  # the push happened
    return mirror, fake, before


def test_a_branch_that_moves_between_tree_and_commit_is_checked_at_the_commit(
    tmp_path: Path,
) -> None:
    # The REST path (no token, so no GraphQL): the tree by branch, then the branch's commit.
    mirror, fake, before = moving(tmp_path, "/repos/moving/leak/git/trees/main", None)
    # The evidence is the tree of the commit cited, not the tree read a moment before.
    assert len(mirror.matched_paths) == 120 and mirror.unvendored_files == 121
    assert mirror.verdict is Verdict.COPY and mirror.commit_sha and mirror.tree_sha
    assert mirror.commit_sha != before
    assert fake.stats.count("github.trees") == 2 and fake.stats.count("github.commits") == 1


def test_a_branch_that_moves_after_the_graphql_answer_is_checked_at_the_answered_commit(
    tmp_path: Path,
) -> None:
    # With a token: GraphQL answers the head, the push lands, and the tree is listed at the
    # answered tree oid: the 60 files of the commit cited, not the 120 pushed a moment later.
    mirror, fake, before = moving(tmp_path, "/graphql", "fake-github-token")
    assert mirror.commit_sha == before and mirror.tree_sha
    assert len(mirror.matched_paths) == 60 and mirror.unvendored_files == 60
    assert fake.stats.count("github.graphql") == 1
    assert fake.stats.count("github.trees") == 1 and fake.stats.count("github.commits") == 0
