"""Every rehearsal scenario end to end against the real local registry; nothing left running."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from playbook.rehearsal import run as rehearsal
from playbook.store.sqlite import Store
from tests.support.cli import RESPOND, ROOT

pytestmark = pytest.mark.registry


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


def run_scenario(home: Path, name: str) -> tuple[rehearsal.Scorecard, list[int]]:
    pids: list[int] = []
    card = rehearsal.rehearse(home, name, pids=pids)
    assert pids, "the rehearsal started no registry"
    assert not [p for p in pids if alive(p)], "a process the rehearsal started is still running"
    return card, pids


def test_sourcemap_leak_contains_finds_copies_and_reports(tmp_path: Path) -> None:
    card, _ = run_scenario(tmp_path, "sourcemap-leak")
    assert card.status == "done"
    assert all(v is not None for v in card.milestones.values()), card.milestones
    assert card.planted > 0 and card.found > 0
    assert card.precision == 1.0, "something not planted as a copy was called a copy"
    assert card.recall is not None and card.recall >= 0.85, card
    assert card.milestones["latest moved"] is not None and card.milestones["latest moved"] < 5
    assert card.report is not None and Path(card.report).is_file()
    store = Store(tmp_path)
    steps = {s.step_id: s for s in store.steps(card.incident)}
    assert steps["verify"].outputs["contained"] is True
    assert steps["retag"].outputs["moved"]["latest"] == {"from": "2.1.88", "to": "2.1.87"}
    approval = store.approval(card.incident, "unpublish")
    assert approval is not None and approval.who == "rehearsal"
    # The GitLab and Codeberg copies were verified at a commit: their notices cite it, no blank.
    forge = [n for n in store.records(card.incident, "notice") if n["kind"] == "forge-copyright"]
    store.close()
    assert len(forge) == 2 and not [n for n in forge if "commit_sha" in n["missing"]]


def test_secret_in_release_drafts_the_private_information_request(tmp_path: Path) -> None:
    card, _ = run_scenario(tmp_path, "secret-in-release")
    store = Store(tmp_path)
    kinds = {n["kind"] for n in store.records(card.incident, "notice")}
    scan = next(s for s in store.steps(card.incident) if s.step_id == "scan")
    store.close()
    assert scan.outputs["summary"]["secrets"], "the planted token was not found"
    assert ".env" in " ".join(scan.outputs["summary"]["sensitive_files"])
    assert "private-info-github" in kinds or card.found == 0
    assert "advisory" in kinds


def test_past_policy_ends_in_a_support_request(tmp_path: Path) -> None:
    card, _ = run_scenario(tmp_path, "past-policy")
    store = Store(tmp_path)
    steps = {s.step_id: s for s in store.steps(card.incident)}
    kinds = {n["kind"] for n in store.records(card.incident, "notice")}
    store.close()
    assert steps["unpublish"].status.value == "skipped"
    assert steps["unpublish"].outputs["support_request_needed"] is True
    assert steps["deprecate"].status.value == "succeeded", "deprecate must stand"
    assert "npm-support" in kinds
    assert card.milestones["deprecated"] is not None


@pytest.mark.slow
def test_compromised_maintainer_contains_25_packages_concurrently(tmp_path: Path) -> None:
    card, _ = run_scenario(tmp_path, "compromised-maintainer")
    assert card.packages == 25 and card.status == "done"
    assert card.precision == 1.0
    assert card.recall is not None and card.recall >= 0.85, (
        "a package's verdict overwrote another's"
    )
    store = Store(tmp_path)
    verified = [s for s in store.steps(card.incident) if s.step_id == "verify"]
    retags = [s for s in store.steps(card.incident) if s.step_id == "retag"]
    store.close()
    assert len(verified) == 25 and all(s.outputs["contained"] for s in verified)
    starts = sorted(s.started_at or "" for s in retags)
    ends = sorted(s.ended_at or "" for s in retags)
    assert starts[-1] < ends[0], "the 25 retags did not run concurrently"


def test_unknown_scenario_is_a_usage_error() -> None:
    from playbook.errors import UsageError

    with pytest.raises(UsageError, match="accepted: sourcemap-leak"):
        rehearsal.scenario("nope")


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found |= {int(c) for c in text.split()}
    return found


def test_sigint_mid_rehearsal_leaves_no_process_running(tmp_path: Path) -> None:
    env = {**os.environ, "RESPOND_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [*RESPOND, "rehearse", "--scenario", "compromised-maintainer"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        started: set[int] = set()
        while time.monotonic() < deadline and not started:
            started = children(proc.pid)
            time.sleep(0.05)
        assert started, "the rehearsal started no child process"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in started):
        time.sleep(0.05)
    assert not [p for p in started if alive(p)], "SIGINT left a process running"
