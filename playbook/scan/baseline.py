"""Which release the guard compares with, fetched and scanned through the npm registry client.

`NAME@VERSION` is compared with the version before it (npm's semver order; prereleases only for a
prerelease); a folder or tarball with the registry's current release of its name (or, when its
version is already published, with the one before that); `--baseline` names another (a version,
`name@version`, or a folder/tarball). When the registry cannot give the baseline, the result says
so in one line and the verdict falls back to the absolute view: never a silent pass.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

import httpx
import nodesemver

from playbook.errors import RespondError, UsageError
from playbook.scan.verdict import Exposure, exposure
from playbook.services.npm import NpmRegistry, Packument, tarball_filename


@dataclass(frozen=True)
class Baseline:
    """The baseline's exposure (None: the absolute view) and one line saying what was chosen."""

    exposure: Exposure | None
    note: str


def previous_version(versions: list[str], version: str) -> str | None:
    """The highest version below `version`; prereleases count only when `version` is one."""
    if not nodesemver.valid(version, True):
        return None
    pre = bool(nodesemver.parse(version, True).prerelease)
    lower = [
        v
        for v in versions
        if nodesemver.valid(v, True)
        and nodesemver.lt(v, version, True)
        and (pre or not nodesemver.parse(v, True).prerelease)
    ]
    return str(nodesemver.rsort(lower, True)[0]) if lower else None


async def scan_published(reg: NpmRegistry, doc: Packument, version: str) -> Exposure:
    """Download `version` (integrity-checked) into a temporary folder and digest its scan."""
    from playbook.scan.api import scan_tarball
    from playbook.scan.model import GUARD_LIMITS

    dist = doc.versions[version].dist
    if not dist.tarball:
        raise RespondError(f"{doc.name}@{version} has no tarball on {reg.url}")
    with tempfile.TemporaryDirectory(prefix="respond-baseline-") as tmp:
        dest = Path(tmp) / tarball_filename(doc.name, version)
        await reg.download(dist.tarball, dest, integrity=dist.integrity, shasum=dist.shasum)
        result = await asyncio.to_thread(
            scan_tarball, dest, package=doc.name, version=version, limits=GUARD_LIMITS
        )  # a baseline is only compared: no fingerprints
    return exposure(result)


async def before(reg: NpmRegistry, doc: Packument, version: str) -> Baseline:
    """`NAME@VERSION`: the version published before it."""
    prior = previous_version(list(doc.versions), version)
    if prior is None:
        return Baseline(None, f"{doc.name} has no version before {version}: absolute view")
    found = await scan_published(reg, doc, prior)
    return Baseline(found, f"{found.label}, the version before {version} on {reg.url}")


async def for_local(reg: NpmRegistry, name: str, version: str) -> Baseline:
    """A folder or tarball: the registry's current release of its name."""
    if not name:
        return Baseline(None, "its package.json names no package: absolute view")
    doc = await reg.packument(name)
    if doc is None or not doc.versions:
        return Baseline(None, f"{name} is not on {reg.url} yet (a first release): absolute view")
    if version in doc.versions:
        found = await before(reg, doc, version)
        if found.exposure is None:
            return found
        note = f"{version} is already published, so {found.note}"
        return Baseline(found.exposure, note)
    latest = doc.dist_tags.get("latest")
    if latest not in doc.versions:
        latest = previous_version(list(doc.versions), "999999.0.0")
    if latest is None:
        return Baseline(None, f"{name} has no release on {reg.url}: absolute view")
    found_exp = await scan_published(reg, doc, latest)
    return Baseline(found_exp, f"{found_exp.label}, the current release on {reg.url}")


async def named(reg: NpmRegistry, name: str, version: str) -> Baseline:
    """`--baseline name@version` (or a bare version of the scanned package)."""
    doc = await reg.packument(name)
    if doc is None or version not in doc.versions:
        raise UsageError(
            f"--baseline {name}@{version} is not published on {reg.url}.",
            "Give a published version, name@version, a package folder or a .tgz.",
        )
    found = await scan_published(reg, doc, version)
    return Baseline(found, f"{found.label}, chosen by --baseline")


async def guarded(work: Awaitable[Baseline], registry_url: str) -> Baseline:
    """The baseline, or the absolute view with one line saying why the registry could not help."""
    try:
        return await work
    except UsageError:
        raise
    except (RespondError, httpx.HTTPError, OSError) as exc:
        why = " ".join(str(exc).split())[:200] or type(exc).__name__
        return Baseline(
            None,
            f"NO BASELINE: the registry {registry_url} could not give one ({why}); "
            "judged on its own (absolute view)",
        )
