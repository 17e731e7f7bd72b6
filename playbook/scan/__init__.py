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
- A map of `Limits.parallel_map_bytes` (16 MB) or more is shared with a helper process
  (`worker`): its raw bytes are teed to the helper, which scans them while they stream; the map is
  decoded once, here, and 9 of every 20 sources go to the helper. Hashing runs on a thread beside
  the tokenizing. If the helper fails, the scan does its part and says so.
- The inflater is ISA-L's when `isal` is installed (2.3x zlib's speed), and while a scan runs
  the GIL is handed over within 0.2 ms (`stream.quick_handoffs`), so the inflater thread does not
  wait 5 ms behind the scanner's regexes each time it gives the GIL up.
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
