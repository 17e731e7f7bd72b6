"""The hand-written tar reader sees what `tarfile` sees, in every format npm or a tool may write."""

from __future__ import annotations

import io
import tarfile

import pytest

from playbook.scan.tarstream import TarReader, TarReadError

LONG = "package/" + "/".join(f"dir{i:02d}-with-a-long-name" for i in range(8)) + "/é-file.js"


def _archive(fmt: int, members: list[tuple[str, bytes, bytes, str]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        for name, kind, data, link in members:
            info = tarfile.TarInfo(name)
            info.type, info.size, info.linkname = kind, len(data), link
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return raw.getvalue()


MEMBERS = [
    ("package/package.json", tarfile.REGTYPE, b'{"name": "x"}', ""),
    ("package/lib", tarfile.DIRTYPE, b"", ""),
    (LONG, tarfile.REGTYPE, b"x" * 1500, ""),
    ("package/link", tarfile.SYMTYPE, b"", "../" * 60 + "etc/passwd"),
    ("package/" + "p" * 120 + "/short.js", tarfile.REGTYPE, b"", ""),  # ustar prefix field
]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_reader_agrees_with_tarfile(fmt: int) -> None:
    members = MEMBERS if fmt != tarfile.USTAR_FORMAT else [m for m in MEMBERS if m[0] != LONG]
    if fmt == tarfile.USTAR_FORMAT:
        members = [m for m in members if len(m[3]) < 100]
    raw = _archive(fmt, members)
    expected = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r|") as tar:
        for info in tar:
            body = tar.extractfile(info).read() if info.isreg() else b""  # type: ignore[union-attr]
            expected.append((info.name, info.type, info.size, info.linkname, body))
    got = []
    reader = TarReader(io.BytesIO(raw))
    while (member := reader.next()) is not None:
        body = b"".join(reader.data(member.size, 7)) if member.isreg() else b""
        got.append((member.name, member.type, member.size, member.linkname, body))
    assert got == expected
    assert len(got) == len(members)


def test_base256_size_is_read() -> None:
    raw = bytearray(_archive(tarfile.USTAR_FORMAT, [("package/a", tarfile.REGTYPE, b"abc", "")]))
    raw[124:136] = b"\x80" + (3).to_bytes(11, "big")
    raw[148:156] = b"        "
    raw[148:155] = b"%06o\0" % sum(raw[:512])
    reader = TarReader(io.BytesIO(bytes(raw)))
    member = reader.next()
    assert member is not None and member.size == 3
    assert b"".join(reader.data(3, 1024)) == b"abc"


@pytest.mark.parametrize("raw", [b"", b"x" * 100, b"y" * 512])
def test_a_bad_start_is_an_error(raw: bytes) -> None:
    with pytest.raises(TarReadError):
        TarReader(io.BytesIO(raw)).next()


def test_a_pax_header_with_nothing_after_it_is_an_error() -> None:
    raw = _archive(tarfile.PAX_FORMAT, [(LONG, tarfile.REGTYPE, b"x", "")])
    with pytest.raises(TarReadError):
        TarReader(io.BytesIO(raw[:1024])).next()
