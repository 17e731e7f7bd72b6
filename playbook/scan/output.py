"""Serialize a ScanResult: scan/findings.json, scan/manifest.json and a one-screen summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import msgspec

from playbook.scan.model import ScanResult

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
    s = result.summary()
    name = f"{result.package}@{result.version}" if result.package else "package"
    lines = [
        f"{name}: {s['files']:,} files, {_size(s['bytes'])}"
        + (" (PARTIAL scan)" if result.partial else ""),
        f"verdict: {'LEAKY' if result.leaky else 'clean'}",
    ]
    lines += [f"  - {r}" for r in result.reasons]
    if s["sourcemaps"]:
        lines.append(
            f"source maps: {s['sourcemaps']}, sources: {s['sources']:,} "
            f"({s['sources_with_content']:,} with content; {s['first_party']:,} first-party, "
            f"{s['node_modules']:,} node_modules)"
        )
        lines.append(
            f"original source: {_size(s['original_bytes'])}, {s['original_lines']:,} lines"
        )
    if s["top_dirs"]:
        lines.append("top dirs: " + ", ".join(f"{d} ({n})" for d, n in s["top_dirs"][:6]))
    lines += _list("sensitive files", s["sensitive_files"])
    lines += _list(
        "secrets", [f"{x['kind']} {x['file']}:{x['line']} {x['redacted']}" for x in s["secrets"]]
    )
    lines += _list("internal hosts", s["internal_hosts"])
    lines += _list("notes", s["notes"])
    return lines


def _list(title: str, items: list[str], limit: int = 8) -> list[str]:
    if not items:
        return []
    out = [f"{title}: {len(items)}"] + [f"  {i}" for i in items[:limit]]
    if len(items) > limit:
        out.append(f"  ... and {len(items) - limit} more")
    return out


# SARIF 2.1.0 (`respond scan --format sarif`) for GitHub code scanning and other SARIF readers.
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_RULES: dict[str, tuple[str, str]] = {
    "source-map-with-sources": (
        "A source map ships the original source of the files it maps",
        "Leave sourcesContent out of published maps (e.g. `sourcesContent: false`), or leave the "
        "maps out of the package (`files` in package.json, or .npmignore).",
    ),
    "secret": (
        "A secret (token, key) is in a file the package ships",
        "Remove it from the package and revoke it: anyone who installs the release has it.",
    ),
    "sensitive-file": (
        "A file that should never ship (.env, credentials, keys, .git/) is in the package",
        "Leave it out with `files` in package.json or an .npmignore entry.",
    ),
    "partial-scan": (
        "The scan could not read all of the package, so it cannot be shown to be clean",
        "See the notes: a cap (entries, bytes) or a hostile entry stopped part of the scan.",
    ),
    "internal-host": (
        "An internal-looking host name is in a file the package ships",
        "Check that the name reveals nothing the package should not.",
    ),
}


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
    result: ScanResult, *, base: str = "", artifact: str | None = None, version: str = ""
) -> dict[str, Any]:
    """The scan as one SARIF 2.1.0 run. Findings are errors when the verdict fails the release,
    notes when it passes; secrets appear only redacted."""
    level = "error" if result.leaky else "note"
    results: list[dict[str, Any]] = []

    def add(rule: str, text: str, path: str, line: int | None, lvl: str = level) -> None:
        inside = artifact is not None
        uri = artifact if artifact is not None else base + path
        location: dict[str, Any] = {"artifactLocation": {"uri": uri}}
        if line is not None and not inside:
            location["region"] = {"startLine": max(line, 1)}
        if inside:
            text = f"{text} (in {path})"
        key = "\0".join((rule, path, str(line), text))
        results.append({
            "ruleId": rule,
            "ruleIndex": list(_RULES).index(rule),
            "level": lvl,
            "message": {"text": text},
            "locations": [{"physicalLocation": location}],
            "partialFingerprints": {"respondFinding/v1": _digest(key)},
        })  # fmt: skip

    for m in result.sourcemaps:
        if m.with_content:
            add(
                "source-map-with-sources",
                f"{m.path} carries the original source of {m.with_content:,} file(s) "
                f"({m.first_party:,} first-party, {m.original_bytes:,} bytes)",
                m.path,
                None,
            )
    for s in result.secrets:
        where = s.via_map or s.file
        via = f" (reconstructed from {s.via_map})" if s.via_map else ""
        line = None if s.via_map else s.line
        add("secret", f"{s.kind} {s.redacted} at {s.file}:{s.line}{via}", where, line)
    for path in result.sensitive_files:
        add("sensitive-file", f"{path} would be published", path, None)
    if result.partial:
        add("partial-scan", "; ".join(result.notes) or "the scan is partial", "package.json", None)
    for host in result.internal_hosts:
        add("internal-host", f"internal host name {host}", "package.json", None, "note")
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
    notes = [{"level": "warning", "message": {"text": n}} for n in result.notes]
    name = f"{result.package}@{result.version}" if result.package else "package"
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "respond", "version": version or "0", "rules": rules}},
                "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notes}],
                "results": results,
                "properties": {
                    "package": name,
                    "leaky": result.leaky,
                    "partial": result.partial,
                    "reasons": result.reasons,
                },
            }
        ],
    }


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
