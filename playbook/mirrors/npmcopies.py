"""npm packages that republish the leaked code: found by metadata search, proven by their files.

Uses the registry client of playbook.services.npm (the registry URL comes from npm's own
configuration, never from this code). A tarball is untrusted: it is read as a stream with caps on
entry count and sizes, and only regular files are hashed; a source map inside it also has each
`sourcesContent` entry hashed, since a republished package may carry the leaked map itself.
"""

from __future__ import annotations

import asyncio
import json
import tarfile
import tempfile
from pathlib import Path

from playbook.errors import RespondError
from playbook.mirrors.model import Candidate, Source
from playbook.scan.fingerprint import blob_sha1
from playbook.services.hub import Services
from playbook.services.npm import registry_for

MAX_ENTRIES = 20_000
MAX_FILE_BYTES = 64 << 20
MAX_TARBALL_BYTES = 256 << 20
SEARCH_SIZE = 50


def package_url(name: str, version: str) -> str:
    """The record key of a package copy (no registry host: that comes from configuration)."""
    return f"npm:{name}@{version}"


async def search_copies(services: Services, package: str, words: str) -> list[Candidate]:
    registry = registry_for(services, package)
    hits = await registry.search(words, size=SEARCH_SIZE)
    return [
        Candidate(
            package_url(h.name, h.version),
            "npm",
            "package",
            f"{h.name}@{h.version}",
            description=h.description,
            found_by=(Source.NPM,),
        )
        for h in hits
        if h.name != package
    ]


async def package_files(
    services: Services, package: str, name_version: str
) -> list[tuple[str, str]]:
    """(path, git blob SHA-1) of every file in the package's tarball and of its maps' sources."""
    name, _, version = name_version.rpartition("@")
    registry = registry_for(services, package)
    doc = await registry.packument(name)
    info = doc.versions.get(version) if doc else None
    if info is None or not info.dist.tarball:
        raise RespondError(
            f"The registry has no tarball for {name_version}.",
            "It may have been unpublished since the search.",
        )
    with tempfile.TemporaryDirectory(prefix="respond-npm-") as tmp:
        dest = Path(tmp) / "package.tgz"
        await registry.download(
            info.dist.tarball,
            dest,
            integrity=info.dist.integrity,
            shasum=info.dist.shasum,
            max_bytes=MAX_TARBALL_BYTES,
        )
        return await asyncio.to_thread(hash_tarball, dest)


def hash_tarball(path: Path) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    with tarfile.open(path, mode="r:gz") as tar:
        for n, member in enumerate(tar):
            if n >= MAX_ENTRIES:
                raise RespondError(f"{path.name} has more than {MAX_ENTRIES} entries; refused.")
            if not member.isreg() or member.size > MAX_FILE_BYTES:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            data = handle.read()
            name = member.name.split("/", 1)[-1]
            out.append((name, blob_sha1(data)))
            if name.endswith(".map"):
                out += _map_sources(name, data)
    return out


def _map_sources(name: str, data: bytes) -> list[tuple[str, str]]:
    try:
        doc = json.loads(data)
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    sources, contents = doc.get("sources") or [], doc.get("sourcesContent") or []
    return [
        (f"{name}:{src}", blob_sha1(text.encode()))
        for src, text in zip(sources, contents, strict=False)
        if isinstance(src, str) and isinstance(text, str)
    ]
