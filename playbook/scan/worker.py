"""A helper process that takes half of one big source map's per-source work: a second core.

The per-source work (hashes, lines, head tokens, the generic secret rule, token fingerprints) is
Python that holds the GIL, so threads cannot share it. For a map of `Limits.parallel_map_bytes` or
more, the scanner decodes the map once, sends every other source's bytes to a helper
(`python -m playbook.scan.worker`: a clean interpreter, never a fork of a threaded process) and
processes the rest meanwhile. The helper is started ahead, when the map's header is read (or at a
big bundle, which usually comes just before its map), so its start-up hides behind the inflate.
Its rows come back as one msgspec message; the secrets in them only redacted, with digests of
their tokens. Any failure (it cannot start, dies, answers garbage, or is slower than `timeout`) is
handled by doing its share in-process, and the result says so in a note.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import msgspec

from playbook.scan.work import Item, MapWork, process

_BUNDLES = (".js", ".mjs", ".cjs")


class Share(msgspec.Struct, array_like=True, frozen=True):
    """What the scanner sends: the helper's sources of one map."""

    items: list[Item]


class MapWorker:
    """The scanner's handle on one helper process."""

    def __init__(self, timeout: float = 120.0) -> None:
        root = str(Path(__file__).resolve().parents[2])
        # The child's environment, not configuration: the helper inherits ours, able to import us.
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        self.timeout = timeout
        self._out: list[bytes] = []
        self._writer: threading.Thread | None = None
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-m", "playbook.scan.worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
            )  # fmt: skip
        except OSError:
            self._proc = None
            return
        self._reader = threading.Thread(target=self._read, name="respond-gather", daemon=True)
        self._reader.start()

    def submit(self, items: list[Item]) -> None:
        """Hand the helper its sources; the pipe is written on a thread (the GIL is let go)."""
        if self._proc is None:
            return
        message = msgspec.msgpack.encode(Share(items))
        self._writer = threading.Thread(
            target=self._write, args=(message,), name="respond-share", daemon=True
        )
        self._writer.start()

    def _write(self, message: bytes) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        with contextlib.suppress(OSError, ValueError):  # the helper died: `result` says so
            self._proc.stdin.write(message)
            self._proc.stdin.close()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            self._out.append(self._proc.stdout.read())

    def result(self) -> MapWork | None:
        """The helper's rows, or None when the scanner must do its share itself."""
        if self._proc is None:
            return None
        self._reader.join(self.timeout)
        if self._reader.is_alive():
            self._proc.kill()
        code = self._proc.wait()
        self._reader.join()
        if self._writer is not None:
            self._writer.join(5)
        self._close()
        if code != 0 or not self._out:
            return None
        try:
            return msgspec.msgpack.decode(self._out[0], type=MapWork)
        except msgspec.DecodeError:
            return None

    def abandon(self) -> None:
        """Stop the helper (unused, or the scan ended early); safe after `result`."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
            self._reader.join(5)
        if self._proc is not None:
            self._close()

    def _close(self) -> None:
        assert self._proc is not None
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class Helpers:
    """At most one helper per scan, for its first big map: that is where the time goes."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold  # 0: never
        self._ready: MapWorker | None = None
        self._started: list[MapWorker] = []
        self._spent = False

    def ahead(self, path: str, size: int) -> None:
        """An entry is about to be read: start the helper if a big map (or its bundle) comes."""
        if self.threshold <= 0 or self._spent or self._ready is not None:
            return
        if (path.endswith(".map") and size >= self.threshold) or (
            path.endswith(_BUNDLES) and size >= self.threshold // 2
        ):
            self._ready = self._start()

    def take(self, size: int) -> MapWorker | None:
        """The helper for a map of `size` bytes, or None when one process does it all."""
        if self.threshold <= 0 or self._spent or size < self.threshold:
            return None
        self._spent = True
        worker, self._ready = self._ready or self._start(), None
        return worker

    def _start(self) -> MapWorker:
        worker = MapWorker()
        self._started.append(worker)
        return worker

    def close(self) -> None:
        for worker in self._started:
            worker.abandon()


def _vm_hwm() -> int:
    try:
        match = re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text())
    except OSError:
        return 0
    return int(match.group(1)) if match else 0


def run(message: bytes) -> MapWork:
    """The helper's side: its share of one map's sources, processed."""
    share = msgspec.msgpack.decode(message, type=Share)
    del message
    return MapWork(process(share.items), rss_kib=_vm_hwm())


def main() -> None:
    work = run(sys.stdin.buffer.read())
    sys.stdout.buffer.write(msgspec.msgpack.encode(work))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
