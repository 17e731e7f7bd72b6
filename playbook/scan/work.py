"""Per-source work on a decoded map (hashes, tokens, generic secrets, hit locations), shareable.

The same functions run in the scanning process and in the helper process (`worker`), which takes
half of a big map's sources; results cross the pipe as msgspec structs. Secrets cross it only
redacted, with digests of their tokens (to keep them out of the identifier queries).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import msgspec

from playbook.scan import fingerprint as fp
from playbook.scan.detect import Hit, generic_in, hosts_in, redact, secrets_in
from playbook.scan.sourcemap import Source
from playbook.scan.winnow import MIN_BYTES, winnow

# Sources adding up to this many bytes are hashed on a thread beside the tokenizing.
_THREAD_BYTES = 1 << 20
# Beyond this many distinct hits in one map, scan each source instead of searching per hit.
_LOCATE_BY_VALUE = 16
WINNOWED = 48  # first-party files of a map whose token fingerprints the manifest carries


class Found(msgspec.Struct, array_like=True, frozen=True):
    """A secret pinned to a file and line, already redacted."""

    kind: str
    path: str
    line: int
    redacted: str
    digests: list[bytes]


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


class MapWork(msgspec.Struct, frozen=True):
    """A helper process's share of one map."""

    rows: list[Row] = []
    located: list[Found] = []
    hosts: list[str] = []
    error: str | None = None
    rss_kib: int = 0


def found(kind: str, path: str, line: int, value: bytes) -> Found:
    return Found(kind, path, line, redact(value), sorted(fp.token_digests(value)))


def line(data: bytes | str, pos: int) -> int:
    return data.count(b"\n" if isinstance(data, bytes) else "\n", 0, pos) + 1  # type: ignore[arg-type]


def _digest_all(datas: list[bytes]) -> list[tuple[str, str, str, int]]:
    return [(*fp.hashes(data), fp.count_lines(data)) for data in datas]


def winnowed(sources: Sequence[Source]) -> frozenset[int]:
    """The first-party sources whose token fingerprints the manifest keeps: at most WINNOWED,
    evenly spread, the same in every process that reads a share of the map."""
    first = [
        i
        for i, s in enumerate(sources)
        if s.first_party and s.content is not None and len(s.content) >= MIN_BYTES
    ]
    return frozenset(first[:: max(1, -(-len(first) // WINNOWED))])


def process(sources: Sequence[Source], indices: Sequence[int], head: int) -> list[Row]:
    """Rows for the sources at `indices` that carry content."""
    todo = [
        (i, sources[i], sources[i].content.encode("utf-8", "surrogatepass"))  # type: ignore[union-attr]
        for i in indices
        if sources[i].content is not None
    ]
    # Hashing runs beside the tokenizing: hashlib lets go of the GIL while it digests. Not for a
    # small map (most library maps): a thread per map cost more than the hashing (9,000-file
    # package with 450 small maps: 2.3 s of thread start and join on a loaded machine).
    hashed: list[tuple[str, str, str, int]] = []
    datas = [data for _, _, data in todo]
    thread = None
    if sum(map(len, datas)) >= _THREAD_BYTES:
        thread = threading.Thread(
            target=lambda: hashed.extend(_digest_all(datas)), name="respond-hash"
        )
        thread.start()
    else:
        hashed = _digest_all(datas)
    chosen = winnowed(sources)
    try:
        extra = [_tokens_and_generic(src, data, head) for _, src, data in todo]
        prints = [list(winnow(data)) if i in chosen else [] for i, _, data in todo]
    finally:
        if thread is not None:
            thread.join()
    return [
        Row(i, len(data), lines, sha1, sha256, norm, toks, gen, wn)
        for (i, _, data), (sha1, sha256, norm, lines), (toks, gen), wn in zip(
            todo, hashed, extra, prints, strict=True
        )
    ]


def _tokens_and_generic(src: Source, data: bytes, head: int) -> tuple[list[str], list[Found]]:
    assert src.content is not None
    toks = sorted(fp.tokens(src.content, head))
    if not src.first_party:
        return toks, []  # library code: public, and its test keys are noise
    gen = [found(h.kind, src.path, line(data, h.pos), h.value) for h in generic_in(data)]
    return toks, gen


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
