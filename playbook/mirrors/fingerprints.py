"""The scan manifest as typed data, file hashes, and the evidence set verification matches against.

Query planning (which code-search queries to send) lives in playbook.mirrors.queries.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playbook.errors import RespondError

# The scanner writes these hashes into the manifest; verification must compute them the same way.
from playbook.scan.fingerprint import blob_sha1, is_first_party, norm_sha256
from playbook.scan.model import Identifier, ManifestFile
from playbook.scan.winnow import winnow

# Files smaller than this are not evidence: an empty `index.ts` or a one-line re-export has the
# same git blob SHA-1 in thousands of unrelated repositories.
MIN_EVIDENCE_BYTES = 64


@dataclass(frozen=True)
class Manifest:
    package: str
    version: str
    files: tuple[ManifestFile, ...]
    identifiers: tuple[Identifier, ...] = ()
    paths: tuple[str, ...] = ()
    # path -> winnowed token fingerprints (playbook.scan.winnow), when the manifest has them
    winnow: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def first_party(self) -> tuple[ManifestFile, ...]:
        return tuple(f for f in self.files if f.first_party)

    @property
    def map_names(self) -> tuple[str, ...]:
        """Files of the published tarball that carried the source (the maps), sorted."""
        return tuple(sorted({f.map for f in self.files if f.map}))


def manifest_from_json(data: Mapping[str, Any]) -> Manifest:
    files = tuple(
        ManifestFile(
            path=str(f["path"]),
            blob_sha1=str(f["blob_sha1"]),
            sha256=str(f.get("sha256", "")),
            norm_sha256=str(f.get("norm_sha256", "")),
            size=int(f.get("size", 0)),
            first_party=bool(f.get("first_party", is_first_party(str(f["path"])))),
            map=f.get("map"),
            source=str(f.get("source") or ""),
            lines=int(f.get("lines", 0)),
        )
        for f in data.get("files", [])
    )
    idents = tuple(
        Identifier(str(i["token"]), tuple(i.get("files", []))) for i in data.get("identifiers", [])
    )
    winnowed = {
        str(f["path"]): tuple(int(h) for h in f["winnow"])
        for f in data.get("files", [])
        if f.get("winnow")
    }
    return Manifest(
        str(data["package"]),
        str(data["version"]),
        files,
        idents,
        tuple(data.get("paths", [])),
        winnowed,
    )


def load_manifest(path: Path) -> Manifest:
    try:
        return manifest_from_json(json.loads(path.read_bytes()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RespondError(
            f"The scan manifest {path} cannot be read ({exc}); the mirror hunt needs it.",
            "Re-run the scan step (`respond resume`), which writes scan/manifest.json.",
        ) from exc


def file_entry(path: str, data: bytes, map_name: str | None = "cli.js.map") -> dict[str, Any]:
    """One manifest `files` entry computed from content (tests, benches, rehearsals)."""
    return {
        "path": path,
        "source": f"../{path}",
        "map": map_name,
        "size": len(data),
        "lines": data.count(b"\n") + 1,
        "blob_sha1": blob_sha1(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "norm_sha256": norm_sha256(data),
        "first_party": is_first_party(path),
        "winnow": list(winnow(data)) if is_first_party(path) else [],
    }


def manifest_dict(
    files: Mapping[str, bytes], package: str, version: str, identifiers: Iterable[str] = ()
) -> dict[str, Any]:
    """A manifest in the contract's shape built from reconstructed files (tests, benches)."""
    tokens = {t: [p for p, d in files.items() if t.encode() in d] for t in identifiers}
    return {
        "package": package,
        "version": version,
        "files": [file_entry(p, d) for p, d in sorted(files.items())],
        "identifiers": [{"token": t, "files": fs} for t, fs in tokens.items() if fs],
        "paths": sorted(p for p in files if is_first_party(p))[:20],
    }


@dataclass(frozen=True)
class Fingerprints:
    """What counts as evidence: distinctive first-party files, by blob SHA-1 and normalized hash.

    `excluded` holds blob SHAs that prove nothing: files also published in an official
    repository (their legitimate forks carry them) and files under MIN_EVIDENCE_BYTES.
    """

    by_sha: Mapping[str, frozenset[str]]
    by_norm: Mapping[str, frozenset[str]]
    by_path: Mapping[str, str]
    by_base: Mapping[str, tuple[str, ...]]
    total: int
    not_counted: int
    excluded: frozenset[str] = field(default_factory=frozenset)
    winnow: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, manifest: Manifest, public_shas: Iterable[str] = ()) -> Fingerprints:
        public = frozenset(public_shas)
        by_sha: dict[str, set[str]] = {}
        by_norm: dict[str, set[str]] = {}
        by_path: dict[str, str] = {}
        by_base: dict[str, list[str]] = {}
        dropped = 0
        for f in manifest.first_party:
            if f.size < MIN_EVIDENCE_BYTES or f.blob_sha1 in public:
                dropped += 1
                continue
            by_sha.setdefault(f.blob_sha1, set()).add(f.path)
            if f.norm_sha256:
                by_norm.setdefault(f.norm_sha256, set()).add(f.path)
            by_path[f.path] = f.blob_sha1
            by_base.setdefault(posixpath.basename(f.path), []).append(f.path)
        return cls(
            {k: frozenset(v) for k, v in by_sha.items()},
            {k: frozenset(v) for k, v in by_norm.items()},
            by_path,
            {k: tuple(v) for k, v in by_base.items()},
            len(by_path),
            dropped,
            public,
            {p: w for p, w in manifest.winnow.items() if p in by_path},
        )

    def leaked_path(self, tree_path: str) -> str | None:
        """The leaked file a tree entry may be a (reformatted) copy of: the same path, else a
        leaked path it ends with (the copy sits under a folder), else the first leaked file of
        the same name; None when no leaked file has its name."""
        if tree_path in self.by_path:
            return tree_path
        same_name = self.by_base.get(posixpath.basename(tree_path), ())
        under = (p for p in same_name if tree_path.endswith("/" + p))
        return next(under, same_name[0] if same_name else None)
