"""Runs the `respond` CLI in a real subprocess, as a person would, with loopback-only networking."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playbook.rehearsal.world import FakeWorld

ROOT = Path(__file__).resolve().parents[2]
# The command line that runs this checkout's respond (argv[0] for Popen when a test needs the pty).
RESPOND = (sys.executable, "-m", "playbook.cli")


def cli_env(cwd: Path, home: Path, **extra: str) -> dict[str, str]:
    """A bare environment: PATH, loopback only, HOME in the test's folder, the store in `home`."""
    return {
        "PATH": os.environ["PATH"],
        "RESPOND_LOOPBACK_ONLY": "1",
        "HOME": str(cwd),
        "RESPOND_HOME": str(home),
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def world_project(
    root: Path, registry_url: str, token: str, fake: FakeWorld
) -> tuple[Path, dict[str, str]]:
    """`root/work` set up as a project: .npmrc takes the registry token from ${T}, respond.toml
    names the org and the fake world's official repositories; with the CLI environment that
    runs respond there against `fake` (store in `root/home`)."""
    from playbook.rehearsal.run import ORG_DETAILS
    from playbook.rehearsal.sandbox import write_npmrc

    cwd = root / "work"
    cwd.mkdir()
    write_npmrc(cwd, registry_url, "T")
    (cwd / "respond.toml").write_text(ORG_DETAILS + fake.world.respond_toml)
    env = cli_env(cwd, root / "home", T=token, GITHUB_TOKEN="fake-token") | fake.env()
    return cwd, env


def respond(
    env: Mapping[str, str],
    *args: str,
    cwd: Path = ROOT,
    timeout: float = 180,
    check: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """`respond *args`; with `check`, the exit code must be that one (stderr says why not)."""
    proc = subprocess.run(
        [*RESPOND, *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check is not None:
        assert proc.returncode == check, proc.stderr
    return proc
