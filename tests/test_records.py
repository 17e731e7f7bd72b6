"""The mirror and notice records: one parser each, and one owner of each status."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbook.clock import utcnow
from playbook.codec import DecodeError
from playbook.mirrors.model import IllegalTransition, Mirror, MirrorStatus, Verdict, transition
from playbook.notices.model import IllegalNoticeMove, Notice, NoticeStatus
from playbook.notices.model import transition as move_notice
from playbook.store.records import MemoryRecords, Records
from playbook.store.sqlite import Incident, Store

URL = "https://github.com/leaker/cli-src"


def mirror(status: MirrorStatus = MirrorStatus.OPEN) -> Mirror:
    return Mirror(URL, "github.com", "repo", "leaker/cli-src", Verdict.COPY, status=status)


def test_a_mirror_record_round_trips_and_bad_data_is_refused() -> None:
    record = mirror(MirrorStatus.NOTICE_SENT).to_record()
    assert record["status"] == "notice_sent" and record["verdict"] == "copy"
    assert Mirror.from_record({**record, "someday": 1}) == mirror(MirrorStatus.NOTICE_SENT)
    with pytest.raises(DecodeError, match="verdict"):
        Mirror.from_record({**record, "verdict": "maybe"})
    with pytest.raises(DecodeError, match="status"):
        Mirror.from_record({**record, "status": "closed"})


def test_a_mirror_moves_forward_only() -> None:
    drafted = transition(mirror(), MirrorStatus.NOTICE_DRAFTED, "drafted")
    assert drafted.status is MirrorStatus.NOTICE_DRAFTED
    resolved = transition(drafted, MirrorStatus.RESOLVED, "taken down")
    assert transition(resolved, MirrorStatus.RESOLVED, "again") == resolved  # staying is fine
    with pytest.raises(IllegalTransition, match="from resolved to notice_sent"):
        transition(resolved, MirrorStatus.NOTICE_SENT, "a late notice")
    with pytest.raises(IllegalTransition, match="from notice_sent to open"):
        transition(mirror(MirrorStatus.NOTICE_SENT), MirrorStatus.OPEN, "reopened")


def test_a_notice_moves_from_draft_to_sent_to_resolved_only() -> None:
    notice = Notice("dmca-github-x", "dmca-github", status=NoticeStatus.NEEDS_DETAILS)
    assert Notice.from_record(notice.to_record()) == notice
    sent = move_notice(notice, NoticeStatus.SENT, "filed", ref="DMCA-1")
    assert sent.status is NoticeStatus.SENT and sent.ref == "DMCA-1" and sent.status.final
    with pytest.raises(IllegalNoticeMove, match="from sent to drafted"):
        move_notice(sent, NoticeStatus.DRAFTED, "redrafted")
    done = move_notice(sent, NoticeStatus.RESOLVED, "copies down")
    with pytest.raises(IllegalNoticeMove, match="from resolved to sent"):
        move_notice(done, NoticeStatus.SENT, "sent again")


@pytest.mark.parametrize("backend", ["store", "memory"])
def test_records_hand_out_typed_records_and_keep_rows_as_json(backend: str, tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        if backend == "store":
            incident = Incident("inc-1", utcnow(), "live", ("p@1.0.0",), {}, "rb", "h", "", "open")
            store.create_incident(incident, [])
            records: Records = Records(store, "inc-1")
        else:
            records = MemoryRecords("inc-1")
        assert records.get(Mirror, URL) is None and records.all(Notice) == []
        assert records.put(mirror())
        assert not records.put(mirror())  # the same data again changes nothing
        assert records.get(Mirror, URL) == mirror()
        assert records.all(Notice) == []  # kinds are apart
        moved = records.update(
            Mirror, URL, lambda m: None if m is None else transition(m, MirrorStatus.RESOLVED, "t")
        )
        assert moved and records.get(Mirror, URL) == mirror(MirrorStatus.RESOLVED)
        assert not records.update(Mirror, URL, lambda _m: None)  # None leaves it
        assert not records.update(Notice, "absent", lambda n: n)  # nothing there, nothing made
        assert records.get(Notice, "absent") is None
        row = records.rows.record("inc-1", "mirror", URL)
        assert row is not None and row["status"] == "resolved"  # the stored JSON form
        records.rows.update_record("inc-1", "mirror", URL, lambda r: {**(r or {}), "verdict": "x"})
        with pytest.raises(DecodeError, match="verdict"):  # a bad row is refused on the way in
            records.get(Mirror, URL)
    finally:
        store.close()
