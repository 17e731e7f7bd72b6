"""The fake world answers in GitHub's, the CDNs', the archive's and the forges' shapes, over loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from playbook.rehearsal.world import (
    FakeClock,
    FakeWorld,
    Limits,
    World,
    sample_files,
    sample_identifiers,
)
from playbook.scan.fingerprint import blob_sha1

PKG, VER = "@acme/widget-cli", "2.1.88"
AUTH = {"authorization": "Bearer test-token"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeWorld]:
    world = World.seeded(sample_files(seed=3), PKG, VER, seed=3)
    with FakeWorld(world) as server:
        yield server


def gh(fake: FakeWorld, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{fake.endpoint('github')}{path}", headers={**AUTH, **headers})


def test_server_listens_on_loopback_only(fake: FakeWorld) -> None:
    assert fake.base_url.startswith("http://127.0.0.1:")
    assert fake.env()["RESPOND_GITHUB_API"] == f"{fake.base_url}/github"


def test_tree_lists_git_blob_shas_of_every_file(fake: FakeWorld) -> None:
    repo = fake.world.repo("leaker2/mirror")
    assert repo is not None
    response = gh(fake, "/repos/leaker2/mirror/git/trees/main?recursive=1")
    assert response.status_code == 200
    blobs = {e["path"]: e["sha"] for e in response.json()["tree"] if e["type"] == "blob"}
    assert blobs == {p: blob_sha1(d) for p, d in repo.files.items()}
    assert response.json()["truncated"] is False
    assert gh(fake, "/repos/leaker2/mirror/git/trees/nope?recursive=1").status_code == 404


def test_fork_lists_paginate_with_link_headers(fake: FakeWorld) -> None:
    seen, url, pages = [], f"{fake.endpoint('github')}/repos/acme/widget-cli/forks?per_page=100", 0
    while url:
        response = httpx.get(url)
        pages += 1
        seen += [r["full_name"] for r in response.json()]
        match = re.search(r'<([^>]+)>;\s*rel="next"', response.headers.get("link", ""))
        url = match[1] if match else ""
    assert pages == 3
    assert len(seen) == len(set(seen)) == len(fake.world.forks_of("acme/widget-cli"))
    capped = gh(fake, "/repos/acme/widget-cli/forks?per_page=500")
    assert len(capped.json()) == 100


def test_disabled_repository_answers_451_with_a_dmca_block(fake: FakeWorld) -> None:
    response = gh(fake, "/repos/takendown/widget-cli-source/git/trees/main")
    assert response.status_code == 451
    body = response.json()
    assert body["message"] == "Repository access blocked"
    assert body["block"]["reason"] == "dmca"


def test_repo_detail_names_parent_and_network_root(fake: FakeWorld) -> None:
    data = gh(fake, "/repos/f2x0/widget-cli-source").json()
    assert data["fork"] is True
    assert data["parent"]["full_name"] == "f1x0/widget-cli-source"
    assert data["source"]["full_name"] == "leaker0/widget-cli-source"


def test_code_search_skips_forks_with_fewer_stars_and_matches_tokens(fake: FakeWorld) -> None:
    token = sample_identifiers(sample_files(seed=3))[0]
    data = gh(fake, f"/search/code?q={token}&per_page=100").json()
    repos = {i["repository"]["full_name"] for i in data["items"]}
    assert "leaker0/widget-cli-source" in repos
    assert not any(r.startswith("f1x") for r in repos)  # forks are not indexed
    assert data["total_count"] == len(data["items"])
    assert all(i["sha"] and i["path"] for i in data["items"])
    anonymous = httpx.get(f"{fake.endpoint('github')}/search/code?q={token}")
    assert anonymous.status_code == 401  # code search needs a token, as on GitHub


def test_rate_limit_headers_and_etag_revalidation(fake: FakeWorld) -> None:
    first = gh(fake, "/repos/leaker2/mirror")
    assert first.headers["x-ratelimit-resource"] == "core"
    remaining = int(first.headers["x-ratelimit-remaining"])
    again = gh(fake, "/repos/leaker2/mirror", **{"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    assert int(again.headers["x-ratelimit-remaining"]) == remaining  # a 304 costs nothing


def test_code_search_limit_answers_403_after_ten_in_a_window() -> None:
    clock = FakeClock()
    world = World(PKG, VER, limits=Limits(code_search=10))
    with FakeWorld(world, clock=clock) as server:
        codes = [
            httpx.get(f"{server.endpoint('github')}/search/code?q=abc", headers=AUTH).status_code
            for _ in range(11)
        ]
        assert codes[:10] == [200] * 10
        assert codes[10] == 403
        assert server.stats.limited == 1
        clock.now += 61
        assert (
            httpx.get(f"{server.endpoint('github')}/search/code?q=abc", headers=AUTH).status_code
            == 200
        )


def test_cdns_archive_forges_and_npm_search(fake: FakeWorld) -> None:
    js = httpx.head(f"{fake.endpoint('jsdelivr')}/npm/{PKG}@{VER}/cli.js.map")
    assert js.status_code == 200
    assert httpx.get(f"{fake.endpoint('unpkg')}/{PKG}@2.1.87/cli.js.map").status_code == 404
    origins = httpx.get(f"{fake.endpoint('swh')}/origin/search/widget-cli/").json()
    assert any("leaker0" in o["url"] for o in origins)
    gl = httpx.get(f"{fake.endpoint('gitlab')}/api/v4/projects?search=widget").json()
    assert {p["path_with_namespace"] for p in gl} >= {"glcopy/widget-cli-leak"}
    cb = httpx.get(f"{fake.endpoint('codeberg')}/api/v1/repos/search?q=widget").json()
    assert cb["ok"] is True and cb["data"]
    # Each forge's branch endpoint answers the commit (`commit.id`) its tree can be listed at.
    glid = next(p["id"] for p in gl if p["path_with_namespace"] == "glcopy/widget-cli-leak")
    project = f"{fake.endpoint('gitlab')}/api/v4/projects/{glid}/repository"
    branch = httpx.get(f"{project}/branches/main").json()
    assert branch["name"] == "main" and re.fullmatch(r"[0-9a-f]{40}", branch["commit"]["id"])
    tree = httpx.get(f"{project}/tree", params={"ref": branch["commit"]["id"], "recursive": "1"})
    assert tree.status_code == 200 and tree.json()[0]["type"] in ("blob", "tree")
    assert httpx.get(f"{project}/tree", params={"ref": "f" * 40}).status_code == 404
    repo = f"{fake.endpoint('codeberg')}/api/v1/repos/cbcopy/widget-cli"
    commit = httpx.get(f"{repo}/branches/main").json()["commit"]["id"]
    listed = httpx.get(f"{repo}/git/trees/{commit}", params={"recursive": "true"}).json()
    assert re.fullmatch(r"[0-9a-f]{40}", listed["sha"]) and listed["tree"]
    assert httpx.get(f"{repo}/branches/nope").status_code == 404
    npm = httpx.get(f"{fake.registry}-/v1/search?text=widget").json()
    assert {o["package"]["name"] for o in npm["objects"]} >= {"widget-cli-leaked"}


def test_seeded_world_records_ground_truth() -> None:
    world = World.seeded(sample_files(seed=3), PKG, VER, seed=3, official_forks=12)
    assert world.planted["https://github.com/leaker0/widget-cli-source"] == "copy"
    assert world.planted["https://github.com/takendown/widget-cli-source"] == "disabled"
    assert world.planted["https://github.com/snippets/widget-cli-bits"] == "partial"
    assert "https://github.com/acme/widget-cli" not in world.planted
    assert len(world.forks_of("acme/widget-cli")) == 13  # 12 legitimate forks and one leak
    assert "[official]" in world.respond_toml and '"acme"' in world.respond_toml


def test_package_tarball_is_the_same_bytes_across_a_clock_tick() -> None:
    """The packument's integrity is computed from one build, the served tarball from another."""
    from unittest import mock

    from playbook.rehearsal.world.npm import package_tarball

    files = {"index.js": b"module.exports = 1\n"}
    with mock.patch("time.time", return_value=1_000_000_000.0):
        first = package_tarball(files)
    with mock.patch("time.time", return_value=1_000_000_007.0):
        second = package_tarball(files)
    assert first == second
