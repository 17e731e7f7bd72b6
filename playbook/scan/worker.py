"""A helper process that takes half of one big source map, so the scan uses a second core.

The scan's work on a big map is Python code that holds the GIL (regexes, tokenizing), so threads
cannot share it. When a `.map` entry of `Limits.parallel_map_bytes` or more starts streaming (or
already at a script half that size, the bundle that usually precedes its map), the scanner spawns
`python -m playbook.scan.worker` (a clean interpreter: no fork of a threaded process) and tees the
map's bytes into its stdin as they arrive. The helper scans the raw bytes for
secrets, decodes the map, locates the hits and processes every other source; the scanner
processes the rest meanwhile. The result comes back as one msgspec message on
stdout: hashes, tokens and secrets, the latter only redacted. Any failure of the helper (it cannot
start, dies, or is slower than `timeout`) is handled by doing its share in-process.
"""

from __future__ import annotations

import contextlib
import os

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

import msgspec

from playbook.scan.detect import WindowScanner
from playbook.scan.sourcemap import parse
from playbook.scan.work import MapWork, found, line, locate, process

_STOP = b""


_HELPER_SLOTS = frozenset({1, 3, 5, 7, 9})  # of every 12 sources: the helper takes 5


def shares(n: int) -> tuple[list[int], list[int]]:
    """(the scanner's, the helper's) source indices, interleaved (a map lists its first-party
    sources, which also get the generic secret rule, before node_modules). The helper gets a bit
    less: it starts behind, as the map reaches it through a pipe."""
    mine = [i for i in range(n) if i % 12 not in _HELPER_SLOTS]
    theirs = [i for i in range(n) if i % 12 in _HELPER_SLOTS]
    return mine, theirs


class MapWorker:
    """The scanner's handle on one helper process."""

    def __init__(self, max_sources: int, head: int, timeout: float = 120.0) -> None:
        root = str(Path(__file__).resolve().parents[2])
        # The child's environment, not configuration: the helper inherits ours, able to import us.
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        self.timeout = timeout
        self.failed = False
        self.started = False
        self._out: list[bytes] = []
        # Unbounded: it holds the same chunk objects the scanner keeps anyway, so it costs no
        # memory, and the scan never waits on a helper that is still starting up.
        self._queue: queue.Queue[bytes] = queue.Queue()
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-m", "playbook.scan.worker", str(max_sources), str(head)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
            )  # fmt: skip
        except OSError:
            self._proc, self.failed = None, True
            return
        _widen(self._proc.stdin)
        self._writer = threading.Thread(target=self._write, name="respond-tee", daemon=True)
        self._reader = threading.Thread(target=self._read, name="respond-gather", daemon=True)
        self._writer.start()
        self._reader.start()

    def start(self, owner: str) -> None:
        """Name the map whose bytes follow (the helper may have been started ahead of it)."""
        self.started = True
        self.feed(owner.encode("utf-8", "replace") + b"\n")

    def feed(self, chunk: bytes) -> None:
        """Tee a chunk of the map to the helper (dropped once the helper has failed)."""
        if not self.failed:
            self._queue.put(chunk)

    def close_input(self) -> None:
        if self._proc is not None:
            self._queue.put(_STOP)

    def _write(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            while chunk := self._queue.get():
                self._proc.stdin.write(chunk)
            self._proc.stdin.close()
        except (OSError, ValueError):  # the helper died, or the scan closed its pipe
            self.failed = True

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        self._out.append(self._proc.stdout.read())

    def result(self) -> MapWork | None:
        """The helper's share, or None when the scanner must do it itself."""
        if self._proc is None:
            return None
        self._reader.join(self.timeout)
        if self._reader.is_alive():
            self._proc.kill()
        code = self._proc.wait()
        self._reader.join()
        self._writer.join(5)
        self._close()
        if self.failed or code != 0 or not self._out:
            return None
        try:
            return msgspec.msgpack.decode(self._out[0], type=MapWork)
        except msgspec.DecodeError:
            return None

    def abandon(self) -> None:
        """Stop the helper when the scan ends early."""
        if self._proc is not None:
            self.failed = True
            self._proc.kill()
            self._queue.put(_STOP)
            self._proc.wait()
            self._reader.join(5)
            self._close()

    def _close(self) -> None:
        assert self._proc is not None
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _widen(pipe: object) -> None:
    """A 1 MiB pipe (Linux): a 64 KiB one makes the writer thread take the GIL back ~1,000
    times for a 60 MB map, each time waiting behind the scanning thread."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    fileno = getattr(pipe, "fileno", None)
    if setsize is None or fileno is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fileno(), setsize, 1 << 20)


def _vm_hwm() -> int:
    try:
        match = re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text())
    except OSError:
        return 0
    return int(match.group(1)) if match else 0


def run(max_sources: int, head: int) -> MapWork:
    """The helper's side: read the map's name and bytes from stdin, do its share."""
    owner = sys.stdin.buffer.readline().decode("utf-8", "replace").rstrip("\n")
    scanner = WindowScanner()
    parts = []
    while chunk := sys.stdin.buffer.read(1 << 20):
        scanner.feed(chunk)
        parts.append(chunk)
    scanner.feed(b"", final=True)
    data = b"".join(parts)
    del parts
    parsed = parse(data, max_sources)
    hosts = [h.value.decode("ascii", "replace") for h in scanner.hosts]
    if parsed.error is not None:
        at_map = [found(h.kind, owner, line(data, h.pos), h.value) for h in scanner.secrets]
        return MapWork(located=at_map, error=parsed.error, hosts=hosts, rss_kib=_vm_hwm())
    sources = parsed.sources
    located, more_hosts = locate(owner, data, scanner.secrets, sources)
    del data  # the decoded sources are all that is needed now
    rows = process(sources, shares(len(sources))[1], head)
    return MapWork(rows, located, hosts + more_hosts, rss_kib=_vm_hwm())


def main() -> None:
    max_sources, head = int(sys.argv[1]), int(sys.argv[2])
    sys.stdout.buffer.write(msgspec.msgpack.encode(run(max_sources, head)))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
