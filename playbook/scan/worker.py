"""A helper process that takes a share of one big source map's work: a second core.

The work on a big map is Python that holds the GIL (regexes, tokenizing), so threads cannot share
it. For a `.map` entry of `Limits.parallel_map_bytes` or more the scanner starts
`python -m playbook.scan.worker` (a clean interpreter: never a fork of a threaded process; started
already at a big bundle, which usually comes just before its map, so its start-up hides behind the
inflate), then writes to its stdin, from a writer thread:

1. the map's size on a line, then its raw bytes as they stream out of the archive: the helper
   scans them for secrets and hosts meanwhile (the scanner does not);
2. once the scanner has decoded the map (once, here), the helper's share of the sources
   (`work.items`, 9 of every 20, interleaved): the length of a msgpack list of `Meta` on a line,
   the list, then the sources' bytes back to back, written with `writev` (no message is built).

The helper answers with one msgpack `MapWork`: its rows (secrets in them only redacted, with
digests of their tokens) and where its raw hits are, as offsets: the scanner reads the values from
its own copy of the bytes, so no secret crosses the pipe unredacted. Any failure (the helper cannot
start, dies, answers garbage, or is slower than `timeout`) is handled by doing its part
in-process, and the result says so in a note.

How the split was chosen (2.1.88-shaped map, BENCHMARKS.md): a helper that decodes the map again
spends 0.15 s of CPU for nothing; shipping the decoded share as one message cost the scanner a
30 MB copy; the helper taking half made it the one waited for.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import BinaryIO

import msgspec

from playbook.scan.detect import Hit, WindowScanner
from playbook.scan.work import Item, Row, process

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]

_BUNDLES = (".js", ".mjs", ".cjs")
_STOP = object()
_IOV_MAX = 1024  # buffers per writev (Linux's IOV_MAX)
_READ = 4 << 20  # the helper reads and scans the raw map in pieces of this many bytes


class Meta(msgspec.Struct, array_like=True, frozen=True):
    """One of the helper's sources, but its bytes (those follow all the metas, unencoded)."""

    index: int
    path: str
    first_party: bool
    winnow: bool
    head: bytes
    size: int


class RawHit(msgspec.Struct, array_like=True, frozen=True):
    """Where a raw hit is in the map's bytes (never its value)."""

    kind: str
    start: int
    end: int


class MapWork(msgspec.Struct, frozen=True):
    """The helper's part of one map."""

    rows: list[Row] = []
    secrets: list[RawHit] = []
    hosts: list[RawHit] = []
    rss_kib: int = 0

    def hits(self, data: bytes) -> tuple[list[Hit], list[Hit]]:
        """The raw secret and host hits, read from the scanner's own copy of the map."""

        def read(found: list[RawHit]) -> list[Hit]:
            return [Hit(h.kind, data[h.start : h.end], h.start) for h in found]

        return read(self.secrets), read(self.hosts)


