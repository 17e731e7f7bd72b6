"""The durable incident store: SQLite (WAL), one transaction per transition, an append-only log."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from playbook import failpoints
from playbook.clock import utcnow
from playbook.errors import IncidentLocked, StoreTooNew, UnknownIncident, UsageError
from playbook.secret import scrub, scrub_data


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    TIMED_OUT = "timed_out"
    ABANDONED = "abandoned"

    @property
    def finished(self) -> bool:
        """A status a run does not revisit on resume."""
        return self in (StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.PLANNED)


# Version 1 as released: stores on disk were made by it, so it never changes again; a new
# column or table is a new function at the end of MIGRATIONS.
SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
  id TEXT PRIMARY KEY,
  created_at TEXT NOT NULL,
  mode TEXT NOT NULL,
  targets TEXT NOT NULL,
  inputs TEXT NOT NULL,
  runbook_path TEXT NOT NULL,
  runbook_hash TEXT NOT NULL,
  runbook_text TEXT NOT NULL,
  status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS steps (
  incident_id TEXT NOT NULL REFERENCES incidents(id),
  key TEXT NOT NULL,
  target TEXT NOT NULL,
  step_id TEXT NOT NULL,
  uses TEXT NOT NULL,
  status TEXT NOT NULL,
  attempt INTEGER NOT NULL DEFAULT 0,
  changed INTEGER,
  summary TEXT NOT NULL DEFAULT '',
  outputs TEXT NOT NULL DEFAULT '{}',
  error TEXT,
  started_at TEXT,
  ended_at TEXT,
  PRIMARY KEY (incident_id, key)
);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  incident_id TEXT NOT NULL,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  kind TEXT NOT NULL,
  step_key TEXT,
  data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_incident ON events(incident_id, seq);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TABLE IF NOT EXISTS approvals (
  incident_id TEXT NOT NULL,
  step_key TEXT NOT NULL,
  who TEXT NOT NULL,
  at TEXT NOT NULL,
  note TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (incident_id, step_key)
);
CREATE TABLE IF NOT EXISTS records (
  incident_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  data TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (incident_id, kind, key)
);
CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


Migration = Callable[[sqlite3.Connection], None]


def _statements(script: str) -> Iterator[str]:
    """A script's statements one by one (executescript would commit the open transaction)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""


def _v1_schema(db: sqlite3.Connection) -> None:
    """Version 1, the first layout: IF NOT EXISTS, so a store from before versioning keeps its
    tables and rows and only gains the version number."""
    for statement in _statements(SCHEMA):
        db.execute(statement)


# Each function takes the store from version N (its index) to N+1 inside one transaction.
# Append only: never edit a released step, add the next one (ALTER TABLE, a data rewrite).
MIGRATIONS: tuple[Migration, ...] = (_v1_schema,)
SCHEMA_VERSION = len(MIGRATIONS)


def _version(db: sqlite3.Connection) -> int:
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    return version


def _check_not_newer(db: sqlite3.Connection, path: Path, known: int = SCHEMA_VERSION) -> None:
    version = _version(db)
    if version > known:
        raise StoreTooNew(
            f"The incident store {path} has schema version {version}, newer than this respond "
            f"knows ({known}): upgrade respond to open it; nothing was written."
        )


