"""Turn archive entries into a ScanResult: maps, sources, secrets, hosts, files, manifest."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from playbook.scan import fingerprint as fp
from playbook.scan.archive import ArchiveLog, Entry
from playbook.scan.detect import Hit, WindowScanner, counts_in, generic_in, is_sensitive
from playbook.scan.model import (
    Identifier,
    Limits,
    ManifestFile,
    PackageMeta,
    ScanResult,
    SecretFinding,
    SourceMapInfo,
    top_dirs,
)
from playbook.scan.names import printable
from playbook.scan.sourcemap import ParsedMap, inline_maps, parse
from playbook.scan.winnow import MIN_BYTES, winnow
from playbook.scan.work import WINNOWED, Found, Row, found, items, line, locate, process, shares
from playbook.scan.worker import MapWorker

_SCRIPT_SUFFIXES = (".js", ".mjs", ".cjs", ".css")
_ORIGINAL_SUFFIXES = (".ts", ".tsx", ".mts", ".cts", ".jsx", ".vue", ".svelte")
# Text files up to this size get the generic rule too; bigger scripts are bundles.
_GENERIC_MAX = 2 << 20


def package_meta(data: bytes) -> PackageMeta:
    """Name, version and licence from a package.json's bytes; unreadable parts stay empty."""
    try:
        doc = json.loads(data)
    except ValueError:
        return PackageMeta()
    if not isinstance(doc, dict):
        return PackageMeta()
    name, version = doc.get("name"), doc.get("version")
    return PackageMeta(
        printable(name) if isinstance(name, str) else "",
        printable(version) if isinstance(version, str) else "",
        _license(doc.get("license"), doc.get("licenses")),
    )


def _license(value: object, legacy: object) -> str | None:
    """`license` as written, or the old `{type}` object / `licenses` list folded into `A OR B`."""
    if isinstance(value, str):
        return printable(value.strip()) or None
    items = [value] if isinstance(value, dict) else legacy if isinstance(legacy, list) else []
    types = [i.get("type") for i in items if isinstance(i, dict)]
    names = [printable(t.strip()) for t in types if isinstance(t, str) and t.strip()]
    return " OR ".join(names) or None


def is_text(data: bytes) -> bool:
    """Binary files (a NUL in the first 8 KiB) are checked by name only."""
    return b"\0" not in data[:8192]


@dataclass
class _MapTally:
    sources: int = 0
    with_content: int = 0
    first_party: int = 0
    node_modules: int = 0
    original_bytes: int = 0
    original_lines: int = 0


