"""A notice after drafting: listed, marked sent by a person, resolved once its copies are down."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playbook.clock import utcnow
from playbook.errors import UsageError
from playbook.mirrors.model import Mirror, MirrorStatus, Verdict, can_move, transition
from playbook.notices.model import Notice, NoticeStatus
from playbook.notices.model import transition as move_notice
from playbook.notices.render import blanks

if TYPE_CHECKING:
    from playbook.store.sqlite import Store

# Mirror verdicts that mean the copy is no longer served. "unreachable" is left out on purpose:
# a timeout must not close a takedown.
DOWN_VERDICTS = frozenset({Verdict.DISABLED, Verdict.GONE})
MIRROR_STATUS = {
    NoticeStatus.SENT: MirrorStatus.NOTICE_SENT,
    NoticeStatus.RESOLVED: MirrorStatus.RESOLVED,
}


def list_notices(store: Store, incident_id: str) -> list[Notice]:
    store.get_incident(incident_id)
    return [Notice.from_record(r) for r in store.records(incident_id, "notice")]


def _get(store: Store, incident_id: str, notice_id: str) -> Notice:
    store.get_incident(incident_id)
    record = store.record(incident_id, "notice", notice_id)
    if record is None:
        known = ", ".join(r["id"] for r in store.records(incident_id, "notice")) or "none"
        raise UsageError(
            f"Incident {incident_id} has no notice {notice_id!r} (notices: {known}).",
            f"List them with `respond notices {incident_id}`.",
        )
    return Notice.from_record(record)


def _put(store: Store, incident_id: str, notice: Notice, who: str) -> Notice:
    store.put_record(incident_id, "notice", notice.id, notice.to_record(), actor=who)
    _mark_mirrors(store, incident_id, notice, who)
    return notice


def mark_sent(store: Store, incident_id: str, notice_id: str, ref: str | None, who: str) -> Notice:
    """Record that a person filed the notice (with the host's ticket or reference, if any)."""
    notice = _get(store, incident_id, notice_id)
    if notice.status is NoticeStatus.RESOLVED:
        raise UsageError(f"Notice {notice_id} of incident {incident_id} is already resolved.")
    gaps = _file_blanks(store, incident_id, notice)
    if gaps:
        raise UsageError(
            f"Notice {notice_id} of incident {incident_id} still has blanks: {', '.join(gaps)}.",
            f"Fill them in {notice.file} (or in respond.toml and draft again) before sending.",
        )
    sent = move_notice(
        notice, NoticeStatus.SENT, f"sent by {who}", ref=ref or notice.ref, sent_at=utcnow(),
        missing=(),
    )  # fmt: skip
    return _put(store, incident_id, sent, who)


def mark_resolved(store: Store, incident_id: str, notice_id: str, who: str) -> Notice:
    """Record that the notice achieved its end (the copies are down, or the request was granted)."""
    notice = _get(store, incident_id, notice_id)
    if notice.status is NoticeStatus.RESOLVED:
        return notice
    done = move_notice(notice, NoticeStatus.RESOLVED, f"resolved by {who}", resolved_at=utcnow())
    return _put(store, incident_id, done, who)


def auto_resolve(store: Store, incident_id: str, who: str = "respond") -> list[Notice]:
    """Resolve every open notice whose copies the latest mirror recheck found disabled or gone."""
    mirrors = {
        m.url: m for m in (Mirror.from_record(r) for r in store.records(incident_id, "mirror"))
    }
    resolved = []
    for notice in list_notices(store, incident_id):
        if notice.status is NoticeStatus.RESOLVED or not notice.mirrors:
            continue
        if all(u in mirrors and mirrors[u].verdict in DOWN_VERDICTS for u in notice.mirrors):
            done = move_notice(
                notice, NoticeStatus.RESOLVED, "its copies are down",
                resolved_at=utcnow(), resolved_by="mirror recheck",
            )  # fmt: skip
            resolved.append(_put(store, incident_id, done, who))
    return resolved


def _file_blanks(store: Store, incident_id: str, notice: Notice) -> list[str]:
    """Blanks still in the drafted file: a person may have filled them in by hand."""
    path = store.incident_dir(incident_id) / notice.file
    if not notice.file or not path.is_file():
        return list(notice.missing)
    return blanks(path.read_text(encoding="utf-8"))


def _mark_mirrors(store: Store, incident_id: str, notice: Notice, who: str) -> None:
    status = MIRROR_STATUS.get(notice.status)
    if status is None:
        return
    for url in notice.mirrors:
        record = store.record(incident_id, "mirror", url)
        if record is None:
            continue
        mirror = Mirror.from_record(record)
        if mirror.status is not status and can_move(mirror, status):
            moved = transition(mirror, status, f"notice {notice.id} {notice.status}")
            store.put_record(incident_id, "mirror", url, moved.to_record(), actor=who)
