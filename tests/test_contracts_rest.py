"""The local GitHub answers as GitHub's own REST description says GitHub answers.

Every GitHub REST operation respond sends (playbook/services/github.py) is called on the local
world, and each answer's body is validated with jsonschema against the response schema of that
operation and status in GitHub's official OpenAPI description (`@octokit/openapi`, pinned by
contracts/rest/package-lock.json, installed by `make setup`). A field the world leaves out, a
wrong type, or a status GitHub does not document for the operation fails here, so the world
cannot drift from the real API while the hunt is tested against it.

GitHub answers 451 for a repository disabled by a DMCA takedown, which its description does not
list for these operations (DOMAIN.md); that status is checked for a `basic-error` body only.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator

from playbook.rehearsal.world import FakeRepo, FakeWorld, Limits, World, sample_files
from playbook.scan.fingerprint import blob_sha1

ROOT = Path(__file__).resolve().parent.parent
DESCRIPTION = ROOT / "contracts/rest/node_modules/@octokit/openapi/generated/api.github.com.json"
PKG, VER = "@acme/widget-cli", "2.1.88"
AUTH = {"authorization": "Bearer fake-github-token", "accept": "application/vnd.github+json"}

# operation id -> (path template in the description, what services/github.py sends)
OPERATIONS = {
    "search/code": "/search/code",
    "search/repos": "/search/repositories",
    "repos/get": "/repos/{owner}/{repo}",
    "repos/list-forks": "/repos/{owner}/{repo}/forks",
    "git/get-tree": "/repos/{owner}/{repo}/git/trees/{tree_sha}",
    "git/get-blob": "/repos/{owner}/{repo}/git/blobs/{file_sha}",
    "repos/get-commit": "/repos/{owner}/{repo}/commits/{ref}",
}


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` as JSON Schema (`null` allowed), everywhere in `node`."""
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items()}
    if out.pop("nullable", False):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            return {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture(scope="module")
def description() -> dict[str, Any]:
    if not DESCRIPTION.is_file():
        reason = f"{DESCRIPTION} is missing: run `make setup` (npm ci in contracts/rest)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the REST contract tests; {reason}")
        pytest.skip(reason)
    data: dict[str, Any] = json.loads(DESCRIPTION.read_bytes())
    return data


