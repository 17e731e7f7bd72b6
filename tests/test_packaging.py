"""The main job from an installed package: a wheel in a fresh venv rehearses from an empty folder.

Also the first-use install of the local registry: the lock that keeps two first uses from racing,
and the one-line error when node or npm is missing.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from playbook.errors import ExitCode, ToolMissing
from playbook.rehearsal import install
from playbook.rehearsal.sandbox import SandboxError
from playbook.resources import registry_dir
from tests.support.cli import ROOT


def run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, **kwargs
    )  # type: ignore[call-overload]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.wheel
@pytest.mark.slow
def test_a_wheel_in_a_fresh_venv_rehearses_from_an_empty_folder(tmp_path: Path) -> None:
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", ROOT)
    (wheel,) = (tmp_path / "dist").glob("respond-*.whl")
    venv = tmp_path / "venv"
    # No pip inside the venv: this process's pip installs into it (pip's cache keeps this quick).
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", wheel)
    empty, home = tmp_path / "empty", tmp_path / "home"
    empty.mkdir()
    # The user's own HOME: npm reads its configured registry and cache from there.
    env = {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "HOME": os.environ["HOME"]}
    env |= {"RESPOND_HOME": str(home), "RESPOND_LOOPBACK_ONLY": "1"}

    # What an earlier first use killed mid-install leaves: a scratch folder, a half target.
    digest = hashlib.sha256((registry_dir() / "package-lock.json").read_bytes()).hexdigest()[:16]
    target = home / "registry" / digest
    (home / "registry" / f".{digest}-killed" / "node_modules").mkdir(parents=True)
    (target / "node_modules" / "half").mkdir(parents=True)

    where = run(
        venv / "bin" / "python", "-c", "import playbook; print(playbook.__file__)", cwd=empty
    )
    assert where.stdout.startswith(str(venv)), where.stdout  # the wheel, not this checkout
    proc = subprocess.run(
        [venv / "bin" / "respond", "rehearse"],
        cwd=empty, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rehearsal sourcemap-leak: incident" in proc.stdout and "done in" in proc.stdout
    assert "copies:" in proc.stdout and "notices:" in proc.stdout
    assert "Installing the local registry" in proc.stderr and "Installed" in proc.stderr
    assert (target / install.STAMP).is_file() and not (target / "node_modules" / "half").exists()
    assert sorted(p.name for p in (home / "registry").iterdir()) == [digest, f"{digest}.lock"]
    assert list(empty.iterdir()) == []  # nothing written where it was run


def test_a_missing_node_or_npm_is_named_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: neither node nor npm
    with pytest.raises(ToolMissing, match="`node` is not on PATH") as info:
        install.installed_registry(tmp_path / "home")
    assert info.value.exit_code == ExitCode.TOOL_MISSING
    assert "\n" not in info.value.message and info.value.hint is None
    assert not (tmp_path / "home").exists()


def test_a_second_first_use_waits_for_the_install_under_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(install, "REGISTRY_DIR", tmp_path / "no-checkout")
    home = tmp_path / "home"
    digest = hashlib.sha256((registry_dir() / "package-lock.json").read_bytes()).hexdigest()[:16]
    target = home / "registry" / digest
    target.parent.mkdir(parents=True)
    lines: list[str] = []
    found: list[Path] = []
    with (target.parent / f"{digest}.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the other first use, installing
        waiter = threading.Thread(
            target=lambda: found.append(install.installed_registry(home, lines.append))
        )
        waiter.start()
        waiter.join(2.0)
        assert waiter.is_alive() and lines == [
            "Another respond is installing the local registry; waiting for it to finish."
        ]
        entry = target / "node_modules" / "verdaccio" / "bin" / "verdaccio"
        entry.parent.mkdir(parents=True)
        entry.write_text("")
        (target / install.STAMP).write_text("")  # the other one finishes
    waiter.join(10.0)
    assert found == [target]
    assert len(lines) == 1  # it did not install a second time


@pytest.mark.slow
def test_a_failed_npm_ci_says_so_and_leaves_nothing_half_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(install, "REGISTRY_DIR", tmp_path / "no-checkout")
    # Real npm, made to fail: offline with an empty cache, it cannot fetch a single package.
    monkeypatch.setenv("npm_config_offline", "true")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "empty-cache"))
    home = tmp_path / "home"
    lines: list[str] = []
    with pytest.raises(SandboxError, match="`npm ci` exited") as info:
        install.installed_registry(home, lines.append)
    assert info.value.hint is not None and "npm said:" in info.value.hint
    assert lines[0].startswith("Installing the local registry")
    assert [p.suffix for p in (home / "registry").iterdir()] == [".lock"]  # no scratch, no target
