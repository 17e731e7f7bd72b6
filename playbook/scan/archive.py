"""Walk an untrusted tar stream entry by entry in memory, refusing what must not be trusted.

Nothing is extracted: each regular file's bytes are read into memory (under the single-file cap)
and scanned raw as they arrive. Names with `..`, absolute names, links (never followed), devices
and fifos are recorded and skipped. npm strips the first path component (`package/`), so do we.
"""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from playbook.errors import UnsafeArchive
from playbook.scan.detect import Hit, WindowScanner
from playbook.scan.model import Limits, Rejected
from playbook.scan.names import printable
from playbook.scan.stream import CHUNK, Inflater, TooLarge

if TYPE_CHECKING:
    from playbook.scan.worker import MapWorker

# Given an entry's path and size, a helper process to tee its bytes to, or None.
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


def _kind(member: tarfile.TarInfo) -> str | None:
    """Why a non-regular entry is refused; None for regular files and directories."""
    if member.issym():
        return "symbolic link (not followed)"
    if member.islnk():
        return "hard link (not followed)"
    if member.ischr() or member.isblk():
        return "device file"
    if member.isfifo():
        return "fifo"
    if member.isreg() or member.isdir():
        return None
    return f"unsupported entry type {member.type!r}"


def _read(stream: tarfile.TarFile, member: tarfile.TarInfo, worker: MapWorker | None) -> Entry:
    """The member's bytes, read from the stream right after its header (no extra copy).

    In stream mode the next `next()` call seeks past whatever of the member was not read, so
    reading it here from `stream.fileobj` is what `extractfile` would do, minus a buffer copy.
    """
    scanner = WindowScanner()
    parts = []
    left = member.size
    while left > 0:
        chunk = stream.fileobj.read(min(CHUNK, left))
        if not chunk:
            raise tarfile.ReadError("unexpected end of data")
        if worker is None:
            scanner.feed(chunk)
        else:
            worker.feed(chunk)
        parts.append(chunk)
        left -= len(chunk)
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    del parts
    scanner.feed(b"", final=True)
    if worker is not None:
        worker.close_input()
    return Entry("", data, tuple(scanner.secrets), tuple(scanner.hosts), worker)


class _Walk:
    def __init__(
        self, reader: Inflater, limits: Limits, label: str, log: ArchiveLog, tee: Tee | None
    ) -> None:
        self.reader, self.limits, self.label, self.log = reader, limits, label, log
        self.tee = tee

    def entries(self) -> Iterator[Entry]:
        with tarfile.open(fileobj=self.reader, mode="r|", bufsize=CHUNK) as stream:  # type: ignore[call-overload]
            for member in stream:
                self.log.entries += 1
                if self.log.entries > self.limits.max_entries:
                    self.log.stop(f"stopped after {self.limits.max_entries:,} entries (the cap)")
                    return
                entry = self._member(stream, member)
                if entry is not None:
                    yield entry
            self._drain(stream)

    def _member(self, stream: tarfile.TarFile, member: tarfile.TarInfo) -> Entry | None:
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
        entry = _read(stream, member, worker)
        self.log.files += 1
        self.log.bytes += len(entry.data)
        return Entry(shown_path, entry.data, entry.secrets, entry.hosts, worker)

    def _drain(self, stream: tarfile.TarFile) -> None:
        """Read to the end: catches data hidden after the end marker and truncated gzip."""
        garbage = False
        while chunk := stream.fileobj.read(CHUNK):
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
    except (tarfile.TarError, EOFError, ValueError, OverflowError, zlib.error, OSError) as exc:
        raise UnsafeArchive(
            f"The archive of {label} cannot be read as a tar stream: {printable(str(exc))}.",
            "It is truncated, corrupt or not a package tarball; download it again.",
        ) from None
    finally:
        reader.close()