class MapWorker:
    """The scanner's handle on one helper process."""

    def __init__(self, fingerprints: bool = True, timeout: float = 120.0) -> None:
        root = str(Path(__file__).resolve().parents[2])
        # The child's environment, not configuration: the helper inherits ours, able to import us.
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        self.timeout = timeout
        self.failed = False
        self._out: list[bytes] = []
        # Unbounded: it holds the same chunk objects the scanner keeps anyway, so it costs no
        # memory, and the scan never waits on a helper that is still starting up.
        self._queue: queue.Queue[object] = queue.Queue()
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-m", "playbook.scan.worker", "1" if fingerprints else "0"],
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

    def start(self, size: int) -> None:
        """The map's raw bytes follow: `size` of them."""
        self._put(b"%d\n" % size)

    def feed(self, chunk: bytes | memoryview) -> None:
        """Tee a chunk of the map's raw bytes to the helper."""
        self._put(chunk)

    def submit(self, todo: list[Item]) -> None:
        """Hand the helper its sources (after the raw bytes); then the pipe is closed. The bytes
        are written as they are, by `writev` on the writer thread: no 30 MB message is built."""
        metas = [Meta(i.index, i.path, i.first_party, i.winnow, i.head, len(i.data)) for i in todo]
        encoded = msgspec.msgpack.encode(metas)
        self._put(b"%d\n" % len(encoded))
        self._put(encoded)
        self._put([item.data for item in todo])
        self._put(_STOP)

    def _put(self, item: object) -> None:
        if not self.failed:
            self._queue.put(item)

    def _write(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            while (item := self._queue.get()) is not _STOP:
                if isinstance(item, list) and hasattr(os, "writev"):
                    self._proc.stdin.flush()
                    _write_all(self._proc.stdin.fileno(), item)
                elif isinstance(item, list):  # no writev (Windows): one write each
                    for blob in item:
                        self._proc.stdin.write(blob)
                else:
                    assert isinstance(item, (bytes, memoryview))
                    self._proc.stdin.write(item)
            self._proc.stdin.close()
        except (OSError, ValueError):  # the helper died, or the scan closed its pipe
            self.failed = True

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            self._out.append(self._proc.stdout.read())

    def result(self) -> MapWork | None:
        """The helper's part, or None when the scanner must do it itself."""
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
        """Stop the helper (unused, or the scan ended early); safe after `result`."""
        if self._proc is None:
            return
        self.failed = True
        if self._proc.poll() is None:
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


class Helpers:
    """At most one helper per scan, for its first big map: that is where the time goes."""

    def __init__(self, threshold: int, fingerprints: bool = True) -> None:
        self.threshold = threshold  # 0: never
        self.fingerprints = fingerprints
        self._ready: MapWorker | None = None
        self._started: list[MapWorker] = []
        self._spent = False

    def tee(self, path: str, size: int) -> MapWorker | None:
        """An entry is about to be read: the helper to tee it to when it is the big map (the
        helper is started already at a big bundle, which usually comes just before its map)."""
        if self.threshold <= 0 or self._spent:
            return None
        big_map = path.endswith(".map") and size >= self.threshold
        if self._ready is None and (
            big_map or (path.endswith(_BUNDLES) and size >= self.threshold // 2)
        ):
            self._ready = MapWorker(self.fingerprints)
            self._started.append(self._ready)
        if not big_map or self._ready is None:
            return None
        self._spent = True
        worker, self._ready = self._ready, None
        worker.start(size)
        return worker

    def close(self) -> None:
        for worker in self._started:
            worker.abandon()


def _write_all(fd: int, blobs: list[bytes]) -> None:
    """All of `blobs`, in order, with as few system calls as `writev` allows."""
    views = [memoryview(b) for b in blobs if b]
    at = 0
    while at < len(views):
        written = os.writev(fd, views[at : at + _IOV_MAX])
        while written and at < len(views):
            if written >= len(views[at]):
                written -= len(views[at])
                at += 1
            else:
                views[at], written = views[at][written:], 0


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


def run(stdin: BinaryIO, fingerprints: bool = True) -> MapWork:
    """The helper's side: scan the map's raw bytes as they come, then process its sources."""
    left = int(stdin.readline())
    scanner = WindowScanner(window=_READ)  # no other thread here waits for the GIL
    while left > 0 and (chunk := stdin.read(min(left, _READ))):
        scanner.feed(chunk)
        left -= len(chunk)
    scanner.feed(b"", final=True)
    secrets = [RawHit(h.kind, h.pos, h.pos + len(h.value)) for h in scanner.secrets]
    hosts = [RawHit(h.kind, h.pos, h.pos + len(h.value)) for h in scanner.hosts]
    metas = msgspec.msgpack.decode(stdin.read(int(stdin.readline())), type=list[Meta])
    total = sum(m.size for m in metas)
    blob = stdin.read(total)  # one read, then slices: 2,000 reads took 0.05 s
    if len(blob) != total:
        raise SystemExit("the scanner's message ended early")
    todo, at = [], 0
    for m in metas:
        todo.append(Item(m.index, m.path, m.first_party, m.winnow, m.head, blob[at : at + m.size]))
        at += m.size
    del blob
    return MapWork(process(todo, fingerprints), secrets, hosts, rss_kib=_vm_hwm())


def main() -> None:
    work = run(sys.stdin.buffer, fingerprints=sys.argv[1:] != ["0"])
    sys.stdout.buffer.write(msgspec.msgpack.encode(work))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
