"""GitLab and Codeberg copies are verified at a commit, and their notices cite it.

Against the local world's GitLab and Forgejo (no mocks): the candidates come from the forges'
own search, the real verifier checks them, the notices are drafted from the stored records.
"""

from __future__ import annotations

import asyncio
import math
import re
from pathlib import Path

import httpx
import pytest

from playbook.config.org import Official
from playbook.mirrors.collect import forge_candidate
from playbook.mirrors.fingerprints import manifest_dict, manifest_from_json
from playbook.mirrors.model import Mirror, Verdict
from playbook.mirrors.verify import Verifier
from playbook.net.http import ClientOptions
from playbook.rehearsal.world import FakeRepo, FakeWorld, World, world_settings
from playbook.rehearsal.world.forges import head
from playbook.rehearsal.world.github import folder_shas
from playbook.services.hub import MemoryCache, Services
from tests.test_notices_claims import FIRST_60, LEAK, PKG, VER, own_files
from tests.test_notices_fixture import build_incident, full_org, store_drafts

WHOLE = {**LEAK, "README.md": b"# the leak\n"}
HALF = {**FIRST_60, **own_files(200, "own")}
LINK = {
    "gitlab": "https://gitlab.com/{name}/-/blob/{commit}/",
    "codeberg": "https://codeberg.org/{name}/src/commit/{commit}/",
}


def verify(world: World, tmp: Path, transport: httpx.AsyncBaseTransport | None = None) -> tuple[
    dict[str, Mirror], FakeWorld
]:  # fmt: skip
    """Search both forges for "leak" as the hunt does, then verify what they answered."""
    manifest = manifest_from_json(manifest_dict(LEAK, PKG, VER))
    with FakeWorld(world) as fake:
        options = ClientOptions(dry_run=False, transport=transport)
        services = Services(world_settings(fake, tmp), options, cache=MemoryCache())

        async def run() -> list[Mirror]:
            try:
                found = await services.gitlab().search("leak")
                found += await services.codeberg().search("leak")
                cands = [forge_candidate(repo, "test") for repo in found]
                return await Verifier(manifest, services, Official()).run(cands)
            finally:
                await services.aclose()

        mirrors = asyncio.run(run())
    return {m.url: m for m in mirrors}, fake


def test_forge_copies_are_pinned_and_their_notices_cite_the_commit(tmp_path: Path) -> None:
    world = World(package=PKG, version=VER)
    repos = [
        world.add(FakeRepo(f"{host[:2]}{kind}/leak", dict(files), host=host, label="copy"))
        for host in ("gitlab", "codeberg")
        for kind, files in (("whole", WHOLE), ("half", HALF))
    ]
    mirrors, fake = verify(world, tmp_path)
    assert len(mirrors) == 4
    for repo in repos:
        got = mirrors[repo.url]
        assert got.commit_sha == head(repo), repo.full_name  # the branch's commit, as answered
        assert got.verdict is Verdict.COPY  # half the leak or more
        assert len(got.matched_paths) == (120 if "whole" in repo.full_name else 60)
    # Forgejo names the commit's tree too; GitLab's tree listing carries no tree SHA.
    assert mirrors[repos[3].url].tree_sha == folder_shas(repos[3])[""]
    # Requests: the branch, then the tree at its commit (GitLab pages it by 100 entries).
    assert fake.stats.count("gitlab.branch") == 2 and fake.stats.count("codeberg.branch") == 2
    pages = sum(math.ceil(len(r.files) / 100) for r in repos if r.host == "gitlab")
    assert fake.stats.count("gitlab.tree") == pages and fake.stats.count("codeberg.tree") == 2

    home = tmp_path / "incident"
    store = build_incident(home, with_notices=False, mirror_list=[m.to_record() for m in mirrors.values()])  # fmt: skip
    drafts = [d for d in store_drafts(store, full_org(tmp_path)) if d.record["kind"] == "forge-copyright"]  # fmt: skip
    assert len(drafts) == 2
    for draft in drafts:
        assert "[MISSING: commit_sha]" not in draft.text
        assert "commit_sha" not in draft.record["missing"]
        assert draft.record["status"] != "needs_details"
    text = "\n".join(d.text for d in drafts)
    for repo in repos:
        commit = head(repo)
        assert f"Commit {commit}" in text, repo.full_name
        if "half" in repo.full_name:  # a files claim: each of its 60 files at the commit
            link = LINK[repo.host].format(name=repo.full_name, commit=commit)
            assert len(re.findall(rf"^  - {re.escape(link)}src/\S+\.ts$", text, re.M)) == 60


class PushAfterBranch(httpx.AsyncBaseTransport):
    """The real transport, plus a push to every forge repository right after its branch was read."""

    def __init__(self, world: World, files: dict[str, bytes]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.world, self.files = world, files

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if "/branches/" in request.url.path:
            for repo in self.world.repos.values():
                repo.files = dict(self.files)  # the branch moves before the tree is asked for
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("host", ["gitlab", "codeberg"])
def test_a_branch_that_moves_after_the_branch_request_leaves_evidence_and_commit_agreeing(
    tmp_path: Path, host: str
) -> None:
    world = World(package=PKG, version=VER)
    repo = world.add(FakeRepo("moving/leak", dict(FIRST_60), host=host, label="partial"))
    before = head(repo)
    mirrors, fake = verify(world, tmp_path, PushAfterBranch(world, WHOLE))
    (got,) = mirrors.values()
    assert head(repo) != before  # the push happened
    # The commit cited is the one the branch answered, and the files matched are that commit's
    # (60), not the 120 the branch holds a moment later: a notice never cites an unchecked tree.
    assert got.commit_sha == before
    assert len(got.matched_paths) == 60 and got.unvendored_files == 60
    assert fake.stats.count(f"{host}.branch") == 1
    assert fake.stats.statuses[404] == 0
