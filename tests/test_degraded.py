"""Degraded, not dead: each outside service down, slower than its timeout, or answering garbage.

The default runbook runs live against the real local registry; the hunt services are the local
world, one of them behind a fault proxy (or pointed at a closed port). Containment must complete,
the notices and the report must be drafted, the report must name what was not checked and why,
and the exit code must be 9 (done with gaps).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from playbook.errors import ExitCode
from playbook.rehearsal.proxy import RegistryProxy, Reply, Rule
from playbook.rehearsal.sandbox import LocalRegistry, write_npmrc
from playbook.rehearsal.world import FakeWorld, World
from tests.support.cli import cli_env, respond

pytestmark = pytest.mark.registry

# service -> (the endpoint setting it is reached through, the word the report names it by)
SERVICES = {
    "github": "github",
    "gitlab": "gitlab",
    "codeberg": "codeberg",
    "swh": "softwareheritage",
    "jsdelivr": "jsdelivr",
    "unpkg": "unpkg",
    "npm-search": "npm",
}
FAULTS = ("down", "slow", "garbage")
CAPTIVE = Reply(200, b"<html><body>Sign in to the guest network</body></html>",
                (("content-type", "text/html"),))  # fmt: skip
SERVICE_TIMEOUT = 0.4


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def world() -> Iterator[FakeWorld]:
    # One world per test: a shared one spends GitHub's search quota (it enforces the limits)
    # after a few runs, and the governor then rightly waits ~45 s for the reset.
    with FakeWorld(World(package="x", version="0.0.0")) as fake:
        yield fake


def inject(proxy: RegistryProxy, path: str, fault: str, service: str) -> None:
    if fault == "slow":
        proxy.fault(None, path, "slow", times=None, delay=SERVICE_TIMEOUT * 3)
    elif service in ("jsdelivr", "unpkg"):  # a HEAD has no body to garble: the bytes are not HTTP
        proxy.fault(None, path, "garbage", times=None)
    else:  # a captive portal's page where JSON should be
        proxy.add(Rule(None, path, lambda _r: CAPTIVE, None))


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("service", list(SERVICES))
def test_a_failing_service_leaves_a_gap_not_a_dead_run(
    service: str,
    fault: str,
    tmp_path: Path,
    local_registry: LocalRegistry,
    registry_token: str,
    leaked: str,
    world: FakeWorld,
    publish: Callable[..., None],
) -> None:
    env = world.env()
    with RegistryProxy(local_registry.url) as registry, RegistryProxy(world.base_url) as front:
        if service == "npm-search":
            if fault == "down":
                registry.fault("GET", r"^/-/v1/search", "reset", times=None)
            else:
                inject(registry, r"^/-/v1/search", fault, service)
        elif fault == "down":
            env[f"RESPOND_{service.upper()}_API"] = f"http://127.0.0.1:{closed_port()}/{service}"
        else:
            env[f"RESPOND_{service.upper()}_API"] = f"{front.url}{service}"
            inject(front, rf"^/{service}", fault, service)
        cwd = tmp_path / "work"
        cwd.mkdir()
        write_npmrc(cwd, registry.url, "T")
        started = time.monotonic()
        proc = respond(
            cli_env(
                cwd,
                tmp_path / "home",
                T=registry_token,
                GITHUB_TOKEN="fake-token",
                RESPOND_SERVICE_TIMEOUT=str(SERVICE_TIMEOUT),
                RESPOND_RETRY_BACKOFF="0.05",
                **env,
            ),
            "leak", f"{leaked}@1.0.1", "--yes", "--non-interactive", "--json",
            cwd=cwd,
        )  # fmt: skip
        took = time.monotonic() - started
        hit = registry.requests if service == "npm-search" else front.requests
    label = f"{service} {fault}"
    assert proc.returncode == ExitCode.DONE_WITH_GAPS, f"{label}: {proc.returncode} {proc.stderr}"
    if fault != "down":
        assert any(r.path.startswith(f"/{service}") or "search" in r.path for r in hit), label
    result = json.loads(proc.stdout)
    assert result["status"] == "done_with_gaps", label
    steps = {s["id"]: s for s in result["steps"]}
    for step in ("retag", "deprecate", "unpublish", "verify", "notices", "report"):
        assert steps[step]["status"] == "succeeded", f"{label}: {step} {steps[step]}"
    doc = httpx.get(local_registry.url + leaked.replace("/", "%2f")).json()
    assert doc["dist-tags"] == {"latest": "1.0.0"} and "1.0.1" not in doc["versions"], label
    folder = tmp_path / "home" / "incidents" / result["incident"]
    report = (folder / steps["report"]["outputs"]["markdown"]).read_text()
    section = report.split("## Not checked", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith(f"| {SERVICES[service]}")]
    assert rows, f"{label}: the report does not name {SERVICES[service]}:\n{section}"
    assert all(len(r.split("|")[3].strip()) > 10 for r in rows), f"{label}: no reason: {rows}"
    assert list(folder.rglob("notices/*.md")) or steps["notices"]["outputs"], label
    print(f"{label}: exit 9 in {took:.1f}s; {rows[0]}")
    if took > 8:
        print(proc.stderr[-3000:])


def test_a_dry_run_with_every_outside_service_unreachable_still_drafts_everything(
    tmp_path: Path, local_registry: LocalRegistry, registry_token: str, leaked: str
) -> None:
    # The issue's own case: a corporate network where no hunt service answers, in a dry run.
    dead = f"http://127.0.0.1:{closed_port()}"
    env = {f"RESPOND_{name.upper()}_API": f"{dead}/{name}" for name in SERVICES if "-" not in name}
    env |= {"RESPOND_JSDELIVR_PURGE_API": f"{dead}/purge"}
    with RegistryProxy(local_registry.url) as registry:
        registry.fault("GET", r"^/-/v1/search", "reset", times=None)
        cwd = tmp_path / "work"
        cwd.mkdir()
        write_npmrc(cwd, registry.url, "T")
        started = time.monotonic()
        proc = respond(
            cli_env(cwd, tmp_path / "home", T=registry_token, GITHUB_TOKEN="fake-token",
                    RESPOND_RETRY_BACKOFF="0.05", **env),
            "leak", f"{leaked}@1.0.1", "--dry-run", "--json", cwd=cwd,
        )  # fmt: skip
        took = time.monotonic() - started
        assert registry.writes == [], "a dry run wrote"
    assert proc.returncode == ExitCode.DONE_WITH_GAPS, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "planned_with_gaps"
    steps = {s["id"]: s for s in result["steps"]}
    assert {steps[s]["status"] for s in ("retag", "deprecate", "unpublish")} == {"planned"}
    assert steps["notices"]["status"] == steps["report"]["status"] == "succeeded"
    folder = tmp_path / "home" / "incidents" / result["incident"]
    report = (folder / steps["report"]["outputs"]["markdown"]).read_text()
    section = report.split("## Not checked", 1)[1].split("\n## ", 1)[0]
    named = {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")}
    assert {"github", "gitlab", "codeberg", "softwareheritage", "jsdelivr", "unpkg", "npm"} <= named
    print(f"every service down, dry run: exit 9 in {took:.1f}s")
