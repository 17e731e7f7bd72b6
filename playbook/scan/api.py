"""Entry points: scan a tarball (path, file object, bytes, chunk stream) or a package directory."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import AsyncIterable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from playbook.errors import UnsafeArchive, UsageError
from playbook.scan.archive import ArchiveLog, Entry, safe_path, walk
from playbook.scan.detect import WindowScanner
from playbook.scan.model import Limits, ScanResult, package_label
from playbook.scan.names import printable
from playbook.scan.scanner import Collector, package_meta
from playbook.scan.stream import ChunkFeed, Inflater, file_chunks, quick_handoffs
from playbook.scan.worker import Helpers

if TYPE_CHECKING:
    import asyncio

# asyncio (scan_stream) and npm's file list (directories) are imported where they are used: a
# fresh `respond scan` of a tarball needs neither, and their imports were 40 of its 150 ms.

DEFAULT_LIMITS = Limits()


def scan_chunks(
    chunks: Iterable[bytes],
    *,
    limits: Limits = DEFAULT_LIMITS,
    package: str = "",
    version: str = "",
    label: str = "",
) -> ScanResult:
    """Scan a `.tgz` (or plain `.tar`) given as a stream of byte chunks, e.g. an HTTP body."""
    name = package_label(package, version, label or "the package")
    log = ArchiveLog()
    helpers = Helpers(limits.parallel_map_bytes, limits.fingerprints)
    collector = Collector(package, version, limits, log)
    reader = Inflater(chunks, max_total=limits.max_total_bytes, label=name)
    try:
        with quick_handoffs():
            for entry in walk(reader, limits, name, log, helpers.tee):
                collector.add(entry)
    finally:
        helpers.close()
    return collector.result()


def scan_tarball(
    source: Path | BinaryIO | bytes,
    *,
    limits: Limits = DEFAULT_LIMITS,
    package: str = "",
    version: str = "",
) -> ScanResult:
    """Scan a package tarball from a path, a binary file object or bytes; nothing is extracted."""
    if isinstance(source, bytes):
        return scan_chunks(_split(source), limits=limits, package=package, version=version)
    if isinstance(source, Path):
        try:
            with source.open("rb") as handle:
                return scan_chunks(
                    file_chunks(handle), limits=limits, package=package, version=version,
                    label=printable(source.name),
                )  # fmt: skip
        except OSError as exc:
            raise UsageError(
                f"The tarball {printable(str(source))} cannot be read: {exc.strerror}.",
                "Check the path.",
            ) from None
    return scan_chunks(file_chunks(source), limits=limits, package=package, version=version)


def _split(data: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    view = memoryview(data)
    for i in range(0, len(data), size):
        yield bytes(view[i : i + size])


async def scan_stream(
    chunks: AsyncIterable[bytes],
    *,
    limits: Limits = DEFAULT_LIMITS,
    package: str = "",
    version: str = "",
) -> ScanResult:
    """Scan while the tarball downloads: feed an async byte iterator (e.g. httpx `aiter_bytes`).

    The scan runs in a worker thread and reads chunks as they arrive, through a bounded queue, so
    memory stays bounded and the result is ready moments after the last byte. The caller can hash
    the same chunks for the integrity check (and must discard the result if it fails). If the scan
    stops early (an unsafe archive), the download is abandoned and the error raised.
    """
    import asyncio

    feed = ChunkFeed()
    task = asyncio.create_task(
        asyncio.to_thread(_scan_feed, feed, limits=limits, package=package, version=version)
    )
    try:
        await _pump(chunks, feed, task)
        return await task
    finally:
        feed.closed.set()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def _scan_feed(feed: ChunkFeed, *, limits: Limits, package: str, version: str) -> ScanResult:
    try:
        return scan_chunks(feed, limits=limits, package=package, version=version)
    finally:
        feed.closed.set()  # wakes a producer blocked on a full queue


async def _pump(chunks: AsyncIterable[bytes], feed: ChunkFeed, task: asyncio.Task[object]) -> None:
    import asyncio

    try:
        async for chunk in chunks:
            if task.done():
                return
            if not feed.try_put(chunk) and not await asyncio.to_thread(feed.put, chunk):
                return
    except BaseException as exc:
        feed.finish(UnsafeArchive("The download of the tarball failed before its end.", str(exc)))
        raise
    feed.finish()


def _dir_entries(root: Path, npm: str | None, limits: Limits, log: ArchiveLog) -> Iterator[Entry]:
    from playbook.scan.npmpack import files_to_ship

    paths, notes = files_to_ship(root, npm)
    log.notes += notes
    total = 0
    for rel in paths:
        log.entries += 1
        if log.entries > limits.max_entries:
            log.stop(f"stopped after {limits.max_entries:,} files (the cap)")
            return
        shown = printable(rel)
        if safe_path("package/" + rel)[1] is not None:
            log.reject(shown, "path outside the package folder", partial=True)
            continue
        try:
            info = os.stat(root / rel, follow_symlinks=False)
        except OSError as exc:
            log.reject(shown, f"cannot be read ({exc.strerror})", partial=True)
            continue
        if stat.S_ISLNK(info.st_mode):
            log.notes.append(f"{shown}: symbolic link skipped")
            continue
        if not stat.S_ISREG(info.st_mode):
            log.reject(shown, "not a regular file", partial=True)
            continue
        if info.st_size > limits.max_file_bytes:
            log.reject(shown, f"{info.st_size:,} bytes, over the single-file cap", partial=True)
            continue
        total += info.st_size
        if total > limits.max_total_bytes:
            log.stop(f"stopped at {shown}: the files add up past the total cap")
            return
        data = (root / rel).read_bytes()
        scanner = WindowScanner()
        scanner.feed(data, final=True)
        log.files += 1
        log.bytes += len(data)
        yield Entry(shown, data, tuple(scanner.secrets), tuple(scanner.hosts))


def scan_directory(path: Path, *, npm: str | None, limits: Limits = DEFAULT_LIMITS) -> ScanResult:
    """Scan what `npm pack` would ship from a package directory: npm's own list when `npm` (its
    executable) is given, else the `packlist` approximation, which the result's notes name."""
    if not (path / "package.json").is_file():
        raise UsageError(
            f"{printable(str(path))} has no package.json, so it is not a package directory.",
            "Point `respond scan` at the folder holding package.json, or at a tarball.",
        )
    manifest = _package_fields(path)
    log = ArchiveLog()
    collector = Collector(manifest[0], manifest[1], limits, log)
    for entry in _dir_entries(path, npm, limits, log):
        collector.add(entry)
    return collector.result()


def _package_fields(path: Path) -> tuple[str, str]:
    try:
        meta = package_meta((path / "package.json").read_bytes())
    except OSError:
        return "", ""
    return meta.name, meta.version


def scan_path(path: Path, *, npm: str | None = None, limits: Limits = DEFAULT_LIMITS) -> ScanResult:
    """`respond scan PATH`: a package directory (npm's file list when `npm` is given, see
    scan_directory) or a tarball (`.tgz` or plain `.tar`)."""
    if path.is_dir():
        return scan_directory(path, npm=npm, limits=limits)
    if not path.is_file():
        raise UsageError(
            f"{printable(str(path))} is neither a package directory nor a tarball.",
            "Give a folder holding package.json, a .tgz file, or pkg@version.",
        )
    return scan_tarball(path, limits=limits)
