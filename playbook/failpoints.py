"""Crash points for the crash-and-resume tests: the process SIGKILLs itself at a chosen point.

`RESPOND_FAILPOINT=event:N` dies right after the Nth audit event this process commits;
`RESPOND_FAILPOINT=write:N` dies right after the answer to the Nth write (PUT, POST, PATCH,
DELETE) arrives, before anything records it. Unset (always, outside tests), `hit` does nothing.

`RESPOND_HOLDPOINT=<event kind>/<step key>:<release file>` (e.g. `step.running/report:/tmp/go`)
makes the process wait, once, right after it commits that event, until the release file exists
(at most two minutes): the concurrency tests run other commands against a live run held there.
Unset, `hold` does nothing.
"""

from __future__ import annotations

import os
import signal
import time

# Read here, not in Settings: a test hook that must fire inside the store and the transport,
# which are built without Settings, and that no command's configuration should carry.
_SPEC = os.environ.get("RESPOND_FAILPOINT", "")
_KIND, _, _COUNT = _SPEC.partition(":")
_AT = int(_COUNT) if _COUNT.isdigit() else 0
_seen: dict[str, int] = {}


def armed(kind: str) -> bool:
    return _AT > 0 and kind == _KIND


def hit(kind: str) -> None:
    """Count one `kind` point; at the chosen one, die as a crash would: no cleanup, no flush."""
    if not armed(kind):
        return
    _seen[kind] = _seen.get(kind, 0) + 1
    if _seen[kind] == _AT:
        os.kill(os.getpid(), signal.SIGKILL)


_HOLD_AT, _, _HOLD_FOR = os.environ.get("RESPOND_HOLDPOINT", "").rpartition(":")
_held: list[str] = []


def hold(name: str) -> None:
    """Wait at the chosen committed event, once (see the module docstring)."""
    if not _HOLD_AT or name != _HOLD_AT or _held:
        return
    _held.append(name)
    deadline = time.monotonic() + 120
    while not os.path.exists(_HOLD_FOR) and time.monotonic() < deadline:
        time.sleep(0.05)
