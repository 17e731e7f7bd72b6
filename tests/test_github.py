"""The service clients (GitHub, forges, archive, CDNs) read the fake world's real-shaped answers."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from playbook.net.http import ClientOptions
from playbook.rehearsal.world import (
    FakeRepo,
    FakeWorld,
    World,
    sample_files,
    world_settings,
)
from playbook.scan.fingerprint import blob_sha1
from playbook.services.archive import Origin, software_heritage
from playbook.services.cdn import CdnProbe, PurgeResult, cdns, jsdelivr_purge
from playbook.services.forge import codeberg, gitlab
from playbook.services.github import RepoLookup, Tree, TreeState, github_api
from playbook.services.hub import MemoryCache, Services
from tests.support.services import run_closing

PKG, VER = "@acme/widget-cli", "2.1.88"
T = TypeVar("T")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeWorld]:
    world = World.seeded(sample_files(seed=4), PKG, VER, seed=4, official_forks=205)
    many = {f"src/f{i}.ts": f"export const f{i} = {i};\n".encode() for i in range(2500)}
    world.add(FakeRepo("big/project", many, host="gitlab", description="widget big"))
    world.add(FakeRepo("big/project", many, host="codeberg", description="widget big"))
    with FakeWorld(world) as server:
        yield server


def call(fake: FakeWorld, tmp: Path, work: Callable[[Services], Awaitable[T]]) -> T:
    services = Services(world_settings(fake, tmp), ClientOptions(dry_run=False), MemoryCache())
    return run_closing(services, work)


def test_forks_follow_every_page(fake: FakeWorld, tmp_path: Path) -> None:
    forks = call(fake, tmp_path, lambda s: github_api(s).forks("acme/widget-cli"))
    assert len(forks) == 206  # 205 legitimate forks and the leak pushed into one
    assert len({f.full_name for f in forks}) == 206
    assert all(f.parent == "acme/widget-cli" and f.fork for f in forks)
    assert all(f.default_branch == "main" and f.pushed_at for f in forks)


def test_repo_lookup_names_parent_source_and_blocks(fake: FakeWorld, tmp_path: Path) -> None:
    async def work(s: Services) -> tuple[RepoLookup, RepoLookup, RepoLookup]:
        gh = github_api(s)
        deep = await gh.repo("f3x0/widget-cli-source")
        blocked = await gh.repo("takendown/widget-cli-source")
        missing = await gh.repo("nobody/nothing")
        return deep, blocked, missing

    deep, blocked, missing = call(fake, tmp_path, work)
    assert deep.repo is not None
    assert deep.repo.parent == "f2x0/widget-cli-source"
    assert deep.repo.source == "leaker0/widget-cli-source"
    assert blocked.state is TreeState.BLOCKED
    assert missing.state is TreeState.MISSING


def test_tree_by_head_and_blob_download(fake: FakeWorld, tmp_path: Path) -> None:
    repo = fake.world.repo("leaker2/mirror")
    assert repo is not None
    data = next(iter(sorted(repo.files.items())))[1]

    async def work(s: Services) -> tuple[Tree, bytes | None]:
        gh = github_api(s)
        return await gh.tree("leaker2/mirror", "HEAD"), await gh.blob(
            "leaker2/mirror", blob_sha1(data)
        )

    tree, blob = call(fake, tmp_path, work)
    assert dict(tree.entries) == {p: blob_sha1(d) for p, d in repo.files.items()}
    assert blob == data


def test_code_search_items_carry_repository_and_blob_sha(fake: FakeWorld, tmp_path: Path) -> None:
    files = sample_files(seed=4)
    token = "toolsHandler0V4"
    hits = call(fake, tmp_path, lambda s: github_api(s).search_code(token))
    assert hits
    # Exact copies carry the leaked blob; the reformatted copy's file has another one.
    assert blob_sha1(files["src/tools/Module0.ts"]) in {h.sha for h in hits}
    assert all(h.path.endswith("Module0.ts") for h in hits)
    assert all(h.repo.url.startswith("https://github.com/") for h in hits)


def test_forge_trees_page_to_the_end(fake: FakeWorld, tmp_path: Path) -> None:
    async def work(s: Services) -> tuple[int, int]:
        gl = [r for r in await gitlab(s).search("widget big") if r.full_name == "big/project"]
        cb = [r for r in await codeberg(s).search("widget big") if r.full_name == "big/project"]
        return len((await gitlab(s).tree(gl[0])).entries), len(
            (await codeberg(s).tree(cb[0])).entries
        )

    assert call(fake, tmp_path, work) == (2500, 2500)


def test_archive_and_cdn_clients(fake: FakeWorld, tmp_path: Path) -> None:
    async def work(
        s: Services,
    ) -> tuple[list[Origin], CdnProbe, CdnProbe, CdnProbe, PurgeResult]:
        origins = await software_heritage(s).search_origins("widget-cli")
        js, un = cdns(s)
        head = await js.probe(PKG, VER, "cli.js.map")
        body = await un.probe(PKG, VER, "cli.js", body=True)
        gone = await un.probe(PKG, "9.9.9", "cli.js")
        purge = await jsdelivr_purge(s).purge(PKG, "latest", "cli.js")
        return origins, head, body, gone, purge

    origins, head, body, gone, purge = call(fake, tmp_path, work)
    assert any("leaker0" in o.url for o in origins)
    assert head.status == 200 and head.sha256 is None
    cli = fake.world.cdn_files["cli.js"]
    assert body.sha256 == hashlib.sha256(cli).hexdigest()
    assert gone.status == 404
    assert purge.ok and "@latest/" in purge.url
    assert fake.stats.purges == [f"/npm/{PKG}@latest/cli.js"]
