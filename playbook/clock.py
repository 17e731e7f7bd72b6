"""The one clock: UTC timestamps for the store, notices and reports, replaceable in one place."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

Now = Callable[[], datetime]


def _system_now() -> datetime:
    return datetime.now(UTC)


_now: Now = _system_now


def utcnow() -> str:
    """UTC, millisecond precision, ISO 8601 with Z."""
    return _now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


@contextlib.contextmanager
def using(now: Now) -> Iterator[None]:
    """Replace the clock for the duration (tests, replays); restores the system clock after."""
    global _now
    previous, _now = _now, now
    try:
        yield
    finally:
        _now = previous
