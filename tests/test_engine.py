"""The engine with test-only step types: concurrency, order, retry, timeout, if, approval, dry run."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import tests.support.steptypes  # noqa: F401 - registers the test step types
from playbook.config.settings import Mode, Settings
from playbook.core import Session
from playbook.engine import runbook as runbooks
from playbook.engine.runner import ApprovalRequest, RunResult, create_incident
from playbook.errors import IncidentLocked
from playbook.spec import parse_spec
from playbook.store.sqlite import StepStatus, Store


def make_settings(home: Path, **flags: Any) -> Settings:
    return Settings.resolve(env={"RESPOND_HOME": str(home)}, **flags)


def run(
    home: Path, text: str, specs: tuple[str, ...] = ("pkg@1.0.0",), **flags: Any
) -> tuple[Store, RunResult]:
    settings = make_settings(home, **flags)
    store = Store(settings.home)
    book = runbooks.parse(text, "test.yaml")
    incident_id = create_incident(store, settings.mode, book, [parse_spec(s) for s in specs], {})
    result = asyncio.run(Session(settings, store).run(incident_id, book))
    return store, result


def status_of(result: RunResult) -> dict[str, StepStatus]:
    return {s.key: s.status for s in result.steps}


def outputs_of(result: RunResult, key: str) -> dict[str, Any]:
    return dict(next(s.outputs for s in result.steps if s.key == key))


def marks(store: Store, result: RunResult, name: str) -> int:
    path = store.incident_dir(result.incident_id) / "marks" / name
    return len(path.read_text().splitlines()) if path.exists() else 0


PARALLEL = """
name: parallel
steps:
  - {id: a, uses: test.sleep, with: {seconds: 0.4}}
  - {id: b, uses: test.sleep, with: {seconds: 0.4}}
  - {id: c, uses: test.sleep, needs: [a, b], with: {value: "{{ steps.a.outputs.ended > 0 }}"}}
"""


def test_independent_steps_overlap_and_dependents_wait(tmp_path: Path) -> None:
    _, result = run(tmp_path, PARALLEL)
    a, b, c = (outputs_of(result, k) for k in "abc")
    assert a["started"] < b["ended"] and b["started"] < a["ended"], "a and b did not overlap"
    assert c["started"] >= max(a["ended"], b["ended"]), "c started before its needs ended"
    assert c["value"] is True, "outputs of a need did not flow into the dependent's `with`"
    assert result.status == "done"


def test_retry_then_success_and_retry_exhausted(tmp_path: Path) -> None:
    text = """
name: retry
steps:
  - {id: ok, uses: test.flaky, with: {failures: 2}, retry: {count: 2, backoff: 0.01}}
  - {id: bad, uses: test.flaky, with: {failures: 5}, retry: {count: 1, backoff: 0.01}}
"""
    store, result = run(tmp_path, text)
    assert status_of(result) == {"ok": StepStatus.SUCCEEDED, "bad": StepStatus.FAILED}
    assert outputs_of(result, "ok")["calls"] == 3
    assert marks(store, result, "bad.apply") == 2
    assert "flaky failure 2" in (next(s for s in result.steps if s.key == "bad").error or "")
    assert result.status == "failed"


def test_timeout_ends_timed_out(tmp_path: Path) -> None:
    text = "name: t\nsteps:\n  - {id: slow, uses: test.sleep, with: {seconds: 5}, timeout: 0.2s}\n"
    _, result = run(tmp_path, text)
    step = result.steps[0]
    assert step.status is StepStatus.TIMED_OUT
    assert "timed out after 0.2s" in (step.error or "")


def test_if_false_skips_and_dependents_still_run(tmp_path: Path) -> None:
    text = """
name: if
steps:
  - {id: a, uses: test.sleep, with: {value: 3}}
  - {id: b, uses: test.sleep, needs: a, if: "steps.a.outputs.value > 5"}
  - {id: c, uses: test.sleep, needs: a, if: "{{ steps.a.outputs.value == 3 }}"}
  - {id: d, uses: test.sleep, needs: b}
