"""A strict, copy-light reader of a tar stream: headers parsed by hand, member data sliced out.

Why not `tarfile` in stream mode: its `_Stream` keeps the unread rest of each chunk in one bytes
object and re-slices it on every 512-byte header read, so a package of a few thousand small files
costs ~0.5 s of copying before any scanning (measured on lodash, 1,051 files: 0.5 s of 0.58 s).
This reader keeps one buffer and an index into it. It reads what npm writes (ustar with prefix,
GNU long names `L`/`K`, pax `x`/`g` headers with `path`, `linkpath`, `size`) and mirrors
`tarfile`'s stream rules: only regular files (and unknown types) are followed by data blocks; an
all-zero block ends the archive; a bad first header is an error, a bad later one ends the walk
(the caller then finds the bytes left over and says the result is partial).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, Protocol

BLOCK = 512
_ZERO = bytes(BLOCK)
REGULAR = frozenset({b"0", b"\0", b"7"})  # regular, old regular, contiguous
DIR, SYMLINK, HARDLINK = b"5", b"2", b"1"
DEVICES, FIFO = frozenset({b"3", b"4"}), b"6"
_KNOWN = REGULAR | {DIR, SYMLINK, HARDLINK, FIFO, b"3", b"4"}
_LONG = frozenset({b"L", b"K"})
_PAX = frozenset({b"x", b"g"})
_MAX_EXTENSION = 1 << 20  # a long name or pax header bigger than this is hostile


class TarReadError(Exception):
    """The stream is not a tar archive npm would write, or it ends early."""


class Source(Protocol):
    def read(self, n: int = -1) -> bytes: ...


class Member(NamedTuple):  # a tuple: ~2x cheaper to build than a frozen dataclass
    name: str
    type: bytes
    size: int
    linkname: str
    offset_data: int  # where its data starts in the uncompressed stream

    def isreg(self) -> bool:
        return self.type in REGULAR

    def isdir(self) -> bool:
        return self.type == DIR


def _nts(field: bytes) -> str:
    return field.partition(b"\0")[0].decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    """An octal field, or GNU base-256 (first byte 0x80 or 0xff)."""
    if field[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field[1:], "big")
        return value - (256 ** (len(field) - 1)) if field[0] == 0xFF else value
    text = field.partition(b"\0")[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise TarReadError("invalid number field in a header") from None


def _checksum_ok(block: bytes) -> bool:
    try:
        stored = _number(block[148:156])
    except TarReadError:
        return False
    unsigned = sum(block) - sum(block[148:156]) + 256  # the field itself counts as 8 spaces
    if stored == unsigned:
        return True
    signed = sum((b - 256 if b > 127 else b) for b in block[:148] + block[156:]) + 256
    return stored == signed


def _pax(data: bytes) -> dict[str, str]:
    """`%d key=value\n` records (the length counts the whole record)."""
    out, pos = {}, 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos, pos + 24)
        try:
            length = int(data[pos:space]) if space > pos else 0
        except ValueError:
            length = 0
        record = data[space + 1 : pos + length - 1] if length > 0 else b""
        if length <= 0 or pos + length > len(data) or b"=" not in record:
            raise TarReadError("invalid pax extended header")
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


class TarReader:
    """Members of a plain tar stream read from `source.read(n)` (which may return fewer bytes)."""

    def __init__(self, source: Source) -> None:
        self._src = source
        self._buf = b""
        self._pos = 0
        self.offset = 0  # bytes of the stream consumed so far
        self._pending = 0  # data and padding of the current member not yet read
        self._global: dict[str, str] = {}

    def _fill(self) -> bool:
        """Make unread bytes available; False at the end of the stream."""
        while self._pos >= len(self._buf):
            chunk = self._src.read(1 << 22)
            if not chunk:
                return False
            self._buf, self._pos = chunk, 0
        return True

    def _take(self, n: int) -> bytes:
        """Exactly `n` bytes (fewer only at the end of the stream)."""
        pos, buf = self._pos, self._buf
        if pos + n <= len(buf):
            self._pos = pos + n
            self.offset += n
            return buf[pos : pos + n]
        parts, left = [], n
        while left and self._fill():
            piece = self._buf[self._pos : self._pos + left]
            self._pos += len(piece)
            left -= len(piece)
            parts.append(piece)
        self.offset += n - left
        return b"".join(parts)

    def _skip(self, n: int) -> None:
        while n:
            if not self._fill():
                raise TarReadError("unexpected end of data")
            step = min(n, len(self._buf) - self._pos)
            self._pos += step
            self.offset += step
            n -= step

    def small(self, size: int) -> bytes | None:
        """The current member's data in one piece when it is already buffered (most files)."""
        pos = self._pos
        if size > self._pending or pos + size > len(self._buf):
            return None
        self._pos = pos + size
        self.offset += size
        self._pending -= size
        return self._buf[pos : pos + size]

    def data(self, size: int, chunk: int, *, views: bool = False) -> Iterator[bytes | memoryview]:
        """The current member's `size` data bytes in pieces of at most `chunk` (then padding);
        with `views`, as views of the read buffer instead of copies."""
        left = min(size, self._pending)
        self._pending -= left
        while left:
            if not self._fill():
                raise TarReadError("unexpected end of data")
            buf = memoryview(self._buf) if views else self._buf
            piece = buf[self._pos : self._pos + min(left, chunk)]
            self._pos += len(piece)
            self.offset += len(piece)
            left -= len(piece)
            yield piece

    def rest(self, chunk: int) -> Iterator[bytes]:
        """Whatever follows the end marker (a header that lied may hide entries there)."""
        if self._pos < len(self._buf):
            yield self._buf[self._pos :]
        self._buf, self._pos = b"", 0
        while piece := self._src.read(chunk):
            yield piece

    def _extension(self, size: int) -> bytes:
        if not 0 <= size <= _MAX_EXTENSION:
            raise TarReadError(f"an extended header of {size:,} bytes")
        data = self._take(size)
        if len(data) < size:
            raise TarReadError("unexpected end of data")
        self._skip(-size % BLOCK)
        return data

    def next(self) -> Member | None:
        """The next member, or None at the end of the archive."""
        self._skip(self._pending)
        self._pending = 0
        pax: dict[str, str] = {}
        long_name = long_link = None
        extended = False
        while True:
            first = self.offset == 0
            block = self._take(BLOCK)
            if len(block) < BLOCK:
                if extended or block:
                    raise TarReadError("unexpected end of data" if block else "empty file")
                if first:
                    raise TarReadError("empty file")
                return None
            if block == _ZERO:
                if extended:
                    raise TarReadError("an extended header with no member after it")
                return None
            if not _checksum_ok(block):
                if first or extended:
                    raise TarReadError("bad checksum in a header")
                self._buf, self._pos = block + self._buf[self._pos :], 0  # left for `rest`
                return None
            kind = block[156:157]
            size = _number(block[124:136])
            if kind in _LONG:
                value = _nts(self._extension(size))
                long_name, long_link = (value, long_link) if kind == b"L" else (long_name, value)
                extended = True
                continue
            if kind in _PAX:
                records = _pax(self._extension(size))
                (pax if kind == b"x" else self._global).update(records)
                extended = True
                continue
            return self._member(block, kind, size, {**self._global, **pax}, long_name, long_link)

    def _member(
        self,
        block: bytes,
        kind: bytes,
        size: int,
        pax: dict[str, str],
        long_name: str | None,
        long_link: str | None,
    ) -> Member:
        name = _nts(block[0:100])
        prefix = _nts(block[345:500]) if block[257:263] == b"ustar\0" else ""
        if prefix:
            name = prefix + "/" + name
        name = pax.get("path") or long_name or name
        link = pax.get("linkpath") or long_link or _nts(block[157:257])
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                raise TarReadError("invalid size in a pax header") from None
        if size < 0:
            raise TarReadError("negative size in a header")
        if kind == b"\0" and name.endswith("/"):
            kind = DIR
        if kind == DIR:
            name = name.rstrip("/")
        # As tarfile: only regular files and unknown types carry data blocks.
        carries = kind in REGULAR or kind not in _KNOWN
        self._pending = size + (-size % BLOCK) if carries else 0
        return Member(name, kind, size, link, self.offset)

    def __iter__(self) -> Iterator[Member]:
        while (member := self.next()) is not None:
            yield member
