"""Commands that change an incident while another process does: nothing is lost.

`respond mirrors recheck`, `respond notice sent` and a live run's steps all change the same
records. Each read-modify-write happens in one store transaction, so the second writer waits for
the first and changes the record as the first left it. The tests hold the first writer inside
its transaction (a slow `settle`, as a recheck out on the network would be) and run the second
from another connection, as another process would.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from playbook.clock import utcnow
from playbook.errors import ExitCode
from playbook.mirrors import track
from playbook.mirrors.model import Mirror, MirrorStatus, Verdict
from playbook.notices.lifecycle import mark_sent
from playbook.notices.model import Notice, NoticeStatus
from playbook.steps.notices import _keep_final
from playbook.store.records import Records
from playbook.store.sqlite import Incident, Store

URL = "https://github.com/leaker/copy"


def seeded(home: Path) -> None:
    store = Store(home)
    incident = Incident("inc-1", utcnow(), "live", ("pkg@1.0.1",), {}, "rb.yaml", "h", "", "open")
    store.create_incident(incident, [("lookup", "pkg@1.0.1", "lookup", "npm.lookup")])
    mirror = Mirror(URL, "github.com", "repo", "leaker/copy", Verdict.COPY, checked_at=utcnow())
    store.put_record("inc-1", "mirror", URL, mirror.to_record())
    store.put_record("inc-1", "mirror", URL, _moved(mirror, MirrorStatus.NOTICE_DRAFTED))
    notice = Notice("dmca-github", "dmca-github", status=NoticeStatus.DRAFTED, mirrors=(URL,))
    store.put_record("inc-1", "notice", notice.id, notice.to_record())
    store.close()


def _moved(mirror: Mirror, status: MirrorStatus) -> dict[str, Any]:
    from playbook.mirrors.model import transition

    return transition(mirror, status, "test").to_record()


def held(inside: threading.Event, seconds: float) -> Any:
    """A `settle` that stays inside the transaction a while, as a slow writer would."""
    real = track.settle

    def slow(old: Mirror, new: Mirror) -> Mirror:
        inside.set()
        time.sleep(seconds)
        return real(old, new)

    return slow


def test_a_recheck_and_a_notice_sent_at_once_lose_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    seeded(home)
    inside = threading.Event()
    monkeypatch.setattr(track, "settle", held(inside, 0.4))
    rechecked = Mirror(URL, "github.com", "repo", "leaker/copy", Verdict.COPY, matched=7)
    errors: list[BaseException] = []

    def recheck() -> None:
        store = Store(home)
        try:
            track._settle_stored(store, "inc-1", rechecked, utcnow())
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    first = threading.Thread(target=recheck)
    first.start()
    assert inside.wait(5), "the recheck never reached its transaction"
    other = Store(home)  # another process's connection
    try:
        started = time.monotonic()
        mark_sent(other, "inc-1", "dmca-github", "ticket-1", "alice")
        waited = time.monotonic() - started
    finally:
        other.close()
    first.join(5)
    assert not errors, errors
    store = Store(home)
    try:
        mirror = Mirror.from_record(store.record("inc-1", "mirror", URL) or {})
        notice = Notice.from_record(store.record("inc-1", "notice", "dmca-github") or {})
    finally:
        store.close()
    assert waited > 0.2, "notice sent did not wait for the recheck's transaction"
    assert mirror.matched == 7, "the recheck's verdict was lost"
    assert mirror.status is MirrorStatus.NOTICE_SENT, "notice sent's move of the mirror was lost"
    assert notice.status is NoticeStatus.SENT and notice.ref == "ticket-1"


def test_a_notice_sent_during_a_redraft_stays_sent(tmp_path: Path) -> None:
    # The live run's notices step re-drafts while a person marks the notice sent: the record
    # the step writes is decided from the record as it is at write time, not when it was read.
    home = tmp_path / "home"
    seeded(home)
    step, person = Store(home), Store(home)
    try:
        redrafted = Notice("dmca-github", "dmca-github", status=NoticeStatus.NEEDS_DETAILS)
        mark_sent(person, "inc-1", "dmca-github", "ticket-2", "bob")
        changed = Records(step, "inc-1").update(Notice, "dmca-github", _keep_final(redrafted))
        notice = Notice.from_record(step.record("inc-1", "notice", "dmca-github") or {})
    finally:
        step.close()
        person.close()
    assert not changed
    assert notice.status is NoticeStatus.SENT and notice.ref == "ticket-2"


def test_a_failing_change_rolls_back_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seeded(home)
    store = Store(home)
    try:
        before = store.record("inc-1", "notice", "dmca-github")
        events = len(store.events("inc-1"))

        def broken(current: dict[str, Any] | None) -> dict[str, Any]:
            raise ValueError("refused")

        with pytest.raises(ValueError, match="refused"):
            store.update_record("inc-1", "notice", "dmca-github", broken)
        assert store.record("inc-1", "notice", "dmca-github") == before
        assert len(store.events("inc-1")) == events
        # And the store is usable at once (no transaction left open).
        store.put_record("inc-1", "notice", "x", {"id": "x"})
    finally:
        store.close()


# -- through the CLI, against a live run ---------------------------------------------------------


@pytest.mark.registry
@pytest.mark.slow
def test_recheck_and_notice_sent_during_a_live_run_wait_for_it_and_lose_nothing(
    tmp_path: Path, local_registry: Any, registry_token: str
) -> None:
    import json
    import os
    import sqlite3
    import subprocess
    from urllib.parse import urlsplit

    from playbook.rehearsal.synth import make_package, reconstructed_files
    from playbook.rehearsal.world import FakeWorld, World
    from tests.support.cli import RESPOND, respond, world_project

    shape = {"sources": 60, "first_party": 40, "seed": 4}
    name = f"@conc/cli-{os.getpid()}-{tmp_path.name[-6:]}".lower()
    clean = make_package(name, "1.0.0", sources=0, first_party=0, with_map=False)
    local_registry.publish(clean, name, "1.0.0", token=registry_token)
    leaky = make_package(name, "1.0.1", with_map=True, **shape)
    local_registry.publish(leaky, name, "1.0.1", token=registry_token)
    world = World.seeded(reconstructed_files(name, "1.0.1", **shape), name, "1.0.1")
    with FakeWorld(world) as fake:
        cwd, env = world_project(tmp_path, local_registry.url, registry_token, fake)

        def cli(*args: str) -> Any:
            return json.loads(respond(env, *args, "--json", cwd=cwd, check=0).stdout)

        # The live run waits right after its report step starts (notices already drafted) until
        # the release file exists.
        release = tmp_path / "release"
        live = subprocess.Popen(
            [*RESPOND, "leak", f"{name}@1.0.1", "--yes", "--non-interactive", "--json"],
            cwd=cwd, env={**env, "RESPOND_HOLDPOINT": f"step.running/report:{release}"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            incident = ""
            db = tmp_path / "home" / "respond.db"
            while time.monotonic() < deadline and live.poll() is None and not incident:
                time.sleep(0.2)
                if db.exists():  # read as another process would, without the CLI's start-up
                    with sqlite3.connect(db, timeout=30) as conn:
                        row = conn.execute(
                            "SELECT incident_id FROM events WHERE kind='step.running' "
                            "AND step_key='report'"
                        ).fetchone()
                    conn.close()
                    incident = row[0] if row else ""
            assert live.poll() is None, "the live run ended before the commands could run"
            notices = cli("notices", incident)
            dmca = next(n for n in notices if n["kind"] == "dmca-github")
            for url in dmca["mirrors"]:
                fake.disable(urlsplit(url).path.strip("/"))
            # During the run both commands are refused (exit 4, the driver's PID) and change
            # nothing; the store's transactions make them safe too (tests above), the lock makes
            # them wait for the run.
            refused_sent = respond(env, "notice", "sent", dmca["id"], "--ref", "DMCA-7", cwd=cwd)
            refused_recheck = respond(env, "mirrors", "recheck", incident, cwd=cwd)
            still_live = live.poll() is None
            during = {n["id"]: n for n in cli("notices", incident)}[dmca["id"]]
            release.touch()
            out, err = live.communicate(timeout=120)
            respond(env, "notice", "sent", dmca["id"], "--ref", "DMCA-7", cwd=cwd, check=0)
            rechecked = cli("mirrors", "recheck", incident)
        finally:
            if live.poll() is None:
                live.kill()
    assert still_live, "the commands did not run during the live run"
    for refused in (refused_sent, refused_recheck):
        assert refused.returncode == ExitCode.LOCKED, refused.stderr
        assert f"PID {live.pid}" in refused.stderr, refused.stderr
    assert during["status"] != "sent", "a refused command changed the notice"
    assert live.returncode == 0, err
    assert json.loads(out)["status"] == "done"
    changed = {(c["url"], c["new"]) for c in rechecked["changes"] if c["field"] == "verdict"}
    assert {(u, "disabled") for u in dmca["mirrors"]} <= changed
    final = {n["id"]: n for n in cli("notices", incident)}[dmca["id"]]
    assert final["status"] == "resolved" and final["ref"] == "DMCA-7", final
    mirrors = {m["url"]: m for m in cli("mirrors", incident)["mirrors"]}
    for url in dmca["mirrors"]:
        assert mirrors[url]["verdict"] == "disabled", "the recheck's verdict was lost"
        assert mirrors[url]["status"] == "resolved", "the takedown status was lost"
