"""What counts as a secret, a sensitive file or an internal host, and how a secret is redacted.

Candidate patterns start with one byte the regex engine skips to at memchr speed (`A`, `_`, `-`):
three such passes cost ~55 ms per 60 MB, where one alternation over all kinds costs ~1.2 s. A check
of what surrounds each match then decides the kind and rejects the middle of longer tokens.
Raw bytes are scanned in windows as they stream out of the archive; a source map's raw JSON is
scanned the same way, which works because JSON leaves ASCII tokens unescaped, and each hit is then
located in the reconstructed sources.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_WORD = _ALNUM | frozenset(b"_")
# Longest candidate a pattern can match; windows overlap by this much so nothing is cut in two.
MAX_MATCH = 512


@dataclass(frozen=True)
class Hit:
    """A raw match in a byte buffer. `value` never leaves this module unredacted in a result."""

    kind: str
    value: bytes
    pos: int


def redact(value: bytes | str) -> str:
    """First four characters, an ellipsis and the length: enough to recognise, not to use."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return f"{text[:4]}…[{len(text)}]"


def _entropy(value: bytes) -> float:
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _bounded(buf: bytes, start: int, end: int, word: frozenset[int] = _WORD) -> bool:
    """True when the match is not the middle of a longer token.

    A letter right after a backslash (`\\n`, `\\t` in a map's raw JSON) is an escape, so a boundary.
    """
    before = buf[start - 1] if start > 0 else 0
    after = buf[end] if end < len(buf) else 0
    escaped = start > 1 and buf[start - 2] == 0x5C
    return (before not in word or escaped) and after not in word


_BASE62 = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Strings documentation puts where a key goes; a value holding one is an example, not a secret.
_PLACEHOLDER = re.compile(
    rb"(?i)example|xxxx|\*\*\*\*|\.\.\.|<[a-z _-]*>|your[_-]?|placeholder|dummy|sample|fake"
    rb"|redacted|changeme|insert|replace|secret_?here|token_?here|key_?here|test_?key"
    rb"|(.)\1{5}|abcdefgh|0123456|1234567"
)


def is_placeholder(value: bytes) -> bool:
    """Documentation stand-ins: EXAMPLE, xxxx, <your-token>, six equal characters, abcdefgh..."""
    return _PLACEHOLDER.search(value) is not None


def _varied(value: bytes, least: int) -> bool:
    """Random key material uses many distinct characters; `AKIAAAAABBBB...` does not."""
    return len(set(value)) >= least


def base62_crc32(body: bytes) -> bytes:
    """The 6-character checksum GitHub and npm append to their tokens: base62 of CRC32(body)."""
    n = zlib.crc32(body)
    out = bytearray()
    while n:
        n, digit = divmod(n, 62)
        out.append(_BASE62[digit])
    return bytes(reversed(out)).rjust(6, b"0")


def checksummed_token(prefix: str, body: str) -> str:
    """A token in GitHub's and npm's format (`ghp_`, `npm_`: 30 characters and their checksum).

    For tests and rehearsals: a fake that the detector takes for real. Never a live credential.
    """
    raw = body.encode("ascii")
    if len(raw) != 30 or not raw.isalnum():
        raise ValueError("a token body is 30 ASCII letters and digits")
    return prefix + body + base62_crc32(raw).decode()


def _checksum_ok(token: bytes) -> bool:
    """`ghp_`/`npm_`-style: the last 6 characters are base62(CRC32) of the 30 before them."""
    body = token[token.index(b"_") + 1 :]
    return len(body) == 36 and base62_crc32(body[:30]) == body[30:]


def _kind_a(buf: bytes, m: re.Match[bytes]) -> tuple[str, int] | None:
    if not _bounded(buf, m.start(), m.end(), _ALNUM) or is_placeholder(m.group()):
        return None
    if m.group().startswith(b"AIza"):
        return ("google-api-key", 0) if _varied(m.group()[4:], 14) else None
    return ("aws-access-key-id", 0) if _varied(m.group()[4:], 7) else None


