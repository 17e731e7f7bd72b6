"""What a person sees on stderr during a run: a live table on a terminal, plain lines elsewhere."""

from __future__ import annotations

import re
import sys
import time
from typing import IO, Any

from playbook.store.sqlite import StepStatus

# C0/C1 controls (ESC included) would let hostile names from mirrors drive the terminal, and
# bidirectional overrides would let them reorder what a person reads.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

STYLE = {
    StepStatus.PENDING: "dim",
    StepStatus.RUNNING: "cyan",
    StepStatus.SUCCEEDED: "green",
    StepStatus.FAILED: "bold red",
    StepStatus.SKIPPED: "yellow",
    StepStatus.PLANNED: "blue",
    StepStatus.AWAITING_APPROVAL: "bold magenta",
    StepStatus.TIMED_OUT: "red",
    StepStatus.ABANDONED: "yellow",
}


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if code > 0xFF else f"\\x{code:02x}"


def inert(text: str, limit: int = 300) -> str:
    """Text safe to print: control characters shown as escapes, one line, bounded length."""
    text = text.replace("\n", " ").replace("\t", " ")
    text = _CONTROL.sub(
        lambda m: (
            f"\\u{ord(m.group()):04x}" if ord(m.group()) > 0xFF else f"\\x{ord(m.group()):02x}"
        ),
        text,
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PlainReporter:
    """One line per transition, for logs and pipes."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.start = time.monotonic()

    def _line(self, text: str) -> None:
        print(f"[{time.monotonic() - self.start:7.2f}s] {text}", file=self.stream, flush=True)

    def step(self, key: str, status: StepStatus, summary: str) -> None:
        self._line(f"{inert(key)}: {status.value}" + (f" - {inert(summary)}" if summary else ""))

    def progress(self, key: str, message: str) -> None:
        self._line(f"{inert(key)}: {inert(message)}")


class LiveReporter:
    """A live table of steps (rich) on a terminal; stop() leaves the final table on screen."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.rows: dict[str, list[str]] = {}
        self.start = time.monotonic()
        self.paused = False
        self.live = Live(self._table(), console=self.console, refresh_per_second=8)
        self.live.start()

    def _table(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=f"respond  {time.monotonic() - self.start:5.1f}s", expand=True)
        table.add_column("step", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("detail", overflow="fold")
        for key, (status, detail) in self.rows.items():
            table.add_row(Text(key), Text(status, style=STYLE[StepStatus(status)]), Text(detail))
        return table

    def step(self, key: str, status: StepStatus, summary: str) -> None:
        self.rows[inert(key)] = [status.value, inert(summary)]
        self._update()

    def progress(self, key: str, message: str) -> None:
        row = self.rows.setdefault(inert(key), [StepStatus.RUNNING.value, ""])
        row[1] = inert(message)
        self._update()

    def _update(self) -> None:
        if self.paused:
            return
        if not self.live.is_started:
            self.live.start()
        self.live.update(self._table())

    def pause(self) -> None:
        """Stop drawing while a prompt has the terminal (callable from any thread)."""
        self.paused = True
        self.live.stop()

    def resume(self) -> None:
        # Restarted by the next update, on the thread that drives the run: starting rich's
        # refresh thread from a prompt's worker thread deadlocked.
        self.paused = False

    def stop(self) -> None:
        self.live.stop()
