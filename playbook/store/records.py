"""Records tracked with an incident (mirrors, notices, purges), as the typed objects they are.

The store keeps each record as a JSON row (kind, key, data); `Records` is the one place a row
becomes a typed record and back, through the record type's own parser (`from_record`). Steps,
commands and documents ask for `Records.get(Mirror, url)` and get a `Mirror`, never the row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, Self, TypeVar

from playbook.codec import from_json, to_json

# The store's row boundary: a record's JSON data, and a change from the row now to the new one.
Row = dict[str, Any]
RowChange = Callable[[Row | None], Mapping[str, Any] | None]


class Record(Protocol):
    """A record type: its kind, its key, and its one JSON form both ways."""

    record_kind: ClassVar[str]

    @property
    def record_key(self) -> str: ...

    def to_record(self) -> dict[str, Any]: ...

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Self: ...


R = TypeVar("R", bound=Record)


class JsonRecord:
    """A frozen-dataclass record whose row is its whole codec JSON form, both ways: subclasses
    give `record_kind` and `record_key` only (and override `to_record` for another row shape)."""

    def to_record(self) -> dict[str, Any]:
        return to_json(self)  # type: ignore[no-any-return]

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Self:
        """The one parser of a stored row (unknown keys ignored, bad values refused)."""
        return from_json(cls, data)


class RecordRows(Protocol):
    """Where rows live: the Store (`put_record`/`update_record`/`record`/`records`) has this."""

    def update_record(
        self, incident_id: str, kind: str, key: str, change: RowChange, *, actor: str = ...
    ) -> bool: ...

    def record(self, incident_id: str, kind: str, key: str) -> Row | None: ...

    def records(self, incident_id: str, kind: str) -> list[Row]: ...


class Records:
    """One incident's records, typed: the step contract's `ctx.records`, and the commands'."""

    def __init__(self, rows: RecordRows, incident_id: str, *, actor: str = "respond") -> None:
        self.rows = rows
        self.incident_id = incident_id
        self.actor = actor  # who the store's events name as making the change

    def get(self, kind: type[R], key: str) -> R | None:
        row = self.rows.record(self.incident_id, kind.record_kind, key)
        return None if row is None else kind.from_record(row)

    def all(self, kind: type[R]) -> list[R]:
        """Every record of `kind`, in key order."""
        return [kind.from_record(r) for r in self.rows.records(self.incident_id, kind.record_kind)]

    def put(self, record: Record) -> bool:
        """Insert or replace `record`; True only when its data changed."""
        data = record.to_record()
        return self.rows.update_record(
            self.incident_id,
            record.record_kind,
            record.record_key,
            lambda _row: data,
            actor=self.actor,
        )

    def update(self, kind: type[R], key: str, change: Callable[[R | None], R | None]) -> bool:
        """Read, change and write one record atomically (see Store.update_record): for any
        write whose new value depends on the old one, so a concurrent command is never undone.
        `change` gets the record now (None: there is none) and returns the new one, or None to
        leave it."""

        def on_row(row: Row | None) -> Mapping[str, Any] | None:
            new = change(None if row is None else kind.from_record(row))
            return None if new is None else new.to_record()

        return self.rows.update_record(
            self.incident_id, kind.record_kind, key, on_row, actor=self.actor
        )


class MemoryRows:
    """Rows kept in memory as JSON text, the store's round trip: for unit tests of a step."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str, str], str] = {}

    def update_record(
        self, incident_id: str, kind: str, key: str, change: RowChange, *, actor: str = "respond"
    ) -> bool:
        data = change(self.record(incident_id, kind, key))
        if data is None:
            return False
        text = json.dumps(data, sort_keys=True)
        if self.data.get((incident_id, kind, key)) == text:
            return False
        self.data[(incident_id, kind, key)] = text
        return True

    def record(self, incident_id: str, kind: str, key: str) -> Row | None:
        text = self.data.get((incident_id, kind, key))
        return None if text is None else dict(json.loads(text))

    def records(self, incident_id: str, kind: str) -> list[Row]:
        return [
            dict(json.loads(v))
            for (i, k, _), v in sorted(self.data.items())
            if (i, k) == (incident_id, kind)
        ]


class MemoryRecords(Records):
    """Records kept in memory: for unit tests of a single step."""

    def __init__(self, incident_id: str = "") -> None:
        super().__init__(MemoryRows(), incident_id)