@dataclass
class Collector:
    """Accumulates findings entry by entry; `result()` freezes them."""

    package: str
    version: str
    limits: Limits
    log: ArchiveLog
    maps: list[SourceMapInfo] = field(default_factory=list)
    manifest: dict[str, ManifestFile] = field(default_factory=dict)
    sensitive: list[str] = field(default_factory=list)
    secrets: dict[tuple[str, str, int, str], SecretFinding] = field(default_factory=dict)
    hosts: set[str] = field(default_factory=set)
    first_party_tokens: dict[str, set[str]] = field(default_factory=dict)
    library_tokens: list[set[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    secrets_capped: bool = False
    doc_examples: int = 0  # key-shaped values in documentation, not counted as secrets
    # Digests of the tokens inside found secrets: such a token must never become a search query.
    secret_tokens: set[bytes] = field(default_factory=set, repr=False)
    helper_rss_kib: int = 0
    meta: PackageMeta = field(default_factory=PackageMeta)
    shipped_winnowed: int = 0  # shipped first-party sources given token fingerprints so far

    def add(self, entry: Entry) -> None:
        if entry.path == "package.json":
            self.meta = package_meta(entry.data)
        if is_sensitive(entry.path):
            self.sensitive.append(entry.path)
        if entry.path.endswith(".map"):
            self._add_map(
                entry.path, entry.data, entry.secrets, entry.hosts, inline=False,
                helper=entry.worker,
            )  # fmt: skip
            return
        if not is_text(entry.data):
            return
        for hit in entry.secrets:
            self._found(found(hit.kind, entry.path, line(entry.data, hit.pos), hit.value), None)
        if len(entry.data) <= _GENERIC_MAX:
            for hit in generic_in(entry.data):
                where = line(entry.data, hit.pos)
                self._found(found(hit.kind, entry.path, where, hit.value), None)
        self._hosts(h.value.decode("ascii", "replace") for h in entry.hosts)
        if entry.path.endswith(_SCRIPT_SUFFIXES) and b"sourceMappingURL=data:" in entry.data:
            for raw in inline_maps(entry.data):
                scanner = WindowScanner()
                scanner.feed(raw, final=True)
                self._add_map(entry.path, raw, scanner.secrets, scanner.hosts, inline=True)
        if entry.path.endswith(_ORIGINAL_SUFFIXES) and not entry.path.endswith(".d.ts"):
            self._shipped_source(entry)

    def _found(self, f: Found, via: str | None) -> None:
        self.secret_tokens.update(f.digests)
        if not counts_in(f.path, f.kind, f.redacted):
            self.doc_examples += 1
            return
        if len(self.secrets) >= self.limits.max_secrets:
            self.secrets_capped = True
            return
        key = (f.path, f.kind, f.line, f.redacted)
        self.secrets.setdefault(key, SecretFinding(f.kind, f.path, f.line, f.redacted, via))

    def _hosts(self, hosts: Iterable[str]) -> None:
        for host in hosts:
            if len(self.hosts) < self.limits.max_hosts:
                self.hosts.add(host)

    def _shipped_source(self, entry: Entry) -> None:
        if entry.path in self.manifest:
            return
        fingerprints = self.limits.fingerprints
        sha1, sha256, norm = fp.hashes(entry.data) if fingerprints else ("", "", "")
        first = fp.is_first_party(entry.path)
        prints: tuple[int, ...] = ()
        if (
            fingerprints
            and first
            and len(entry.data) >= MIN_BYTES
            and self.shipped_winnowed < WINNOWED
        ):
            self.shipped_winnowed += 1  # the first few shipped sources: token fingerprints
            prints = winnow(entry.data)
        self.manifest[entry.path] = ManifestFile(
            entry.path, entry.path, None, len(entry.data), fp.count_lines(entry.data),
            sha1, sha256, norm, first, prints,
        )  # fmt: skip

    def _map_error(self, owner: str, inline: bool, error: str, at_map: Iterable[Found]) -> None:
        self.notes.append(f"{owner}: source map {error}")
        self.maps.append(SourceMapInfo(owner, inline, error=error))
        for f in at_map:
            self._found(f, None)

    def _add_map(
        self,
        owner: str,
        data: bytes,
        secrets: Sequence[Hit],
        hosts: Sequence[Hit],
        *,
        inline: bool,
        helper: MapWorker | None = None,
    ) -> None:
        """A map's sources. With a `helper`, which scanned the raw bytes (`secrets` and `hosts`
        are empty then), the helper's share of the sources goes there and the rest is processed
        here meanwhile."""
        parsed = parse(data, self.limits.max_map_sources)
        sources, fingerprints = parsed.sources, self.limits.fingerprints
        todo = items(sources, self.limits.identifier_head_chars)
        if helper is None:
            rows = process(todo, fingerprints)
        else:
            theirs, mine = shares(todo)
            helper.submit(theirs)
            rows = process(mine, fingerprints)
            work = helper.result()
            if work is None:
                self.notes.append(f"{owner}: the helper process failed; scanned in one process")
                scanner = WindowScanner()
                scanner.feed(data, final=True)
                secrets, hosts = scanner.secrets, scanner.hosts
                rows += process(theirs, fingerprints)
            else:
                self.helper_rss_kib = max(self.helper_rss_kib, work.rss_kib)
                secrets, hosts = work.hits(data)
                rows += work.rows
            del theirs, mine
        del todo
        self._hosts(h.value.decode("ascii", "replace") for h in hosts)
        if parsed.error is not None:
            at_map = [found(h.kind, owner, line(data, h.pos), h.value) for h in secrets]
            self._map_error(owner, inline, parsed.error, at_map)
            return
        located, more_hosts = locate(owner, data, secrets, sources)
        self._hosts(more_hosts)
        self._merge(owner, inline, parsed, rows, located)

    def _merge(
        self, owner: str, inline: bool, parsed: ParsedMap, rows: list[Row], located: list[Found]
    ) -> None:
        if parsed.truncated:
            self.log.stop(f"{owner}: only the first {self.limits.max_map_sources:,} sources read")
        tally = _MapTally(sources=len(parsed.sources))
        tally.first_party = sum(src.first_party for src in parsed.sources)
        tally.node_modules = tally.sources - tally.first_party
        for row in sorted(rows, key=lambda r: r.index):
            src = parsed.sources[row.index]
            tally.with_content += 1
            tally.original_bytes += row.size
            tally.original_lines += row.lines
            if src.path in self.manifest:
                continue
            self.manifest[src.path] = ManifestFile(
                src.path, src.source, owner, row.size, row.lines, row.sha1, row.sha256, row.norm,
                src.first_party, tuple(row.winnow),
            )  # fmt: skip
            if src.first_party:
                self.first_party_tokens[src.path] = set(row.tokens)
            else:
                self.library_tokens.append(set(row.tokens))
            for f in row.generic:
                self._found(f, owner)
        for f in located:
            self._found(f, owner if f.path != owner else None)
        self.maps.append(SourceMapInfo(owner, inline, sections=parsed.sections, **vars(tally)))

    def _identifiers(self) -> tuple[Identifier, ...]:
        """The hunt's code-search queries (none for the guard, which leaves fingerprints out)."""
        if not self.limits.fingerprints:
            return ()
        return fp.rare_identifiers(
            self.first_party_tokens,
            self.library_tokens,
            count=self.limits.identifiers,
            max_files=self.limits.identifier_max_files,
            exclude=self.secret_tokens,
        )

    def _paths(self, first: list[str]) -> tuple[str, ...]:
        """The hunt's path queries (none for the guard)."""
        if not self.limits.fingerprints:
            return ()
        return fp.distinctive_paths(first, self.limits.distinctive_paths)

    def result(self) -> ScanResult:
        limits = self.limits
        first = [f.path for f in self.manifest.values() if f.first_party]
        notes = [*self.log.notes, *self.notes]
        if self.secrets_capped:
            notes.append(f"more than {limits.max_secrets:,} secrets; the rest are not listed")
        if self.doc_examples:
            notes.append(
                f"{self.doc_examples:,} key-shaped value(s) in documentation or examples, "
                "taken for examples (no checksum or key body proves them real)"
            )
        notes += [f"{r.path}: {r.reason}" for r in self.log.rejected]
        return ScanResult(
            package=self.package,
            version=self.version,
            files=self.log.files,
            bytes=self.log.bytes,
            sourcemaps=tuple(self.maps),
            manifest=tuple(self.manifest.values()),
            identifiers=self._identifiers(),
            paths=self._paths(first),
            sensitive_files=tuple(self.sensitive),
            secrets=tuple(self.secrets.values()),
            internal_hosts=tuple(sorted(self.hosts)),
            rejected=tuple(self.log.rejected),
            partial=self.log.partial,
            notes=tuple(notes),
            top_dirs=top_dirs(first or [f.path for f in self.manifest.values()]),
            helper_peak_rss_kib=self.helper_rss_kib,
            meta=self.meta,
        )
