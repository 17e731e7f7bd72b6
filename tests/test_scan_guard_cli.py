"""`respond scan` as CI runs it: baselines from the local registry (npm config), and what it says."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from playbook.rehearsal.sandbox import LocalRegistry, free_port, write_npmrc
from tests.support.cli import cli_env, respond
from tests.test_scan_verdict import release

pytestmark = pytest.mark.registry


@pytest.fixture
def workdir(tmp_path: Path, local_registry: LocalRegistry) -> tuple[Path, dict[str, str]]:
    cwd = tmp_path / "work"
    cwd.mkdir()
    write_npmrc(cwd, local_registry.url, "GUARD_TOKEN")
    return cwd, cli_env(cwd, tmp_path / "home", GUARD_TOKEN="unused-for-reads")


def _publish(registry: LocalRegistry, token: str, name: str, version: str, **kw: object) -> None:
    registry.publish(release(version, name=name, **kw), name, version, token=token)  # type: ignore[arg-type]


def test_name_at_version_is_compared_with_the_version_before_it(
    workdir: tuple[Path, dict[str, str]],
    local_registry: LocalRegistry,
    registry_token: str,
    unique_name: Callable[..., str],
) -> None:
    cwd, env = workdir
    name = unique_name("acme", "guard")
    _publish(local_registry, registry_token, name, "2.1.87")
    _publish(local_registry, registry_token, name, "2.1.88", sources=4)
    run = respond(env, "scan", f"{name}@2.1.88", cwd=cwd, check=1)
    lines = run.stdout.splitlines()
    assert (
        lines[0]
        == f"FAIL {name}@2.1.88: 2.1.87 shipped no map; 2.1.88 added one carrying 4 sources"
    )
    assert f"  baseline: {name}@2.1.87, the version before 2.1.88 on {local_registry.url}" in lines
    first = respond(env, "scan", f"{name}@2.1.87", "--json", cwd=cwd, check=0)
    verdict = json.loads(first.stdout)["verdict"]
    assert verdict["baseline"] is None and "no version before 2.1.87" in verdict["baseline_note"]
    absolute = respond(env, "scan", f"{name}@2.1.88", "--no-baseline", cwd=cwd, check=0)
    assert absolute.stdout.startswith(f"pass {name}@2.1.88: open-source (MIT) package ships")


def test_a_folder_is_compared_with_the_current_release_and_the_allowlist_applies(
    workdir: tuple[Path, dict[str, str]],
    local_registry: LocalRegistry,
    registry_token: str,
    unique_name: Callable[..., str],
) -> None:
    cwd, env = workdir
    name = unique_name(None, "guard")
    _publish(local_registry, registry_token, name, "1.0.0")
    _publish(local_registry, registry_token, name, "1.1.0")
    tarball = cwd / "next.tgz"
    tarball.write_bytes(release("1.2.0", name=name, sources=2))
    run = respond(env, "scan", str(tarball), cwd=cwd, check=1)
    assert run.stdout.splitlines()[0].endswith(
        "1.1.0 shipped no map; 1.2.0 added one carrying 2 sources"
    )
    assert "the current release on" in run.stdout
    chosen = respond(env, "scan", str(tarball), "--baseline", "1.0.0", cwd=cwd, check=1)
    assert "1.0.0 shipped no map" in chosen.stdout and "chosen by --baseline" in chosen.stdout
    (cwd / "respond.toml").write_text(
        f'[[scan.allow]]\nrule = "source-map"\npackage = "{name}"\nreason = "maps are public"\n'
    )
    allowed = respond(env, "scan", str(tarball), cwd=cwd, check=0)
    assert "allowed: maps are public" in allowed.stdout
    missing = respond(env, "scan", str(tarball), "--baseline", "0.0.1", cwd=cwd, check=2)
    assert "is not published" in missing.stderr


def test_an_unreachable_registry_is_said_in_one_line_and_the_guard_judges_on_its_own(
    tmp_path: Path,
) -> None:
    cwd = tmp_path / "work"
    cwd.mkdir()
    write_npmrc(cwd, f"http://127.0.0.1:{free_port()}/", "GUARD_TOKEN")
    env = cli_env(cwd, tmp_path / "home", GUARD_TOKEN="x", RESPOND_HTTP_TIMEOUT="5")
    clean = cwd / "clean.tgz"
    clean.write_bytes(release("1.0.1", name="offline-pkg"))
    run = respond(env, "scan", str(clean), cwd=cwd, check=0)
    notes = [line for line in run.stdout.splitlines() if "NO BASELINE" in line]
    assert len(notes) == 1 and "judged on its own (absolute view)" in notes[0]
    leaky = cwd / "leaky.tgz"
    leaky.write_bytes(release("1.0.1", name="offline-pkg", files={".env": "A=1\n"}))
    failed = respond(env, "scan", str(leaky), cwd=cwd, check=1)
    assert "new sensitive file .env" in failed.stdout and "NO BASELINE" in failed.stdout
