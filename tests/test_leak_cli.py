"""`respond leak` through the CLI against the real local registry: live, dry run, and a re-run."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from playbook.rehearsal.proxy import RegistryProxy
from playbook.rehearsal.sandbox import LocalRegistry, write_npmrc
from playbook.rehearsal.world import FakeWorld, World
from tests.support.cli import ROOT, cli_env, respond

pytestmark = pytest.mark.registry


@pytest.fixture
def world() -> Iterator[FakeWorld]:
    with FakeWorld(World(package="x", version="0.0.0")) as fake:
        yield fake


def project(tmp_path: Path, registry_url: str) -> Path:
    """A project folder whose .npmrc is the only place the token comes from."""
    folder = tmp_path / "project"
    folder.mkdir()
    write_npmrc(folder, registry_url, "LEAK_TEST_TOKEN")
    return folder


def run(
    cwd: Path, home: Path, token: str, world: FakeWorld, *args: str
) -> subprocess.CompletedProcess[str]:
    env = cli_env(cwd, home, LEAK_TEST_TOKEN=token) | world.env()
    return respond(env, *args, cwd=cwd)


def steps_of(proc: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    return {s["id"]: s for s in json.loads(proc.stdout)["steps"]}


def every_byte(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def packument(registry: LocalRegistry, name: str) -> dict[str, object]:
    data: dict[str, object] = httpx.get(f"{registry.url}{name.replace('/', '%2f')}").json()
    return data


def test_live_run_with_token_only_in_npmrc_contains_the_leak(
    tmp_path: Path,
    local_registry: LocalRegistry,
    registry_token: str,
    publish: Callable[..., None],
    unique_name: Callable[..., str],
    world: FakeWorld,
) -> None:
    name = unique_name("acme")
    publish(name, "1.0.0")
    publish(name, "1.0.1", leaky=True)
    cwd, home = project(tmp_path, local_registry.url), tmp_path / "home"
    proc = run(
        cwd,
        home,
        registry_token,
        world,
        "leak",
        f"{name}@1.0.1",
        "--yes",
        "--json",
        "--non-interactive",
    )
    assert proc.returncode == 0, proc.stderr
    steps = steps_of(proc)
    assert steps["scan"]["outputs"]["leaky"] is True  # type: ignore[index]
    assert steps["retag"]["outputs"]["moved"] == {"latest": {"from": "1.0.1", "to": "1.0.0"}}  # type: ignore[index]
    assert steps["verify"]["outputs"]["contained"] is True  # type: ignore[index]
    doc = packument(local_registry, name)
    assert doc["dist-tags"] == {"latest": "1.0.0"}
    assert "1.0.1" not in doc["versions"]  # type: ignore[operator]
    written = every_byte(home) + proc.stdout.encode() + proc.stderr.encode()
    assert registry_token.encode() not in written, "the token reached the store, files or output"


SHIPPED = sorted((ROOT / "runbooks").glob("*.yaml"))


@pytest.mark.parametrize("runbook", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_dry_run_of_every_shipped_runbook_makes_zero_writes(
    runbook: Path,
    tmp_path: Path,
    local_registry: LocalRegistry,
    registry_token: str,
    leaked: str,
    world: FakeWorld,
) -> None:
    name = leaked
    before = packument(local_registry, name)
    with RegistryProxy(local_registry.url) as recording:
        cwd = project(tmp_path, recording.url)
        proc = run(
            cwd,
            tmp_path / "home",
            registry_token,
            world,
            "leak",
            f"{name}@1.0.1",
            "--dry-run",
            "--json",
            "--runbook",
            str(runbook),
        )
        assert proc.returncode == 0, proc.stderr
        assert recording.requests, "the recording proxy saw nothing: the test proves nothing"
        assert recording.writes == [], f"a dry run wrote: {recording.writes}"
    assert world.stats.purges == [], "a dry run asked a CDN to purge"
    steps = steps_of(proc)
    for step_id in ("retag", "deprecate", "unpublish"):
        assert steps[step_id]["status"] == "planned", step_id
    assert steps["retag"]["outputs"]["moved"] == {"latest": {"from": "1.0.1", "to": "1.0.0"}}  # type: ignore[index]
    assert packument(local_registry, name)["dist-tags"] == before["dist-tags"]


def test_a_second_run_makes_no_write(
    tmp_path: Path,
    local_registry: LocalRegistry,
    registry_token: str,
    leaked: str,
    world: FakeWorld,
) -> None:
    name = leaked
    with RegistryProxy(local_registry.url) as recording:
        cwd, home = project(tmp_path, recording.url), tmp_path / "home"
        first = run(cwd, home, registry_token, world, "leak", f"{name}@1.0.1", "--yes", "--json")
        assert first.returncode == 0, first.stderr
        assert recording.writes, "the first run wrote nothing: the test proves nothing"
        recording.clear()
        second = run(cwd, home, registry_token, world, "leak", f"{name}@1.0.1", "--yes", "--json")
        assert second.returncode == 0, second.stderr
        assert recording.writes == [], f"the second run wrote: {recording.writes}"
    assert steps_of(second)["lookup"]["outputs"]["unpublished"] is True  # type: ignore[index]


def test_an_only_version_is_withheld_and_the_run_exits_not_contained(
    tmp_path: Path,
    local_registry: LocalRegistry,
    registry_token: str,
    publish: Callable[..., None],
    unique_name: Callable[..., str],
    world: FakeWorld,
) -> None:
    name = unique_name()
    publish(name, "1.0.0", leaky=True)
    cwd, home = project(tmp_path, local_registry.url), tmp_path / "home"
    proc = run(cwd, home, registry_token, world, "leak", f"{name}@1.0.0", "--yes", "--json",
               "--non-interactive")  # fmt: skip
    assert proc.returncode == 8, proc.stderr  # latest stays on it: nothing earlier to move to
    steps = steps_of(proc)
    unpublish = steps["unpublish"]["outputs"]
    assert unpublish["withheld"] is True and unpublish["unpublished"] is False  # type: ignore[index]
    assert steps["verify"]["outputs"]["contained"] is False  # type: ignore[index]
    assert "NOT contained" in proc.stderr and "tags latest still point at it" in proc.stderr
    doc = packument(local_registry, name)
    assert "1.0.0" in doc["versions"]  # type: ignore[operator]
    assert doc["versions"]["1.0.0"]["deprecated"]  # type: ignore[index]


def test_bad_npm_configuration_is_one_line_and_exit_2(
    tmp_path: Path, local_registry: LocalRegistry, registry_token: str, world: FakeWorld
) -> None:
    cwd = project(tmp_path, local_registry.url)
    (cwd / ".npmrc").write_text(f"registry={local_registry.url}\n_auth=dXNlcjpwYXNz\n")
    proc = run(cwd, tmp_path / "home", registry_token, world, "leak", "pkg@1.0.0", "--yes",
               "--non-interactive")  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert any(".npmrc:2: a top-level `_auth` is not allowed" in ln for ln in lines), lines
    assert "dXNlcjpwYXNz" not in proc.stderr + proc.stdout
