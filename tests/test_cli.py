"""The CLI as a person runs it, in real subprocesses: bad input, approval, SIGKILL and resume, lock."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import RESPOND, ROOT, respond

HOLD = """\
name: hold
steps:
  - {id: a, uses: test.sleep}
  - {id: b, uses: test.hold, needs: a}
  - {id: c, uses: test.sleep, needs: b}
"""

DESTROY = """\
name: destroy
steps:
  - {id: first, uses: test.sleep}
  - {id: destroy, uses: test.destroy, needs: first}
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RESPOND_HOME": str(tmp_path / "home"),
        "RESPOND_STEP_MODULES": "tests.support.steptypes",
        "PYTHONPATH": str(ROOT),
    }


def spawn(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*RESPOND, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )


@pytest.fixture
def runbook(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "rb.yaml"
    path.write_text(HOLD)
    yield path


def step_status(home: Path, key: str) -> str | None:
    db = home / "respond.db"
    if not db.exists():
        return None
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        try:
            row = conn.execute("SELECT status FROM steps WHERE key=?", (key,)).fetchone()
        except sqlite3.OperationalError:  # the other process has not created the tables yet
            return None
    return None if row is None else str(row[0])


def wait_for(predicate: object, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("notaspec", "has no version"),
        ("@scope/", "has no version"),
        ("pkg@", "empty version"),
        ("pkg@not-semver", "not an exact semver version"),
        ("Bad Name@1.0.0", "valid npm package"),
    ],
)
def test_bad_specs_are_one_line_exit_2_and_write_nothing(
    env: dict[str, str], spec: str, needle: str
) -> None:
    proc = respond(env, "leak", spec, "--non-interactive", check=2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    assert "accepted:" in lines[0]
    assert not Path(env["RESPOND_HOME"]).exists(), "bad input wrote to the store"


def test_bad_runbooks_and_unknown_incidents_are_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    missing = respond(env, "leak", "pkg@1.0.0", "--runbook", str(tmp_path / "none.yaml"), check=2)
    assert "Cannot read runbook" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps:\n  - {id: a, uses: test.sleep, wat: 1}\n")
    invalid = respond(env, "leak", "pkg@1.0.0", "--runbook", str(bad), check=2)
    assert f"{bad}:3 (step 'a'): unknown key 'wat'" in invalid.stderr
    assert not Path(env["RESPOND_HOME"]).exists()
    for command in (("status", "nope"), ("resume", "nope"), ("approve", "nope", "x")):
        proc = respond(env, *command, check=2)
        assert "No incident 'nope'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert respond(env, "runbook", "validate", str(bad), check=2).stderr.count("error:") == 1


def test_approval_stop_exit_3_then_approve_and_resume(env: dict[str, str], tmp_path: Path) -> None:
    book = tmp_path / "destroy.yaml"
    book.write_text(DESTROY)
    first = respond(
        env, "leak", "pkg@1.0.0", "--runbook", str(book), "--non-interactive", "--json", check=3
    )
    summary = json.loads(first.stdout)
    incident = summary["incident"]
    assert {s["id"]: s["status"] for s in summary["steps"]} == {
        "first": "succeeded",
        "destroy": "awaiting_approval",
    }
    assert f"respond approve {incident} destroy" in first.stderr
    respond(env, "approve", incident, "destroy", "--note", "ok per IC", check=0)
    done = respond(env, "resume", incident, "--non-interactive", "--json", check=0)
    assert {s["id"]: s["status"] for s in json.loads(done.stdout)["steps"]}[
        "destroy"
    ] == "succeeded"
    status = json.loads(respond(env, "status", incident, "--json", check=0).stdout)
    assert status["status"] == "done"


def test_sigkill_mid_step_then_resume_rechecks_and_never_repeats(
    env: dict[str, str], runbook: Path
) -> None:
    home = Path(env["RESPOND_HOME"])
    proc = spawn(env, "leak", "pkg@1.0.0", "--runbook", str(runbook), "--non-interactive")
    wait_for(lambda: step_status(home, "b") == "running", "step b to run")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert step_status(home, "b") == "running", "the store lost the running step"
    incident = json.loads(respond(env, "list", "--json", check=0).stdout)[0]["id"]
    (home / "incidents" / incident / "release").touch()

    resumed = respond(env, "resume", incident, "--non-interactive", "--json", check=0)
    steps = {s["id"]: s for s in json.loads(resumed.stdout)["steps"]}
    assert [steps[k]["status"] for k in "abc"] == ["succeeded"] * 3
    assert steps["b"]["outputs"]["resumed"] is True, "an abandoned step was not re-checked"
    marks = home / "incidents" / incident / "marks"
    assert len((marks / "a.apply").read_text().splitlines()) == 1, "a succeeded step ran twice"
    with contextlib.closing(sqlite3.connect(home / "respond.db")) as conn:
        events = [
            (str(kind), key)
            for kind, key in conn.execute("SELECT kind, step_key FROM events ORDER BY seq")
        ]
    assert ("step.abandoned", "b") in events
    assert events.index(("step.abandoned", "b")) < events.index(("step.succeeded", "b"))


def test_second_driver_is_refused_naming_the_pid(env: dict[str, str], runbook: Path) -> None:
    home = Path(env["RESPOND_HOME"])
    proc = spawn(env, "leak", "pkg@1.0.0", "--runbook", str(runbook), "--non-interactive")
    try:
        wait_for(lambda: step_status(home, "b") == "running", "step b to run")
        incident = json.loads(respond(env, "list", "--json", check=0).stdout)[0]["id"]
        second = respond(env, "resume", incident, "--non-interactive", check=4)
        assert f"PID {proc.pid}" in second.stderr
        assert step_status(home, "b") == "running", "the refused driver changed the store"
        (home / "incidents" / incident / "release").touch()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()


def test_changed_runbook_is_refused_on_resume_unless_forced(
    env: dict[str, str], tmp_path: Path
) -> None:
    book = tmp_path / "destroy.yaml"
    book.write_text(DESTROY)
    first = respond(
        env, "leak", "pkg@1.0.0", "--runbook", str(book), "--non-interactive", "--json", check=3
    )
    incident = json.loads(first.stdout)["incident"]
    book.write_text(DESTROY + "  - {id: extra, uses: test.sleep, needs: first}\n")
    refused = respond(env, "resume", incident, "--non-interactive", check=2)
    assert "changed since incident" in refused.stderr and "--force" in refused.stderr
    forced = respond(env, "resume", incident, "--non-interactive", "--force", "--yes", "--json")
    assert forced.returncode == 0, forced.stderr


def test_runbook_show_lists_waves_writes_and_approvals(env: dict[str, str], tmp_path: Path) -> None:
    book = tmp_path / "destroy.yaml"
    book.write_text(DESTROY)
    shown = json.loads(respond(env, "runbook", "show", str(book), "--json", check=0).stdout)
    destroy = shown["waves"][1]["steps"][0]
    assert (destroy["id"], destroy["writes"], destroy["destructive"], destroy["approval"]) == (
        "destroy",
        True,
        True,
        True,
    )


def test_two_incidents_at_once_on_one_store_both_complete(
    env: dict[str, str], runbook: Path
) -> None:
    home = Path(env["RESPOND_HOME"])
    procs = [
        spawn(env, "leak", spec, "--runbook", str(runbook), "--non-interactive")
        for spec in ("one@1.0.0", "two@1.0.0")
    ]
    try:
        wait_for(
            lambda: len(json.loads(respond(env, "list", "--json").stdout or "[]")) == 2,
            "both incidents to exist",
        )
        incidents = [i["id"] for i in json.loads(respond(env, "list", "--json", check=0).stdout)]
        for incident in incidents:
            wait_for(lambda i=incident: (home / "incidents" / i).is_dir(), "incident folder")
            (home / "incidents" / incident / "release").touch()
        assert [p.wait(timeout=60) for p in procs] == [0, 0]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    for incident in incidents:
        status = json.loads(respond(env, "status", incident, "--json", check=0).stdout)
        assert status["status"] == "done"
        assert [s["status"] for s in status["steps"]] == ["succeeded"] * 3
