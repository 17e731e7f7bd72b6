"""Benchmark `respond scan` against a floor from the same run: many-file packages, a 60 MB map,
a hostile tarball of 200,000 entries.

Usage: .venv/bin/python bench/bench_scan.py [--runs 5] [--root TREE] [--detect-secrets]

Floor (issue 14): a fresh interpreter that opens the `.tgz` with `tarfile` in stream mode
(`r|gz`) and reads every member, timed from outside as a whole process. The scan is timed the
same way: a fresh interpreter that imports `playbook.scan`, runs `scan_path` and writes
findings.json and manifest.json, as the incident's npm.scan does (peak RSS is the child's VmHWM;
the map's helper process reports its own). The guard is timed the same way: what `respond scan`
does, the scan without the hunt's fingerprints (`GUARD_LIMITS`), judged, its findings as JSON.
`respond scan --no-baseline` (the CLI, which also imports the command line and the engine) is
timed beside them, for information. Children run with RESPOND_LOOPBACK_ONLY=1 and npm's
registry set to a dead loopback port: no registry is asked for anything. `--root` points at
another checkout (e.g. `git archive main`) to measure it on the same cases in the same run.

Cases:
- lodash as `make setup` installs it (a real package, 1,051 files), when present;
- synthetic packages of 3,000 and 9,000 files shaped like a library build (scripts, typings, and
  maps, a third of which carry their sources, as rxjs's do);
- the 2.1.88-shaped case (a 60 MB map with 4,700 sources in a 24 MB tarball);
- 200,000 tiny entries (must end within 10 s with a partial result that says so).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playbook.rehearsal.synth import NPM_MTIME, make_real_case  # noqa: E402
from playbook.rehearsal.synth import _tar as npm_tar  # noqa: E402
from playbook.scan.detect import checksummed_token  # noqa: E402

# Planted, must be found once: npm's token format, checksum included; not a real token.
OFFLINE = {"RESPOND_LOOPBACK_ONLY": "1", "NPM_CONFIG_REGISTRY": "http://127.0.0.1:9/"}
CANARY = checksummed_token("npm_", "Bench0Canary1Token2Not3Real4Va")

FLOOR = """
import sys, tarfile
with tarfile.open(sys.argv[1], mode="r|gz") as tar:
    for member in tar:
        if member.isreg():
            tar.extractfile(member).read()
"""

SCAN = """
import json, re, sys, tempfile
from pathlib import Path
from playbook.scan import scan_path, write_outputs
out = Path(tempfile.mkdtemp())
def write(name, data):
    path = out / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
result = scan_path(Path(sys.argv[1]))
write_outputs(result, write)
hwm = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
print(json.dumps({"rss_kib": hwm, "helper_kib": result.helper_peak_rss_kib,
                  "files": result.files, "partial": result.partial, "notes": list(result.notes),
                  "secrets": len(result.secrets), "manifest": len(result.manifest)}))
