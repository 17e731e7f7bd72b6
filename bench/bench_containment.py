"""Time to containment on a release shaped like the real leak (a 60 MB map in a 24 MB tarball).

Containment (latest moved, deprecated) must not wait on the scan of the leaked tarball, so its
time should not depend on the tarball's size: this runs the full rehearsal playbook twice, on
the default small release and on a real-sized one, and compares the milestones.

Then the npm CLI itself (oracle/npm) and respond's registry client do the same three writes
(dist-tag add, deprecate, unpublish of one version) against the same local Verdaccio, each on a
fresh package; respond must not be slower than the CLI it mirrors (the floor, in the same run).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import statistics
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

from playbook.config.settings import Settings
from playbook.net.http import ClientOptions
from playbook.rehearsal.run import SCENARIOS, Scenario, Scorecard, rehearse
from playbook.rehearsal.sandbox import LocalRegistry
from playbook.services.hub import Services
from playbook.services.npm import HttpNpmRegistry, registry_for

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.npm_oracle import NPM_CLI, npm_home, run_npm  # noqa: E402

ROUNDS = 5


def tiny_tarball(name: str, version: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        raw = json.dumps({"name": name, "version": version}).encode()
        info = tarfile.TarInfo("package/package.json")
        info.size = len(raw)
        archive.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


TARGET_SECONDS = 1.0


def run(label: str, scenario: Scenario) -> Scorecard:
    with tempfile.TemporaryDirectory() as home:
        card = rehearse(Path(home), scenario)
    moved, deprecated = card.milestones["latest moved"], card.milestones["deprecated"]
    print(
        f"{label:<10} latest moved {moved}s, deprecated {deprecated}s, "
        f"unpublished {card.milestones['unpublished']}s, verified {card.milestones['verified']}s, "
        f"whole run {card.seconds}s"
    )
    return card


def main() -> int:
    small = SCENARIOS["sourcemap-leak"]
    real = replace(
        small,
        name="real-size",
        sources=4700,
        first_party=1900,
        source_bytes=12_600,
        bundle_bytes=13_000_000,
    )
    cards = [run("small", small), run("real-size", real)]
    worst = max(
        max(c.milestones["latest moved"] or 99, c.milestones["deprecated"] or 99) for c in cards
    )
    print(f"worst time to 'latest moved and deprecated': {worst:.3f}s (target < {TARGET_SECONDS}s)")
    ok = worst < TARGET_SECONDS
    if NPM_CLI.is_file():
        ok = npm_cli_versus_respond() and ok
    else:
        print("npm CLI comparison skipped: oracle/npm is not installed (make oracle)")
    return 0 if ok else 1


Op = Callable[[HttpNpmRegistry, str], Coroutine[Any, Any, Any]]
OPS: list[tuple[str, list[str], Op]] = [
    ("dist-tag add", ["dist-tag", "add", "{name}@1.0.0", "safe"],
     lambda r, n: r.set_dist_tag(n, "safe", "1.0.0")),
    ("deprecate", ["deprecate", "{name}@1.0.1", "leaked"],
     lambda r, n: r.deprecate(n, "1.0.1", "leaked")),
    ("unpublish", ["unpublish", "{name}@1.0.1"], lambda r, n: r.unpublish_version(n, "1.0.1")),
]  # fmt: skip


def npm_cli_versus_respond() -> bool:
    """Median seconds per write: the npm CLI (a process per command, as a person runs it) and
    respond's client (one process, connections reused, as a run does)."""
    os.environ["RESPOND_LOOPBACK_ONLY"] = "1"
    with LocalRegistry() as registry, tempfile.TemporaryDirectory() as tmp:
        token = registry.add_user(f"bench-{uuid.uuid4().hex[:8]}", "bench-horse-battery")
        home = Path(tmp) / "home"
        env = npm_home(home, registry.url, token)

        def fresh() -> str:
            name = f"bench-{uuid.uuid4().hex[:10]}"
            registry.publish(tiny_tarball(name, "1.0.0"), name, "1.0.0", token=token)
            registry.publish(tiny_tarball(name, "1.0.1"), name, "1.0.1", token=token, tag="next")
            return name

        cli: dict[str, list[float]] = {label: [] for label, _, _ in OPS}
        ours: dict[str, list[float]] = {label: [] for label, _, _ in OPS}
        for _ in range(ROUNDS):
            for label, args, _op in OPS:
                name = fresh()
                start = time.perf_counter()
                done = run_npm([a.format(name=name) for a in args], registry=registry.url,
                               env=env, cwd=Path(tmp) / "work")  # fmt: skip
                cli[label].append(time.perf_counter() - start)
                if done.returncode != 0:
                    print(f"npm {label} failed: {done.stderr[-300:]}")
                    return False
        settings = Settings(home=Path(tmp) / "respond", npm_env=env, cwd=Path(tmp) / "work")
        names = {(i, label): fresh() for i in range(ROUNDS) for label, _, _ in OPS}

        async def respond_writes() -> None:
            services = Services(settings, ClientOptions(dry_run=False))
            try:
                for i in range(ROUNDS):
                    for label, _args, op in OPS:
                        name = names[(i, label)]
                        reg = registry_for(services, name)
                        start = time.perf_counter()
                        await op(reg, name)
                        ours[label].append(time.perf_counter() - start)
            finally:
                await services.aclose()

        asyncio.run(respond_writes())
    ok = True
    for label, _, _ in OPS:
        theirs, mine = statistics.median(cli[label]), statistics.median(ours[label])
        print(f"{label:<13} npm CLI {theirs:.3f}s  respond {mine:.3f}s  ratio {mine / theirs:.3f}")
        ok = ok and mine <= theirs
    print(f"respond's writes {'are not' if ok else 'ARE'} slower than the npm CLI's (target)")
    return ok


if __name__ == "__main__":
    sys.exit(main())
