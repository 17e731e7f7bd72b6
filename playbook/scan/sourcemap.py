"""Source maps from untrusted bytes: only `sources` and `sourcesContent` are decoded.

msgspec decodes into Structs that name just those fields, so the rest of a 60 MB map (`mappings`,
`names`) is skipped at parse speed. Index maps (`sections`) are read one level deep, as the spec
allows. A map that is not JSON, not an object, or not UTF-8 is recorded with the reason, not raised.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

import msgspec

from playbook.scan.fingerprint import is_first_party
from playbook.scan.names import printable


class _Inner(msgspec.Struct):
    sources: Any = None
    sourcesContent: Any = None


class _Section(msgspec.Struct):
    map: _Inner | None = None


class _Map(msgspec.Struct):
    sources: Any = None
    sourcesContent: Any = None
    sections: list[_Section] | None = None


_DECODER = msgspec.json.Decoder(_Map)
_FLAT_DECODER = msgspec.json.Decoder(_Inner)
_SCHEME = re.compile(r"^(?:webpack://[^/]*/|[A-Za-z][A-Za-z0-9+.-]*://)")
_INLINE = re.compile(rb"sourceMappingURL=data:([^,\s\"'`]{0,200}),")
_BASE64 = re.compile(rb"[A-Za-z0-9+/=_-]*")
_URLDATA = re.compile(rb"[^\s\"'`]*")


@dataclass(frozen=True)
class Source:
    """One entry of a map's `sources`, with its content when the map carries it."""

    source: str
    path: str
    content: str | None
    first_party: bool


@dataclass(frozen=True)
class ParsedMap:
    """The sources of one map, or why it could not be read."""

    sources: tuple[Source, ...]
    sections: int = 0
    error: str | None = None
    truncated: int = 0  # sources dropped by the cap


_PLAIN = re.compile(
    r"(?:\.\./|\./)*((?:[A-Za-z0-9_@$+-][A-Za-z0-9_.@$+-]*/)*[A-Za-z0-9_@$+-][\w.@$+-]*)"
)


def reconstruct(source: str, index: int) -> str:
    """A map source as a safe relative path: scheme, `../`, `./` and drive letters stripped."""
    plain = _PLAIN.fullmatch(source)
    if plain is not None and source.isascii():
        return plain.group(1)  # the common `../src/a/b.ts`: no dots-only segment can remain
    path = _SCHEME.sub("", source.replace("\\", "/"))
    path = re.sub(r"^[A-Za-z]:", "", path)
    path = posixpath.normpath("/" + path).lstrip("/")
    parts = [p for p in path.split("/") if p not in ("", ".", "..")]
    return printable("/".join(parts)) or f"unnamed-source-{index}"


def _decode(data: bytes) -> _Map:
    if data.startswith(b")]}'"):
        data = data.split(b"\n", 1)[-1]
    try:
        return _DECODER.decode(data)
    except msgspec.ValidationError:
        return _Map(**msgspec.structs.asdict(_FLAT_DECODER.decode(data)))
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # Not UTF-8 maybe: a bad byte should not hide the rest of the sources.
        text = data.decode("utf-8", "replace").encode()
        if text == data:
            raise msgspec.DecodeError(str(exc)) from None
        return _decode(text)


def _pairs(raw_sources: Any, raw_content: Any) -> list[tuple[str, str | None]]:
    sources = raw_sources if isinstance(raw_sources, list) else []
    content = raw_content if isinstance(raw_content, list) else []
    out = []
    for i, src in enumerate(sources):
        text = content[i] if i < len(content) else None
        out.append((src if isinstance(src, str) else "", text if isinstance(text, str) else None))
    return out


def parse(data: bytes, max_sources: int) -> ParsedMap:
    """Decode a map's sources; errors become `ParsedMap.error`, never exceptions."""
    try:
        doc = _decode(data)
    except msgspec.DecodeError as exc:
        return ParsedMap((), error=f"not valid JSON ({printable(str(exc))})")
    except msgspec.ValidationError as exc:
        return ParsedMap((), error=f"not a source map object ({printable(str(exc))})")
    pairs = _pairs(doc.sources, doc.sourcesContent)
    for section in doc.sections or ():
        if section.map is not None:
            pairs += _pairs(section.map.sources, section.map.sourcesContent)
    dropped = max(0, len(pairs) - max_sources)
    sources = tuple(_source(src, text, i) for i, (src, text) in enumerate(pairs[:max_sources]))
    return ParsedMap(sources, sections=len(doc.sections or ()), truncated=dropped)


def _source(src: str, text: str | None, index: int) -> Source:
    path = reconstruct(src, index)
    return Source(printable(src), path, text, is_first_party(path))


def inline_maps(data: bytes) -> list[bytes]:
    """The JSON of every `sourceMappingURL=data:` map in a script (base64 or URL-encoded)."""
    out = []
    for m in _INLINE.finditer(data):
        header = m.group(1).lower()
        if b"json" not in header:
            continue
        if header.endswith(b";base64"):
            payload = _BASE64.match(data, m.end())
            try:
                raw = base64.b64decode(payload.group() if payload else b"", validate=False)
            except (binascii.Error, ValueError):
                continue
        else:
            payload = _URLDATA.match(data, m.end())
            raw = unquote_to_bytes(payload.group() if payload else b"")
        out.append(raw)
    return out
