"""The scanner's caps and its frozen results: what a leaked artifact holds, all JSON-able."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from playbook.codec import to_json


@dataclass(frozen=True)
class Limits:
    """Caps on untrusted input. Going past one gives a partial result that says so."""

    max_entries: int = 100_000
    max_total_bytes: int = 1 << 30  # uncompressed; the gzip-bomb guard
    max_file_bytes: int = 256 << 20
    max_map_sources: int = 200_000
    max_secrets: int = 1_000
    max_hosts: int = 200
    identifiers: int = 10
    identifier_max_files: int = 5  # a token in more first-party files than this is not rare
    identifier_head_chars: int = 1024
    distinctive_paths: int = 20
    # The hunt's fingerprints: each file's hashes and head tokens, a spread few files' token
    # fingerprints, the rare identifiers and distinctive paths (`manifest.json`). The guard
    # (`respond scan`, GUARD_LIMITS) turns them off: its verdict, findings and SARIF read none of
    # them, and they were three quarters of the per-source work on a 60 MB map.
    fingerprints: bool = True
    # A map this big shares its work with a helper process (a second core; `worker`); 0 turns
    # that off. Smaller maps stay in one process: the helper's start costs ~0.1 s of CPU, about
    # what it saves on a 16 MB map.
    parallel_map_bytes: int = 16 << 20


GUARD_LIMITS = Limits(fingerprints=False)


@dataclass(frozen=True)
class SecretFinding:
    """A secret found in a file or a reconstructed source. Only the redacted form is kept."""

    kind: str
    file: str
    line: int
    redacted: str
    via_map: str | None = None  # the map that carried the source, when it was reconstructed


@dataclass(frozen=True)
class SourceMapInfo:
    """One source map: a `.map` file or a `sourceMappingURL=data:` inline in a script."""

    path: str
    inline: bool
    sources: int = 0
    with_content: int = 0
    first_party: int = 0
    node_modules: int = 0
    original_bytes: int = 0
    original_lines: int = 0
    sections: int = 0
    error: str | None = None


@dataclass(frozen=True)
class ManifestFile:
    """A reconstructed (or shipped original) file, fingerprinted for the hunt."""

    path: str
    source: str
    map: str | None
    size: int
    lines: int
    blob_sha1: str
    sha256: str
    # SHA-256 without whitespace: what verification compares a reformatted copy with. Empty for a
    # node_modules source of a map: library code, never evidence.
    norm_sha256: str
    first_party: bool
    # Token fingerprints (playbook.scan.winnow) of a spread sample of first-party files: how the
    # hunt proves copies that were reformatted. Empty for the other files.
    winnow: tuple[int, ...] = ()


@dataclass(frozen=True)
class Identifier:
    """A rare token and the first-party files it occurs in: one code-search query."""

    token: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class Rejected:
    """An archive entry that was not read, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class PackageMeta:
    """What the artifact's own package.json declares (empty when it has none or it is unreadable).

    `license` is the SPDX expression as written; the legacy `{type}` object and `licenses` list
    are folded into one (`A OR B`). None: no license declared at all.
    """

    name: str = ""
    version: str = ""
    license: str | None = None


@dataclass(frozen=True)
class SecretSummary:
    """A secret the scan found, only ever in its redacted form."""

    kind: str = "secret"
    file: str = ""
    line: int | None = None
    redacted: str = "<redacted>"


@dataclass(frozen=True)
class ScanSummary:
    """The numbers that size the leak (the `summary` of a scan result)."""

    files: int = 0
    bytes: int = 0
    sourcemaps: int = 0
    sources: int = 0
    sources_with_content: int = 0
    first_party: int = 0
    node_modules: int = 0
    original_bytes: int = 0
    original_lines: int = 0
    top_dirs: tuple[tuple[str, int], ...] = ()
    sensitive_files: tuple[str, ...] = ()
    secrets: tuple[SecretSummary, ...] = ()
    internal_hosts: tuple[str, ...] = ()
    partial: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScanResult:
    """Everything the scan found. `partial` means a cap or a hostile entry stopped part of it."""

    package: str
    version: str
    files: int
    bytes: int
    sourcemaps: tuple[SourceMapInfo, ...]
    manifest: tuple[ManifestFile, ...]
    identifiers: tuple[Identifier, ...]
    paths: tuple[str, ...]
    sensitive_files: tuple[str, ...]
    secrets: tuple[SecretFinding, ...]
    internal_hosts: tuple[str, ...]
    rejected: tuple[Rejected, ...] = ()
    partial: bool = False
    notes: tuple[str, ...] = ()
    top_dirs: tuple[tuple[str, int], ...] = field(default=())
    meta: PackageMeta = field(default_factory=PackageMeta)
    # Peak RSS of the helper process that shared a big map (0: none); not part of the findings.
    helper_peak_rss_kib: int = field(default=0, compare=False)

    @property
    def leaky(self) -> bool:
        """True when publishing this would leak, or when the scan could not read all of it."""
        return bool(self.reasons)

    @property
    def reasons(self) -> list[str]:
        out = []
        carrying = [m for m in self.sourcemaps if m.with_content]
        if carrying:
            n = sum(m.with_content for m in carrying)
            out.append(f"{len(carrying)} source map(s) carry the original source of {n} file(s)")
        if self.secrets:
            kinds = sorted({s.kind for s in self.secrets})
            out.append(f"{len(self.secrets)} secret(s) found ({', '.join(kinds)})")
        if self.sensitive_files:
            out.append(f"{len(self.sensitive_files)} sensitive file(s) shipped")
        if self.partial:
            out.append("the scan is partial, so the artifact cannot be shown to be clean")
        return out

    def scan_summary(self) -> ScanSummary:
        """The numbers that size the leak: the npm.scan step's `summary` (see contracts.md)."""
        maps = self.sourcemaps
        return ScanSummary(
            files=self.files,
            bytes=self.bytes,
            sourcemaps=len(maps),
            sources=sum(m.sources for m in maps),
            sources_with_content=sum(m.with_content for m in maps),
            first_party=sum(m.first_party for m in maps),
            node_modules=sum(m.node_modules for m in maps),
            original_bytes=sum(m.original_bytes for m in maps),
            original_lines=sum(m.original_lines for m in maps),
            top_dirs=self.top_dirs,
            sensitive_files=self.sensitive_files,
            secrets=tuple(SecretSummary(s.kind, s.file, s.line, s.redacted) for s in self.secrets),
            internal_hosts=self.internal_hosts,
            partial=self.partial,
            notes=self.notes,
        )

    def summary(self) -> dict[str, Any]:
        """The scan summary's JSON form (`respond scan --json`, findings.json)."""
        return to_json(self.scan_summary())  # type: ignore[no-any-return]


def package_label(name: str, version: str, fallback: str) -> str:
    """`name@version`, or the name alone, or `fallback` when there is no name."""
    return f"{name}@{version}" if name and version else name or fallback


def top_dirs(paths: list[str], n: int = 10) -> tuple[tuple[str, int], ...]:
    """The directories (two levels deep) holding the most files."""
    counts = Counter(
        "/".join(p.split("/")[:2]) if p.count("/") >= 2 else p.split("/")[0] for p in paths
    )
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n])
