"""The guard on real packages: false alarms and time per package, beside secretlint, detect-secrets.

Usage: .venv/bin/python bench/bench_guard.py [--old-root DIR] [--only N] [--peer-timeout 120]

1. Reads bench/guard/packages.txt (name@version, the version before it, `proprietary` or not) and
   downloads what is missing into bench/cache/guard/ (git-ignored) with `npm pack SPEC
   --pack-destination ... --ignore-scripts`: read-only, through npm's configured registry.
2. Per package, each in a fresh process, timed from outside (interpreter start included, as a CI
   job pays it): `respond scan TGZ --baseline BASE.tgz --json` (the verdict against the version
   before), `respond scan TGZ --no-baseline --json` (the absolute view), and with `--old-root`
   the guard of an older checkout (its `leaky`: the verdict before this change).
3. The same files, extracted to a temporary folder: secretlint (bench/tools/secretlint, pinned
   with its lockfile; its recommended preset) and detect-secrets (the `bench` extra), each under
   `--peer-timeout` seconds.
A fail on an open-source package is a false alarm: these are popular releases that leak nothing.
A proprietary package fails only if it ships its original source (the rule, not an alarm).
Prints a Markdown section for BENCHMARKS.md; raw rows go to bench/out/guard.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIST = ROOT / "bench" / "guard" / "packages.txt"
CACHE = ROOT / "bench" / "cache" / "guard"
OUT = ROOT / "bench" / "out"
SECRETLINT = ROOT / "bench" / "tools" / "secretlint"

OLD_GUARD = """
import json, sys
from pathlib import Path
from playbook.scan import scan_tarball
r = scan_tarball(Path(sys.argv[1]))
print(json.dumps({"leaky": r.leaky, "reasons": r.reasons}))
"""


@dataclass(frozen=True)
class Package:
    spec: str
    baseline: str | None
    proprietary: bool

    @property
    def name(self) -> str:
        return self.spec.rsplit("@", 1)[0]

    def tarball(self, version: str | None = None) -> Path:
        version = version or self.spec.rsplit("@", 1)[1]
        return CACHE / f"{self.name.lstrip('@').replace('/', '-')}-{version}.tgz"


@dataclass
class Row:
    spec: str
    proprietary: bool
    files: int = 0
    megabytes: float = 0.0
    old_fail: bool | None = None
    old_why: str = ""
    new_fail: bool = False
    new_why: str = ""
    new_s: float = 0.0
    absolute_fail: bool = False
    absolute_why: str = ""
    absolute_s: float = 0.0
    secretlint: int | None = None
    secretlint_s: float | None = None
    detect_secrets: int | None = None
    detect_secrets_s: float | None = None
    notes: list[str] = field(default_factory=list)


def packages() -> list[Package]:
    out = []
    for line in LIST.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        base = parts[1] if len(parts) > 1 and parts[1] != "-" else None
        out.append(Package(parts[0], base, "proprietary" in parts[2:]))
    return out


def fetch(pkgs: list[Package]) -> None:
    """`npm pack` whatever is not cached yet (npm's configured registry; scripts never run)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    specs = [p.spec for p in pkgs if not p.tarball().exists()]
    specs += [
        f"{p.name}@{p.baseline}" for p in pkgs if p.baseline and not p.tarball(p.baseline).exists()
    ]
    if specs:
        print(f"downloading {len(specs)} tarballs with npm pack", file=sys.stderr)
        subprocess.run(
            ["npm", "pack", *specs, "--pack-destination", str(CACHE), "--ignore-scripts", "--json"],
            check=True,
            stdout=subprocess.DEVNULL,
        )


Ran = tuple[subprocess.CompletedProcess[str] | None, float]


def timed(
    cmd: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> Ran:  # fmt: skip
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - t0
    return proc, time.perf_counter() - t0


def respond_scan(tgz: Path, *extra: str) -> tuple[bool, str, float, dict[str, object]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RESPOND_HOME": tempfile.mkdtemp()}
    proc, secs = timed(
        [sys.executable, "-m", "playbook.cli", "scan", str(tgz), *extra, "--json"], env=env
    )
    assert proc is not None
    if proc.returncode not in (0, 1):
        raise RuntimeError(
            f"respond scan {tgz.name} exited {proc.returncode}: {proc.stderr[-500:]}"
        )
    doc = json.loads(proc.stdout)
    return proc.returncode == 1, doc["verdict"]["headline"], secs, doc


def extract(tgz: Path, into: Path) -> None:
    with tarfile.open(tgz) as tar:
        tar.extractall(into, filter="data")


def secretlint(folder: Path, timeout: float) -> tuple[int | None, float]:
    binary = SECRETLINT / "node_modules" / ".bin" / "secretlint"
    if not binary.exists():
        return None, 0.0
    cmd = [str(binary), "**/*", "--format", "json", "--no-color",
           "--secretlintrc", str(SECRETLINT / ".secretlintrc.json")]  # fmt: skip
    proc, secs = timed(cmd, cwd=folder, timeout=timeout)
    if proc is None:
        return None, secs
    try:
        results = json.loads(proc.stdout or "[]")
    except ValueError:
        return None, secs
    return sum(len(r.get("messages", [])) for r in results), secs


def detect_secrets(folder: Path, timeout: float) -> tuple[int | None, float]:
    binary = Path(sys.executable).parent / "detect-secrets"
    if not binary.exists():
        return None, 0.0
    proc, secs = timed([str(binary), "scan", "--all-files", "."], cwd=folder, timeout=timeout)
    if proc is None or proc.returncode != 0:
        return None, secs
    results = json.loads(proc.stdout).get("results", {})
    return sum(len(v) for v in results.values()), secs


def measure(pkg: Package, old_root: Path | None, peer_timeout: float) -> Row:
    tgz = pkg.tarball()
    row = Row(pkg.spec, pkg.proprietary)
    extra = ["--baseline", str(pkg.tarball(pkg.baseline))] if pkg.baseline else ["--no-baseline"]
    row.new_fail, row.new_why, row.new_s, doc = respond_scan(tgz, *extra)
    summary = doc["summary"]
    row.files, row.megabytes = int(summary["files"]), round(int(summary["bytes"]) / 1e6, 1)  # type: ignore[call-overload]
    row.absolute_fail, row.absolute_why, row.absolute_s, _ = respond_scan(tgz, "--no-baseline")
    if old_root is not None:
        env = {**os.environ, "PYTHONPATH": str(old_root)}
        proc, _secs = timed([sys.executable, "-c", OLD_GUARD, str(tgz)], env=env)
        assert proc is not None and proc.returncode == 0, proc and proc.stderr[-500:]
        old = json.loads(proc.stdout)
        row.old_fail, row.old_why = bool(old["leaky"]), "; ".join(old["reasons"])
    if peer_timeout < 0:
        return row
    with tempfile.TemporaryDirectory(prefix="guard-bench-") as tmp:
        extract(tgz, Path(tmp))
        folder = Path(tmp) / "package"
        if not folder.is_dir():
            folder = Path(tmp)
        row.secretlint, row.secretlint_s = secretlint(folder, peer_timeout)
        row.detect_secrets, row.detect_secrets_s = detect_secrets(folder, peer_timeout)
    return row


def _count(rows: list[Row], attr: str) -> int:
    return sum(1 for r in rows if getattr(r, attr))


def _timeouts(rows: list[Row], tool: str) -> int:
    return sum(1 for r in rows if getattr(r, tool) is None and getattr(r, tool + "_s"))


def report(rows: list[Row], peer_timeout: float, reused: bool = False) -> str:
    oss = [r for r in rows if not r.proprietary]
    prop = [r for r in rows if r.proprietary]

    def peer(r: Row, n: str, s: str) -> str:
        v, t = getattr(r, n), getattr(r, s)
        return (
            f"timeout ({t:.0f} s)" if v is None and t else "-" if v is None else f"{v} ({t:.1f} s)"
        )

    lines = [
        f"{len(rows)} real packages ({len(oss)} open-source, {len(prop)} proprietary), "
        "pinned in bench/guard/packages.txt.",
        "",
        "| | open-source packages failed (false alarms) | proprietary packages failed |",
        "|---|---|---|",
    ]
    if any(r.old_fail is not None for r in rows):
        lines.append(f"| old guard (`leaky`) | {_count(oss, 'old_fail')} of {len(oss)} | "
                     f"{_count(prop, 'old_fail')} of {len(prop)} |")  # fmt: skip
    lines += [
        f"| new, against the version before | {_count(oss, 'new_fail')} of {len(oss)} | "
        f"{_count(prop, 'new_fail')} of {len(prop)} |",
        f"| new, `--no-baseline` | {_count(oss, 'absolute_fail')} of {len(oss)} | "
        f"{_count(prop, 'absolute_fail')} of {len(prop)} |",
        f"| secretlint (any finding) | {sum(1 for r in oss if r.secretlint)} of {len(oss)} | "
        f"{sum(1 for r in prop if r.secretlint)} of {len(prop)} |",
        f"| detect-secrets (any finding) | {sum(1 for r in oss if r.detect_secrets)} of "
        f"{len(oss)} | {sum(1 for r in prop if r.detect_secrets)} of {len(prop)} |",
        "",
    ]
    new_t = [r.new_s for r in rows]
    sl_t = [r.secretlint_s for r in rows if r.secretlint is not None and r.secretlint_s]
    ds_t = [r.detect_secrets_s for r in rows if r.detect_secrets is not None and r.detect_secrets_s]
    lines.append(
        f"Time per package (median / max, fresh process each): respond scan with baseline "
        f"{statistics.median(new_t):.2f} / {max(new_t):.1f} s (two tarballs); absolute "
        f"{statistics.median([r.absolute_s for r in rows]):.2f} s; secretlint "
        + (f"{statistics.median(sl_t):.2f} / {max(sl_t):.1f} s" if sl_t else "n/a")
        + "; detect-secrets "
        + (f"{statistics.median(ds_t):.2f} / {max(ds_t):.1f} s" if ds_t else "n/a")
        + (
            " (peers from the reused run"
            if reused
            else f" (peers timed out after {peer_timeout:.0f} s"
        )
        + ": "
        f"secretlint {_timeouts(rows, 'secretlint')}, "
        f"detect-secrets {_timeouts(rows, 'detect_secrets')})."
    )
    lines += [
        "",
        "| package | files | MB | old | new (baseline) | new s | secretlint | detect-secrets |",
        "|---|---:|---:|---|---|---:|---|---|",
    ]
    for r in rows:
        old = "-" if r.old_fail is None else "FAIL" if r.old_fail else "pass"
        new = ("FAIL: " if r.new_fail else "pass: ") + r.new_why.split(": ", 1)[-1][:90]
        lines.append(
            f"| {r.spec}{' (proprietary)' if r.proprietary else ''} | {r.files:,} | "
            f"{r.megabytes} | {old} | {new.replace('|', '/')} | {r.new_s:.2f} | "
            f"{peer(r, 'secretlint', 'secretlint_s')} | "
            f"{peer(r, 'detect_secrets', 'detect_secrets_s')} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-root", type=Path, help="a checkout whose guard is the 'before'")
    parser.add_argument("--only", type=int, default=0, help="the first N packages only")
    parser.add_argument("--peer-timeout", type=float, default=120.0)
    parser.add_argument(
        "--reuse",
        type=Path,
        help="a previous run's guard.json: take the old guard's and the peers' columns from it "
        "(they do not change with respond) and run only respond's guard",
    )
    args = parser.parse_args()
    if shutil.which("npm") is None:
        print("npm is missing: it downloads the packages", file=sys.stderr)
        return 7
    pkgs = packages()[: args.only or None]
    fetch(pkgs)
    reused = {r["spec"]: r for r in json.loads(args.reuse.read_text())} if args.reuse else {}
    rows = []
    for pkg in pkgs:
        print(f"  {pkg.spec}", file=sys.stderr, flush=True)
        before = reused.get(pkg.spec)
        row = measure(pkg, None if before else args.old_root, -1 if before else args.peer_timeout)
        if before:
            for name in ("old_fail", "old_why", "secretlint", "secretlint_s", "detect_secrets",
                         "detect_secrets_s"):  # fmt: skip
                setattr(row, name, before[name])
        rows.append(row)
    OUT.mkdir(exist_ok=True)
    (OUT / "guard.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    print(report(rows, args.peer_timeout, reused=bool(reused)))
    oss_fails = [r.spec for r in rows if not r.proprietary and r.new_fail]
    if oss_fails:
        print(f"\nfalse alarms: {', '.join(oss_fails)}")
    return 1 if oss_fails else 0


if __name__ == "__main__":
    sys.exit(main())
