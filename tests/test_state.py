"""The store: secrets never reach disk, records log changes only, transitions are durable."""

from __future__ import annotations

from pathlib import Path

from playbook.clock import utcnow
from playbook.secret import Secret
from playbook.spec import PackageSpec
from playbook.store.sqlite import Incident, StepStatus, Store


def new_incident(store: Store, incident_id: str = "inc-1") -> str:
    incident = Incident(
        id=incident_id,
        created_at=utcnow(),
        mode="live",
        targets=(str(PackageSpec("p", "1.0.0")),),
        inputs={},
        runbook_path="rb.yaml",
        runbook_hash="0" * 64,
        runbook_text="name: x",
        status="created",
    )
    store.create_incident(incident, [("a", "p@1.0.0", "a", "test.sleep")])
    return incident_id


def every_byte(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


def test_secret_values_are_scrubbed_from_everything_the_store_writes(tmp_path: Path) -> None:
    canary = Secret("npm_CANARYcanaryCANARY0123456789abcdef")
    raw = canary.reveal()
    store = Store(tmp_path)
    incident = new_incident(store)
    store.transition(
        incident,
        "a",
        StepStatus.FAILED,
        outputs={"token": raw, "nested": [{"auth": f"Bearer {raw}"}]},
        summary=f"used {raw}",
        error=f"401 for token {raw}",
    )
    store.log(incident, "custom", {"otp": raw})
    store.put_record(incident, "mirror", "https://x", {"description": raw})
    store.approve(incident, "a", "alice", f"note with {raw}")
    store.cache_put("etag", raw)
    store.db.execute("PRAGMA wal_checkpoint(FULL)")
    store.close()
    data = every_byte(tmp_path)
    assert raw.encode() not in data
    assert b"<hidden>" in data, "nothing was written: the test proves nothing"
    assert repr(canary) == "Secret(<hidden>)" and f"{canary}" == "<hidden>"


def test_records_log_only_real_changes(tmp_path: Path) -> None:
    store = Store(tmp_path)
    incident = new_incident(store)
    assert store.put_record(incident, "mirror", "u", {"verdict": "copy"})
    assert not store.put_record(incident, "mirror", "u", {"verdict": "copy"})
    assert store.put_record(incident, "mirror", "u", {"verdict": "disabled"})
    kinds = [e.kind for e in store.events(incident) if e.kind.startswith("mirror.")]
    assert kinds == ["mirror.added", "mirror.updated"]
    assert store.record(incident, "mirror", "u") == {"verdict": "disabled"}


def test_transitions_survive_a_new_connection(tmp_path: Path) -> None:
    store = Store(tmp_path)
    incident = new_incident(store)
    store.transition(incident, "a", StepStatus.RUNNING)
    store.transition(incident, "a", StepStatus.SUCCEEDED, outputs={"n": 1}, changed=True)
    # no close(): a crash right here must still leave the committed state for the next process
    other = Store(tmp_path)
    step = other.step(incident, "a")
    assert (step.status, step.outputs, step.changed, step.attempt) == (
        StepStatus.SUCCEEDED,
        {"n": 1},
        True,
        1,
    )
    store.close()
    other.close()


def test_a_short_numeric_secret_never_corrupts_stored_json(tmp_path: Path) -> None:
    otp = Secret("123456")
    store = Store(tmp_path)
    incident = new_incident(store)
    outputs = {"size": 91234567, "otp": otp.reveal(), "note": "code 123456 used"}
    store.transition(incident, "a", StepStatus.SUCCEEDED, outputs=outputs)
    store.cache_put("body", '{"n": 1234567, "otp": "123456"}')
    assert store.step(incident, "a").outputs == {
        "size": 91234567,
        "otp": "<hidden>",
        "note": "code <hidden> used",
    }
    assert store.cache_get("body") == '{"n": 1234567, "otp": "<hidden>"}'
    store.close()
