"""The guard's verdict: what is new and dangerous in a release compared with its baseline.

A release fails on what it adds: a source map that newly carries original sources, a jump in
original-source bytes, a new secret, a new sensitive file; and on original source in a package
under no open-source licence, changed or not. An open-source package shipping its own sources,
as before, passes with the exposure shown as information. Without a baseline (`--no-baseline`, a
first release, a registry out of reach) everything found counts as new. The allowlist
(`[[scan.allow]]` in respond.toml, each entry with a reason) turns a failure into information.
Every finding, and the verdict itself, is one line that says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from playbook.scan.license import is_open_source
from playbook.scan.model import ScanResult, package_label

# A jump in original-source bytes: at least half as much again, and at least this many bytes.
GROWTH_RATIO = 1.5
GROWTH_MIN_BYTES = 100_000

RULES = ("original-source", "source-map", "source-growth", "secret", "sensitive-file", "partial")


@dataclass(frozen=True)
class Exposure:
    """What one release exposes, in the terms the verdict compares (JSON-able, no raw secret)."""

    label: str
    map_files: int = 0
    maps_with_sources: int = 0
    sources: int = 0
    first_party: int = 0
    shipped_originals: int = 0
    original_bytes: int = 0
    secrets: tuple[tuple[str, str, str], ...] = ()  # (kind, file, redacted)
    sensitive_files: tuple[str, ...] = ()
    license: str | None = None
    partial: bool = False


def exposure(result: ScanResult, label: str = "") -> Exposure:
    """The comparable digest of a scan."""
    carried = [f for f in result.manifest if f.map is not None]
    shipped = [f for f in result.manifest if f.map is None and f.first_party]
    name = label or _label(result)
    return Exposure(
        label=name,
        map_files=len(result.sourcemaps),
        maps_with_sources=sum(1 for m in result.sourcemaps if m.with_content),
        sources=sum(m.with_content for m in result.sourcemaps),
        first_party=sum(1 for f in carried if f.first_party),
        shipped_originals=len(shipped),
        original_bytes=sum(m.original_bytes for m in result.sourcemaps)
        + sum(f.size for f in shipped),
        secrets=tuple(sorted({(s.kind, s.file, s.redacted) for s in result.secrets})),
        sensitive_files=tuple(sorted(set(result.sensitive_files))),
        license=result.meta.license,
        partial=result.partial,
    )


def _label(result: ScanResult) -> str:
    name = result.package or result.meta.name
    return package_label(name, result.version or result.meta.version, "this package")


@dataclass(frozen=True)
class Finding:
    """One line of the verdict. `fails` false: information (or allowed, then `allowed_by` says)."""

    rule: str
    fails: bool
    line: str
    path: str = ""
    allowed_by: str = ""

    def as_json(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class AllowRule:
    """`[[scan.allow]]`: findings of `rule` on files matching `path` in packages matching
    `package` (globs; empty matches all) are allowed, for the stated `reason`. Source findings
    (original-source, source-map, source-growth) name no file: match them by rule and package."""

    reason: str
    rule: str = ""
    path: str = ""
    package: str = ""

    def covers(self, finding: Finding, package: str) -> bool:
        from fnmatch import fnmatchcase

        return (
            (not self.rule or self.rule == finding.rule)
            and (not self.path or fnmatchcase(finding.path, self.path))
            and (not self.package or fnmatchcase(package, self.package))
        )


@dataclass(frozen=True)
class Verdict:
    """Pass or fail, the one line that says why, the comparison, and every finding."""

    failed: bool
    headline: str
    comparison: str
    baseline: str | None
    baseline_note: str = ""
    findings: tuple[Finding, ...] = field(default=())

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "failed": self.failed,
            "headline": self.headline,
            "comparison": self.comparison,
            "baseline": self.baseline,
            "baseline_note": self.baseline_note,
            "findings": [f.as_json() for f in self.findings],
        }

    def lines(self) -> list[str]:
        """The verdict for a terminal: the headline, the comparison, then each finding."""
        out = [self.headline, f"  baseline: {self.baseline_note}", f"  maps: {self.comparison}"]
        for f in self.findings:
            mark = "FAIL" if f.fails else "allowed" if f.allowed_by else "info"
            out.append(
                f"  {mark}: {f.line}" + (f" (allowed: {f.allowed_by})" if f.allowed_by else "")
            )
        return out


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size:,} bytes"


def compare_maps(base: Exposure | None, cur: Exposure) -> str:
    """One line on the source maps from the baseline to this release (the npm.scan sentence)."""
    if base is None:
        if not cur.map_files:
            return f"{cur.label} ships no source map"
        return f"{cur.label} ships {_maps(cur)}"
    b, c = _short(base.label), _short(cur.label)
    if not base.map_files and not cur.map_files:
        return f"neither {b} nor {c} ships a source map"
    if not cur.sources:
        was = f"{b} shipped {_maps(base)}" if base.map_files else f"{b} shipped no map"
        now = f"{c} ships {_n(cur.map_files, 'map')} without sources" if cur.map_files else ""
        return f"{was}; {now or c + ' ships no map'}"
    added = "one" if cur.maps_with_sources == 1 else f"{cur.maps_with_sources:,}"
    carrying = f"carrying {_n(cur.sources, 'source')}"
    if not base.map_files:
        return f"{b} shipped no map; {c} added {added} {carrying}"
    if not base.sources:
        return f"{b}'s maps carried no sources; {c}'s {carrying.replace('carrying ', 'carry ')}"
    return (
        f"{b}'s maps carried {_n(base.sources, 'source')} ({_mb(base.original_bytes)}); "
        f"{c}'s carry {_n(cur.sources, 'source')} ({_mb(cur.original_bytes)})"
    )


def _maps(e: Exposure) -> str:
    if not e.sources:
        return f"{_n(e.map_files, 'map')} without sources"
    return f"{_n(e.map_files, 'map')} carrying {_n(e.sources, 'source')}"


def _short(label: str) -> str:
    """`@acme/cli@2.1.87` → `2.1.87` when the name is the same on both sides of a sentence."""
    return label.rsplit("@", 1)[-1] if "@" in label.lstrip("@") else label


def judge(
    result: ScanResult,
    base: Exposure | None,
    *,
    baseline_note: str = "",
    allow: tuple[AllowRule, ...] = (),
) -> Verdict:
    """The verdict on `result` against `base` (None: the absolute view, said in `baseline_note`)."""
    cur = exposure(result)
    findings = [*_source_findings(cur, base), *_secret_findings(result, base)]
    findings += _file_findings(cur, base)
    if result.partial:
        why = "; ".join(result.notes[:1]) or "a cap or a hostile entry stopped part of it"
        findings.append(Finding("partial", True, f"the scan is partial ({why}): not shown clean"))
    package = result.package or result.meta.name
    findings = [_allowed(f, allow, package) for f in findings]
    comparison = compare_maps(base, cur)
    note = baseline_note or (base.label if base else "no baseline: absolute view")
    if base is not None and base.partial:
        note += " (its scan was partial: the comparison may overstate what is new)"
    failing = [f for f in findings if f.fails]
    headline = _headline(cur, base, failing, findings)
    label = base.label if base else None
    return Verdict(bool(failing), headline, comparison, label, note, tuple(findings))


def _headline(
    cur: Exposure, base: Exposure | None, failing: list[Finding], findings: list[Finding]
) -> str:
    if failing:
        more = f" (and {_n(len(failing) - 1, 'more finding')})" if len(failing) > 1 else ""
        return f"FAIL {cur.label}: {failing[0].line}{more}"
    since = f" since {base.label}" if base is not None else ""
    allowed = [f for f in findings if f.allowed_by]
    if allowed:
        n = _n(len(allowed), "finding")
        return f"pass {cur.label}: {n} allowed by respond.toml; nothing else new{since}"
    exposed = next((f for f in findings if f.rule in ("original-source", "source-map")), None)
    if exposed is not None:
        return f"pass {cur.label}: {exposed.line}"
    new = f" new{since}" if since else ""
    return f"pass {cur.label}: no source exposure, secret or sensitive file{new}"


def _source_findings(cur: Exposure, base: Exposure | None) -> list[Finding]:
    own = cur.first_party + cur.shipped_originals
    if not cur.sources and not cur.shipped_originals:
        return []
    licence = cur.license or "none declared"
    where = _where(cur)
    if not is_open_source(cur.license):
        if own:
            return [
                Finding(
                    "original-source",
                    True,
                    f"original source of {_n(own, 'first-party file')} "
                    f"({_mb(cur.original_bytes)}) ships in {where}, under no open-source "
                    f"licence (license: {licence})",
                )
            ]
        return [
            Finding("source-map", False, f"{where}: only third-party sources, no first-party file")
        ]
    if base is not None and not base.sources and cur.sources:
        return [Finding("source-map", True, compare_maps(base, cur))]
    grown = base is not None and _jumped(base.original_bytes, cur.original_bytes)
    if grown:
        assert base is not None
        line = (
            f"original source grew from {_mb(base.original_bytes)} in {base.label} "
            f"to {_mb(cur.original_bytes)} ({_n(cur.sources, 'source')})"
        )
        return [Finding("source-growth", True, line)]
    same = (
        f", as {base.label} did"
        if base is not None and (base.sources or base.shipped_originals)
        else ""
    )
    return [
        Finding(
            "source-map",
            False,
            f"open-source ({licence}) package ships its own sources{same}: {where}, "
            f"{_mb(cur.original_bytes)}",
        )
    ]


def _where(cur: Exposure) -> str:
    parts = []
    if cur.sources:
        parts.append(f"{_n(cur.maps_with_sources, 'map')} carrying {_n(cur.sources, 'source')}")
    if cur.shipped_originals:
        parts.append(f"{_n(cur.shipped_originals, 'original source file')} shipped as is")
    return " and ".join(parts)


def _jumped(before: int, after: int) -> bool:
    return after - before >= GROWTH_MIN_BYTES and after >= before * GROWTH_RATIO


def _secret_findings(result: ScanResult, base: Exposure | None) -> list[Finding]:
    known = set(base.secrets) if base is not None else set()
    out = []
    for s in result.secrets:
        at = f"{s.kind} at {s.file}:{s.line} ({s.redacted})"
        if (s.kind, s.file, s.redacted) in known:
            assert base is not None
            out.append(Finding("secret", False, f"{at} was already in {base.label}", s.file))
        else:
            out.append(Finding("secret", True, f"new {at}", s.file))
    return out


def _file_findings(cur: Exposure, base: Exposure | None) -> list[Finding]:
    known = set(base.sensitive_files) if base is not None else set()
    out = []
    for path in cur.sensitive_files:
        if path in known:
            assert base is not None
            out.append(
                Finding("sensitive-file", False, f"{path} was already in {base.label}", path)
            )
        else:
            out.append(Finding("sensitive-file", True, f"new sensitive file {path}", path))
    return out


def _allowed(finding: Finding, allow: tuple[AllowRule, ...], package: str) -> Finding:
    if not finding.fails:
        return finding
    for rule in allow:
        if rule.covers(finding, package):
            return replace(finding, fails=False, allowed_by=rule.reason)
    return finding
