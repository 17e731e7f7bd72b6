"""Faults between the tool and the registry or GitHub: 5xx, 429, resets, slow and truncated answers.

A fault-injecting proxy sits in front of the real local registry (and of the fake GitHub). A
transient fault is absorbed by bounded retries; a lasting one ends in a clear failure that says
what to do, nothing half-written, and a resume after it clears finishes the job.
"""

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
CONTAIN = str(ROOT / "runbooks" / "npm-contain.yaml")
pytestmark = pytest.mark.registry


class Run:
    def __init__(self, tmp: Path, proxy: RegistryProxy, token: str, extra: dict[str, str]) -> None:
        self.cwd = tmp / "work"
        self.cwd.mkdir()
        write_npmrc(self.cwd, proxy.url, "T")
        self.env = {
            "PATH": os.environ["PATH"], "RESPOND_LOOPBACK_ONLY": "1", "HOME": str(self.cwd), "RESPOND_HOME": str(tmp / "home"),
            "T": token, "PYTHONPATH": str(ROOT), "RESPOND_HTTP_TIMEOUT": "2", **extra,
        }  # fmt: skip

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "playbook.cli", *args, "--non-interactive", "--json"],
            cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=180,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip


@pytest.fixture
def leaked(publish: Callable[..., None], unique_name: Callable[..., str]) -> str:
    name = unique_name()
    publish(name, "1.0.0")
    publish(name, "1.0.1", leaky=True)
    return name


def contained(registry: LocalRegistry, name: str) -> bool:
    doc = httpx.get(registry.url + name.replace("/", "%2f")).json()
    return bool(doc["dist-tags"] == {"latest": "1.0.0"} and "1.0.1" not in doc["versions"])


def statuses(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {s["id"]: s["status"] for s in json.loads(proc.stdout)["steps"]}


TRANSIENT = [
    ("503 on the packument", lambda p, n: p.fail("GET", f"^/{n}", 503, times=2)),
    ("502 on the packument", lambda p, n: p.fail("GET", f"^/{n}", 502, times=1)),
    (
        "429 Retry-After on a tag write",
        lambda p, n: p.fail("PUT", "dist-tags", 429, retry_after="1"),
    ),
    ("reset on the packument", lambda p, n: p.fault("GET", f"^/{n}", "reset", times=2)),
    ("truncated packument", lambda p, n: p.fault("GET", f"^/{n}", "truncate", times=1)),
    ("packument slower than the timeout", lambda p, n: p.fault("GET", f"^/{n}", "slow", delay=3)),
    ("reset on the tag write", lambda p, n: p.fault("PUT", "dist-tags", "reset", times=1)),
    ("500 on the deprecate write", lambda p, n: p.fail("PUT", f"^/{n}$", 500, times=1)),
]


@pytest.mark.parametrize(("label", "inject"), TRANSIENT, ids=[t[0] for t in TRANSIENT])
def test_transient_faults_are_absorbed(
    label: str,
    inject: Callable[[RegistryProxy, str], object],
    tmp_path: Path,
    local_registry: LocalRegistry,
    registry_token: str,
    leaked: str,
) -> None:
    with RegistryProxy(local_registry.url) as proxy:
        inject(proxy, leaked.replace("/", "%2f"))
        proc = Run(tmp_path, proxy, registry_token, {})(
            "leak", f"{leaked}@1.0.1", "--runbook", CONTAIN, "--yes"
        )
        assert proc.returncode == 0, f"{label}: {proc.stderr}"
        assert any(r.status in (0, 429, 500, 502, 503) or r.status >= 200 for r in proxy.requests)
    assert contained(local_registry, leaked), label


def test_a_lasting_fault_fails_clearly_then_resume_finishes(
    tmp_path: Path, local_registry: LocalRegistry, registry_token: str, leaked: str
) -> None:
    with RegistryProxy(local_registry.url) as proxy:
        run = Run(tmp_path, proxy, registry_token, {})
        proxy.fail(None, "/-rev/", 503, times=1000)  # the unpublish cannot get through
        failed = run("leak", f"{leaked}@1.0.1", "--runbook", CONTAIN, "--yes")
        assert failed.returncode == 1
        steps = statuses(failed)
        assert steps["unpublish"] == "failed" and steps["deprecate"] == "succeeded"
        error = next(
            s["error"] for s in json.loads(failed.stdout)["steps"] if s["id"] == "unpublish"
        )
        assert "503" in error and proxy.url.split("//")[1].rstrip("/") in error, error
        doc = httpx.get(local_registry.url + leaked.replace("/", "%2f")).json()
        assert doc["dist-tags"] == {"latest": "1.0.0"}, "the containment done so far was lost"
        assert "1.0.1" in doc["versions"], "half an unpublish"
        proxy.reset_rules()
        incident = json.loads(failed.stdout)["incident"]
        resumed = run("resume", incident, "--yes")
        assert resumed.returncode == 0, resumed.stderr
    assert contained(local_registry, leaked)


@pytest.fixture
def github_behind_proxy() -> Iterator[tuple[FakeWorld, RegistryProxy]]:
    with (
        FakeWorld(World(package="x", version="0.0.0")) as fake,
        RegistryProxy(fake.base_url) as proxy,
    ):
        yield fake, proxy


def test_github_faults_are_retried_and_never_miscounted(
    tmp_path: Path,
    local_registry: LocalRegistry,
    registry_token: str,
    leaked: str,
    github_behind_proxy: tuple[FakeWorld, RegistryProxy],
) -> None:
    fake, gh = github_behind_proxy
    env = {**fake.env(), "RESPOND_GITHUB_API": gh.url + "github", "GITHUB_TOKEN": "fake-token"}
    gh.fail("GET", "^/github/search/repositories", 502, times=1)
    gh.fault("GET", "^/github/search/repositories", "reset", times=1)
    gh.fail("GET", "^/github/search/repositories", 429, times=1, retry_after="1")
    with RegistryProxy(local_registry.url) as proxy:
        proc = Run(tmp_path, proxy, registry_token, env)("leak", f"{leaked}@1.0.1", "--yes")
    assert proc.returncode == 0, proc.stderr
    steps = {s["id"]: s for s in json.loads(proc.stdout)["steps"]}
    assert steps["hunt"]["status"] == "succeeded"
    hits = [r for r in gh.requests if r.path.startswith("/github/search/repositories")]
    assert [r.status for r in hits[:3]] == [502, 0, 429], "the faults were not injected"
    assert len(hits) > 3, "the search was not retried after the faults"
