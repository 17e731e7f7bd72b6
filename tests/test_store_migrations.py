"""Store schema versions: an unversioned store opens and migrates, a newer one is refused unwritten.

The previous layout is rebuilt below from the DDL and the row shapes written by commit 40e2fa6
(`git show 40e2fa6:playbook/state.py`), the last layout before `PRAGMA user_version`; the rows
are cut down from a rehearsal that commit ran. Keep this copy as it is when the schema moves on:
it is the old store a user still has on disk.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from playbook.errors import ExitCode, StoreTooNew
from playbook.store.sqlite import MIGRATIONS, SCHEMA_VERSION, Store, migrate
from tests.support.cli import cli_env, respond

PREVIOUS_SCHEMA = """
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

ID = "20261201-rehearsal-cli-2.1.88"
INCIDENT = (
    ID, "2026-12-01T11:06:13.284Z", "rehearsal", '["@rehearsal/cli@2.1.88"]', "{}",
    "/tmp/old/runbooks/npm-leak.yaml", "f793b72e2ff4faa79be39b668cbd7d89f4016e410b24078eccc091e2c8d6e736",
    "name: npm-leak\n", "done",
)  # fmt: skip
STEPS = [
    (ID, "retag", "@rehearsal/cli@2.1.88", "retag", "npm.retag", "succeeded", 1, 1, "moved latest to 2.1.87",
     '{"left": [], "moved": {"latest": {"from": "2.1.88", "to": "2.1.87"}}, "reason": "2.1.87 is the newest earlier version, not deprecated, scanned clean", "safe_version": "2.1.87"}',
     None, "2026-12-01T11:06:13.438Z", "2026-12-01T11:06:14.021Z"),
    (ID, "deprecate", "@rehearsal/cli@2.1.88", "deprecate", "npm.deprecate", "succeeded", 1, 1,
     "deprecated @rehearsal/cli@2.1.88",
     '{"deprecated": true, "gone": false, "message": "@rehearsal/cli@2.1.88 shipped files that should not have been published; use 2.1.87 instead."}',
     None, "2026-12-01T11:06:14.021Z", "2026-12-01T11:06:14.159Z"),
]  # fmt: skip
EVENTS = [
    (1, ID, "2026-12-01T11:06:13.284Z", "respond", "incident.created", None, '{"mode": "rehearsal"}'),
    (6, ID, "2026-12-01T11:06:13.438Z", "root", "step.running", "retag", '{"attempt": 1, "status": "running"}'),
]  # fmt: skip
MIRROR = '{"api_id": null, "checked_at": "2026-12-01T11:06:14.162Z", "default_branch": "main", "description": "source leak", "error": null, "evidence": "118 of 118 first-party files match (118 by git blob SHA-1; 100.0%) in a tree of 120 files; 2 tiny or officially published files not counted", "forks_count": 1, "forks_listed": true, "found_by": ["code-search", "repo-search"], "host": "github.com", "kind": "repo", "manifest_file": "scan/manifest.json", "matched": 118, "matched_by_blob": 118, "matched_by_content": 0, "name": "leaker1/cli-leak", "network_has_non_copies": true, "network_root": "https://github.com/leaker1/cli-leak", "parent": null, "pushed_at": "2026-12-01T19:06:12Z", "sample_paths": ["src/commands/DialogPanel15/DialogPanel15.ts"], "status": "notice_drafted", "target": "@rehearsal/cli@2.1.88", "total": 118, "tree_files": 120, "url": "https://github.com/leaker1/cli-leak", "verdict": "copy"}'
NOTICE = '{"drafted_at": "2026-12-01T11:06:14.543Z", "file": "notices/dmca-github-leaker1-cli-leak.md", "id": "dmca-github-leaker1-cli-leak", "kind": "dmca-github", "mirrors": ["https://github.com/leaker1/cli-leak"], "missing": [], "network_statement": {"included": false, "reason": "not requested; it is never made by default", "requested": false}, "ref": null, "rehearsal": true, "resolved_at": null, "sent_at": null, "status": "drafted", "target": null, "title": "GitHub DMCA takedown notice: leaker1/cli-leak fork network"}'
RECORDS = [
    (ID, "mirror", "https://github.com/leaker1/cli-leak", MIRROR, "2026-12-01T11:06:14.677Z"),
    (ID, "notice", "dmca-github-leaker1-cli-leak", NOTICE, "2026-12-01T11:06:14.663Z"),
]