# Kinds found from their `_`: the bytes before it name the kind and belong to the value.
_UNDERSCORE_KINDS = (
    (b"github_", "github-token", 6),
    (b"ghp_", "github-token", 3),
    (b"gho_", "github-token", 3),
    (b"ghu_", "github-token", 3),
    (b"ghs_", "github-token", 3),
    (b"ghr_", "github-token", 3),
    (b"npm_", "npm-token", 3),
    (b"sk_", "stripe-key", 2),
    (b"rk_", "stripe-key", 2),
)


def _token_ok(kind: str, value: bytes) -> bool:
    """The token's own format: a checksum where it has one, else varied non-placeholder text."""
    if value.startswith((b"gh", b"npm_")) and not value.startswith(b"github_pat_"):
        return _checksum_ok(value)
    if is_placeholder(value):
        return False
    if kind == "github-token":  # github_pat_: 22 characters, `_`, 59 characters
        return _varied(value[11:], 20)
    return _varied(value[8:], 10)  # Stripe: after sk_live_ / rk_live_


def _kind_underscore(buf: bytes, m: re.Match[bytes]) -> tuple[str, int] | None:
    head = buf[max(0, m.start() - 6) : m.start() + 1]
    for suffix, kind, back in _UNDERSCORE_KINDS:
        if head.endswith(suffix):
            start = m.start() - back
            if not _bounded(buf, start, m.end(), _ALNUM):
                return None
            return (kind, back) if _token_ok(kind, buf[start : m.end()]) else None
    return None


def _kind_hyphen(buf: bytes, m: re.Match[bytes]) -> tuple[str, int] | None:
    if m.group().startswith(b"-----BEGIN"):
        return ("private-key", 0) if pem_body_ok(buf, m.end()) else None
    if not _bounded(buf, m.start() - 4, m.end(), _ALNUM) or is_placeholder(m.group()):
        return None
    return ("slack-token", 4) if _slack_ok(m.group()[1:]) else None


def _slack_ok(rest: bytes) -> bool:
    """Slack tokens: numeric team and user ids, then a long random part (`xoxb-1-2-AbC...`)."""
    parts = rest.split(b"-")
    ids = [p for p in parts[:-1] if p]
    return (
        len(ids) >= 2
        and all(p.isdigit() for p in ids)
        and len(parts[-1]) >= 20
        and _varied(parts[-1], 10)
    )


# Between two pieces of a PEM body: whitespace, `\n` escapes (one or more backslashes, as in
# JSON inside JSON), string concatenation (`"\n" + "`), and PEM headers (`Proc-Type: ...`,
# `Version: ...` in PGP blocks).
_PEM_GAP = re.compile(
    rb"(?:[ \t\r\n]|\\+[nrt]|[\"'`][ \t]*\+?[ \t\r\n]*[\"'`]"
    rb"|[A-Z][A-Za-z-]{2,30}: [^\r\n\\]{0,200})*"
)
_PEM_RUN = re.compile(rb"[A-Za-z0-9+/]+=*")
# The shortest private key body: Ed25519 in PKCS#8 is 48 bytes, 64 base64 characters.
PEM_MIN_CHARS = 64
_PEM_TAIL = 40
# Not the general placeholder rule: real DER bodies hold runs like `AAAAAA`.
_PEM_PLACEHOLDER = re.compile(rb"(?i)xxxx|example|your")


