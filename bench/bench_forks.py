"""Bench: the whole hunt on the seeded world with an 8,000-fork network under one copy.

The real incident's network held about 8,100 forks. The world (`World.seeded` plus
`plant_network`: 98% unmodified forks, 1% cleaned of the leak, 1% with the leak plus changes,
about 10% forks of forks) runs on a fake clock shared with the governor, and enforces GitHub's
published limits (REST 5,000 an hour, GraphQL 5,000 points an hour, code search 10 a minute,
search 30 a minute): every wait the limits impose advances that clock at once, so "time at
GitHub's limits" is the simulated waiting plus the wall time the run itself took (this machine
and the local server standing in for GitHub's latency).

Targets (issue 13): every fork judged, each the verdict planted (cleaned forks never copies), at
most 0.05 GitHub requests per fork, at most 10 minutes at GitHub's limits. `--write` puts the
numbers into the "## fork networks" section of BENCHMARKS.md.

    .venv/bin/python bench/bench_forks.py [--forks 8000] [--budget N] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playbook.clock import Clock
from playbook.mirrors.collect import collect
from playbook.mirrors.fingerprints import manifest_dict, manifest_from_json
from playbook.mirrors.model import Verdict
from playbook.mirrors.official import read_official
from playbook.mirrors.verify import Verifier
from playbook.net.governor import GovernorConfig
from playbook.net.http import ClientOptions, RetryPolicy
from playbook.rehearsal.world import (
    FakeClock,
    FakeWorld,
    World,
    sample_files,
    sample_identifiers,
    world_settings,
)
from playbook.rehearsal.world.forknet import Network, plant_network
from playbook.services.github import github_api
from playbook.services.hub import MemoryCache, Services

PKG, VER = "@acme/widget-cli", "2.1.88"
ROOT = Path(__file__).resolve().parent.parent
NETWORK_ROOT = "leaker0/widget-cli-source"
TARGET_PER_FORK = 0.05
TARGET_MINUTES = 10.0
LATENCY = 1.0  # seconds allowed per GitHub request for GitHub's own latency (not played here)


def build(forks: int, seed: int = 13) -> tuple[World, Network, dict[str, bytes]]:
    files = sample_files(first_party=120, node_modules=0, seed=seed)
    world = World.seeded(files, PKG, VER, seed=seed)
    pushed = world.repo(NETWORK_ROOT)
    assert pushed is not None
    net = plant_network(world, NETWORK_ROOT, forks, seed=seed, pushed_at=pushed.created_at)
    return world, net, files


async def hunt(
    fake: FakeWorld, home: Path, files: dict[str, bytes], clock: FakeClock, budget: int | None
) -> dict[str, Any]:
    settings = world_settings(fake, home)
    # One try per request in the transport: the governor alone answers GitHub's limits.
    options = ClientOptions(dry_run=False, retry=RetryPolicy(attempts=1))
    services = Services(settings, options, cache=MemoryCache(), clock=Clock(clock, clock.sleep))
    manifest = manifest_from_json(manifest_dict(files, PKG, VER, sample_identifiers(files)))
    official = read_official(settings)
    published = fake.world.published_at
    try:
        gov = github_api(services).governor
        if budget is not None:  # "as far as it gets": no budget, and wait out any reset
            gov.config = GovernorConfig(budget=budget, max_wait=4 * 3600.0)
        start, simulated = time.perf_counter(), clock.now
        found = await collect(manifest, services, official=official, published_at=published)
        listed = gov.requests
        verifier = Verifier(manifest, services, official, published_at=published)
        mirrors = await verifier.run(found.candidates.values())
        wall = time.perf_counter() - start
        waited = clock.now - simulated
    finally:
        await services.aclose()
    return {
        "mirrors": {m.url: m for m in mirrors},
        "requests": gov.requests,
        "hunt_requests": listed,
        "wall": wall,
        "waited": waited,
        "budget_note": verifier.budget_note,
    }


def judge(world: World, net: Network, run: dict[str, Any]) -> dict[str, Any]:
    mirrors = run["mirrors"]
    by_verdict: collections.Counter[str] = collections.Counter()
    wrong: list[str] = []
    for name in net.forks:
        repo = world.repo(name)
        assert repo is not None
        mirror = mirrors.get(repo.url)
        verdict = mirror.verdict.value if mirror else "not found"
        by_verdict[verdict] += 1
        want = "unrelated" if name in net.cleaned else "copy"
        if verdict != want:
            wrong.append(f"{name}: {verdict}, planted {want}")
    copies = {u for u, m in mirrors.items() if m.verdict is Verdict.COPY}
    planted = world.expected_copies
    routes = run["routes"]
    return {
        "forks": len(net.forks),
        "cleaned": len(net.cleaned),
        "changed": len(net.changed),
        "by_verdict": dict(by_verdict),
        "wrong": wrong,
        "judged": len(net.forks) - by_verdict["not found"] - by_verdict["unverified"],
        "precision": len(copies & planted) / max(1, len(copies)),
        "recall": len(copies & planted) / max(1, len(planted)),
        "planted": len(planted),
        "routes": routes,
    }


def run_once(forks: int, budget: int | None) -> dict[str, Any]:
    world, net, files = build(forks)
    clock = FakeClock(start=time.time())
    with tempfile.TemporaryDirectory() as tmp, FakeWorld(world, clock=clock) as fake:
        result = asyncio.run(hunt(fake, Path(tmp), files, clock, budget))
        result["routes"] = dict(fake.stats.requests)
        result["limited"] = fake.stats.limited
    result.update(judge(world, net, result))
    result["per_fork"] = result["requests"] / result["forks"]
    result["minutes"] = (result["waited"] + result["wall"]) / 60
    result["latency_minutes"] = (result["waited"] + result["requests"] * LATENCY) / 60
    return result


def describe(r: dict[str, Any]) -> str:
    github = {k: v for k, v in sorted(r["routes"].items()) if k.startswith("github")}
    verdicts = ", ".join(f"{k} {v:,}" for k, v in r["by_verdict"].items())
    return (
        f"| forks in the network (cleaned / changed) | {r['forks']:,} "
        f"({r['cleaned']} / {r['changed']}) |\n"
        f"| forks judged / judged as planted | {r['judged']:,} / "
        f"{r['forks'] - len(r['wrong']):,} |\n"
        f"| verdicts of the forks | {verdicts} |\n"
        f"| GitHub requests (hunt / whole run) | {r['hunt_requests']:,} / {r['requests']:,} |\n"
        f"| GitHub requests per fork (target <= {TARGET_PER_FORK}) | {r['per_fork']:.3f} |\n"
        f"| requests by route | {', '.join(f'{k} {v:,}' for k, v in github.items())} |\n"
        f"| waits imposed by GitHub's limits (simulated) | {r['waited'] / 60:.1f} min |\n"
        f"| wall time of the run | {r['wall']:.1f} s |\n"
        f"| time at GitHub's limits: waits + wall time (target <= {TARGET_MINUTES:.0f} min) | "
        f"{r['minutes']:.1f} min |\n"
        f"| the same with {LATENCY:.0f} s per GitHub request instead of the wall time | "
        f"{r['latency_minutes']:.1f} min |\n"
        f"| precision / recall, whole seeded world | {r['precision']:.3f} / {r['recall']:.3f} |\n"
        f"| rate-limit answers received | {r['limited']} |\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forks", type=int, default=8000)
    parser.add_argument("--budget", type=int, default=None, help="GitHub request budget")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    result = run_once(args.forks, args.budget)
    text = describe(result)
    print(text)
    if result["wrong"]:
        print("misjudged, first ten:", *result["wrong"][:10], sep="\n  ")
    if result["budget_note"]:
        print("budget:", result["budget_note"])
    if args.write:
        write_section(text)
    ok = (
        not result["wrong"]
        and result["per_fork"] <= TARGET_PER_FORK
        and result["minutes"] <= TARGET_MINUTES
        and result["latency_minutes"] <= TARGET_MINUTES
        and result["precision"] == 1.0
    )
    return 0 if ok else 1


def write_section(rows: str) -> None:
    text = (
        "## fork networks\n\n"
        "`bench/bench_forks.py`: the whole hunt (every source, then verification) on the "
        "standard seeded world plus an 8,000-fork network under one planted copy (98% "
        "unmodified, 1% cleaned of the leak, 1% with the leak plus changes, about 10% forks of "
        "forks); the local GitHub enforces GitHub's published limits on a simulated clock.\n\n"
        "| measure | GraphQL listings, forks proven by tree oid |\n|---|---|\n" + rows
    )
    path = ROOT / "BENCHMARKS.md"
    old = path.read_text()
    start = old.find("## fork networks")
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:  # up to the next heading: the "### Before" subsection written by hand stays
        end = old.find("\n#", start + 1)
        new = old[:start] + text + (old[end:] if end >= 0 else "")
    path.write_text(new)


if __name__ == "__main__":
    sys.exit(main())