"""
    _, result = run(tmp_path, text)
    assert status_of(result) == {
        "a": StepStatus.SUCCEEDED,
        "b": StepStatus.SKIPPED,
        "c": StepStatus.SUCCEEDED,
        "d": StepStatus.SUCCEEDED,
    }


def test_failed_step_stops_the_run_and_leaves_dependents_pending(tmp_path: Path) -> None:
    text = """
name: stop
steps:
  - {id: bad, uses: test.flaky, with: {failures: 9}}
  - {id: after, uses: test.sleep, needs: bad}
  - {id: tolerant, uses: test.flaky, with: {failures: 9}, on_failure: continue}
"""
    _, result = run(tmp_path, text)
    statuses = status_of(result)
    assert statuses["bad"] is StepStatus.FAILED
    assert statuses["after"] is StepStatus.PENDING


DESTROY = """
name: destroy
steps:
  - {id: first, uses: test.sleep}
  - {id: destroy, uses: test.destroy, needs: first}
  - {id: verify, uses: test.sleep, needs: destroy}
"""


def test_destructive_step_waits_for_approval_then_resume_continues(tmp_path: Path) -> None:
    store, result = run(tmp_path, DESTROY)
    assert status_of(result)["destroy"] is StepStatus.AWAITING_APPROVAL
    assert status_of(result)["verify"] is StepStatus.PENDING
    assert result.status == "awaiting_approval"
    assert marks(store, result, "destroy.apply") == 0

    store.approve(result.incident_id, "destroy", "alice", "approved on the bridge call")
    settings = make_settings(tmp_path)
    again = asyncio.run(
        Session(settings, store).run(result.incident_id, runbooks.parse(DESTROY, "test.yaml"))
    )
    assert status_of(again) == dict.fromkeys(("first", "destroy", "verify"), StepStatus.SUCCEEDED)
    assert marks(store, again, "destroy.apply") == 1
    assert marks(store, again, "first.apply") == 1, "a succeeded step ran again on resume"
    approval = store.approval(result.incident_id, "destroy")
    assert approval is not None and approval.who == "alice"
    assert approval.note == "approved on the bridge call"


def test_yes_and_approve_flag_grant_and_record_approval(tmp_path: Path) -> None:
    store, result = run(tmp_path / "a", DESTROY, yes=True, operator="bob")
    assert status_of(result)["destroy"] is StepStatus.SUCCEEDED
    approval = store.approval(result.incident_id, "destroy")
    assert approval is not None and (approval.who, approval.note) == ("bob", "granted by --yes")

    store, result = run(tmp_path / "b", DESTROY, approve=frozenset({"destroy"}))
    assert status_of(result)["destroy"] is StepStatus.SUCCEEDED
    granted = store.approval(result.incident_id, "destroy")
    assert granted is not None and "--approve destroy" in granted.note


def test_interactive_approver_is_asked_with_the_plan(tmp_path: Path) -> None:
    asked: list[ApprovalRequest] = []

    async def approver(request: ApprovalRequest) -> tuple[bool, str]:
        asked.append(request)
        return False, ""

    settings = make_settings(tmp_path, interactive=True)
    store = Store(settings.home)
    book = runbooks.parse(DESTROY, "t.yaml")
    incident_id = create_incident(store, settings.mode, book, [parse_spec("p@1.0.0")], {})
    result = asyncio.run(Session(settings, store, approver=approver).run(incident_id, book))
    assert [r.key for r in asked] == ["destroy"]
    assert asked[0].plan.actions[0].method == "DELETE"
    assert status_of(result)["destroy"] is StepStatus.AWAITING_APPROVAL


def test_dry_run_plans_mutating_steps_and_outputs_flow_downstream(tmp_path: Path) -> None:
    text = """
name: dry
steps:
  - {id: w, uses: test.write, with: {value: 42}}
  - {id: after, uses: test.sleep, needs: w, with: {value: "{{ steps.w.outputs.written }}"}}
  - {id: destroy, uses: test.destroy}
