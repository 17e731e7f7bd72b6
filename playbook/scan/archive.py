"""Walk an untrusted tar stream entry by entry in memory, refusing what must not be trusted.

Nothing is extracted: each regular file's bytes are read into memory (under the single-file cap)
and scanned raw as they arrive. Names with `..`, absolute names, links (never followed), devices
and fifos are recorded and skipped. npm strips the first path component (`package/`), so do we.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from playbook.errors import UnsafeArchive
from playbook.scan.detect import Hit, WindowScanner
from playbook.scan.model import Limits, Rejected
from playbook.scan.names import printable
from playbook.scan.stream import CHUNK, Inflater, TooLarge
from playbook.scan.tarstream import (
    DEVICES,
    DIR,
    FIFO,
    HARDLINK,
    REGULAR,
    SYMLINK,
    Member,
    TarReader,
    TarReadError,
)

if TYPE_CHECKING:
    from playbook.scan.worker import MapWorker

# Told each regular file's path and size before its bytes are read; returns a helper process to
# tee the bytes to (it scans them raw instead of this process), or None (`worker.Helpers`).
Tee = Callable[[str, int], "MapWorker | None"]

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Entry:
    """A regular file read from the archive, with the raw hits found while it streamed in."""

    path: str
    data: bytes
    secrets: tuple[Hit, ...]
    hosts: tuple[Hit, ...]
    worker: MapWorker | None = None  # set when a helper process scanned the raw bytes instead


@dataclass
class ArchiveLog:
    """What the walk saw besides files: counts, refusals and why the result may be partial."""

    files: int = 0
    bytes: int = 0
    entries: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    partial: bool = False

    def reject(self, path: str, reason: str, *, partial: bool = False) -> None:
        self.rejected.append(Rejected(path, reason))
        self.partial = self.partial or partial

    def stop(self, note: str) -> None:
        self.notes.append(note)
        self.partial = True


def safe_path(name: str) -> tuple[str | None, str | None]:
    """(path without its first component, None) or (None, why it is refused)."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        return None, "absolute path"
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None, "path climbs out with '..'"
    if "\x00" in norm:
        return None, "NUL byte in the name"
    return ("/".join(parts[1:]) or None), None


def _kind(member: Member) -> str | None:
    """Why a non-regular entry is refused; None for regular files and directories."""
    if member.type == SYMLINK:
        return "symbolic link (not followed)"
    if member.type == HARDLINK:
        return "hard link (not followed)"
    if member.type in DEVICES:
        return "device file"
    if member.type == FIFO:
        return "fifo"
    if member.type in REGULAR or member.type == DIR:
        return None
    return f"unsupported entry type {member.type.decode('latin-1')!r}"


def _read(tar: TarReader, member: Member, worker: MapWorker | None) -> Entry:
    """The member's bytes, scanned raw (or teed to the helper) as they come."""
    scanner = WindowScanner()
    if worker is None and (data := tar.small(member.size)) is not None:
        scanner.feed(data, final=True)  # the common case: one piece, one pass
        return Entry("", data, tuple(scanner.secrets), tuple(scanner.hosts))
    parts: list[bytes | memoryview] = []
    # A teed map is copied once, by the join (its pieces are views of the read buffer).
    for chunk in tar.data(member.size, CHUNK, views=worker is not None):
        if worker is None:
            assert isinstance(chunk, bytes)
            scanner.feed(chunk)
        else:
            worker.feed(chunk)
        parts.append(chunk)
    data = b"".join(parts) if len(parts) != 1 or worker is not None else bytes(parts[0])
    del parts
    scanner.feed(b"", final=True)
    return Entry("", data, tuple(scanner.secrets), tuple(scanner.hosts), worker)


class _Walk:
    def __init__(
        self, reader: Inflater, limits: Limits, label: str, log: ArchiveLog, tee: Tee | None
    ) -> None:
        self.reader, self.limits, self.label, self.log = reader, limits, label, log
        self.tee = tee

    def entries(self) -> Iterator[Entry]:
        tar = TarReader(self.reader)
        for member in tar:
            self.log.entries += 1
            if self.log.entries > self.limits.max_entries:
                self.log.stop(f"stopped after {self.limits.max_entries:,} entries (the cap)")
                return
            entry = self._member(tar, member)
            if entry is not None:
                yield entry
        self._drain(tar)

    def _member(self, tar: TarReader, member: Member) -> Entry | None:
        shown = printable(member.name)
        path, problem = safe_path(member.name)
        problem = problem or _kind(member)
        if problem is not None:
            self.log.reject(shown, problem, partial=member.isreg())
            return None
        if path is None or member.isdir():
            return None
        if member.size > self.limits.max_file_bytes:
            self.log.reject(shown, f"{member.size:,} bytes, over the single-file cap", partial=True)
            return None
        if member.offset_data + member.size > self.limits.max_total_bytes:
            self.log.stop(f"stopped at {shown}: the archive would expand past the total cap")
            raise _Stop
        shown_path = printable(path)
        worker = self.tee(shown_path, member.size) if self.tee is not None else None
        entry = _read(tar, member, worker)
        self.log.files += 1
        self.log.bytes += len(entry.data)
        return Entry(shown_path, entry.data, entry.secrets, entry.hosts, worker)

    def _drain(self, tar: TarReader) -> None:
        """Read to the end: catches data hidden after the end marker and truncated gzip."""
        garbage = False
        for chunk in tar.rest(CHUNK):
            garbage = garbage or bool(chunk.strip(b"\0"))
        if garbage or self.reader.trailing_garbage:
            self.log.stop(
                "data follows the end of the archive (a header may lie about its size); "
                "entries after that point were not read"
            )


class _Stop(Exception):
    """Internal: a cap was reached and the walk ends with a partial result."""


def walk(
    reader: Inflater, limits: Limits, label: str, log: ArchiveLog, tee: Tee | None = None
) -> Iterator[Entry]:
    """Entries of the tar stream in `reader`; caps end the walk early with `log.partial` set."""
    try:
        yield from _Walk(reader, limits, label, log, tee).entries()
    except _Stop:
        return
    except TooLarge as exc:
        log.stop(exc.message)
    except UnsafeArchive:
        raise
    except (TarReadError, EOFError, ValueError, OverflowError, zlib.error, OSError) as exc:
        raise UnsafeArchive(
            f"The archive of {label} cannot be read as a tar stream: {printable(str(exc))}.",
            "It is truncated, corrupt or not a package tarball; download it again.",
        ) from None
    finally:
        reader.close()
