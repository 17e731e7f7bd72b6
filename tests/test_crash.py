"""Crash and resume: SIGKILL a live run at every event and after every registry write, then resume.

Each crash point gets a fresh package in the real local registry. After the resume the registry
must be in the contained state, the incident complete, and the writes sent across the crash and
the resume must be the clean run's writes, none repeated that should not be.
"""

from __future__ import annotations

import collections
import json
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from playbook.rehearsal.proxy import RegistryProxy
from playbook.rehearsal.sandbox import LocalRegistry, write_npmrc
from tests.support.cli import ROOT, cli_env, respond

CONTAIN = ROOT / "runbooks" / "npm-contain.yaml"
pytestmark = [pytest.mark.registry, pytest.mark.slow]


def run(
    cwd: Path, home: Path, token: str, *args: str, failpoint: str = ""
) -> subprocess.CompletedProcess[str]:
    extra = {"RESPOND_FAILPOINT": failpoint} if failpoint else {}
    return respond(cli_env(cwd, home, CRASH_TOKEN=token, **extra), *args, cwd=cwd)


def shape(method: str, path: str, name: str) -> str:
    """A write with the package name and revisions taken out, to compare runs."""
    path = path.replace(name.replace("/", "%2f"), "PKG").replace(name.split("/")[-1], "PKG")
    return f"{method} {re.sub(r'/-rev/[^/?]+', '/-rev/REV', path.split('?')[0])}"


class Harness:
    def __init__(
        self,
        tmp: Path,
        registry: LocalRegistry,
        proxy: RegistryProxy,
        token: str,
        publish: Callable[..., None],
        unique: Callable[..., str],
    ) -> None:
        self.tmp, self.registry, self.proxy, self.token = tmp, registry, proxy, token
        self.publish, self.unique = publish, unique

    def fresh(self, label: str) -> tuple[str, Path, Path]:
        name = self.unique("crash")
        self.publish(name, "1.0.0")
        self.publish(name, "1.0.1", leaky=True)
        cwd = self.tmp / label
        cwd.mkdir()
        write_npmrc(cwd, self.proxy.url, "CRASH_TOKEN")
        return name, cwd, cwd / "home"

    def leak(
        self, name: str, cwd: Path, home: Path, failpoint: str = ""
    ) -> subprocess.CompletedProcess[str]:
        args = (
            "leak",
            f"{name}@1.0.1",
            "--runbook",
            str(CONTAIN),
            "--yes",
            "--non-interactive",
            "--json",
        )
        return run(cwd, home, self.token, *args, failpoint=failpoint)

    def writes(self, name: str) -> collections.Counter[str]:
        return collections.Counter(shape(r.method, r.path, name) for r in self.proxy.writes)

    def contained(self, name: str) -> None:
        base = self.registry.url + name.replace("/", "%2f")
        doc = httpx.get(base).json()
        assert doc["dist-tags"] == {"latest": "1.0.0"}, doc["dist-tags"]
        assert "1.0.1" not in doc["versions"]
        tarball = f"{base}/-/{name.split('/')[-1]}-1.0.1.tgz"
        assert httpx.get(tarball).status_code == 404, "the leaked tarball is still served"


@pytest.fixture
def harness(
    tmp_path: Path,
    local_registry: LocalRegistry,
    proxy: RegistryProxy,
    registry_token: str,
    publish: Callable[..., None],
    unique_name: Callable[..., str],
) -> Harness:
    return Harness(tmp_path, local_registry, proxy, registry_token, publish, unique_name)


def clean_run(h: Harness) -> tuple[collections.Counter[str], int, int]:
    name, cwd, home = h.fresh("clean")
    h.proxy.clear()
    proc = h.leak(name, cwd, home)
    assert proc.returncode == 0, proc.stderr
    h.contained(name)
    incident = json.loads(proc.stdout)["incident"]
    status = json.loads(run(cwd, home, h.token, "status", incident, "--json").stdout)
    assert status["status"] == "done"
    import sqlite3

    with sqlite3.connect(home / "respond.db") as db:
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    db.close()
    writes = h.writes(name)
    return writes, int(events), sum(writes.values())


def crash_then_resume(h: Harness, point: str, clean: collections.Counter[str]) -> None:
    name, cwd, home = h.fresh(point.replace(":", "-"))
    h.proxy.clear()
    crashed = h.leak(name, cwd, home, failpoint=point)
    assert crashed.returncode == -signal.SIGKILL, f"{point}: did not crash ({crashed.returncode})"
    listed = json.loads(run(cwd, home, h.token, "list", "--json").stdout or "[]")
    if listed:
        resumed = run(
            cwd, home, h.token, "resume", listed[0]["id"], "--yes", "--non-interactive", "--json"
        )
    else:  # killed before the incident was recorded: the person simply runs it again
        resumed = h.leak(name, cwd, home)
    assert resumed.returncode == 0, f"{point}: {resumed.stderr}"
    steps = json.loads(resumed.stdout)["steps"]
    assert all(s["status"] in ("succeeded", "skipped") for s in steps), f"{point}: {steps}"
    h.contained(name)
    writes = h.writes(name)
    repeated = {w: n for w, n in writes.items() if n > clean.get(w, 0)}
    assert not repeated, f"{point}: writes repeated across the crash: {repeated}"
    assert set(writes) <= set(clean), f"{point}: unexpected writes {set(writes) - set(clean)}"


def test_crash_at_every_point_then_resume_ends_contained(harness: Harness) -> None:
    clean, events, writes = clean_run(harness)
    assert writes >= 4, f"the clean run made {writes} writes: {clean}"
    points = [f"event:{n}" for n in range(1, events)] + [f"write:{n}" for n in range(1, writes + 1)]
    assert len(points) >= 20, points
    print(f"{len(points)} crash points; clean writes: {dict(clean)}")
    for point in points:
        crash_then_resume(harness, point, clean)
