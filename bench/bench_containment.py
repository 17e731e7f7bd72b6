"""Time to containment on a release shaped like the real leak (a 60 MB map in a 24 MB tarball).

Containment (latest moved, deprecated) must not wait on the scan of the leaked tarball, so its
time should not depend on the tarball's size: this runs the full rehearsal playbook twice, on
the default small release and on a real-sized one, and compares the milestones.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from playbook.rehearsal.run import SCENARIOS, Scenario, Scorecard, rehearse

TARGET_SECONDS = 1.0


def run(label: str, scenario: Scenario) -> Scorecard:
    with tempfile.TemporaryDirectory() as home:
        card = rehearse(Path(home), scenario)
    moved, deprecated = card.milestones["latest moved"], card.milestones["deprecated"]
    print(
        f"{label:<10} latest moved {moved}s, deprecated {deprecated}s, "
        f"unpublished {card.milestones['unpublished']}s, whole run {card.seconds}s"
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
    return 0 if worst < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