def pem_body_ok(buf: bytes, pos: int) -> bool:
    """After a `-----BEGIN ... PRIVATE KEY` header: is there key material, not a bare marker?

    The body must be base64 whose first bytes are a key's structure (a DER SEQUENCE with a
    plausible length, `openssh-key-v1`, or an OpenPGP packet), and as long as that structure says
    when the END line is in `buf`. A header alone, `...`, or `<your key>` is no key.
    """
    chars: list[bytes] = []
    total = 0
    ended = False
    while True:
        gap = _PEM_GAP.match(buf, pos)
        pos = gap.end() if gap else pos
        run = _PEM_RUN.match(buf, pos)
        if run is None:
            # Near the end of the buffer the block may go on in the next window: not ended.
            ended = buf.startswith(b"-", pos) or len(buf) - pos > _PEM_TAIL
            break
        if total < 96:
            chars.append(run.group())
        total += len(run.group().rstrip(b"="))
        pos = run.end()
        if run.group().endswith(b"="):
            ended = True
            break
    head = b"".join(chars).rstrip(b"=")
    if total < PEM_MIN_CHARS or _PEM_PLACEHOLDER.search(head):
        return False
    try:
        first = base64.b64decode(head[:64], validate=True)
    except (binascii.Error, ValueError):
        return False
    need = _structure_bytes(first)
    if need is None:
        return False
    return not ended or total * 3 // 4 >= need


def _structure_bytes(first: bytes) -> int | None:
    """How many bytes the body must hold given its first bytes, or None if no key starts so."""
    if first.startswith(b"openssh-key-v1\0"):
        return 100
    if first[0] & 0x80:  # an OpenPGP packet header (secret-key packets are well over 100 bytes)
        return 100
    if first[0] != 0x30:
        return None
    size = first[1]
    if size < 0x80:
        return size + 2 if size >= 40 else None
    if size == 0x81:
        return first[2] + 3 if first[2] >= 0x80 else None
    if size == 0x82:
        length = int.from_bytes(first[2:4], "big")
        return length + 4 if length >= 0x100 else None
    return None


_GENERIC_KEYS = re.compile(
    rb"(?i)(?:secret|passw(?:or)?d|api[_-]?key|access[_-]?key|auth[_-]?token|private[_-]?key"
    rb"|client[_-]?secret|token)\\?[\"']?\s*[:=]\s*$"
)


def _kind_generic(buf: bytes, m: re.Match[bytes]) -> tuple[str, int] | None:
    """A quoted high-entropy value assigned to a secret-sounding name: precise or nothing."""
    value = m.group(1)
    if _entropy(value) < 4.2 or not (re.search(rb"[0-9]", value) and re.search(rb"[A-Z]", value)):
        return None
    if not re.search(rb"[a-z]", value) or any(p.regex.search(value) for p in PATTERNS):
        return None  # a known kind reports it already
    if is_placeholder(value):
        return None
    before = buf[max(0, m.start() - 48) : m.start()].rstrip(b"\\")
    return ("generic-secret", 0) if _GENERIC_KEYS.search(before) else None


Check = Callable[[bytes, "re.Match[bytes]"], "tuple[str, int] | None"]


@dataclass(frozen=True)
class _Pattern:
    """A candidate regex and its check, which returns (kind, bytes before the match) or None."""

    regex: re.Pattern[bytes]
    check: Check
    group: int = 0


def _p(pattern: bytes, check: Check, group: int = 0) -> _Pattern:
    return _Pattern(re.compile(pattern), check, group)


# Three passes, each starting with one byte the regex engine skips to at memchr speed (~18 ms per
# 60 MB each); lookbehinds then check the prefix. Per-kind patterns took 7 passes.
PATTERNS: tuple[_Pattern, ...] = (
    # AWS key ids are base32 (A-Z, 2-7) after AKIA/ASIA; Google's are AIza and 35 more.
    _p(rb"A(?:[KS]IA[A-Z2-7]{16}|Iza[0-9A-Za-z_\-]{35})", _kind_a),
    _p(
        rb"_(?:(?<=gh[pousr]_)[A-Za-z0-9]{36}|(?<=npm_)[A-Za-z0-9]{36}"
        rb"|(?<=github_)pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}|(?<=[sr]k_)live_[A-Za-z0-9]{24,200})",
        _kind_underscore,
    ),
    _p(
        rb"-(?:(?<=xox[abposr]-)[A-Za-z0-9-]{10,200}"
        rb"|----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----)",
        _kind_hyphen,
    ),
)
# The generic rule runs on first-party sources and on text files that are not bundles or maps,
# where hand-written secrets live; node_modules sources are public code whose test keys are noise.
GENERIC = _p(rb"[\"']([A-Za-z0-9+/_\-]{32,200})\\?[\"']", _kind_generic, 1)
_RUN_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
_RUNS = bytes(0x61 if c in _RUN_CHARS else 0x20 for c in range(256))
_LONG_RUN = b"a" * 32


