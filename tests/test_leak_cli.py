"""`respond leak` through the CLI against the real local registry: live, dry run, and a re-run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from playbook.rehearsal.proxy import RegistryProxy
from playbook.rehearsal.sandbox import LocalRegistry, write_npmrc
from playbook.rehearsal.world import FakeWorld, World

ROOT = Path(__file__).resolve().parent.parent
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


def respond(
    cwd: Path, home: Path, token: str, world: FakeWorld, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "RESPOND_LOOPBACK_ONLY": "1",
        "HOME": str(cwd),
        "RESPOND_HOME": str(home),
        "LEAK_TEST_TOKEN": token,
        "PYTHONPATH": str(ROOT),
        **world.env(),
    }
    return subprocess.run(
        [sys.executable, "-m", "playbook.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


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
    proc = respond(
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
    publish: Callable[..., None],
    unique_name: Callable[..., str],
    world: FakeWorld,
) -> None:
    name = unique_name()
    publish(name, "1.0.0")
    publish(name, "1.0.1", leaky=True)
    before = packument(local_registry, name)
    with RegistryProxy(local_registry.url) as recording:
        cwd = project(tmp_path, recording.url)
        proc = respond(
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
    publish: Callable[..., None],
    unique_name: Callable[..., str],
    world: FakeWorld,
) -> None:
    name = unique_name()
    publish(name, "1.0.0")
    publish(name, "1.0.1", leaky=True)
    with RegistryProxy(local_registry.url) as recording:
        cwd, home = project(tmp_path, recording.url), tmp_path / "home"
        first = respond(
            cwd, home, registry_token, world, "leak", f"{name}@1.0.1", "--yes", "--json"
        )
        assert first.returncode == 0, first.stderr
        assert recording.writes, "the first run wrote nothing: the test proves nothing"
        recording.clear()
        second = respond(
            cwd, home, registry_token, world, "leak", f"{name}@1.0.1", "--yes", "--json"
        )
        assert second.returncode == 0, second.stderr
        assert recording.writes == [], f"the second run wrote: {recording.writes}"
    assert steps_of(second)["lookup"]["outputs"]["unpublished"] is True  # type: ignore[index]
