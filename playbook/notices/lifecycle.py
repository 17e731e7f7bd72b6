"""A notice after drafting: listed, marked sent by a person, resolved once its copies are down."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from playbook.clock import utcnow
from playbook.errors import UsageError
from playbook.mirrors.model import Mirror, MirrorStatus, Verdict, can_move, transition
from playbook.notices.model import Notice, NoticeStatus
from playbook.notices.model import transition as move_notice
from playbook.notices.render import blanks
from playbook.store.records import Records

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
    return Records(store, incident_id).all(Notice)


def _get(store: Store, incident_id: str, notice_id: str) -> Notice:
    store.get_incident(incident_id)
    records = Records(store, incident_id)
    notice = records.get(Notice, notice_id)
    if notice is None:
        known = ", ".join(n.id for n in records.all(Notice)) or "none"
        raise UsageError(
            f"Incident {incident_id} has no notice {notice_id!r} (notices: {known}).",
            f"List them with `respond notices {incident_id}`.",
        )
    return notice


def _move(
    store: Store,
    incident_id: str,
    notice_id: str,
    who: str,
    move: Callable[[Notice], Notice | None],
) -> Notice:
    """Move a notice from its status as it is now, in one store transaction (a live run may be
    re-drafting it, another command marking it): `move` returns the moved notice, or None."""

    def change(current: Notice | None) -> Notice | None:
        if current is None:
            raise UsageError(f"Incident {incident_id} has no notice {notice_id!r}.")
        return move(current)

    records = Records(store, incident_id, actor=who)
    records.update(Notice, notice_id, change)
    notice = records.get(Notice, notice_id)
    if notice is None:  # update_record refused a missing one above; a store never drops one
        raise UsageError(f"Incident {incident_id} has no notice {notice_id!r}.")
    _mark_mirrors(store, incident_id, notice, who)
    return notice


def mark_sent(store: Store, incident_id: str, notice_id: str, ref: str | None, who: str) -> Notice:
    """Record that a person filed the notice (with the host's ticket or reference, if any)."""
    notice = _get(store, incident_id, notice_id)
    gaps = _file_blanks(store, incident_id, notice)
    if gaps:
        raise UsageError(
            f"Notice {notice_id} of incident {incident_id} still has blanks: {', '.join(gaps)}.",
            f"Fill them in {notice.file} (or in respond.toml and draft again) before sending.",
        )

    def sent(now: Notice) -> Notice:
        if now.status is NoticeStatus.RESOLVED:
            raise UsageError(f"Notice {notice_id} of incident {incident_id} is already resolved.")
        return move_notice(
            now, NoticeStatus.SENT, f"sent by {who}", ref=ref or now.ref, sent_at=utcnow(),
            missing=(),
        )  # fmt: skip

    return _move(store, incident_id, notice_id, who, sent)


def mark_resolved(store: Store, incident_id: str, notice_id: str, who: str) -> Notice:
    """Record that the notice achieved its end (the copies are down, or the request was granted)."""
    _get(store, incident_id, notice_id)
    return _move(store, incident_id, notice_id, who, _resolving(f"resolved by {who}"))


def auto_resolve(store: Store, incident_id: str, who: str = "respond") -> list[Notice]:
    """Resolve every open notice whose copies the latest mirror recheck found disabled or gone."""
    mirrors = {m.url: m for m in Records(store, incident_id).all(Mirror)}
    resolved = []
    for notice in list_notices(store, incident_id):
        if notice.status is NoticeStatus.RESOLVED or not notice.mirrors:
            continue
        if all(u in mirrors and mirrors[u].verdict in DOWN_VERDICTS for u in notice.mirrors):
            down = _resolving("its copies are down", resolved_by="mirror recheck")
            resolved.append(_move(store, incident_id, notice.id, who, down))
    return resolved


def _resolving(why: str, **changes: Any) -> Callable[[Notice], Notice | None]:
    """The change that resolves a notice (inside the store's transaction), or None when it is
    resolved already."""

    def move(now: Notice) -> Notice | None:
        if now.status is NoticeStatus.RESOLVED:
            return None
        return move_notice(now, NoticeStatus.RESOLVED, why, resolved_at=utcnow(), **changes)

    return move


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
    why = f"notice {notice.id} {notice.status}"

    def change(mirror: Mirror | None) -> Mirror | None:
        if mirror is None or mirror.status is status or not can_move(mirror, status):
            return None
        return transition(mirror, status, why)

    records = Records(store, incident_id, actor=who)
    for url in notice.mirrors:
        records.update(Mirror, url, change)
