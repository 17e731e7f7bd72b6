"""The one clock: UTC timestamps for the store, notices and reports, replaceable in one place;
and `Clock`, the seconds-and-sleep pair the request governors pace and wait on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

Now = Callable[[], datetime]
Seconds = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Clock:
    """Wall-clock seconds and an async sleep. A run is built with one (Services(clock=...));
    tests give a fake whose sleep only advances its seconds."""

    time: Seconds = time.time
    sleep: Sleep = asyncio.sleep


SYSTEM_CLOCK = Clock()


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
