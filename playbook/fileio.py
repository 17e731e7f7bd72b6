"""Whole-file writes: a file is written completely or not at all."""

from __future__ import annotations

from pathlib import Path


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write a temp file beside `path`, then rename it over `path` (atomic on one file system)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    tmp.replace(path)
    return path
