"""Per-source work on a decoded map (hashes, tokens, generic secrets, hit locations), shareable.

`process` runs in the scanning process and in the helper process (`worker`), which takes a share
of a big map's sources (`shares`); both sides cross the pipe as msgspec structs (`Item` there,
`Row` back). Secrets come back only redacted, with digests of their tokens (to keep them out of
the identifier queries).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from queue import SimpleQueue
from typing import TYPE_CHECKING

import msgspec

from playbook.scan import fingerprint as fp
from playbook.scan.detect import Hit, generic_in, hosts_in, redact, secrets_in
from playbook.scan.winnow import MIN_BYTES, winnow

if TYPE_CHECKING:
    from playbook.scan.sourcemap import Source

# Sources adding up to this many bytes are hashed on a thread beside the tokenizing (`_Digests`).
_THREAD_BYTES = 1 << 20
# Beyond this many distinct hits in one map, scan each source instead of searching per hit.
_LOCATE_BY_VALUE = 16
WINNOWED = 48  # first-party files of a map whose token fingerprints the manifest carries
# Of every 20 sources of a big map, the helper process takes this many (`worker`): a little less
# than half, as it also scans the raw map and gets its share last (9 against 10: 1.12 s against
# 1.17 s, median of 8 runs each).
HELPER_SLOTS = 9


class Found(msgspec.Struct, array_like=True, frozen=True):
    """A secret pinned to a file and line, already redacted."""

    kind: str
    path: str
    line: int
    redacted: str
    digests: list[bytes]


class Item(msgspec.Struct, array_like=True, frozen=True):
    """One source with content, as `process` needs it (what a helper is sent)."""

    index: int
    path: str
    first_party: bool
    winnow: bool  # one of the spread few whose token fingerprints the manifest keeps
    head: bytes  # the first `identifier_head_chars` characters, where the tokens are taken
    data: bytes  # UTF-8, lone surrogates passed through


class Row(msgspec.Struct, array_like=True, frozen=True):
    """What one source with content yields."""

    index: int
    size: int
    lines: int
    sha1: str
    sha256: str
    norm: str
    tokens: list[str]
    generic: list[Found]
    winnow: list[int] = []  # token fingerprints, for the files `winnowed` picks


def found(kind: str, path: str, line: int, value: bytes) -> Found:
    return Found(kind, path, line, redact(value), sorted(fp.token_digests(value)))


def line(data: bytes | str, pos: int) -> int:
    return data.count(b"\n" if isinstance(data, bytes) else "\n", 0, pos) + 1  # type: ignore[arg-type]


class _Digests:
    """Each source's git blob SHA-1 and SHA-256, and the SHA-256 of its whitespace-free form.

    For a big map they are computed on a thread beside the tokenizing (hashlib lets go of the GIL
    while it digests): the sources are known up front, the squeezed forms are handed over as the
    tokenizing makes them. Not for a small map (most library maps): a thread per map cost more
    than the hashing (9,000-file package with 450 small maps: 2.3 s of thread start and join on a
    loaded machine).
    """

    def __init__(self, datas: list[bytes]) -> None:
        self.plain: list[tuple[str, str]] = []
        self.norm: dict[int, str] = {}
        self._squeezed: SimpleQueue[tuple[int, bytes] | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        if sum(map(len, datas)) >= _THREAD_BYTES:
            self._thread = threading.Thread(target=self._run, args=(datas,), name="respond-hash")
            self._thread.start()
        else:
            self.plain = [_plain(data) for data in datas]

    def _run(self, datas: list[bytes]) -> None:
        self.plain = [_plain(data) for data in datas]
        while (item := self._squeezed.get()) is not None:
            self.norm[item[0]] = hashlib.sha256(item[1]).hexdigest()

    def squeezed(self, slot: int, data: bytes) -> None:
        if self._thread is None:
            self.norm[slot] = hashlib.sha256(data).hexdigest()
        else:
            self._squeezed.put((slot, data))

    def finish(self) -> None:
        if self._thread is not None:
            self._squeezed.put(None)
            self._thread.join()


def _plain(data: bytes) -> tuple[str, str]:
    return fp.blob_sha1(data), hashlib.sha256(data).hexdigest()


def winnowed(sources: Sequence[Source]) -> frozenset[int]:
    """The first-party sources whose token fingerprints the manifest keeps: at most WINNOWED,
    evenly spread, the same in every process that reads a share of the map."""
    first = [
        i
        for i, s in enumerate(sources)
        if s.first_party and s.content is not None and len(s.content) >= MIN_BYTES
    ]
    return frozenset(first[:: max(1, -(-len(first) // WINNOWED))])


def items(sources: Sequence[Source], head: int) -> list[Item]:
    """The sources that carry content, ready for `process` here or in a helper."""
    chosen = winnowed(sources)
    return [
        Item(i, src.path, src.first_party, i in chosen, _utf8(text[:head]), _utf8(text))
        for i, src in enumerate(sources)
        if (text := src.content) is not None
    ]


def shares(todo: list[Item]) -> tuple[list[Item], list[Item]]:
    """(the helper's, the scanner's): HELPER_SLOTS of every 20 to the helper, spread evenly, as
    a map lists its first-party sources, which cost more, before node_modules."""
    theirs = [item for n, item in enumerate(todo) if n * HELPER_SLOTS % 20 < HELPER_SLOTS]
    mine = [item for n, item in enumerate(todo) if n * HELPER_SLOTS % 20 >= HELPER_SLOTS]
    return theirs, mine


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def process(todo: Sequence[Item], fingerprints: bool = True) -> list[Row]:
    """A row per item.

    Every source gets its lines, and with `fingerprints` its hashes and head tokens. First-party
    sources also get the generic secret rule, and with `fingerprints` the whitespace-free hash
    (what verification compares a reformatted copy with) and for a spread few the token
    fingerprints; node_modules sources are public library code, never evidence, and their test
    keys are noise.
    """
    if not fingerprints:  # the guard's rows: lines and generic secrets
        return [
            Row(i.index, len(i.data), fp.count_lines(i.data), "", "", "", [], _generic(i))
            for i in todo
        ]
    digests = _Digests([item.data for item in todo])
    rows: list[tuple[int, tuple[list[str], list[Found], list[int]]]] = []
    try:
        for slot, item in enumerate(todo):
            prints: list[int] = []
            if item.first_party:
                digests.squeezed(slot, fp.squeeze(item.data))
                if item.winnow:
                    prints = list(winnow(item.data))
            toks = list(fp.tokens(item.head))
            rows.append((fp.count_lines(item.data), (toks, _generic(item), prints)))
    finally:
        digests.finish()
    return [
        Row(item.index, len(item.data), lines, sha1, sha256, digests.norm.get(slot, ""), *more)
        for slot, (item, (lines, more), (sha1, sha256)) in enumerate(
            zip(todo, rows, digests.plain, strict=True)
        )
    ]


def _generic(item: Item) -> list[Found]:
    """The generic secret rule, for first-party sources only."""
    if not item.first_party:
        return []
    data = item.data
    return [found(h.kind, item.path, line(data, h.pos), h.value) for h in generic_in(data)]


def locate(
    owner: str, data: bytes, hits: Sequence[Hit], sources: Sequence[Source]
) -> tuple[list[Found], list[str]]:
    """Pin each raw hit of a map to a reconstructed source and line (else to the map itself)."""
    values = sorted({(h.kind, h.value) for h in hits})
    if len(values) > _LOCATE_BY_VALUE:
        return _rescan(sources)
    out = []
    for kind, value in values:
        text = value.decode("ascii", "replace")
        holders = [s for s in sources if s.content is not None and text in s.content]
        for src in holders:
            assert src.content is not None
            pos = src.content.find(text)
            while pos >= 0:
                out.append(found(kind, src.path, line(src.content, pos), value))
                pos = src.content.find(text, pos + 1)
        if not holders:
            out.append(found(kind, owner, line(data, max(data.find(value), 0)), value))
    return out, []


def _rescan(sources: Sequence[Source]) -> tuple[list[Found], list[str]]:
    out, hosts = [], []
    for src in sources:
        if src.content is None:
            continue
        data = src.content.encode("utf-8", "surrogatepass")
        out += [found(h.kind, src.path, line(data, h.pos), h.value) for h in secrets_in(data)]
        hosts += [h.value.decode("ascii", "replace") for h in hosts_in(data)]
    return out, hosts
