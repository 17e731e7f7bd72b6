"""Token fingerprints that survive reformatting: winnowing over identifier and literal tokens.

A reformatter (prettier, an editor's re-indent) changes whitespace, quotes, semicolons, trailing
commas and line wrapping; it keeps the identifiers and literals in their order. So a file is read
as its sequence of identifier, number and string-literal tokens (string contents without their
quotes or escapes; comments and all punctuation dropped), every run of K tokens is hashed, and
winnowing (Schleimer, Wilkerson and Aiken, 2003) keeps the smallest hash of each window of W
consecutive hashes: any run of K + W - 1 tokens two files share yields a fingerprint both hold.

The leaked file's winnowed fingerprints (at most MAX_TOKENS tokens read) go into the manifest;
a candidate's file is hashed whole (every K-gram), and their similarity is the share of the
leaked file's fingerprints found in it: 1.0 for a reformatted copy, near 0 for a file that only
shares names and imports.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable

K = 5
W = 4
MAX_TOKENS = 4000
SIMILAR = 0.8  # a file this similar is the leaked file reformatted
MIN_FINGERPRINTS = 8  # fewer say too little to prove a file

_LEX = re.compile(
    rb"//[^\n]*|/\*.*?\*/"  # comments: dropped
    rb"|\"((?:[^\"\\\n]|\\.)*)\"|'((?:[^'\\\n]|\\.)*)'|`((?:[^`\\]|\\.)*)`"  # strings
    rb"|([A-Za-z_$][A-Za-z0-9_$]*|[0-9][0-9A-Za-z_.]*)",  # identifiers and numbers
    re.S,
)
_ESCAPED_QUOTE = re.compile(rb"\\([\"'`])")


def tokens(data: bytes, limit: int | None = None) -> list[bytes]:
    """Identifier, number and string tokens in order; strings tagged so `a` and "a" differ."""
    out: list[bytes] = []
    for m in _LEX.finditer(data):
        word = m[4]
        if word is not None:
            out.append(word)
        else:
            text = m[1] if m[1] is not None else m[2] if m[2] is not None else m[3]
            if text is None:
                continue  # a comment
            out.append(b'"' + _ESCAPED_QUOTE.sub(rb"\1", text))
        if limit is not None and len(out) >= limit:
            break
    return out


def kgram_hashes(toks: list[bytes]) -> list[int]:
    return [zlib.crc32(b"\0".join(toks[i : i + K])) for i in range(len(toks) - K + 1)]


def winnow(data: bytes) -> tuple[int, ...]:
    """The file's winnowed fingerprints, sorted (what the manifest keeps)."""
    hashes = kgram_hashes(tokens(data, MAX_TOKENS))
    if len(hashes) <= W:
        return tuple(sorted(set(hashes)))
    picked: set[int] = set()
    for start in range(len(hashes) - W + 1):
        window = hashes[start : start + W]
        picked.add(min(window))
    return tuple(sorted(picked))


def similarity(leaked: Iterable[int], data: bytes) -> float:
    """Share of the leaked file's fingerprints present anywhere in `data` (0.0 to 1.0)."""
    wanted = set(leaked)
    if len(wanted) < MIN_FINGERPRINTS:
        return 0.0
    present = set(kgram_hashes(tokens(data)))
    return len(wanted & present) / len(wanted)
