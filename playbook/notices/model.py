"""The notice record: one type for drafting, tracking and the documents, and its status owner."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, ClassVar

from playbook.store.records import JsonRecord


class NoticeStatus(StrEnum):
    """Where a notice stands. Only `transition` moves it."""

    DRAFTED = "drafted"
    NEEDS_DETAILS = "needs_details"  # blanks from respond.toml remain in the draft
    SENT = "sent"  # a person filed it (respond never sends)
    RESOLVED = "resolved"

    @property
    def final(self) -> bool:
        """Past drafting: a new draft must not overwrite it."""
        return self in (NoticeStatus.SENT, NoticeStatus.RESOLVED)


_DRAFTS = frozenset({NoticeStatus.DRAFTED, NoticeStatus.NEEDS_DETAILS})
# The moves a notice may make; staying put is always allowed.
MOVES: dict[NoticeStatus, frozenset[NoticeStatus]] = {
    NoticeStatus.DRAFTED: _DRAFTS | {NoticeStatus.SENT, NoticeStatus.RESOLVED},
    NoticeStatus.NEEDS_DETAILS: _DRAFTS | {NoticeStatus.SENT, NoticeStatus.RESOLVED},
    NoticeStatus.SENT: frozenset({NoticeStatus.RESOLVED}),
    NoticeStatus.RESOLVED: frozenset(),
}


class IllegalNoticeMove(ValueError):
    """A notice status move its owner does not allow."""


@dataclass(frozen=True)
class StatementRecord:
    """Whether the DMCA network-wide statement was asked for, put in, and why."""

    requested: bool = False
    included: bool = False
    reason: str = ""
    network: str = ""  # the fork network it was decided for (owner/repo of its root)


@dataclass(frozen=True)
class Notice(JsonRecord):
    """One notice (record kind "notice", keyed by id)."""

    record_kind: ClassVar[str] = "notice"

    id: str
    kind: str
    title: str = ""
    status: NoticeStatus = NoticeStatus.DRAFTED
    file: str = ""
    mirrors: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    ref: str | None = None
    sent_at: str | None = None
    resolved_at: str | None = None
    resolved_by: str | None = None
    rehearsal: bool = False
    target: str | None = None
    drafted_at: str | None = None
    network_statement: StatementRecord | None = None  # records from one notice per network
    network_statements: tuple[StatementRecord, ...] = ()  # one per fork network the notice covers

    @property
    def record_key(self) -> str:
        return self.id


def transition(notice: Notice, status: NoticeStatus, why: str, **changes: Any) -> Notice:
    """The notice moved to `status` (with `changes`, e.g. sent_at); raises on a move not allowed."""
    if status is not notice.status and status not in MOVES[notice.status]:
        raise IllegalNoticeMove(
            f"Notice {notice.id} cannot go from {notice.status} to {status} ({why})."
        )
    return replace(notice, status=status, **changes)
