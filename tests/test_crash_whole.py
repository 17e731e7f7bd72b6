"""Crash anywhere in the whole default runbook: containment, scan, CDN check, purge, hunt, proof,
notices and report. SIGKILL right after a committed event or a registry write's answer, resume,
and compare with a clean run of the same runbook:

- the incident folder holds the same files, byte for byte once timestamps, the incident id, the
  world's port and the package name are normalised (each point needs its own package, so the
  content hashes that derive from its name are normalised too);
- no registry write is repeated beyond the clean run's, no write the clean run did not make;
- the same notices, each once.

Every point is run when RESPOND_CRASH_ALL=1 (the count is printed); by default an even sample
of the event points plus every registry write point, to stay near a minute of test time.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from playbook.rehearsal.proxy import RegistryProxy
from playbook.rehearsal.run import ORG_DETAILS
from playbook.rehearsal.sandbox import LocalRegistry, write_npmrc
from playbook.rehearsal.synth import make_package, reconstructed_files
from playbook.rehearsal.world import FakeWorld, World
from tests.support.cli import cli_env, respond

pytestmark = [pytest.mark.registry, pytest.mark.slow]
SHAPE = {"sources": 16, "first_party": 10, "seed": 6}
SAMPLE = 12  # event points in the default sample (17 points with the 4 writes, ~90 s loaded)
TIMESTAMP = re.compile(
    rb"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"
    rb"|\b\d{1,2} [A-Z][a-z]+ \d{4}\b|\b[A-Z][a-z]+ \d{1,2}, \d{4}\b"
)

# Content hashes: each point needs its own package, whose files name it, so their SHAs differ.
HASH = re.compile(rb"\b[0-9a-f]{40}\b|\b[0-9a-f]{64}\b|sha512-[A-Za-z0-9+/=]+|\b[0-9a-f]{12}\b")


class Case:
    def __init__(self, root: Path, label: str, registry: LocalRegistry, token: str, n: int):
        # One length for every case's name: sizes in the scan's findings stay comparable.
        self.name = f"@crash/whole-{os.getpid() % 100000:05d}-{n:04d}"
        clean = make_package(self.name, "1.0.0", sources=0, first_party=0, with_map=False)
        registry.publish(clean, self.name, "1.0.0", token=token)
        leaky = make_package(self.name, "1.0.1", with_map=True, **SHAPE)
        registry.publish(leaky, self.name, "1.0.1", token=token)
        files = reconstructed_files(self.name, "1.0.1", **SHAPE)
        self.world = World.seeded(files, self.name, "1.0.1", official_forks=2)
        self.cwd = root / label.replace(":", "-")
        self.cwd.mkdir()
        self.home = self.cwd / "home"
        self.world_url = ""
        (self.cwd / "respond.toml").write_text(ORG_DETAILS + self.world.respond_toml)

    def run(
        self, fake: FakeWorld, token: str, *args: str, failpoint: str = ""
    ) -> subprocess.CompletedProcess[str]:
        self.world_url = fake.base_url
        env = cli_env(self.cwd, self.home, T=token, GITHUB_TOKEN="fake-token") | fake.env()
        if failpoint:
            env["RESPOND_FAILPOINT"] = failpoint
        return respond(env, *args, "--json", cwd=self.cwd)

    def leak(
        self, fake: FakeWorld, token: str, failpoint: str = ""
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            fake, token, "leak", f"{self.name}@1.0.1", "--yes", "--non-interactive",
            failpoint=failpoint,
        )  # fmt: skip

    def folder_files(self, incident: str) -> dict[str, bytes]:
        folder = self.home / "incidents" / incident
        bare = self.name.split("/")[-1].encode()
        out = {}
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.name == "driver.lock" or ".tmp" in path.name:
                continue
            data = path.read_bytes()
            for old, new in (
                (self.world_url.encode(), b"WORLD"),
                (str(self.cwd).encode(), b"CWD"),
                (incident.encode(), b"INCIDENT"),
                (self.name.encode(), b"PKG"),
                (self.name.replace("/", "%2f").encode(), b"PKG"),
                (self.name.replace("@", "").replace("/", "-").encode(), b"PKG"),
                (bare, b"BARE"),
                (bare.replace(b"-", b" "), b"WORDS"),  # the hunt's search words
            ):
                data = data.replace(old, new)
            rel = str(path.relative_to(folder))
            rel = rel.replace(incident, "INCIDENT").replace(bare.decode(), "BARE")
            data = HASH.sub(b"<HASH>", TIMESTAMP.sub(b"<TIME>", data))
            # History a resume rightly adds to what it says (the interrupted unpublish it ended).
            data = data.replace(b" (finished an interrupted unpublish)", b"")
            data = CONFIRMED.sub(b"", data)  # a write sent before the crash, owned after it
            # The registry's revs; a write-ahead intent names the one a PUT returns "<new rev>".
            data = re.sub(rb"/-rev/([0-9]+-[0-9a-f]+|<new rev>)", b"/-rev/REV", data)
            if rel.startswith("report/"):
                data = _history_removed(rel, data)
            out[rel] = data
        return out

    def notices(self) -> list[str]:
        with sqlite3.connect(self.home / "respond.db") as db:
            rows = db.execute("SELECT key FROM records WHERE kind='notice'").fetchall()
        db.close()
        return sorted(str(r[0]) for r in rows)


def shape(method: str, path: str, name: str) -> str:
    path = path.replace(name.replace("/", "%2f"), "PKG").replace(name.split("/")[-1], "PKG")
    return f"{method} {re.sub(r'/-rev/[^/?]+', '/-rev/REV', path.split('?')[0])}"


@pytest.fixture
def setting(
    tmp_path: Path, local_registry: LocalRegistry, registry_token: str
) -> Iterator[tuple[Path, LocalRegistry, str, RegistryProxy]]:
    with RegistryProxy(local_registry.url) as proxy:
        yield tmp_path, local_registry, registry_token, proxy


@pytest.mark.timeout(1800)  # RESPOND_CRASH_ALL=1 runs 129 points (about 7 minutes)
def test_crash_anywhere_in_the_default_runbook_then_resume_matches_a_clean_run(
    setting: tuple[Path, LocalRegistry, str, RegistryProxy],
) -> None:
    root, registry, token, proxy = setting
    counter = iter(range(10_000))

    def case(label: str) -> Case:
        made = Case(root, label, registry, token, next(counter))
        write_npmrc(made.cwd, proxy.url, "T")
        return made

    clean = case("clean")
    with FakeWorld(clean.world) as fake:
        proxy.clear()
        done = clean.leak(fake, token)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "done"
    incident = result["incident"]
    expected = clean.folder_files(incident)
    clean_writes = collections.Counter(shape(r.method, r.path, clean.name) for r in proxy.writes)
    with sqlite3.connect(clean.home / "respond.db") as db:
        events = int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    db.close()
    slug = clean.name.replace("@", "").replace("/", "-")
    notices = [n.replace(slug, "PKG") for n in clean.notices()]
    kinds = {p.split("/")[0] for p in expected}
    assert {"notices", "report"} <= kinds, f"the clean run wrote no notices or report: {kinds}"
    writes = sum(clean_writes.values())
    every = [f"event:{n}" for n in range(1, events)] + [f"write:{n}" for n in range(1, writes + 1)]
    if os.environ.get("RESPOND_CRASH_POINTS"):  # to re-run chosen points: event:15,write:2
        points = os.environ["RESPOND_CRASH_POINTS"].split(",")
    elif os.environ.get("RESPOND_CRASH_ALL") == "1":
        points = every
    else:
        stride = max(1, events // SAMPLE)
        points = [f"event:{n}" for n in range(1, events, stride)]
        points += [f"write:{n}" for n in range(1, writes + 1)]
    print(f"{len(every)} crash points in all ({events - 1} events, {writes} registry writes); "
          f"running {len(points)}")  # fmt: skip
    for point in points:
        crash_then_resume(case(point), token, point, expected, clean_writes, notices, proxy)
    print(f"{len(points)} points passed; {len(CONFIRMED_POINTS)} resumed a write sent before "
          f"the crash, confirmed by its intent: {CONFIRMED_POINTS}; writes the registry refused: "
          f"{REFUSED_WRITES}")  # fmt: skip


def crash_then_resume(
    c: Case,
    token: str,
    point: str,
    expected: dict[str, bytes],
    clean_writes: collections.Counter[str],
    clean_notices: list[str],
    proxy: RegistryProxy,
) -> None:
    with FakeWorld(c.world) as fake:
        proxy.clear()
        crashed = c.leak(fake, token, failpoint=point)
        assert crashed.returncode == -signal.SIGKILL, f"{point}: did not crash: {crashed.stderr}"
        listing = c.run(fake, token, "list")
        assert listing.returncode == 0, f"{point}: list failed: {listing.stderr}"
        listed = json.loads(listing.stdout or "[]")
        if listed:
            resumed = c.run(fake, token, "resume", listed[0]["id"], "--yes", "--non-interactive")
        else:  # killed before the incident was recorded: the person runs it again
            resumed = c.leak(fake, token)
    assert resumed.returncode == 0, f"{point}: {resumed.stderr}"
    result = json.loads(resumed.stdout)
    assert result["status"] == "done", f"{point}: {result['status']}"
    got = c.folder_files(result["incident"])
    assert sorted(got) == sorted(expected), f"{point}: files differ: {set(got) ^ set(expected)}"
    differ = [name for name in expected if got[name] != expected[name]]
    assert not differ, f"{point}: not byte-identical after normalising: {differ}\n" + "\n".join(
        _diff(expected[d], got[d]) for d in differ
    )
    if CONFIRMED.search(resumed.stdout.encode()):
        CONFIRMED_POINTS.append(point)
    # Writes the registry accepted: one it refused (a 4xx, seen once as a 422 on the deprecation
    # PUT when a crash fell mid-containment) changed nothing, and its step sends it again.
    writes = collections.Counter(
        shape(r.method, r.path, c.name) for r in proxy.writes if 200 <= r.status < 300
    )
    refused = [r for r in proxy.writes if r.status >= 400]
    if refused:
        REFUSED_WRITES.append(f"{point}: {[(r.method, r.status) for r in refused]}")
    repeated = {w: n for w, n in writes.items() if n > clean_writes.get(w, 0)}
    log = [f"{r.method} {shape(r.method, r.path, c.name)} {r.status}" for r in proxy.requests]
    assert not repeated, f"{point}: registry writes repeated across the crash: {repeated}: {log}"
    slug = c.name.replace("@", "").replace("/", "-")
    notices = [n.replace(slug, "PKG") for n in c.notices()]
    assert notices == clean_notices, f"{point}: notices differ (duplicated?): {notices}"
    doc = httpx.get(f"{proxy.url}{c.name.replace('/', '%2f')}").json()
    assert doc["dist-tags"] == {"latest": "1.0.0"} and "1.0.1" not in doc["versions"], point


# Killed after the registry accepted a retag, a deprecation or an unpublish but before the step
# recorded it, the resumed step finds the registry already in the target state. Its write-ahead
# intent (playbook/steps/npm.py) tells it the write was this incident's: the advisory and the
# report must then tell the clean run's story ("moved latest", "deprecated"), not "already ...";
# the step's summary says "confirmed after a restart", which is all that may differ.
CONFIRMED = re.compile(rb" \((?:[\w, -]+ )?confirmed after a restart\)")
CONFIRMED_POINTS: list[str] = []
REFUSED_WRITES: list[str] = []


def _history_removed(rel: str, data: bytes) -> bytes:
    """The report tells the run's history (its event log, timeline, attempts): a crash and a
    resume rightly show there, and concurrent steps log in any order. The rest must match."""
    if rel.endswith(".md"):
        keep = [
            line
            for line in data.splitlines()
            if b"<TIME>" not in line and b"events in the append-only" not in line
        ]
        return b"\n".join(keep)
    if rel.endswith(".json"):
        doc = json.loads(data)
        for key in ("events", "steps", "generated_at"):
            doc.pop(key, None)
        for target in doc.get("targets", []):
            target.pop("steps", None)
        return json.dumps(doc, sort_keys=True, indent=1).encode()
    return b"(the HTML report renders the same view as report.md and report.json)"


def _diff(a: bytes, b: bytes) -> str:
    import difflib

    lines = difflib.unified_diff(
        a.decode(errors="replace").splitlines(), b.decode(errors="replace").splitlines(), n=0
    )
    return "\n".join(list(lines)[:30])