"""

# The guard (`respond scan`): the scan without the hunt's fingerprints, judged, findings as JSON.
GUARD = """
import json, sys
from pathlib import Path
from playbook.scan import findings_doc, scan_path
from playbook.scan.model import GUARD_LIMITS
from playbook.scan.verdict import judge
result = scan_path(Path(sys.argv[1]), limits=GUARD_LIMITS)
doc = {**findings_doc(result), "verdict": judge(result, None).as_json()}
json.dumps(doc)
print(json.dumps({"secrets": len(result.secrets)}))
"""


@dataclass(frozen=True)
class Case:
    name: str
    tarball: Path
    files: int


def _tgz(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    path.write_bytes(npm_tar(entries, compresslevel=6))  # the synth packages' npm-shaped tarball
    return path


_WORDS = [
    "value",
    "options",
    "state",
    "result",
    "handler",
    "index",
    "source",
    "target",
    "module",
    "config",
]


def _code(rng: random.Random, size: int) -> str:
    lines, total = [], 0
    while total < size:
        a, b, c = rng.choices(_WORDS, k=3)
        line = f"  const {a}{rng.randrange(999)} = {b}.{c}({rng.randrange(1 << 20)});"
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines) + "\n"


def library(path: Path, n: int, seed: int = 0) -> Case:
    """A library build of `n` files: 45% scripts, 35% typings, 20% maps (a third with sources)."""
    rng = random.Random(seed)
    manifest = {"name": f"lib{n}", "version": "1.0.0", "license": "MIT", "main": "dist/index.js"}
    entries = [("package.json", json.dumps(manifest).encode())]
    for i in range(n - 1):
        folder = f"dist/m{i % 40}"
        kind = i % 20
        if kind < 9:
            size = min(int(rng.lognormvariate(8.0, 1.0)), 200_000)
            entries.append((f"{folder}/f{i}.js", _code(rng, size).encode()))
        elif kind < 16:
            entries.append((f"{folder}/f{i}.d.ts", _code(rng, 600).encode()))
        else:
            body = _code(rng, min(int(rng.lognormvariate(8.0, 1.0)), 100_000))
            doc: dict[str, object] = {"version": 3, "sources": [f"../../src/f{i}.ts"]}
            doc["mappings"] = "AAAA,SAAS;" * (len(body) // 40)
            if kind == 16:
                doc["sourcesContent"] = [body]
            entries.append((f"{folder}/f{i}.js.map", json.dumps(doc).encode()))
    return Case(f"synthetic library, {n:,} files", _tgz(path, entries), n)


def installed_lodash(path: Path) -> Case | None:
    """lodash as `make setup` installed it (a real package's files), packed as npm would."""
    src = ROOT / "registry" / "node_modules" / "lodash"
    if not src.is_dir():
        return None
    names = sorted(p for p in src.rglob("*") if p.is_file() and not p.is_symlink())
    entries = [(str(p.relative_to(src)), p.read_bytes()) for p in names]
    return Case(
        f"lodash as installed (real), {len(entries):,} files", _tgz(path, entries), len(entries)
    )


def many_entries(path: Path, n: int) -> Case:
    """`n` one-byte files in a tarball of a few hundred KB (each header + block is 1 KiB)."""
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)
    with path.open("wb") as out:
        for start in range(0, n, 10_000):
            blocks = []
            for i in range(start, min(n, start + 10_000)):
                info = tarfile.TarInfo(f"package/d{i // 1000}/f{i}.js")
                info.size, info.mtime = 1, NPM_MTIME
                blocks.append(info.tobuf(tarfile.USTAR_FORMAT) + b"1" + bytes(511))
            out.write(gz.compress(b"".join(blocks)))
        out.write(gz.compress(bytes(1024)) + gz.flush())
    return Case(f"hostile: {n:,} tiny entries", path, n)


