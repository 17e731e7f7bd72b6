"""Token fingerprints that survive reformatting: winnowing over identifier and literal tokens.

A reformatter (prettier, an editor's re-indent) changes whitespace, quotes, semicolons, trailing
commas and line wrapping; it keeps the identifiers and literals in their order. So a file is read
as its sequence of identifier, number and string-literal tokens (string contents without their
quotes or escapes; comments and all punctuation dropped), every run of K tokens is hashed, and
winnowing (Schleimer, Wilkerson and Aiken, 2003) keeps the smallest hash of each window of W
consecutive hashes: any run of K + W - 1 tokens two files share yields a fingerprint both hold.

The leaked file's winnowed fingerprints (its first MAX_BYTES) go into the manifest;
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
MAX_BYTES = 8 * 1024  # of each leaked file, fingerprinted for the manifest
SIMILAR = 0.8  # a file this similar is the leaked file reformatted
MIN_FINGERPRINTS = 8  # fewer say too little to prove a file
MIN_BYTES = 64  # a leaked file shorter than this is not fingerprinted for the manifest

_LEX = re.compile(
    rb"(//[^\n]*|/\*.*?\*/)"  # comments: dropped
    rb"|\"([^\"\\\n]*(?:\\.[^\"\\\n]*)*)\""  # strings, in each kind of quotes
    rb"|'([^'\\\n]*(?:\\.[^'\\\n]*)*)'"
    rb"|`([^`\\]*(?:\\.[^`\\]*)*)`"
    rb"|([A-Za-z_$][A-Za-z0-9_$]*|[0-9][0-9A-Za-z_.]*)",  # identifiers and numbers
    re.S,
)
_ESCAPED_QUOTE = re.compile(rb"\\([\"'`])")


def tokens(data: bytes) -> list[bytes]:
    """Identifier, number and string tokens in order; strings tagged so `a` and "a" differ."""
    out: list[bytes] = []
    for comment, double, single, backtick, word in _LEX.findall(data):
        if word:
            out.append(word)
        elif not comment:  # a string literal, maybe empty
            out.append(b'"' + _ESCAPED_QUOTE.sub(rb"\1", double or single or backtick))
    return out


def kgram_hashes(toks: list[bytes]) -> list[int]:
    return [zlib.crc32(b"\0".join(toks[i : i + K])) for i in range(len(toks) - K + 1)]


def winnow(data: bytes) -> tuple[int, ...]:
    """The winnowed fingerprints of the file's first MAX_BYTES, sorted (what the manifest keeps)."""
    hashes = kgram_hashes(tokens(data[:MAX_BYTES]))
    if len(hashes) <= W:
        return tuple(sorted(set(hashes)))
    windows = zip(*(hashes[i : len(hashes) - W + 1 + i] for i in range(W)), strict=True)
    return tuple(sorted({min(window) for window in windows}))


def similarity(leaked: Iterable[int], data: bytes) -> float:
    """Share of the leaked file's fingerprints present anywhere in `data` (0.0 to 1.0)."""
    wanted = set(leaked)
    if len(wanted) < MIN_FINGERPRINTS:
        return 0.0
    present = set(kgram_hashes(tokens(data)))
    return len(wanted & present) / len(wanted)