def generic_in(buf: bytes) -> Iterator[Hit]:
    """Generic secrets. The regex has no literal to skip to (~5 ns a byte), so long value-like
    runs are found first on a translated copy with `bytes.find` (~1 ns a byte), then checked."""
    runs = buf.translate(_RUNS)
    pos = runs.find(_LONG_RUN)
    while pos >= 0:
        end = runs.find(b" ", pos)
        m = GENERIC.regex.match(buf, pos - 1) if pos > 0 else None
        found = GENERIC.check(buf, m) if m is not None else None
        if m is not None and found is not None:
            yield Hit(found[0], m.group(1), m.start(1))
        if end < 0:
            return
        pos = runs.find(_LONG_RUN, end)


# Kinds whose format proves the material: a checksum (ghp_, npm_) or a key's DER/OpenSSH body.
VERIFIED_KINDS = frozenset({"private-key"})
_CHECKSUMMED = (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"npm_")
_DOC_SUFFIXES = (".md", ".mdx", ".markdown", ".rst", ".adoc", ".txt", ".examples.json")
_DOC_DIRS = frozenset({"docs", "doc", "example", "examples", "samples", "demo", "demos"})


def is_documentation(path: str) -> bool:
    """Documentation and examples: Markdown and text, `docs/`, `examples/`, `*.examples.json`."""
    lower = path.lower()
    return lower.endswith(_DOC_SUFFIXES) or any(p in _DOC_DIRS for p in lower.split("/")[:-1])


def counts_in(path: str, kind: str, redacted: str) -> bool:
    """Whether a hit in `path` is a secret. In documentation, only material whose format proves
    it (a checksummed token, a private key's body) counts: an API reference's `clientSecret`, a
    demo's Maps key, an example `AKIA...` are examples there."""
    if not is_documentation(path):
        return True
    return kind in VERIFIED_KINDS or redacted.encode().startswith(_CHECKSUMMED)


_HOST = re.compile(rb"\.(?:internal|corp|intranet|local|lan)(?![A-Za-z0-9_-])")
_HOST_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-.")
# A host name starts after a URL scheme, an `@`, a quote or an `=`: never after `obj.` in code.
_HOST_BEFORE = frozenset(b"/@\"'`=:,\n")


def _host_context(buf: bytes, begin: int) -> bool:
    """Right after a scheme, `@`, quote, `=`, `:` or a line start, or after `: ` (YAML).

    Not after `= ` (`x = obj.local` is code) and never after a dot (a property access).
    """
    if begin == 0 or buf[begin - 1] in _HOST_BEFORE:
        return True
    i = begin - 1
    while i >= 0 and buf[i] in b" \t":
        i -= 1
    return i < begin - 1 and i >= 0 and buf[i] == 0x3A


def secrets_in(
    buf: bytes, start: int = 0, stop: int | None = None, patterns: tuple[_Pattern, ...] = PATTERNS
) -> Iterator[Hit]:
    """Secret hits in `buf` whose match starts in [start, stop)."""
    stop = len(buf) if stop is None else stop
    for pattern in patterns:
        for m in pattern.regex.finditer(buf, start):
            if m.start() >= stop:
                break
            found = pattern.check(buf, m)
            if found is not None:
                begin = m.start(pattern.group) - found[1]
                yield Hit(found[0], buf[begin : m.end(pattern.group)], begin)


