"""Installs the pinned Verdaccio on first use: the shipped lockfile, `npm ci`, the data dir."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from playbook.errors import ToolMissing
from playbook.rehearsal.sandbox import REGISTRY_DIR, SandboxError, verdaccio_bin
from playbook.resources import registry_dir
from playbook.secret import scrub

SHIPPED = ("package.json", "package-lock.json", ".npmrc")
STAMP = ".installed"
HEARTBEAT = 10.0
# --prefer-offline: the lockfile pins every tarball's integrity, so npm's cache is as good as
# the registry and a reinstall after an upgrade costs seconds, not a minute.
NPM_CI = ("npm", "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error")

Progress = Callable[[str], None]


def _quiet(line: str) -> None:
    """No progress lines (tests and benches that do not print)."""


def installed_registry(home: Path, progress: Progress | None = None) -> Path:
    """Where Verdaccio is installed: a checkout's registry/ after `make setup`, else the copy in
    `home`/registry/<lockfile hash>, installed now with `npm ci` when it is not there yet."""
    progress = progress or _quiet
    _require("node")
    if _complete(REGISTRY_DIR):
        return REGISTRY_DIR
    shipped = registry_dir()
    digest = hashlib.sha256((shipped / "package-lock.json").read_bytes()).hexdigest()[:16]
    target = home / "registry" / digest
    if (target / STAMP).is_file():
        return target
    _require("npm")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _install_lock(target.parent / f"{digest}.lock", progress):
        # Another process may have finished the install while this one waited for the lock.
        if not (target / STAMP).is_file():
            _remove_scratch(target)
            _install(shipped, target, progress)
    return target


def _complete(root: Path) -> bool:
    try:
        verdaccio_bin(root)
    except SandboxError:
        return False
    return True


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        raise ToolMissing(
            f"`{tool}` is not on PATH: the rehearsal's local registry (Verdaccio) needs Node.js 20 "
            "with npm; install them and try again."
        )


@contextlib.contextmanager
def _install_lock(path: Path, progress: Progress) -> Iterator[None]:
    """An flock that dies with its process, so a killed install never blocks the next one."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("Another respond is installing the local registry; waiting for it to finish.")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _remove_scratch(target: Path) -> None:
    """Scratch folders of installs killed before they finished (a live one would hold the lock)."""
    for stale in target.parent.glob(f".{target.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _install(shipped: Path, target: Path, progress: Progress) -> None:
    """npm ci in a scratch folder beside `target`, renamed into place only once it is complete."""
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for name in SHIPPED:
            shutil.copyfile(shipped / name, work / name)
        progress(
            f"Installing the local registry (pinned Verdaccio) into {target} with `npm ci`; "
            "first use only, this takes from a few seconds to a minute."
        )
        started = time.monotonic()
        _npm_ci(work, target, progress)
        verdaccio_bin(work)  # npm said yes: check it really left the entry point
        (work / STAMP).write_text(f"installed by respond in {time.monotonic() - started:.1f}s\n")
        if target.exists():  # a half install from a process killed before the rename
            shutil.rmtree(target)
        work.rename(target)
        progress(f"Installed the local registry in {time.monotonic() - started:.0f}s.")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _npm_ci(work: Path, target: Path, progress: Progress) -> None:
    log = work / "npm-ci.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            NPM_CI, cwd=work, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        started = time.monotonic()
        while True:
            try:
                proc.wait(HEARTBEAT)
                break
            except subprocess.TimeoutExpired:
                progress(f"  npm ci still running ({time.monotonic() - started:.0f}s)")
    if proc.returncode != 0:
        tail = scrub(log.read_text(errors="replace").strip()[-1500:])
        # The scratch folder is deleted on the way out: the message names where it was going.
        raise SandboxError(
            f"`npm ci` exited {proc.returncode} installing the local registry into {target}.",
            f"npm said: {tail}"
            if tail
            else "npm printed nothing; check `npm ping` and its registry.",
        )
