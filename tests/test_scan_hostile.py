"""Hostile archives end in a clear error or a bounded partial result, and nothing touches disk."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playbook.errors import RespondError, UnsafeArchive
from playbook.rehearsal.synth import make_package
from playbook.scan import Limits, scan_tarball
from playbook.scan.detect import checksummed_token

TOKEN = checksummed_token("npm_", "Rk4Tq8Xw2Lm6Zp1Vb9Nc3Hd7Jf5Gs0")  # real format, not real


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data)
    return info, data


def tgz(*members: tuple, fmt: int = tarfile.GNU_FORMAT) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return raw.getvalue()


SECRET_FILE = member("package/lib/conf.js", f'token = "{TOKEN}"\n'.encode())


@pytest.fixture(autouse=True)
def _in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test runs in an empty folder that must stay empty: the scan writes nothing."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work
    assert list(work.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("package/../../escaped.txt", "'..'"),
        ("../escaped.txt", "'..'"),
        ("/tmp/respond-absolute-escape.txt", "absolute"),
        ("package\\..\\..\\escaped.txt", "'..'"),
        ("C:/Windows/escaped.txt", "absolute"),
    ],
)
def test_paths_that_climb_out_are_refused_and_the_rest_scanned(name: str, reason: str) -> None:
    result = scan_tarball(tgz(member(name, b"pwned\n"), SECRET_FILE))
    assert [r.path for r in result.rejected] == [name]
    assert reason in result.rejected[0].reason
    assert result.partial and result.leaky
    assert [s.file for s in result.secrets] == ["lib/conf.js"]
    assert not Path("/tmp/respond-absolute-escape.txt").exists()


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (member("package/link", kind=tarfile.SYMTYPE, link="/etc/passwd"), "symbolic link"),
        (member("package/hard", kind=tarfile.LNKTYPE, link="/etc/passwd"), "hard link"),
        (member("package/tty", kind=tarfile.CHRTYPE), "device"),
        (member("package/disk", kind=tarfile.BLKTYPE), "device"),
        (member("package/pipe", kind=tarfile.FIFOTYPE), "fifo"),
    ],
)
def test_links_and_devices_are_never_followed(entry: tuple, reason: str) -> None:
    # The classic escape: a link, then a file "through" it.
    through = member(entry[0].name + "/passwd", b"root:x:0:0\n")
    result = scan_tarball(tgz(entry, through, SECRET_FILE))
    assert reason in result.rejected[0].reason
    assert [s.file for s in result.secrets] == ["lib/conf.js"]
    assert "root:x" not in json.dumps(result.summary())


def test_gzip_bomb_stops_at_the_total_cap() -> None:
    bomb = member("package/zeros.bin", bytes(64 << 20))
    data = tgz(SECRET_FILE, bomb)
    assert len(data) < 200_000
    result = scan_tarball(data, limits=Limits(max_total_bytes=8 << 20))
    assert result.partial and any("total cap" in n or "expands past" in n for n in result.notes)
    assert [s.file for s in result.secrets] == ["lib/conf.js"]


def test_a_bomb_in_the_gzip_stream_itself_stops_while_inflating() -> None:
    # A small valid package, then a second gzip member inflating to 64 MiB of zeros.
    body = tgz(SECRET_FILE)
    tail = zlib.compressobj(1, zlib.DEFLATED, 31)
    zeros = b"".join(tail.compress(bytes(1 << 20)) for _ in range(64)) + tail.flush()
    result = scan_tarball(body + zeros, limits=Limits(max_total_bytes=4 << 20))
    assert result.partial and any("expands past" in n for n in result.notes)


def test_too_many_entries_gives_a_partial_result() -> None:
    many = [member(f"package/f{i}.txt", b"x") for i in range(300)]
    result = scan_tarball(tgz(SECRET_FILE, *many), limits=Limits(max_entries=100))
    assert result.partial and result.files == 100
    assert any("100 entries" in n for n in result.notes)


def _million_headers() -> Iterator[bytes]:
    header = tarfile.TarInfo("package/e").tobuf(tarfile.USTAR_FORMAT)
    gz = zlib.compressobj(1, zlib.DEFLATED, 31)
    block = header * 10_000
    for _ in range(100):
        yield gz.compress(block)
    yield gz.compress(bytes(1024)) + gz.flush()


@pytest.mark.slow
def test_a_million_entries_stop_at_the_default_cap() -> None:
    data = b"".join(_million_headers())
    result = scan_tarball(data)
    assert result.partial and result.files == Limits().max_entries


def test_single_file_over_the_cap_is_skipped_and_said() -> None:
    big = member("package/big.js", b"a" * 10_000)
    result = scan_tarball(tgz(big, SECRET_FILE), limits=Limits(max_file_bytes=1000))
    assert result.partial and "single-file cap" in result.rejected[0].reason
    assert [s.file for s in result.secrets] == ["lib/conf.js"]


def _raw_tar(*members: tuple) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def test_size_that_lies_larger_is_a_clear_error() -> None:
    raw = bytearray(_raw_tar(member("package/a.js", b"x" * 100)))
    raw[124:136] = b"%011o\0" % (1 << 30)  # size field: 1 GiB, data is 100 bytes
    raw[148:156] = b"        "
    raw[148:155] = b"%06o\0" % sum(raw[:512])
    with pytest.raises(UnsafeArchive, match="cannot be read as a tar stream"):
        scan_tarball(gzip.compress(bytes(raw[:2048])))


def test_size_that_lies_smaller_is_partial() -> None:
    raw = bytearray(_raw_tar(member("package/a.js", b"x" * 2000), SECRET_FILE))
    raw[124:136] = b"%011o\0" % 10
    raw[148:156] = b"        "
    raw[148:155] = b"%06o\0" % sum(raw[:512])
    result = scan_tarball(gzip.compress(bytes(raw)))
    assert result.partial and any("follows the end" in n for n in result.notes)


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.999])
def test_truncated_gzip_is_a_clear_error(cut: float) -> None:
    data = make_package("p", "1.0.0", sources=20, first_party=8, with_map=True)
    with pytest.raises(UnsafeArchive) as err:
        scan_tarball(data[: int(len(data) * cut)])
    assert "truncated" in str(err.value) or "tar stream" in str(err.value)
    assert err.value.hint


@pytest.mark.parametrize("data", [b"", b"hello world", os.urandom(4096), b"\x1f\x8b" + bytes(50)])
def test_garbage_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(UnsafeArchive):
        scan_tarball(data)


def test_plain_tar_is_read_too() -> None:
    result = scan_tarball(_raw_tar(SECRET_FILE))
    assert [s.kind for s in result.secrets] == ["npm-token"]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2, 3]", b'{"sources": 5, "sourcesContent": "x"}', b"\xff\xfe\x00garbage"],
)
def test_broken_maps_are_recorded_not_raised(body: bytes) -> None:
    result = scan_tarball(
        tgz(member("package/a.js.map", body + b" " + TOKEN.encode()), SECRET_FILE)
    )
    info = result.sourcemaps[0]
    assert info.with_content == 0
    assert {s.file for s in result.secrets} == {"lib/conf.js", "a.js.map"}


def test_map_with_a_million_sources_is_bounded() -> None:
    doc = {"sources": [f"s{i}" for i in range(1_000_000)], "sourcesContent": None}
    body = json.dumps(doc).encode()
    result = scan_tarball(tgz(member("package/a.js.map", body)))
    assert result.partial and result.sourcemaps[0].sources == Limits().max_map_sources
    assert any("only the first" in n for n in result.notes)


def test_non_utf8_content_is_read_with_replacement() -> None:
    source = f'const a = "@@";\nconst t = "{TOKEN}";\n'
    doc = {"sources": ["../src/x.ts"], "sourcesContent": [source]}
    body = json.dumps(doc).encode().replace(b"@@", b"\xff\xfe")
    text = member("package/latin1.txt", b"caf\xe9 " + TOKEN.encode() + b"\n")
    result = scan_tarball(tgz(member("package/a.js.map", body), text))
    assert {(s.file, s.line) for s in result.secrets} == {("src/x.ts", 2), ("latin1.txt", 1)}
    assert result.manifest[0].path == "src/x.ts"


def test_index_map_sections_are_read() -> None:
    inner = {"sources": ["../src/a.ts"], "sourcesContent": [f'x = "{TOKEN}"']}
    doc = {"version": 3, "sections": [{"offset": {"line": 0, "column": 0}, "map": inner}] * 2}
    result = scan_tarball(tgz(member("package/a.js.map", json.dumps(doc).encode())))
    assert result.sourcemaps[0].sections == 2 and result.sourcemaps[0].with_content == 2
    assert [(s.file, s.line) for s in result.secrets] == [("src/a.ts", 1)]


def test_map_source_paths_never_escape() -> None:
    sources = ["../../../../etc/passwd", "/abs/path.ts", "webpack:///./src/a.ts", "C:\\x\\b.ts", ""]
    doc = {"sources": sources, "sourcesContent": ["1", "2", "3", "4", "5"]}
    result = scan_tarball(tgz(member("package/a.js.map", json.dumps(doc).encode())))
    paths = [f.path for f in result.manifest]
    assert paths == ["etc/passwd", "abs/path.ts", "src/a.ts", "x/b.ts", "unnamed-source-4"]


def test_bomb_memory_stays_bounded(tmp_path: Path) -> None:
    """Peak RSS of a scan of a 1 GiB bomb (default caps) stays far below the bomb's size."""
    bomb = tmp_path / "bomb.tgz"
    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    header = tarfile.TarInfo("package/zeros")
    header.size = 1 << 30
    with bomb.open("wb") as out:
        out.write(gz.compress(header.tobuf(tarfile.USTAR_FORMAT)))
        for _ in range(1024):
            out.write(gz.compress(bytes(1 << 20)))
        out.write(gz.flush())
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking pytest process.
    code = (
        "import re, sys; from pathlib import Path; from playbook.scan import Limits, scan_tarball;"
        "r = scan_tarball(Path(sys.argv[1]), limits=Limits(max_total_bytes=256<<20));"
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1);"
        "print(int(r.partial), hwm)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert out[0] == "1"
    assert int(out[1]) < 150_000  # KiB


def _mutations() -> st.SearchStrategy[bytes]:
    base = make_package("p", "1.0.0", sources=6, first_party=3, with_map=True, secret=TOKEN)
    raw = gzip.decompress(base)

    def flip(data: bytes, edits: list[tuple[int, int]]) -> bytes:
        buf = bytearray(data)
        for pos, value in edits:
            buf[pos % len(buf)] = value
        return bytes(buf)

    edits = st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(0, 255)), max_size=8)
    return st.one_of(
        st.binary(max_size=2048),
        st.builds(flip, st.just(base), edits),
        st.builds(lambda d, e: gzip.compress(flip(d, e)), st.just(raw), edits),
        st.builds(lambda n: base[:n], st.integers(0, len(base))),
        st.builds(lambda n: gzip.compress(raw[:n]), st.integers(0, len(raw))),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_scan_raises_nothing_but_respond_errors(data: bytes) -> None:
    try:
        result = scan_tarball(data, limits=Limits(max_total_bytes=16 << 20))
    except RespondError as exc:
        assert exc.message and exc.hint
        return
    assert TOKEN not in repr(result)
