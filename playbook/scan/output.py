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