def _timed(argv: list[str], root: Path) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process and the children it waited for, stdout)."""
    # No registry is ever asked: loopback only, npm's registry a dead loopback port.
    env = {**os.environ, "PYTHONPATH": str(root), **OFFLINE}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        # cwd=root: `python -c` puts the working directory first on sys.path.
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=root)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, problem = out.read().decode(), err.read().decode()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv[:3]} failed ({proc.returncode}): {problem[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, text


def measure(case: Case, runs: int, root: Path, cli: Path | None) -> dict[str, object]:
    """Best (and median ratio) of `runs`; the hostile case has no floor (its target is 10 s)."""
    floors, scans, docs, clis, guards = [], [], [], [], []
    guard_secrets: list[int] = []
    floor_cpu, scan_cpu = [], []
    has_guard = "GUARD_LIMITS" in (root / "playbook/scan/model.py").read_text()
    hostile = case.name.startswith("hostile")
    for _ in range(runs):  # interleaved, so load changes hit both sides alike
        if not hostile:
            wall, cpu, _ = _timed([sys.executable, "-c", FLOOR, str(case.tarball)], root)
            floors.append(wall)
            floor_cpu.append(cpu)
        wall, cpu, out = _timed([sys.executable, "-c", SCAN, str(case.tarball)], root)
        scans.append(wall)
        scan_cpu.append(cpu)
        docs.append(json.loads(out))
        if has_guard:
            wall, _, out = _timed([sys.executable, "-c", GUARD, str(case.tarball)], root)
            guards.append(wall)
            guard_secrets.append(json.loads(out)["secrets"])
        if cli is not None:
            argv = [str(cli), "scan", str(case.tarball), "--no-baseline"]
            clis.append(_timed(argv, root)[0])
    if case.name.startswith("2.1.88"):
        found = [d["secrets"] for d in docs] + guard_secrets
        assert set(found) == {1}, "the planted canary was not found once"
    floor, scan = (min(floors) if floors else 0.0), min(scans)
    return {
        "case": case.name,
        "floor": floor,
        "scan": scan,
        "ratio": scan / floor if floor else 0.0,
        "median_ratio": sorted(s / f for s, f in zip(scans, floors, strict=True))[runs // 2]
        if floors
        else 0.0,
        "cli": min(clis) if clis else None,
        "guard": min(guards) if guards else None,
        "guard_ratio": min(guards) / floor if guards and floor else 0.0,
        "guard_median_ratio": sorted(g / f for g, f in zip(guards, floors, strict=True))[runs // 2]
        if guards and floors
        else 0.0,
        "floor_cpu": min(floor_cpu) if floor_cpu else 0.0,
        "scan_cpu": min(scan_cpu),
        "rss_mb": max(int(d["rss_kib"]) for d in docs) / 1024,
        "helper_mb": max(int(d["helper_kib"]) for d in docs) / 1024,
        "partial": docs[0]["partial"],
        "notes": docs[0]["notes"],
        "files": docs[0]["files"],
        "secrets": docs[0]["secrets"],
    }


def detect_secrets(tarball: Path, work: Path, timeout: float) -> str:
    exe = Path(sys.executable).with_name("detect-secrets")
    if not exe.exists():
        return "not installed"
    target = work / "extracted"
    target.mkdir()
    with tarfile.open(tarball) as tar:
        tar.extractall(target, filter="data")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(exe), "scan", "--all-files", str(target)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=target, start_new_session=True,
    )  # fmt: skip
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return f"> {timeout:.0f} s (stopped)"
    return f"{time.perf_counter() - t0:.2f} s"


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def wait_quiet(limit: float, patience: float) -> float:
    """The machine may be shared: wait (up to `patience` s) for the 1-minute load to drop."""
    deadline = time.monotonic() + patience
    while load() > limit and time.monotonic() < deadline:
        time.sleep(5)
    return load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument("--detect-secrets", action="store_true", help="also time detect-secrets")
    parser.add_argument("--only", default="", help="run the cases whose name holds this")
    parser.add_argument("--quiet-load", type=float, default=0.5, help="wait for this 1-min load")
    parser.add_argument("--quiet-wait", type=float, default=60.0, help="seconds to wait at most")
    args = parser.parse_args()
    cli = Path(sys.executable).with_name("respond") if args.root == ROOT else None
    with tempfile.TemporaryDirectory(prefix="respond-bench-") as tmp:
        work = Path(tmp)
        real = make_real_case(work, secret=CANARY)
        cases = [
            installed_lodash(work / "lodash.tgz"),
            library(work / "lib3000.tgz", 3000),
            library(work / "lib9000.tgz", 9000),
            Case("2.1.88-shaped: 60 MB map, 4,700 sources", real.tarball, 4),
            many_entries(work / "many.tgz", 200_000),
        ]
        # Byte-compiled first, as an installed wheel is: this environment may set
        # PYTHONDONTWRITEBYTECODE, and each fresh interpreter would compile every module again.
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(args.root / "playbook")],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        load_before = wait_quiet(args.quiet_load, args.quiet_wait)
        rows = [
            measure(c, args.runs if "hostile" not in c.name else 1, args.root, cli)
            for c in cases
            if c is not None and args.only in c.name
        ]
        load_after = load()
        ds = detect_secrets(real.tarball, work, 300) if args.detect_secrets else "not run"
    print(f"Command: `.venv/bin/python bench/bench_scan.py --runs {args.runs}`")
    print(
        f"({os.cpu_count()} cores; 1-minute load {load_before:.2f} before, {load_after:.2f} after)"
    )
    print()
    print(
        "| case | floor (s) | scan (s) | scan / floor (best; median) | CPU s floor, scan (ratio) "
        "| guard (s) | guard / floor (best; median) "
        "| `respond scan` (s) | peak RSS scan + helper (MB) | result |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        result = f"{r['files']:,} files read" + (
            ", PARTIAL: " + "; ".join(r["notes"]) if r["partial"] else ""
        )  # type: ignore[arg-type]
        cli_s = f"{r['cli']:.2f}" if r["cli"] is not None else "-"
        floor_s = f"{r['floor']:.2f}" if r["floor"] else "-"
        ratio_s = f"{r['ratio']:.2f}x; {r['median_ratio']:.2f}x" if r["floor"] else "-"
        fc, sc = r["floor_cpu"], r["scan_cpu"]
        cpu_s = f"{fc:.2f}, {sc:.2f} ({sc / fc:.2f}x)" if fc else f"-, {sc:.2f}"  # type: ignore[operator]
        guard_s = f"{r['guard']:.2f}" if r["guard"] is not None else "-"
        gratio_s = (
            f"{r['guard_ratio']:.2f}x; {r['guard_median_ratio']:.2f}x" if r["guard_ratio"] else "-"
        )
        print(
            f"| {r['case']} | {floor_s} | {r['scan']:.2f} | {ratio_s} | {cpu_s} | {guard_s} | "
            f"{gratio_s} | {cli_s} | "
            f"{r['rss_mb']:.0f} + {r['helper_mb']:.0f} | {result} |"
        )
    if args.detect_secrets:
        print(f"\ndetect-secrets on the 2.1.88-shaped case's extracted files: {ds}")


if __name__ == "__main__":
    main()