def previous_store(home: Path) -> Path:
    """respond.db as 40e2fa6 left it: WAL, today's tables, no user_version."""
    home.mkdir(parents=True)
    path = home / "respond.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(PREVIOUS_SCHEMA)
    db.execute("INSERT INTO incidents VALUES (?,?,?,?,?,?,?,?,?)", INCIDENT)
    db.executemany("INSERT INTO steps VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", STEPS)
    db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?)", EVENTS)
    db.execute(
        "INSERT INTO approvals VALUES (?,?,?,?,?)",
        (ID, "unpublish", "rehearsal", "2026-12-01T11:06:14.217Z", "granted automatically"),
    )
    db.executemany("INSERT INTO records VALUES (?,?,?,?,?)", RECORDS)
    db.close()
    return path


def user_version(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        version: int = db.execute("PRAGMA user_version").fetchone()[0]
    return version


def test_a_store_from_before_versioning_is_read_by_the_cli_and_migrated(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = previous_store(home)
    assert user_version(path) == 0
    env = cli_env(tmp_path, home)

    status = json.loads(respond(env, "status", ID, "--json", check=0).stdout)
    assert status["status"] == "done"
    steps = {step["id"]: step for step in status["steps"]}
    assert steps["retag"]["summary"] == "moved latest to 2.1.87"
    assert steps["deprecate"]["status"] == "succeeded"
    assert user_version(path) == SCHEMA_VERSION == 1

    mirrors = respond(env, "mirrors", ID, check=0).stdout
    assert "copy" in mirrors and "https://github.com/leaker1/cli-leak" in mirrors
    notices = respond(env, "notices", ID, check=0).stdout
    assert "dmca-github-leaker1-cli-leak" in notices and "drafted" in notices

    with contextlib.closing(
        sqlite3.connect(path)
    ) as db:  # the rows are kept, and the log is still append-only
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == len(EVENTS)
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM events")


def test_a_store_newer_than_the_code_is_refused_in_one_line_and_left_unwritten(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    path = previous_store(home)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    before = {p.name: p.read_bytes() for p in home.iterdir()}

    proc = respond(cli_env(tmp_path, home), "status", ID)
    assert proc.returncode == ExitCode.STORE_TOO_NEW
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert f"schema version {SCHEMA_VERSION + 1}" in proc.stderr and str(path) in proc.stderr
    assert {p.name: p.read_bytes() for p in home.iterdir()} == before


def test_each_migration_commits_alone_and_a_failing_one_leaves_its_version(tmp_path: Path) -> None:
    path = tmp_path / "respond.db"
    db = sqlite3.connect(path, isolation_level=None)

    def add_column(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE incidents ADD COLUMN severity TEXT")

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("migration 3 failed")

    with pytest.raises(RuntimeError, match="migration 3"):
        migrate(db, path, (*MIGRATIONS, add_column, broken))
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    columns = [row[1] for row in db.execute("PRAGMA table_info(incidents)")]
    assert columns[-1] == "severity"
    assert db.execute("SELECT name FROM sqlite_master WHERE name='half_done'").fetchone() is None
    db.close()
    with pytest.raises(StoreTooNew, match="schema version 2, newer than this respond knows"):
        Store(tmp_path)


def test_a_new_store_starts_at_the_latest_version(tmp_path: Path) -> None:
    Store(tmp_path).close()
    assert user_version(tmp_path / "respond.db") == SCHEMA_VERSION
