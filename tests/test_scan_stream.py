"""The scan's fast paths give what the plain ones give: ISA-L against zlib, scanner windows
against one pass, `translate`-and-`split` tokens against the regex they replace, and the map's
helper process gets exactly its share."""

from __future__ import annotations

import gzip
import os
import re
import sys
import threading
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playbook.config.settings import Settings
from playbook.core import guard
from playbook.errors import UnsafeArchive
from playbook.rehearsal.synth import make_package
from playbook.scan import Limits, findings_doc, fingerprint, scan_tarball, stream
from playbook.scan import worker as worker_module
from playbook.scan.detect import WindowScanner, checksummed_token, hosts_in, secrets_in
from playbook.scan.model import GUARD_LIMITS
from playbook.scan.sourcemap import Source
from playbook.scan.verdict import exposure, judge
from playbook.scan.work import HELPER_SLOTS, items, shares
from playbook.scan.worker import Helpers

TOKEN = checksummed_token("npm_", "Rk4Tq8Xw2Lm6Zp1Vb9Nc3Hd7Jf5Gs0")  # real format, not real
_REGEX_TOKENS = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][A-Za-z0-9]{11,}")


@pytest.fixture(params=["isal", "zlib"])
def inflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "zlib":
        monkeypatch.setattr(stream, "_gzip", zlib)
    else:
        assert stream._gzip is not zlib, "isal is a dependency: the fast inflater must be in use"
    return str(request.param)


def _crc_broken(data: bytes) -> bytes:
    return data[:-8] + bytes(b ^ 0xFF for b in data[-8:-4]) + data[-4:]


def test_both_inflaters_give_the_same_scan(inflater: str) -> None:
    data = make_package(
        "@acme/cli", "1.0.0", sources=40, first_party=15, with_map=True, secret=TOKEN
    )
    result = scan_tarball(data, package="@acme/cli", version="1.0.0")
    baseline = scan_tarball(gzip.decompress(data), package="@acme/cli", version="1.0.0")
    assert result.summary() == baseline.summary()  # the plain tar needs no inflater at all
    assert result.manifest == baseline.manifest
    assert [s.kind for s in result.secrets] == ["npm-token"]


@pytest.mark.parametrize("damage", ["crc", "length"])
def test_both_inflaters_check_the_gzip_trailer(inflater: str, damage: str) -> None:
    data = make_package("p", "1.0.0", sources=10, first_party=4, with_map=True)
    bad = _crc_broken(data) if damage == "crc" else data[:-4] + b"\x01\x00\x00\x00"
    with pytest.raises(UnsafeArchive) as err:
        scan_tarball(bad)
    assert "gzip" in str(err.value)


def test_quick_handoffs_restore_the_switch_interval_after_the_last_scan() -> None:
    before = sys.getswitchinterval()
    with stream.quick_handoffs():
        inner = sys.getswitchinterval()
        with stream.quick_handoffs():
            assert sys.getswitchinterval() == inner
        assert sys.getswitchinterval() == inner  # one scan still runs
    assert inner < before and sys.getswitchinterval() == before