"""
    store, result = run(tmp_path, text, mode=Mode.DRY_RUN)
    statuses = status_of(result)
    assert statuses["w"] is StepStatus.PLANNED
    assert statuses["destroy"] is StepStatus.PLANNED, "a dry run must plan, not wait for approval"
    assert outputs_of(result, "after")["value"] == 42
    assert marks(store, result, "w.apply") == 0 and marks(store, result, "w.plan") == 1
    assert result.status == "planned"


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        type(self).seen.append(self.command)
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/thing"
    server.shutdown()
    server.server_close()


def test_dry_run_transport_refuses_writes_from_a_buggy_step(tmp_path: Path, recorder: str) -> None:
    text = f"name: buggy\nsteps:\n  - {{id: bug, uses: test.buggy, with: {{url: '{recorder}'}}}}\n"
    _, result = run(tmp_path, text, mode=Mode.DRY_RUN)
    step = result.steps[0]
    assert step.status is StepStatus.FAILED
    assert "refused to send POST" in (step.error or "")
    assert _Recorder.seen == ["GET"], "the write reached the server"

    _, live = run(tmp_path / "live", text)
    assert live.steps[0].status is StepStatus.SUCCEEDED
    assert _Recorder.seen == ["GET", "GET", "POST"], "the server cannot see writes: test is void"


def test_many_targets_instantiate_the_graph_per_package(tmp_path: Path) -> None:
    text = (
        "name: many\nsteps:\n  - {id: a, uses: test.sleep, with: {value: '{{ inputs.package }}'}}\n"
    )
    _, result = run(tmp_path, text, specs=("x@1.0.0", "@s/y@2.0.0"))
    assert {s.key: s.outputs["value"] for s in result.steps} == {
        "x@1.0.0#a": "x",
        "@s/y@2.0.0#a": "@s/y",
    }
    assert result.incident_id.endswith("-x-1.0.0-and-1-more")


def test_event_log_is_append_only_and_timestamps_are_ms_utc(tmp_path: Path) -> None:
    store, result = run(tmp_path, PARALLEL)
    events = store.events(result.incident_id)
    kinds = [e.kind for e in events]
    assert kinds[0] == "incident.created"
    assert kinds.count("step.succeeded") == 3
    assert all(len(e.at) == 24 and e.at.endswith("Z") for e in events)
    import sqlite3

    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("DELETE FROM events")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("UPDATE events SET kind='x'")


def test_second_driver_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    import os

    store, result = run(tmp_path, PARALLEL)
    store.lock(result.incident_id)
    other = Store(tmp_path)
    with pytest.raises(IncidentLocked, match=f"PID {os.getpid()}"):
        other.lock(result.incident_id)
    store.unlock(result.incident_id)
    other.lock(result.incident_id)
    other.unlock(result.incident_id)


def test_incident_ids_are_unique(tmp_path: Path) -> None:
    store, first = run(tmp_path, PARALLEL)
    settings = make_settings(tmp_path)
    book = runbooks.parse(PARALLEL, "t.yaml")
    second = create_incident(store, settings.mode, book, [parse_spec("pkg@1.0.0")], {})
    assert second != first.incident_id and second.startswith(first.incident_id)


def test_a_once_per_incident_step_runs_once_after_every_package(tmp_path: Path) -> None:
    text = """
name: wide
steps:
  - {id: a, uses: test.sleep, with: {seconds: 0.05}}
  - {id: all, uses: test.gather, needs: a}
"""
    store, result = run(tmp_path, text, specs=("x@1.0.0", "y@1.0.0", "z@1.0.0"))
    keys = [s.key for s in result.steps]
    assert keys.count("all") == 1 and not [k for k in keys if k.endswith("#all")]
    gather = next(s for s in result.steps if s.key == "all")
    assert gather.status is StepStatus.SUCCEEDED and gather.outputs["runs"] == 1
    ends = [s.ended_at or "" for s in result.steps if s.step_id == "a"]
    assert len(ends) == 3 and (gather.started_at or "") >= max(ends)
    assert marks(store, result, "a.apply") == 3