def hosts_in(buf: bytes, start: int = 0, stop: int | None = None) -> Iterator[Hit]:
    """Internal-looking host names (`*.internal`, `*.corp`, `*.local`, ...) in string context."""
    stop = len(buf) if stop is None else stop
    for m in _HOST.finditer(buf, start):
        if m.start() >= stop:
            break
        begin = m.start()
        while begin > 0 and buf[begin - 1] in _HOST_CHARS and m.start() - begin < 200:
            begin -= 1
        if not _host_context(buf, begin):
            continue
        end = m.end()
        while end < len(buf) and buf[end] in _HOST_CHARS and end - m.end() < 200:
            end += 1
        host = buf[begin:end].rstrip(b".-")
        labels = host.split(b".")
        if len(labels) >= 2 and all(labels) and not host.startswith(b"-"):
            yield Hit("internal-host", host, begin)


# Bytes scanned per regex call. A regex holds the GIL for its whole call: over a 4 MB chunk that is
# ~10 ms in which the inflater thread cannot take the GIL back (quick_handoffs in `stream`). Each
# window costs a copy and four regex calls: 60 MB in 256 KB windows take 0.26 s, against 0.19 s
# in 4 MB ones, which the helper process (no other thread) uses.
_WINDOW = 1 << 18


class WindowScanner:
    """Scans a byte stream chunk by chunk; windows overlap so a match is never cut in two."""

    def __init__(self, window: int = _WINDOW) -> None:
        self._window = window  # bigger where no other thread waits for the GIL (the helper)
        self._carry = b""
        self._base = 0
        self.secrets: list[Hit] = []
        self.hosts: list[Hit] = []

    def feed(self, chunk: bytes, final: bool = False) -> None:
        size = self._window
        if len(chunk) <= size:
            self._feed(chunk, final)
            return
        for start in range(0, len(chunk), size):
            self._feed(chunk[start : start + size], final and start + size >= len(chunk))

    def _feed(self, chunk: bytes, final: bool) -> None:
        window = self._carry + chunk if self._carry else chunk
        stop = len(window) if final else max(0, len(window) - MAX_MATCH)
        offset = self._base
        found = secrets_in(window, 0, stop)
        self.secrets += [Hit(h.kind, h.value, h.pos + offset) for h in found]
        self.hosts += [Hit(h.kind, h.value, h.pos + offset) for h in hosts_in(window, 0, stop)]
        self._carry = window[stop:]
        self._base += stop


_SENSITIVE_NAMES = frozenset(
    {
        ".npmrc",
        ".yarnrc",
        ".yarnrc.yml",
        ".pypirc",
        ".netrc",
        "_netrc",
        ".git-credentials",
        ".dockercfg",
        ".htpasswd",
        ".pgpass",
        "credentials",
        "credentials.json",
        "credentials.yml",
        "credentials.yaml",
        "secrets.json",
        "secrets.yml",
        "secrets.yaml",
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        "terraform.tfstate",
    }
)
_SENSITIVE_SUFFIXES = (
    ".pem",
    ".key",
    ".p12",
    ".pfx",
    ".jks",
    ".keystore",
    ".kdbx",
    ".ovpn",
    ".ppk",
)
_SENSITIVE_DIRS = frozenset({".git", ".ssh", ".aws", ".gnupg", ".docker"})
_ENV_HARMLESS = (".example", ".sample", ".template", ".dist", ".defaults")


def is_sensitive(path: str) -> bool:
    """Files that should never ship: env files, registry/cloud credentials, keys, `.git/`."""
    parts = path.split("/")
    name = parts[-1].lower()
    if any(p in _SENSITIVE_DIRS for p in parts[:-1]):
        return True
    if name == ".env" or (name.startswith(".env.") and not name.endswith(_ENV_HARMLESS)):
        return True
    if name.startswith("service-account") and name.endswith(".json"):
        return True
    return name in _SENSITIVE_NAMES or name.endswith(_SENSITIVE_SUFFIXES)
