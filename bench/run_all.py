"""Run every benchmark in bench/ one after another; exit 1 if any misses its target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = (
    "bench_startup.py",
    "bench_containment.py",
    "bench_scan.py",
    "bench_mirrors.py",
    "bench_forks.py",
    "bench_guard.py",
)


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    for name in BENCHES:
        print(f"== {name}", flush=True)
        if subprocess.run([sys.executable, str(here / name)], check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"missed a target: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
