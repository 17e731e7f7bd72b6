"""Serialize a ScanResult: scan/findings.json, scan/manifest.json and a one-screen summary."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from playbook.scan.model import ScanResult

if TYPE_CHECKING:
    from playbook.scan.verdict import Verdict

FINDINGS_FILE = "scan/findings.json"
MANIFEST_FILE = "scan/manifest.json"


def findings_doc(result: ScanResult) -> dict[str, Any]:
    """Everything found, JSON-able (`respond scan --json`); secrets only in redacted form."""
    return {
        "package": result.package,
        "version": result.version,
        "leaky": result.leaky,
        "reasons": result.reasons,
        "summary": result.summary(),
        "sourcemaps": [asdict(m) for m in result.sourcemaps],
        "secrets": [asdict(s) for s in result.secrets],
        "rejected": [asdict(r) for r in result.rejected],
    }


def manifest_doc(result: ScanResult) -> dict[str, Any]:
    """The fingerprint manifest in the shape contracts.md fixes, JSON-able."""
    return {**_manifest(result), "files": [asdict(f) for f in result.manifest]}


def _manifest(result: ScanResult) -> dict[str, Any]:
    return {
        "package": result.package,
        "version": result.version,
        # msgspec encodes the dataclasses field by field, in order: 10x faster than asdict.
        "files": result.manifest,
        "identifiers": [{"token": i.token, "files": list(i.files)} for i in result.identifiers],
        "paths": list(result.paths),
    }


def _json(doc: dict[str, Any]) -> bytes:
    return msgspec.json.format(msgspec.json.encode(doc), indent=1) + b"\n"


def write_outputs(
    result: ScanResult, write: Callable[[str, bytes], Path], prefix: str = ""
) -> tuple[str, str]:
    """Write findings and manifest through `write` (e.g. `ctx.write_file`); returns their names."""
    findings, manifest = prefix + FINDINGS_FILE, prefix + MANIFEST_FILE
    write(findings, _json(findings_doc(result)))
    write(manifest, _json(_manifest(result)))
    return findings, manifest


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def summary_lines(result: ScanResult) -> list[str]:
    """A one-screen text summary for the CLI and the report (plain text; callers escape it)."""
    s = result.scan_summary()
    name = f"{result.package}@{result.version}" if result.package else "package"
    lines = [
        f"{name}: {s.files:,} files, {_size(s.bytes)}"
        + (" (PARTIAL scan)" if result.partial else ""),
        f"verdict: {'LEAKY' if result.leaky else 'clean'}",
    ]
    lines += [f"  - {r}" for r in result.reasons]
    if s.sourcemaps:
        lines.append(
            f"source maps: {s.sourcemaps}, sources: {s.sources:,} "
            f"({s.sources_with_content:,} with content; {s.first_party:,} first-party, "
            f"{s.node_modules:,} node_modules)"
        )
        lines.append(f"original source: {_size(s.original_bytes)}, {s.original_lines:,} lines")
    if s.top_dirs:
        lines.append("top dirs: " + ", ".join(f"{d} ({n})" for d, n in s.top_dirs[:6]))
    lines += _list("sensitive files", s.sensitive_files)
    lines += _list("secrets", [f"{x.kind} {x.file}:{x.line} {x.redacted}" for x in s.secrets])
    lines += _list("internal hosts", s.internal_hosts)
    lines += _list("notes", s.notes)
    return lines


def _list(title: str, items: Sequence[str], limit: int = 8) -> list[str]:
    if not items:
        return []
    out = [f"{title}: {len(items)}"] + [f"  {i}" for i in items[:limit]]
    if len(items) > limit:
        out.append(f"  ... and {len(items) - limit} more")
    return out


# SARIF 2.1.0 (`respond scan --format sarif`) for GitHub code scanning and other SARIF readers.
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_MAP_FIX = (
    "Leave sourcesContent out of published maps (e.g. `sourcesContent: false`), or leave the maps "
    "out of the package (`files` in package.json, or .npmignore)."
)
_RULES: dict[str, tuple[str, str]] = {
    "original-source": ("The package ships original (first-party) source", _MAP_FIX),
    "source-map": ("A source map ships the original source of the files it maps", _MAP_FIX),
    "source-growth": ("The original source the package ships grew sharply", _MAP_FIX),
    "secret": (
        "A secret (token, key) is in a file the package ships",
        "Remove it from the package and revoke it: anyone who installs the release has it.",
    ),
    "sensitive-file": (
        "A file that should never ship (.env, credentials, keys, .git/) is in the package",
        "Leave it out with `files` in package.json or an .npmignore entry.",
    ),
    "partial": (
        "The scan could not read all of the package, so it cannot be shown to be clean",
        "See the notes: a cap (entries, bytes) or a hostile entry stopped part of the scan.",
    ),
    "internal-host": (
        "An internal-looking host name is in a file the package ships",
        "Check that the name reveals nothing the package should not.",
    ),
}
_RULE_INDEX = {rule: i for i, rule in enumerate(_RULES)}  # its place in the driver's rules
_SOURCE_RULES = ("original-source", "source-map", "source-growth")


def sarif_base(target: Path, cwd: Path) -> tuple[str, str | None]:
    """(URI prefix for files inside the package, or the artifact every location points at).

    A package folder inside `cwd` (the checkout) gives its relative path as the prefix, so code
    scanning links the files; a tarball is one artifact, the path inside it goes in the message.
    """
    try:
        rel = target.resolve().relative_to(cwd.resolve()).as_posix()
    except ValueError:
        rel = None
    if target.is_dir():
        return ("" if rel in (None, ".") else f"{rel}/"), None
    return "", rel or target.name


def sarif_doc(
    result: ScanResult,
    verdict: Verdict | None = None,
    *,
    base: str = "",
    artifact: str | None = None,
    version: str = "",
) -> dict[str, Any]:
    """The scan as one SARIF 2.1.0 run. With the guard's `verdict`, each of its findings is a
    result (error when it fails the release, note when it is information, suppressed with the
    reason when respond.toml allows it); without one, every finding is an error when the scan
    calls the package leaky. Internal host names are notes. Secrets appear only redacted."""
    results: list[dict[str, Any]] = []
    maps = [m.path for m in result.sourcemaps if m.with_content] or ["package.json"]
    lines = {(s.file, s.redacted): s.line for s in result.secrets if not s.via_map}
    via = {s.file: s.via_map for s in result.secrets if s.via_map}  # reconstructed: in the map

    def add(
        rule: str, text: str, path: str, level: str, *, line: int | None = None
    ) -> dict[str, Any]:
        uri = artifact if artifact is not None else base + path
        location: dict[str, Any] = {"artifactLocation": {"uri": uri}}
        if line is not None and artifact is None:
            location["region"] = {"startLine": max(line, 1)}
        if artifact is not None and path != "package.json":
            text = f"{text} (in {path})"
        found: dict[str, Any] = {"ruleId": rule}
        if rule in _RULE_INDEX:
            found["ruleIndex"] = _RULE_INDEX[rule]
        found |= {
            "level": level,
            "message": {"text": text},
            "locations": [{"physicalLocation": location}],
            "partialFingerprints": {"respondFinding/v1": _digest(f"{rule}\0{path}\0{text}")},
        }
        results.append(found)
        return found

    if verdict is not None:
        for f in verdict.findings:
            path = f.path or (maps[0] if f.rule in _SOURCE_RULES else "package.json")
            path = via.get(path, path) if f.rule == "secret" else path
            line = next(
                (n for (file, red), n in lines.items() if file == f.path and red in f.line), None
            )
            found = add(f.rule, f.line, path, "error" if f.fails else "note", line=line)
            if f.allowed_by:
                found["suppressions"] = [{"kind": "external", "justification": f.allowed_by}]
        failed = verdict.failed
    else:
        failed = result.leaky
        level = "error" if failed else "note"
        for m in result.sourcemaps:
            if m.with_content:
                text = f"{m.path} carries the original source of {m.with_content:,} file(s)"
                add("source-map", text, m.path, level)
        for s in result.secrets:
            rebuilt = f" (reconstructed from {s.via_map})" if s.via_map else ""
            at = f"{s.kind} {s.redacted} at {s.file}:{s.line}{rebuilt}"
            add("secret", at, s.via_map or s.file, level, line=None if s.via_map else s.line)
        for path in result.sensitive_files:
            add("sensitive-file", f"{path} would be published", path, level)
        if result.partial:
            add("partial", "; ".join(result.notes) or "the scan is partial", "package.json", level)
    for host in result.internal_hosts:
        add("internal-host", f"internal host name {host}", "package.json", "note")
    used = {r["ruleId"] for r in results}
    rules = [
        {
            "id": rule,
            "name": rule.title().replace("-", ""),
            "shortDescription": {"text": short},
            "help": {"text": help_text},
            "defaultConfiguration": {"level": "note" if rule == "internal-host" else "error"},
        }
        for rule, (short, help_text) in _RULES.items()
    ]
    rules += [{"id": r, "shortDescription": {"text": r}} for r in sorted(used - set(_RULES))]
    notes = [{"level": "warning", "message": {"text": n}} for n in result.notes]
    name = f"{result.package}@{result.version}" if result.package else "package"
    properties: dict[str, Any] = {"package": name, "leaky": failed, "partial": result.partial}
    if verdict is not None:
        properties["verdict"] = verdict.as_json()
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "respond", "version": version or "0", "rules": rules}},
                "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notes}],
                "results": results,
                "properties": properties,
            }
        ],
    }


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
