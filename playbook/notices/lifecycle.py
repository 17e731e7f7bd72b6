"""A notice after drafting: listed, marked sent by a person, resolved once its copies are down."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from playbook.clock import utcnow
from playbook.errors import UsageError
from playbook.notices.render import blanks
from playbook.notices.view import NoticeView, notice_view

if TYPE_CHECKING:
    from playbook.store.sqlite import Store

# Mirror verdicts that mean the copy is no longer served. "unreachable" is left out on purpose:
# a timeout must not close a takedown.
DOWN_VERDICTS = frozenset({"disabled", "gone"})
MIRROR_STATUS = {"sent": "notice_sent", "resolved": "resolved"}


def list_notices(store: Store, incident_id: str) -> list[NoticeView]:
    store.get_incident(incident_id)
    return [notice_view(r) for r in store.records(incident_id, "notice")]


def _get(store: Store, incident_id: str, notice_id: str) -> dict[str, Any]:
    store.get_incident(incident_id)
    record = store.record(incident_id, "notice", notice_id)
    if record is None:
        known = ", ".join(r["id"] for r in store.records(incident_id, "notice")) or "none"
        raise UsageError(
            f"Incident {incident_id} has no notice {notice_id!r} (notices: {known}).",
            f"List them with `respond notices {incident_id}`.",
        )
    return record


def mark_sent(
    store: Store, incident_id: str, notice_id: str, ref: str | None, who: str
) -> NoticeView:
    """Record that a person filed the notice (with the host's ticket or reference, if any)."""
    record = _get(store, incident_id, notice_id)
    if record["status"] == "resolved":
        raise UsageError(f"Notice {notice_id} of incident {incident_id} is already resolved.")
    gaps = _file_blanks(store, incident_id, record)
    if gaps:
        raise UsageError(
            f"Notice {notice_id} of incident {incident_id} still has blanks: {', '.join(gaps)}.",
            f"Fill them in {record['file']} (or in respond.toml and draft again) before sending.",
        )
    record.update(status="sent", ref=ref or record.get("ref"), sent_at=utcnow(), missing=[])
    store.put_record(incident_id, "notice", notice_id, record, actor=who)
    _mark_mirrors(store, incident_id, record, who)
    return notice_view(record)


def mark_resolved(store: Store, incident_id: str, notice_id: str, who: str) -> NoticeView:
    """Record that the notice achieved its end (the copies are down, or the request was granted)."""
    record = _get(store, incident_id, notice_id)
    if record["status"] == "resolved":
        return notice_view(record)
    record.update(status="resolved", resolved_at=utcnow())
    store.put_record(incident_id, "notice", notice_id, record, actor=who)
    _mark_mirrors(store, incident_id, record, who)
    return notice_view(record)


def auto_resolve(store: Store, incident_id: str, who: str = "respond") -> list[NoticeView]:
    """Resolve every open notice whose copies the latest mirror recheck found disabled or gone."""
    mirrors = {m["url"]: m for m in store.records(incident_id, "mirror") if "url" in m}
    resolved = []
    for record in store.records(incident_id, "notice"):
        urls = record.get("mirrors") or []
        if record.get("status") == "resolved" or not urls:
            continue
        if all(mirrors.get(u, {}).get("verdict") in DOWN_VERDICTS for u in urls):
            record.update(status="resolved", resolved_at=utcnow(), resolved_by="mirror recheck")
            store.put_record(incident_id, "notice", record["id"], record, actor=who)
            _mark_mirrors(store, incident_id, record, who)
            resolved.append(notice_view(record))
    return resolved


def _file_blanks(store: Store, incident_id: str, record: dict[str, Any]) -> list[str]:
    """Blanks still in the drafted file: a person may have filled them in by hand."""
    path = store.incident_dir(incident_id) / str(record.get("file", ""))
    if not path.is_file():
        return list(record.get("missing") or [])
    return blanks(path.read_text(encoding="utf-8"))


def _mark_mirrors(store: Store, incident_id: str, record: dict[str, Any], who: str) -> None:
    status = MIRROR_STATUS.get(str(record["status"]))
    if status is None:
        return
    for url in record.get("mirrors") or []:
        mirror = store.record(incident_id, "mirror", url)
        if mirror is not None and mirror.get("status") != status:
            store.put_record(incident_id, "mirror", url, {**mirror, "status": status}, actor=who)