@pytest.fixture(scope="module")
def components(description: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": _nullable(copy.deepcopy(description["components"]["schemas"]))}


def schema_for(
    description: dict[str, Any], components: dict[str, Any], operation: str, status: int
) -> dict[str, Any]:
    op = description["paths"][OPERATIONS[operation]]["get"]
    assert op["operationId"] == operation
    responses = op["responses"]
    assert str(status) in responses, f"GitHub documents no {status} for {operation}"
    response = responses[str(status)]
    if "$ref" in response:  # a shared response: #/components/responses/<name>
        response = description["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    return {"allOf": [_nullable(schema)], "components": components}


def problems(schema: dict[str, Any], body: Any) -> list[str]:
    validator = Draft4Validator(schema)
    return sorted(
        f"{'/'.join(str(p) for p in e.absolute_path) or '(body)'}: {e.message[:160]}"
        for e in validator.iter_errors(body)
    )


@pytest.fixture(scope="module")
def world() -> Iterator[FakeWorld]:
    files = sample_files(seed=12)
    seeded = World.seeded(files, PKG, VER, seed=12, official_forks=3, limits=Limits())
    seeded.add(FakeRepo("empty/repo", {}))
    with FakeWorld(seeded) as fake:
        yield fake


def get(fake: FakeWorld, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{fake.endpoint('github')}{path}", params=params, headers=AUTH)


def answers(fake: FakeWorld) -> list[tuple[str, int, httpx.Response]]:
    """(operation, expected status, answer) for every call respond makes, success and failure."""
    leak = "leaker0/widget-cli-source"
    repo = fake.world.repo(leak)
    assert repo is not None
    data = next(iter(sorted(repo.files.items())))[1]
    tree = get(fake, f"/repos/{leak}/git/trees/main", recursive="1").json()
    folder = next(e["sha"] for e in tree["tree"] if e["type"] == "tree")
    return [
        ("search/code", 200, get(fake, "/search/code", q="toolsHandler0V12 fork:true")),
        ("search/code", 200, get(fake, "/search/code", q="filename:Module0.ts path:src/tools")),
        ("search/repos", 200, get(fake, "/search/repositories", q="widget cli leak")),
        ("repos/get", 200, get(fake, f"/repos/{leak}")),
        ("repos/get", 200, get(fake, "/repos/f2x0/widget-cli-source")),  # parent and source
        ("repos/get", 404, get(fake, "/repos/nobody/nothing")),
        ("repos/list-forks", 200, get(fake, f"/repos/{leak}/forks", per_page="100")),
        ("repos/list-forks", 200, get(fake, "/repos/acme/widget-cli/forks", sort="oldest")),
        ("git/get-tree", 200, get(fake, f"/repos/{leak}/git/trees/main", recursive="1")),
        ("git/get-tree", 200, get(fake, f"/repos/{leak}/git/trees/{folder}")),
        ("git/get-tree", 404, get(fake, f"/repos/{leak}/git/trees/no-such-branch")),
        ("git/get-tree", 409, get(fake, "/repos/empty/repo/git/trees/main")),
        ("git/get-blob", 200, get(fake, f"/repos/{leak}/git/blobs/{blob_sha1(data)}")),
        ("git/get-blob", 404, get(fake, f"/repos/{leak}/git/blobs/{'0' * 40}")),
        ("repos/get-commit", 200, get(fake, f"/repos/{leak}/commits/main")),
        ("repos/get-commit", 404, get(fake, f"/repos/{leak}/commits/no-such-branch")),
    ]


def test_every_answer_respond_reads_matches_githubs_description(
    world: FakeWorld, description: dict[str, Any], components: dict[str, Any]
) -> None:
    found: dict[str, list[str]] = {}
    for operation, status, answer in answers(world):
        if answer.status_code != status:
            found[f"{operation} {answer.url.path}"] = [f"HTTP {answer.status_code}, not {status}"]
            continue
        schema = schema_for(description, components, operation, status)
        wrong = problems(schema, answer.json())
        if wrong:
            found[f"{operation} {status} {answer.url.path}"] = wrong[:8]
    assert not found, json.dumps(found, indent=1)


def test_a_takedown_answer_is_a_basic_error(
    world: FakeWorld, description: dict[str, Any], components: dict[str, Any]
) -> None:
    answer = get(world, "/repos/takendown/widget-cli-source")
    assert answer.status_code == 451
    schema = {"allOf": [{"$ref": "#/components/schemas/basic-error"}], "components": components}
    assert problems(schema, answer.json()) == []


def test_the_check_can_fail(description: dict[str, Any], components: dict[str, Any]) -> None:
    """A body with a field of the wrong type and a required field missing is refused."""
    schema = schema_for(description, components, "git/get-blob", 200)
    good = {
        "content": "eA==",
        "encoding": "base64",
        "url": "https://api.github.com/x",
        "sha": "a" * 40,
        "size": 1,
        "node_id": "B_1",
    }
    assert problems(schema, good) == []
    bad = {**good, "size": "one"}
    del bad["sha"]
    assert len(problems(schema, bad)) == 2
    # And the world's old commit answer (two fields) was far from GitHub's.
    old = {"sha": "a" * 40, "commit": {"tree": {"sha": "b" * 40}, "message": "import"}}
    assert len(problems(schema_for(description, components, "repos/get-commit", 200), old)) >= 8


def test_rate_limit_answers_are_githubs_forbidden_body(
    description: dict[str, Any], components: dict[str, Any]
) -> None:
    world = World(PKG, VER, limits=Limits(secondary_at=frozenset({1}), code_search=1))
    world.add(FakeRepo("some/repo", {"a.ts": b"export const someIdentifier42 = 1;\n"}))
    with FakeWorld(world) as fake:
        secondary = get(fake, "/search/code", q="someIdentifier42")
        first = get(fake, "/search/code", q="someIdentifier42")
        primary = get(fake, "/search/code", q="someIdentifier42 again")
    assert (secondary.status_code, first.status_code, primary.status_code) == (403, 200, 403)
    schema = schema_for(description, components, "search/code", 403)
    for answer in (secondary, primary):
        assert problems(schema, answer.json()) == [], answer.text
