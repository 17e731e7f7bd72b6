"""`respond --help` start-up time against the floor of a bare interpreter, measured in one run."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 15
TARGET_SECONDS = 0.3


def best_of(argv: list[str]) -> tuple[float, float]:
    """Median and minimum wall time of RUNS runs of argv."""
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> int:
    floor_median, floor_min = best_of([sys.executable, "-c", "pass"])
    help_median, help_min = best_of([sys.executable, "-m", "playbook.cli", "--help"])
    print(
        f"floor (python -c pass): median {floor_median * 1e3:.0f} ms, min {floor_min * 1e3:.0f} ms"
    )
    print(f"respond --help:         median {help_median * 1e3:.0f} ms, min {help_min * 1e3:.0f} ms")
    print(
        f"ratio to floor (median): {help_median / floor_median:.1f}x; target < {TARGET_SECONDS} s"
    )
    return 0 if help_median < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
