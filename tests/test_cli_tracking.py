"""After the run: mirrors, recheck, notices sent and resolved, the report, scan and init via the CLI."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from playbook.rehearsal.sandbox import LocalRegistry
from playbook.rehearsal.synth import make_package, reconstructed_files
from playbook.rehearsal.world import FakeWorld, World
from tests.support.cli import cli_env, respond, world_project

pytestmark = pytest.mark.registry
SHAPE = {"sources": 60, "first_party": 40, "seed": 3}


class Cli:
    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env

    def __call__(self, *args: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        return respond(self.env, *args, cwd=self.cwd, check=code)

    def json(self, *args: str) -> object:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def incident(
    tmp_path: Path, local_registry: LocalRegistry, registry_token: str
) -> Iterator[tuple[Cli, FakeWorld, str, str]]:
    name = f"@track/cli-{os.getpid()}-{tmp_path.name[-6:]}".lower()
    clean = make_package(name, "1.0.0", sources=0, first_party=0, with_map=False)
    local_registry.publish(clean, name, "1.0.0", token=registry_token)
    leaky = make_package(name, "1.0.1", with_map=True, **SHAPE)
    local_registry.publish(leaky, name, "1.0.1", token=registry_token)
    (tmp_path / "leaky.tgz").write_bytes(leaky)
    (tmp_path / "clean.tgz").write_bytes(clean)
    world = World.seeded(
        reconstructed_files(name, "1.0.1", **SHAPE), name, "1.0.1", official_forks=5
    )
    with FakeWorld(world) as fake:
        cwd, env = world_project(tmp_path, local_registry.url, registry_token, fake)
        cli = Cli(cwd, env)
        run = cli.json("leak", f"{name}@1.0.1", "--yes", "--non-interactive")
        assert isinstance(run, dict) and run["status"] == "done", run
        yield cli, fake, run["incident"], name


def test_mirrors_notices_recheck_and_resolution(incident: tuple[Cli, FakeWorld, str, str]) -> None:
    cli, fake, incident_id, _ = incident
    listed = cli.json("mirrors", incident_id)
    assert isinstance(listed, dict)
    copies = {m["url"] for m in listed["mirrors"] if m["verdict"] == "copy"}
    assert copies and copies <= fake.world.expected_copies, "a copy verdict that was not planted"

    notices = cli.json("notices", incident_id)
    assert isinstance(notices, list)
    dmca = [n for n in notices if n["kind"] == "dmca-github" and n["status"] == "drafted"]
    assert dmca, notices
    target = dmca[0]
    cli("notice", "sent", target["id"], "--ref", "DMCA-1234")
    sent = {n["id"]: n for n in cli.json("notices", incident_id)}[target["id"]]  # type: ignore[union-attr]
    assert (sent["status"], sent["ref"]) == ("sent", "DMCA-1234")

    for url in target["mirrors"]:
        fake.disable(urlsplit(url).path.strip("/"))
    rechecked = cli.json("mirrors", "recheck", incident_id)
    assert isinstance(rechecked, dict)
    changed = {(c["url"], c["new"]) for c in rechecked["changes"] if c["field"] == "verdict"}
    assert {(u, "disabled") for u in target["mirrors"]} <= changed
    after = {n["id"]: n for n in cli.json("notices", incident_id)}[target["id"]]  # type: ignore[union-attr]
    assert after["status"] == "resolved"


def test_report_formats_and_bad_format(
    incident: tuple[Cli, FakeWorld, str, str], tmp_path: Path
) -> None:
    cli, _, incident_id, name = incident
    out = tmp_path / "r.html"
    cli("report", incident_id, "--format", "html", "--output", str(out))
    html = out.read_text()
    assert "<svg" in html and name in html
    assert "http://" not in html.split("<body", 1)[0], "the HTML report loads an external asset"
    md = cli("report", incident_id).stdout
    assert md.startswith("#") and "Timeline" in md
    assert json.loads(cli("report", incident_id, "--format", "json").stdout)["incident"]
    bad = cli("report", incident_id, "--format", "pdf", code=2)
    assert "accepted: md, html, json" in bad.stderr


def test_scan_guard_exit_codes(incident: tuple[Cli, FakeWorld, str, str], tmp_path: Path) -> None:
    cli, _, _, name = incident
    leaky = cli("scan", str(tmp_path / "leaky.tgz"), "--json", code=1)
    assert json.loads(leaky.stdout)["leaky"] is True
    cli("scan", str(tmp_path / "clean.tgz"), code=0)
    published = cli("scan", f"{name}@1.0.0", code=0)
    assert published.stdout.startswith(f"pass {name}@1.0.0: no source exposure"), published.stdout


def test_init_writes_once(tmp_path: Path) -> None:
    cwd = tmp_path / "fresh"
    cwd.mkdir()
    cli = Cli(cwd, cli_env(cwd, tmp_path / "home"))
    cli("init")
    assert "[organization]" in (cwd / "respond.toml").read_text()
    assert "exists" in cli("init", code=2).stderr
    cli("init", "--force")