def migrate(
    db: sqlite3.Connection, path: Path, migrations: tuple[Migration, ...] = MIGRATIONS
) -> None:
    """Bring the store to the last version, each step in its own transaction."""
    _check_not_newer(db, path, len(migrations))
    while (version := _version(db)) < len(migrations):
        db.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have migrated meanwhile.
            version = _version(db)
            if version < len(migrations):
                migrations[version](db)
                db.execute(f"PRAGMA user_version={version + 1}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


@dataclass(frozen=True)
class Incident:
    id: str
    created_at: str
    mode: str
    targets: tuple[str, ...]
    inputs: Mapping[str, Any]
    runbook_path: str
    runbook_hash: str
    runbook_text: str
    status: str


@dataclass(frozen=True)
class StepRecord:
    key: str
    target: str
    step_id: str
    uses: str
    status: StepStatus
    attempt: int
    changed: bool | None
    summary: str
    outputs: Mapping[str, Any]
    error: str | None
    started_at: str | None
    ended_at: str | None


@dataclass(frozen=True)
class Event:
    seq: int
    at: str
    actor: str
    kind: str
    step_key: str | None
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Approval:
    step_key: str
    who: str
    at: str
    note: str


class Store:
    """One SQLite file under RESPOND_HOME; incident folders beside it."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(home / "respond.db", timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        try:  # refuse a newer store before writing anything to it, even the journal mode
            _check_not_newer(self.db, home / "respond.db")
        except StoreTooNew:
            self.db.close()
            raise
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        migrate(self.db, home / "respond.db")
        self._locks: dict[str, int] = {}
        self._pending_names: list[str] = []  # the events the open transaction wrote

    def close(self) -> None:
        for fd in self._locks.values():
            os.close(fd)
        self._locks.clear()
        self.db.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed as a whole before the next transition begins."""
        self.db.execute("BEGIN IMMEDIATE")
        self._pending_names = []
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        for _ in self._pending_names:  # every hit before any hold
            failpoints.hit("event")
        for name in self._pending_names:
            failpoints.hold(name)

    def _scrub_text(self, text: str) -> str:
        """Scrub a value that may be JSON without breaking it."""
        try:
            data = json.loads(text)
        except ValueError:
            return scrub(text)
        clean = scrub_data(data)
        return text if clean == data else json.dumps(clean)

    def _json(self, data: Any) -> str:
        text = json.dumps(data, sort_keys=True, default=str)
        return json.dumps(scrub_data(json.loads(text)), sort_keys=True)

    # incidents ---------------------------------------------------------------

    def incident_dir(self, incident_id: str) -> Path:
        return self.home / "incidents" / incident_id

    def new_incident_id(self, base: str) -> str:
        candidate, n = base, 1
        while self.db.execute("SELECT 1 FROM incidents WHERE id=?", (candidate,)).fetchone():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def create_incident(self, incident: Incident, steps: list[tuple[str, str, str, str]]) -> None:
        """Create the incident with its steps (key, target, step_id, uses), all pending."""
        now = incident.created_at
        with self.tx() as db:
            db.execute(
                "INSERT INTO incidents VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    incident.id,
                    now,
                    incident.mode,
                    json.dumps(list(incident.targets)),
                    self._json(incident.inputs),
                    incident.runbook_path,
                    incident.runbook_hash,
                    incident.runbook_text,
                    incident.status,
                ),
            )
            db.executemany(
                "INSERT INTO steps (incident_id, key, target, step_id, uses, status) "
                "VALUES (?,?,?,?,?,?)",
                [(incident.id, *step, StepStatus.PENDING.value) for step in steps],
            )
            self._event(db, incident.id, "incident.created", None, {"mode": incident.mode})
        self.incident_dir(incident.id).mkdir(parents=True, exist_ok=True)

    def ensure_steps(self, incident_id: str, steps: list[tuple[str, str, str, str]]) -> None:
        """Add steps a changed runbook brought (key, target, step_id, uses) as pending."""
        known = {r.key for r in self.steps(incident_id)}
        new = [step for step in steps if step[0] not in known]
        if not new:
            return
        with self.tx() as db:
            db.executemany(
                "INSERT INTO steps (incident_id, key, target, step_id, uses, status) "
                "VALUES (?,?,?,?,?,?)",
                [(incident_id, *step, StepStatus.PENDING.value) for step in new],
            )
            self._event(db, incident_id, "steps.added", None, {"keys": [s[0] for s in new]})

    def get_incident(self, incident_id: str) -> Incident:
        row = self.db.execute("SELECT * FROM incidents WHERE id=?", (incident_id,)).fetchone()
        if row is None:
            raise UnknownIncident(
                f"No incident {incident_id!r} in {self.home}.",
                "List the incidents with `respond list` (RESPOND_HOME selects the store).",
            )
        return Incident(
            id=row["id"],
            created_at=row["created_at"],
            mode=row["mode"],
            targets=tuple(json.loads(row["targets"])),
            inputs=json.loads(row["inputs"]),
            runbook_path=row["runbook_path"],
            runbook_hash=row["runbook_hash"],
            runbook_text=row["runbook_text"],
            status=row["status"],
        )

    def list_incidents(self) -> list[Incident]:
        ids = [r[0] for r in self.db.execute("SELECT id FROM incidents ORDER BY created_at, id")]
        return [self.get_incident(i) for i in ids]

    def set_incident_status(self, incident_id: str, status: str) -> None:
        with self.tx() as db:
            db.execute("UPDATE incidents SET status=? WHERE id=?", (status, incident_id))
            self._event(db, incident_id, "incident.status", None, {"status": status})

    def replace_runbook(self, incident_id: str, path: str, digest: str, text: str) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE incidents SET runbook_path=?, runbook_hash=?, runbook_text=? WHERE id=?",
                (path, digest, text, incident_id),
            )
            self._event(db, incident_id, "runbook.replaced", None, {"hash": digest})

    # the driver lock -----------------------------------------------------------

    def lock(self, incident_id: str) -> None:
        """Become the one driver of this incident, or fail naming the process that is.

        An flock on a file in the incident folder: the kernel drops it when the holder dies,
        even by SIGKILL, so a crashed run never leaves a stale lock behind.
        """
        path = self.incident_dir(incident_id) / "driver.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise IncidentLocked(
                f"Incident {incident_id} is being driven by another process (PID {holder}).",
                "Wait for it to finish, or stop that process; then `respond resume` it.",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._locks[incident_id] = fd

    @contextlib.contextmanager
    def driving(self, incident_id: str) -> Iterator[None]:
        """Hold the incident's driver lock (`lock`) for the block."""
        self.lock(incident_id)
        try:
            yield
        finally:
            self.unlock(incident_id)

    def unlock(self, incident_id: str) -> None:
        fd = self._locks.pop(incident_id, None)
        if fd is not None:
            os.close(fd)

    # steps -----------------------------------------------------------------------

    def steps(self, incident_id: str) -> list[StepRecord]:
        rows = self.db.execute(
            "SELECT * FROM steps WHERE incident_id=? ORDER BY rowid", (incident_id,)
        ).fetchall()
        return [_step(r) for r in rows]

    def step(self, incident_id: str, key: str) -> StepRecord:
        row = self.db.execute(
            "SELECT * FROM steps WHERE incident_id=? AND key=?", (incident_id, key)
        ).fetchone()
        if row is None:
            raise UsageError(f"Incident {incident_id} has no step {key!r}.")
        return _step(row)

    def transition(
        self,
        incident_id: str,
        key: str,
        status: StepStatus,
        *,
        actor: str = "respond",
        outputs: Mapping[str, Any] | None = None,
        summary: str | None = None,
        changed: bool | None = None,
        error: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Move a step to `status` and log it, in one transaction."""
        now = utcnow()
        sets = ["status=?"]
        args: list[Any] = [status.value]
        if status is StepStatus.RUNNING:
            sets += ["attempt=attempt+1", "started_at=?", "error=NULL"]
            args.append(now)
        elif status is not StepStatus.ABANDONED:
            sets.append("ended_at=?")
            args.append(now)
        if outputs is not None:
            sets.append("outputs=?")
            args.append(self._json(outputs))
        if summary is not None:
            sets.append("summary=?")
            args.append(scrub(summary))
        if changed is not None:
            sets.append("changed=?")
            args.append(int(changed))
        if error is not None:
            sets.append("error=?")
            args.append(scrub(error))
        event = {"status": status.value, **(data or {})}
        if summary:
            event["summary"] = summary
        if error:
            event["error"] = error
        if changed is not None:
            event["changed"] = changed
        with self.tx() as db:
            db.execute(
                f"UPDATE steps SET {', '.join(sets)} WHERE incident_id=? AND key=?",
                [*args, incident_id, key],
            )
            self._event(db, incident_id, f"step.{status.value}", key, event, actor=actor, at=now)

    # events ------------------------------------------------------------------------

    def _event(
        self,
        db: sqlite3.Connection,
        incident_id: str,
        kind: str,
        step_key: str | None,
        data: Mapping[str, Any],
        *,
        actor: str = "respond",
        at: str | None = None,
    ) -> None:
        self._pending_names.append(f"{kind}/{step_key or ''}")
        db.execute(
            "INSERT INTO events (incident_id, at, actor, kind, step_key, data) "
            "VALUES (?,?,?,?,?,?)",
            (incident_id, at or utcnow(), actor, kind, step_key, self._json(data)),
        )

    def log(
        self,
        incident_id: str,
        kind: str,
        data: Mapping[str, Any] | None = None,
        *,
        step_key: str | None = None,
        actor: str = "respond",
    ) -> None:
        with self.tx() as db:
            self._event(db, incident_id, kind, step_key, data or {}, actor=actor)

    def events(self, incident_id: str) -> list[Event]:
        rows = self.db.execute(
            "SELECT * FROM events WHERE incident_id=? ORDER BY seq", (incident_id,)
        ).fetchall()
        return [
            Event(r["seq"], r["at"], r["actor"], r["kind"], r["step_key"], json.loads(r["data"]))
            for r in rows
        ]

    # approvals -----------------------------------------------------------------------

    def approve(self, incident_id: str, step_key: str, who: str, note: str = "") -> Approval:
        approval = Approval(step_key, who, utcnow(), scrub(note))
        with self.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO approvals VALUES (?,?,?,?,?)",
                (incident_id, step_key, who, approval.at, approval.note),
            )
            self._event(
                db,
                incident_id,
                "approval.granted",
                step_key,
                {"note": approval.note},
                actor=who,
                at=approval.at,
            )
        return approval

    def approval(self, incident_id: str, step_key: str) -> Approval | None:
        row = self.db.execute(
            "SELECT * FROM approvals WHERE incident_id=? AND step_key=?", (incident_id, step_key)
        ).fetchone()
        return (
            None if row is None else Approval(row["step_key"], row["who"], row["at"], row["note"])
        )

    def approvals(self, incident_id: str) -> list[Approval]:
        rows = self.db.execute(
            "SELECT * FROM approvals WHERE incident_id=? ORDER BY at", (incident_id,)
        ).fetchall()
        return [Approval(r["step_key"], r["who"], r["at"], r["note"]) for r in rows]

    # records: mirrors, notices and the like, tracked with the incident --------------------

    def put_record(
        self,
        incident_id: str,
        kind: str,
        key: str,
        data: Mapping[str, Any],
        *,
        actor: str = "respond",
    ) -> bool:
        """Insert or update a record; logs and returns True only when its data changed."""
        return self.update_record(incident_id, kind, key, lambda _current: data, actor=actor)

    def update_record(
        self,
        incident_id: str,
        kind: str,
        key: str,
        change: Callable[[dict[str, Any] | None], Mapping[str, Any] | None],
        *,
        actor: str = "respond",
    ) -> bool:
        """Read, change and write one record in one transaction (BEGIN IMMEDIATE).

        `change` gets the record as it is now (None: there is none) and returns the new data, or
        None to leave it. Another process writing the same record waits for the commit, so a
        change made meanwhile (a recheck, a notice marked sent) is never overwritten with a stale
        copy. An exception from `change` rolls back and propagates.
        """
        with self.tx() as db:
            row = db.execute(
                "SELECT data FROM records WHERE incident_id=? AND kind=? AND key=?",
                (incident_id, kind, key),
            ).fetchone()
            current = None if row is None else dict(json.loads(row["data"]))
            data = change(current)
            if data is None:
                return False
            text = self._json(data)
            if row is not None and row["data"] == text:
                return False
            db.execute(
                "INSERT OR REPLACE INTO records VALUES (?,?,?,?,?)",
                (incident_id, kind, key, text, utcnow()),
            )
            self._event(
                db,
                incident_id,
                f"{kind}.{'updated' if row else 'added'}",
                None,
                {"key": key, **json.loads(text)},
                actor=actor,
            )
        return True

    def records(self, incident_id: str, kind: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT data FROM records WHERE incident_id=? AND kind=? ORDER BY key",
            (incident_id, kind),
        ).fetchall()
        return [json.loads(r["data"]) for r in rows]

    def record(self, incident_id: str, kind: str, key: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT data FROM records WHERE incident_id=? AND kind=? AND key=?",
            (incident_id, kind, key),
        ).fetchone()
        return None if row is None else dict(json.loads(row["data"]))

    # the cache (ETags) ------------------------------------------------------------------

    def cache_get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM cache WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def cache_put(self, key: str, value: str) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO cache VALUES (?,?)", (key, self._scrub_text(value)))


class StoreCache:
    """The store's cache table behind the services' Cache protocol."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, key: str) -> str | None:
        return self.store.cache_get(key)

    def put(self, key: str, value: str) -> None:
        self.store.cache_put(key, value)


def _step(row: sqlite3.Row) -> StepRecord:
    changed = row["changed"]
    return StepRecord(
        key=row["key"],
        target=row["target"],
        step_id=row["step_id"],
        uses=row["uses"],
        status=StepStatus(row["status"]),
        attempt=row["attempt"],
        changed=None if changed is None else bool(changed),
        summary=row["summary"],
        outputs=json.loads(row["outputs"]),
        error=row["error"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
    )
