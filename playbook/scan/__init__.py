"""Scanner of an untrusted package artifact: source maps, secrets, sensitive files, fingerprints.

How it reads (DESIGN.md, "Reading the leaked artifact"):
- Nothing is extracted to disk. The `.tgz` is inflated on a worker thread (`stream.Inflater`,
  bounded by `Limits.max_total_bytes`: a gzip bomb stops there) and walked by `tarstream` (a
  hand-written header parser: `tarfile`'s stream mode spent ~0.5 s re-slicing its buffer on a
  1,000-file package); each regular file is read into memory under `Limits.max_file_bytes`.
- Entries with `..`, absolute names, links, devices and fifos are refused and recorded.
- Caps (entries, total size, single file, map sources) end in a result with `partial=True` and a
  note; corrupt or truncated input raises `UnsafeArchive`. Any partial result counts as leaky:
  the artifact cannot be shown clean.
- A big map is decoded once, in this process, while hashing runs on a thread beside the
  tokenizing. Opt-in (`Limits.parallel_map_bytes`, off by default): share maps of that size with
  a helper process (`worker`) for a second core; it costs a second decode and ~0.25 s of CPU on a
  60 MB map, so it only pays on an idle machine. If the helper fails, the scan does its share.
- Secrets are kept only redacted (`detect.redact`: first 4 characters, an ellipsis, the length).

Downloads: `scan_stream(async_iterator)` scans while the body arrives (bounded queue into a worker
thread); `scan_chunks(iterable)` does the same synchronously; `scan_tarball(path | file | bytes)`
for a file. See `fingerprint` for how rare identifiers are chosen, `npmpack` for a directory's file
list (npm's own, `packlist` when npm is absent).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playbook.scan.api import (
        scan_chunks,
        scan_directory,
        scan_path,
        scan_stream,
        scan_tarball,
    )
    from playbook.scan.model import (
        Identifier,
        Limits,
        ManifestFile,
        Rejected,
        ScanResult,
        SecretFinding,
        SourceMapInfo,
    )
    from playbook.scan.output import (
        FINDINGS_FILE,
        MANIFEST_FILE,
        findings_doc,
        manifest_doc,
        summary_lines,
        write_outputs,
    )

# Imported on first use: the helper process (`worker`) starts faster without asyncio and tarfile.
_HOMES = {
    "playbook.scan.api": "scan_chunks scan_directory scan_path scan_stream scan_tarball",
    "playbook.scan.model": "Identifier Limits ManifestFile Rejected ScanResult SecretFinding "
    "SourceMapInfo",
    "playbook.scan.output": "FINDINGS_FILE MANIFEST_FILE findings_doc manifest_doc summary_lines "
    "write_outputs",
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names.split()}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'playbook.scan' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "FINDINGS_FILE",
    "MANIFEST_FILE",
    "Identifier",
    "Limits",
    "ManifestFile",
    "Rejected",
    "ScanResult",
    "SecretFinding",
    "SourceMapInfo",
    "findings_doc",
    "manifest_doc",
    "scan_chunks",
    "scan_directory",
    "scan_path",
    "scan_stream",
    "scan_tarball",
    "summary_lines",
    "write_outputs",
]