def test_concurrent_scans_leave_the_switch_interval_as_they_found_it() -> None:
    before = sys.getswitchinterval()
    data = make_package("p", "1.0.0", sources=30, first_party=10, with_map=True, secret=TOKEN)
    found: list[int] = []

    def scan() -> None:
        found.append(len(scan_tarball(data).secrets))

    threads = [threading.Thread(target=scan) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == [1, 1, 1, 1] and sys.getswitchinterval() == before


@pytest.mark.parametrize("at", [0, 1, 17, 255, 256, 300])
def test_a_secret_across_a_window_edge_is_found_once(at: int) -> None:
    # A chunk bigger than a window is scanned window by window; place the token across an edge.
    edge = 1 << 18
    data = bytearray(b"x = 1;\n" * ((3 * edge) // 7))
    value = f' "{TOKEN}" "https://h.corp.internal/x" '.encode()
    pos = edge - at
    data[pos : pos + len(value)] = value
    scanner = WindowScanner()
    scanner.feed(bytes(data), final=True)
    whole = bytes(data)
    assert [(h.kind, h.value, h.pos) for h in scanner.secrets] == [
        (h.kind, h.value, h.pos) for h in secrets_in(whole)
    ]
    assert len(scanner.secrets) == 1
    assert [(h.value, h.pos) for h in scanner.hosts] == [(h.value, h.pos) for h in hosts_in(whole)]
    assert {h.value for h in scanner.hosts} == {b"h.corp.internal"}


_SEPARATORS = [" ", ".", "\n", "_", "$", '"', "é", "ß", "\u4e2d", "\ud800"]
# Alphanumeric runs of every length around the 12 that counts, digit-led ones among them.
_TEXT = st.lists(
    st.one_of(st.text(alphabet="aZq09", min_size=1, max_size=16), st.sampled_from(_SEPARATORS)),
    max_size=60,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=_TEXT, head=st.integers(min_value=0, max_value=420))
def test_tokens_are_the_regex_tokens(text: str, head: int) -> None:
    top = text[:head].encode("utf-8", "surrogatepass")
    assert fingerprint.tokens(top) == set(_REGEX_TOKENS.findall(text, 0, head))


def test_the_helper_is_started_at_the_bundle_and_given_the_big_map_only() -> None:
    helpers = Helpers(threshold=1000)
    try:
        assert helpers.tee("dist/small.js", 10) is None and not helpers._started
        assert helpers.tee("dist/index.js", 600) is None  # a big bundle: started, not teed
        assert len(helpers._started) == 1
        assert helpers.tee("dist/other.js.map", 999) is None  # not big enough to share
        worker = helpers.tee("dist/index.js.map", 5000)
        assert worker is helpers._started[0]
        assert helpers.tee("dist/second.js.map", 5000) is None  # one helper per scan
        assert len(helpers._started) == 1
    finally:
        helpers.close()
    assert Helpers(threshold=0).tee("dist/index.js.map", 1 << 30) is None


@pytest.mark.parametrize("step", [3, 4093, None])
def test_shares_are_written_whole_through_partial_writes(
    step: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.writev

    def short_writev(fd: int, buffers: list[memoryview]) -> int:
        """At most `step` bytes per call, as a signal arriving mid-write could cause."""
        assert step is not None
        front, room = [], step
        for buf in buffers:
            front.append(buf[:room])
            room -= len(front[-1])
            if not room:
                break
        return real(fd, front)

    if step is not None:
        monkeypatch.setattr(os, "writev", short_writev)
    count = 300 if step == 3 else 2500  # more than one writev's 1,024 buffers
    blobs = [bytes([i % 251]) * (i * 37 % 500) for i in range(count)]
    read_fd, write_fd = os.pipe()
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(_read_all(read_fd)))
    reader.start()
    worker_module._write_all(write_fd, blobs)
    os.close(write_fd)
    reader.join()
    os.close(read_fd)
    assert got == [b"".join(blobs)]


def _read_all(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, 1 << 16):
        parts.append(chunk)
    return b"".join(parts)


def test_the_helpers_share_and_the_rest_are_every_source_once() -> None:
    sources = tuple(
        Source(f"../s{i}.ts", f"s{i}.ts", None if i % 7 == 3 else f"x{i}", i % 3 != 0)
        for i in range(400)
    )
    everything = [i.index for i in items(sources, 64)]
    helpers_share, rest = shares(items(sources, 64))
    theirs = [i.index for i in helpers_share]
    mine = [i.index for i in rest]
    assert sorted(theirs + mine) == everything and not set(theirs) & set(mine)
    carrying = len(everything)
    assert abs(len(theirs) - carrying * HELPER_SLOTS / 20) <= 1  # spread evenly, as promised
    # Interleaved: each stretch of 20 sources gives the helper its slots, not a block of them.
    assert all(sum(i in theirs for i in everything[k : k + 20]) == HELPER_SLOTS for k in (0, 100))


@pytest.mark.parametrize("share", [0, 1], ids=["one-process", "with-helper"])
def test_the_guards_scan_finds_what_the_full_scan_finds_without_the_fingerprints(
    share: int,
) -> None:
    data = make_package(
        "@acme/cli", "2.1.88", sources=60, first_party=24, with_map=True, secret=TOKEN
    )
    full = scan_tarball(data, package="@acme/cli", version="2.1.88", limits=Limits())
    guard = scan_tarball(
        data, package="@acme/cli", version="2.1.88",
        limits=replace(GUARD_LIMITS, parallel_map_bytes=share),
    )  # fmt: skip
    assert findings_doc(guard) == findings_doc(full) and guard.secrets
    assert exposure(guard) == exposure(full)
    assert judge(guard, None) == judge(full, None)
    assert [(f.path, f.size, f.lines, f.map) for f in guard.manifest] == [
        (f.path, f.size, f.lines, f.map) for f in full.manifest
    ]
    assert {(f.blob_sha1, f.sha256, f.norm_sha256, f.winnow) for f in guard.manifest} == {
        ("", "", "", ())
    }
    assert not guard.identifiers and not guard.paths
    assert full.identifiers and all(f.blob_sha1 for f in full.manifest)


def test_respond_scan_of_a_tarball_computes_no_fingerprints(tmp_path: Path) -> None:
    tarball = tmp_path / "acme-cli-2.1.88.tgz"
    tarball.write_bytes(
        make_package("@acme/cli", "2.1.88", sources=20, first_party=8, with_map=True)
    )
    guarded = guard(Settings(home=tmp_path / "home", cwd=tmp_path), str(tarball), no_baseline=True)
    assert guarded.result.manifest and not guarded.result.identifiers
    assert {f.blob_sha1 for f in guarded.result.manifest} == {""}
