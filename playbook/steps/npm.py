"""Step types that read the leaked release and contain it on the npm registry."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypedDict
from urllib.parse import urlsplit

import nodesemver

from playbook import scan
from playbook.clock import utcnow
from playbook.errors import PolicyRefused, RemoteError, UsageError
from playbook.scan import ScanResult
from playbook.scan.model import ScanSummary as ScanSummary
from playbook.scan.model import SecretSummary as SecretSummary
from playbook.scan.verdict import Verdict
from playbook.services.hub import Cache
from playbook.services.npm import (
    LAST_VERSION_HINT,
    LAST_VERSION_MESSAGE,
    LastVersion,
    NpmRegistry,
    Packument,
    registry_for,
)
from playbook.spec import PackageSpec, default_tarball_url, escape_name, tarball_filename
from playbook.steps import register
from playbook.steps.base import Action, Outcome, Plan, StepContext, StepOutputs, StepType
from playbook.store.records import JsonRecord

POLICY_HOURS = 72.0
MAX_CANDIDATE_SCANS = 5
UNPUBLISHED_KEY = "npm.unpublished:{registry}:{spec}"
SCAN_KEY = "npm.scan-verdict:{integrity}"


def registry(ctx: StepContext) -> NpmRegistry:
    return registry_for(ctx.services, ctx.target.name)


# -- outputs (every field has a default so a record written by an older version still reads) -------


@dataclass(frozen=True)
class LookupOutput(StepOutputs):
    """What the registry says about the leaked version right now."""

    package: str = ""
    version: str = ""
    registry: str = ""
    registry_source: str = ""
    dist_tags: dict[str, str] = field(default_factory=dict)
    versions: tuple[str, ...] = ()
    exists: bool = False
    unpublished: bool = False
    published_at: str | None = None
    hours_since_publish: float | None = None
    tags_on_version: tuple[str, ...] = ()
    maintainers: tuple[str, ...] = ()
    deprecated: str | None = None
    tarball: str | None = None
    tarball_still_served: bool = False
    integrity: str | None = None
    shasum: str | None = None


@dataclass(frozen=True)
class ScanOutput(StepOutputs):
    leaky: bool = False
    reasons: tuple[str, ...] = ()
    findings_file: str | None = None
    manifest_file: str | None = None
    summary: ScanSummary = field(default_factory=ScanSummary)
    # The release against the version before it ("2.1.87 shipped no map; 2.1.88 added one ...").
    baseline: str | None = None
    comparison: str = ""
    verdict: str = ""


# A TypedDict because "from" is a keyword: the JSON form (and runbook expressions) keep "from".
TagMove = TypedDict("TagMove", {"from": str, "to": str})


@dataclass(frozen=True)
class RetagOutput(StepOutputs):
    safe_version: str | None = None
    moved: dict[str, TagMove] = field(default_factory=dict)
    left: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class DeprecateOutput(StepOutputs):
    deprecated: bool = False
    message: str = ""
    gone: bool = False


@dataclass(frozen=True)
class Policy:
    """npm's unpublish rules as far as the registry lets us tell (None: cannot tell)."""

    allowed: bool | None = None
    within_72h: bool | None = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnpublishOutput(StepOutputs):
    unpublished: bool = False
    policy: Policy = field(default_factory=Policy)
    support_request_needed: bool = False
    registry_reason: str | None = None
    sequence: tuple[str, ...] = ()
    whole_package: bool = False
    # npm's rule: the only version is not unpublished without the whole-package flag.
    withheld: bool = False
    withheld_reason: str | None = None


@dataclass(frozen=True)
class VerifyOutput(StepOutputs):
    contained: bool = False
    dist_tags: dict[str, str] = field(default_factory=dict)
    deprecated: bool | None = None
    version_present: bool = False
    tarball_reachable: bool = False
    tags_on_version: tuple[str, ...] = ()
    checked_at: str | None = None


def lookup_of(ctx: StepContext) -> LookupOutput:
    """The npm.lookup outputs this step depends on (id from `with: {lookup: ...}`)."""
    step_id = str(ctx.params.get("lookup", "lookup"))
    found = ctx.output_of(step_id, LookupOutput)
    if found is None:
        raise UsageError(
            f"Step {ctx.step_id} needs the outputs of npm.lookup step {step_id!r} for "
            f"{ctx.target}; add it to `needs:`."
        )
    return found


def _path(name: str, *parts: str) -> str:
    return "/".join([escape_name(name), *parts])


def _parse_time(iso: str | None) -> datetime | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None


def _hours_since(iso: str | None, now: datetime | None = None) -> float | None:
    when = _parse_time(iso)
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round(((now or datetime.now(UTC)) - when).total_seconds() / 3600, 2)


# -- write-ahead intents ------------------------------------------------------------------------
# A mutating step records what it is about to send (which write, to which package and version,
# when) before it sends it. Killed after the registry accepted the write but before the step
# recorded its outcome, the resumed step finds the registry already in the target state: with
# its own intent recorded, the write was this incident's (said "confirmed after a restart");
# without one, someone else did it ("already ...").
INTENT = "npm.intent"
CONFIRMED = "confirmed after a restart"


def confirmed_note(ctx: StepContext) -> str:
    """How a write found done by its own intent is said: a new process, or a retry in this one."""
    return CONFIRMED if ctx.attempt == 1 else f"confirmed on attempt {ctx.attempt}"


@dataclass(frozen=True)
class Intent(JsonRecord):
    """A registry write a step is about to send, recorded before it goes (kind "npm.intent",
    keyed by step, target and write)."""

    record_kind: ClassVar[str] = INTENT

    key: str = ""
    write: str = ""  # "dist-tag:<tag>", "deprecate", "unpublish"
    package: str = ""
    version: str = ""
    at: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def record_key(self) -> str:
        return self.key


def _intent_key(ctx: StepContext, write: str) -> str:
    return f"{ctx.step_id}:{ctx.target}:{write}"


def intent_of(ctx: StepContext, write: str) -> Mapping[str, Any] | None:
    """What an earlier run of this step recorded it would send for `write` (None: nothing)."""
    found = ctx.records.get(Intent, _intent_key(ctx, write))
    return None if found is None else found.detail


def record_intent(ctx: StepContext, write: str, **detail: Any) -> None:
    """Write-ahead: committed to the store before the write is sent."""
    key = _intent_key(ctx, write)
    target = ctx.target
    ctx.records.put(Intent(key, write, target.name, target.version, utcnow(), dict(detail)))


def mark_unpublished(cache: Cache, reg: NpmRegistry, spec: PackageSpec) -> None:
    """Remember our own unpublish: Verdaccio forgets a removed version's publish time."""
    cache.put(UNPUBLISHED_KEY.format(registry=reg.url, spec=spec), utcnow())


def was_unpublished(cache: Cache, reg: NpmRegistry, spec: PackageSpec) -> bool:
    return cache.get(UNPUBLISHED_KEY.format(registry=reg.url, spec=spec)) is not None


# -- npm.lookup -----------------------------------------------------------------------------------


async def lookup(reg: NpmRegistry, spec: PackageSpec, cache: Cache) -> LookupOutput:
    """The npm.lookup outputs for `spec`: what the registry says about it right now."""
    doc = await reg.packument(spec.name)
    if doc is None:
        if was_unpublished(cache, reg, spec):
            return _gone(reg, spec, None, await _leftover_tarball(reg, spec))
        raise RemoteError(
            f"The registry {reg.url} has no package {spec.name}.",
            f"Check the name and the registry (set by {reg.source}).",
            status=404,
        )
    info = doc.versions.get(spec.version)
    if info is None:
        recorded = spec.version in doc.time or spec.version in doc.unpublished_versions
        if recorded or was_unpublished(cache, reg, spec):
            return _gone(reg, spec, doc, await _leftover_tarball(reg, spec))
        known = ", ".join(nodesemver.sort(list(doc.versions), True)[-5:]) or "none"
        raise RemoteError(
            f"{spec.name} has no version {spec.version} on {reg.url} (latest versions: {known}).",
            "Check the version; a version never published cannot have leaked from this registry.",
            status=404,
        )
    return replace(
        _base(reg, spec, doc),
        exists=True,
        maintainers=tuple(info.maintainers or doc.maintainers),
        deprecated=info.deprecated,
        tarball=info.dist.tarball,
        integrity=info.dist.integrity,
        shasum=info.dist.shasum,
    )


def _base(reg: NpmRegistry, spec: PackageSpec, doc: Packument | None) -> LookupOutput:
    """What a lookup says whether or not the version is still there."""
    published = doc.time.get(spec.version) if doc else None
    return LookupOutput(
        package=spec.name,
        version=spec.version,
        registry=reg.url,
        registry_source=reg.source,
        dist_tags=dict(doc.dist_tags) if doc else {},
        versions=tuple(nodesemver.sort(list(doc.versions), True)) if doc else (),
        published_at=published,
        hours_since_publish=_hours_since(published),
        tags_on_version=tuple(doc.tags_on(spec.version)) if doc else (),
        maintainers=tuple(doc.maintainers) if doc else (),
    )


async def _leftover_tarball(reg: NpmRegistry, spec: PackageSpec) -> str | None:
    """The tarball of a removed version if it is still served (an unpublish cut short)."""
    url = default_tarball_url(reg.url, spec.name, spec.version)
    return url if await reg.tarball_reachable(url) else None


def _gone(
    reg: NpmRegistry, spec: PackageSpec, doc: Packument | None, leftover: str | None
) -> LookupOutput:
    return replace(
        _base(reg, spec, doc),
        unpublished=True,
        tarball=leftover,
        tarball_still_served=leftover is not None,
    )


@register
class Lookup(StepType):
    uses = "npm.lookup"
    outputs = LookupOutput
    description = "Read the packument: versions, dist-tags, publish time, maintainers."

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        out = await lookup(registry(ctx), ctx.target, ctx.services.cache)
        if out.unpublished:
            summary = f"{ctx.target} is already unpublished from {out.registry}"
        else:
            tags = ", ".join(out.tags_on_version) or "no tags"
            age = out.hours_since_publish
            summary = f"{ctx.target} found ({tags}; published {age} h ago)"
        return Outcome(outputs=out, summary=summary)


# -- npm.scan -------------------------------------------------------------------------------------


async def fetch_tarball(reg: NpmRegistry, look: LookupOutput, folder: Path) -> Path:
    """Download the version's tarball into `folder`, checked against integrity and shasum."""
    url = str(look.tarball)
    dest = folder / tarball_filename(look.package, look.version)
    await reg.download(url, dest, integrity=look.integrity, shasum=look.shasum)
    return dest


def _scan_file(path: Path, package: str, version: str) -> ScanResult:
    return scan.scan_tarball(path, package=package, version=version)


@register
class Scan(StepType):
    uses = "npm.scan"
    outputs = ScanOutput
    description = (
        "Download the tarball (integrity-checked) and size the leak: maps, secrets, files."
    )
    params = frozenset({"lookup", "tarball", "prefix"})

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        look = lookup_of(ctx)
        local = ctx.params.get("tarball")
        with ctx.temp_dir() as tmp:
            if local:
                path = Path(str(local)).expanduser()
            elif look.tarball:
                ctx.progress(f"downloading {look.tarball}")
                path = await fetch_tarball(registry(ctx), look, Path(tmp))
            else:
                return Outcome(
                    skipped=True,
                    summary=f"{ctx.target} is no longer downloadable; scan a saved copy with "
                    "`with: {tarball: PATH}`",
                )
            ctx.progress("scanning the tarball")
            result = await asyncio.to_thread(_scan_file, path, ctx.target.name, ctx.target.version)
        prefix = str(ctx.params.get("prefix", ctx.file_prefix))
        findings, manifest = scan.write_outputs(result, ctx.write_file, prefix)
        ctx.progress("scanning the version before it, for the comparison")
        judged = await _against_previous(ctx, result)
        outputs = ScanOutput(
            leaky=result.leaky,
            reasons=tuple(result.reasons),
            findings_file=findings,
            manifest_file=manifest,
            summary=result.scan_summary(),
            baseline=judged.baseline,
            comparison=judged.comparison if judged.baseline else judged.baseline_note,
            verdict=judged.headline,
        )
        verdict = "LEAKY: " + "; ".join(result.reasons) if result.leaky else "clean"
        return Outcome(outputs=outputs, summary=f"{ctx.target}: {verdict} ({outputs.comparison})")


async def _against_previous(ctx: StepContext, result: ScanResult) -> Verdict:
    """The verdict against the version published before the target (the absolute view, said so,
    when there is none or the registry cannot give it)."""
    from playbook.scan import baseline as bl
    from playbook.scan.verdict import judge

    reg = registry(ctx)

    async def previous() -> bl.Baseline:
        doc = await reg.packument(ctx.target.name)
        if doc is None:
            return bl.Baseline(None, f"{ctx.target.name} is gone from {reg.url}: absolute view")
        return await bl.before(reg, doc, ctx.target.version)

    base = await bl.guarded(previous(), reg.url)
    return judge(result, base.exposure, baseline_note=base.note)


# -- npm.retag ------------------------------------------------------------------------------------


def earlier_versions(versions: list[str], leaked: str) -> list[str]:
    """Versions below the leaked one, newest first; prereleases only when the leaked one is one."""
    leaked_pre = bool(nodesemver.parse(leaked, True).prerelease)
    out: list[str] = []
    for v in versions:
        if not nodesemver.valid(v, True) or not nodesemver.lt(v, leaked, True):
            continue
        if nodesemver.parse(v, True).prerelease and not leaked_pre:
            continue
        out.append(v)
    return nodesemver.rsort(out, True)  # type: ignore[no-any-return]


async def scan_verdict(
    reg: NpmRegistry, cache: Cache, doc: Packument, version: str, scratch: Path
) -> tuple[bool, list[str]]:
    """Whether an earlier version leaks too. One download and scan per candidate, cached in the
    store by its integrity, so a re-run (or the next incident) costs nothing."""
    dist = doc.versions[version].dist
    key = SCAN_KEY.format(integrity=dist.integrity or dist.shasum or f"{doc.name}@{version}")
    cached = cache.get(key)
    if cached is not None:
        verdict = json.loads(cached)
        return bool(verdict["leaky"]), list(verdict["reasons"])
    if not dist.tarball:
        return True, ["no tarball to scan"]
    look = LookupOutput(package=doc.name, version=version, tarball=dist.tarball,
                        integrity=dist.integrity, shasum=dist.shasum)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="candidate-", dir=scratch) as tmp:
        path = await fetch_tarball(reg, look, Path(tmp))
        result = await asyncio.to_thread(_scan_file, path, doc.name, version)
    cache.put(key, json.dumps({"leaky": result.leaky, "reasons": list(result.reasons)}))
    return bool(result.leaky), list(result.reasons)


async def choose_safe_version(
    ctx: StepContext, reg: NpmRegistry, doc: Packument
) -> tuple[str | None, str]:
    """The newest earlier version that is neither deprecated nor leaky, and why."""
    leaked = ctx.target.version
    override = ctx.settings.safe_version or ctx.params.get("safe_version")
    if override:
        if str(override) not in doc.versions or str(override) == leaked:
            raise UsageError(
                f"--safe-version {override} is not another published version of {doc.name}.",
                f"Published versions: {', '.join(nodesemver.sort(list(doc.versions), True)[-8:])}",
            )
        return str(override), f"{override} chosen by --safe-version"
    skipped: list[str] = []
    candidates = earlier_versions(list(doc.versions), leaked)
    for version in candidates[:MAX_CANDIDATE_SCANS]:
        if doc.versions[version].deprecated:
            skipped.append(f"{version} deprecated")
            continue
        ctx.progress(f"scanning candidate {doc.name}@{version}")
        with ctx.temp_dir() as scratch:
            leaky, reasons = await scan_verdict(
                reg, ctx.services.cache, doc, version, Path(scratch)
            )
        if not leaky:
            why = f"{version} is the newest earlier version, not deprecated, scanned clean"
            return version, why + (f" (skipped: {'; '.join(skipped)})" if skipped else "")
        skipped.append(f"{version} leaky ({'; '.join(reasons)})")
    if not candidates:
        return None, f"no earlier version of {doc.name} exists"
    limit = "" if len(candidates) <= MAX_CANDIDATE_SCANS else f", first {MAX_CANDIDATE_SCANS} tried"
    return None, f"no safe earlier version ({'; '.join(skipped)}{limit})"


def _tag_actions(reg: NpmRegistry, name: str, tags: list[str], to: str) -> tuple[Action, ...]:
    return tuple(
        Action("PUT", f"{reg.url}-/package/{_path(name)}/dist-tags/{tag}", f"move {tag} to {to}")
        for tag in tags
    )


@register
class Retag(StepType):
    uses = "npm.retag"
    outputs = RetagOutput
    mutates = True
    description = "Move every dist-tag off the leaked version to the newest safe earlier version."
    params = frozenset({"lookup", "safe_version"})

    async def plan(self, ctx: StepContext) -> Plan:
        reg = registry(ctx)
        doc = await reg.packument(ctx.target.name)
        if doc is None:
            out = RetagOutput(reason="package gone")
            return Plan(outputs=out, summary=f"{ctx.target.name} is no longer on the registry")
        safe, reason = await choose_safe_version(ctx, reg, doc)
        tags = doc.tags_on(ctx.target.version)
        if safe is None:
            out = RetagOutput(left=tuple(tags), reason=reason)
            return Plan(outputs=out, summary=f"tags left on {ctx.target.version}: {reason}")
        moved: dict[str, TagMove] = {t: {"from": ctx.target.version, "to": safe} for t in tags}
        out = RetagOutput(safe_version=safe, moved=moved, reason=reason)
        actions = _tag_actions(reg, ctx.target.name, tags, safe)
        return Plan(actions=actions, outputs=out, summary=_moved_summary(moved, safe))

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        out = plan.outputs_as(RetagOutput)
        safe = out.safe_version
        if safe is None:
            return Outcome(outputs=out, summary=plan.summary)
        reg = registry(ctx)
        leaked = ctx.target.version
        current = await reg.dist_tags(ctx.target.name)  # re-read: act on the state as it is now
        moved: dict[str, TagMove] = {}
        confirmed: list[str] = []
        for tag in sorted(t for t, v in current.items() if v == safe):
            intent = intent_of(ctx, f"dist-tag:{tag}")
            if intent and intent.get("from") == leaked and intent.get("to") == safe:
                # Our own move, sent before a crash and never recorded: this incident's.
                event = {"tag": tag, "from": leaked, "to": safe, "confirmed": confirmed_note(ctx)}
                ctx.event("npm.dist-tag", event)
                moved[tag] = {"from": leaked, "to": safe}
                confirmed.append(tag)
        for tag in sorted(t for t, v in current.items() if v == leaked):
            record_intent(ctx, f"dist-tag:{tag}", tag=tag, **{"from": leaked, "to": safe})
            await reg.set_dist_tag(ctx.target.name, tag, safe, progress=ctx.progress)
            ctx.event("npm.dist-tag", {"tag": tag, "from": leaked, "to": safe})
            moved[tag] = {"from": leaked, "to": safe}
        moved = dict(sorted(moved.items()))
        return Outcome(
            outputs=replace(out, moved=moved),
            changed=bool(moved),
            summary=_moved_summary(moved, safe, confirmed, confirmed_note(ctx)),
        )


def _moved_summary(
    moved: dict[str, TagMove], safe: str, confirmed: Sequence[str] = (), note: str = CONFIRMED
) -> str:
    if not moved:
        return f"no tag points at the leaked version (safe version {safe})"
    said = f"moved {', '.join(sorted(moved))} to {safe}"
    if not confirmed:
        return said
    if set(confirmed) == set(moved):
        return f"{said} ({note})"
    return f"{said} ({', '.join(sorted(confirmed))} {note})"


# -- npm.deprecate --------------------------------------------------------------------------------


def deprecation_message(ctx: StepContext, safe: str | None) -> str:
    given = ctx.params.get("message")
    if given:
        return str(given)
    instead = f"; use {safe} instead" if safe else "; do not install it"
    return f"{ctx.target} shipped files that should not have been published{instead}."


@register
class Deprecate(StepType):
    uses = "npm.deprecate"
    outputs = DeprecateOutput
    mutates = True
    description = "Set the deprecation message on the leaked version only."
    params = frozenset({"lookup", "retag", "message"})

    async def plan(self, ctx: StepContext) -> Plan:
        retag = ctx.output(RetagOutput, "retag")
        message = deprecation_message(ctx, retag.safe_version if retag else None)
        doc = await registry(ctx).packument(ctx.target.name)
        info = doc.versions.get(ctx.target.version) if doc else None
        if info is None:
            out = DeprecateOutput(deprecated=False, message=message, gone=True)
            return Plan(outputs=out, summary=f"{ctx.target} is no longer on the registry")
        out = DeprecateOutput(deprecated=True, message=message, gone=False)
        if info.deprecated == message:
            return Plan(outputs=out, summary=f"{ctx.target} is already deprecated")
        url = f"{registry(ctx).url}{_path(ctx.target.name)}"
        action = Action("PUT", url, f"deprecate {ctx.target}: {message!r}")
        return Plan(actions=(action,), outputs=out, summary=f"deprecate {ctx.target}")

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        out = plan.outputs_as(DeprecateOutput)
        if out.gone:
            return Outcome(outputs=out, summary=plan.summary)
        reg = registry(ctx)
        message = out.message
        intent = intent_of(ctx, "deprecate")
        changed = False
        if plan.actions:  # not already deprecated when planned: say so before sending
            record_intent(ctx, "deprecate", message=message)
            changed = await reg.deprecate(
                ctx.target.name, ctx.target.version, message, progress=ctx.progress
            )
        event = {"version": ctx.target.version, "message": message}
        if changed:
            ctx.event("npm.deprecate", event)
            return Outcome(outputs=out, changed=True, summary=f"deprecated {ctx.target}")
        if intent is not None and intent.get("message") == message:
            # Our own deprecation, sent before a crash and never recorded: this incident's.
            ctx.event("npm.deprecate", {**event, "confirmed": confirmed_note(ctx)})
            summary = f"deprecated {ctx.target} ({confirmed_note(ctx)})"
            return Outcome(outputs=out, changed=True, summary=summary)
        return Outcome(outputs=out, summary=f"{ctx.target} was already deprecated")


# -- npm.unpublish --------------------------------------------------------------------------------


def evaluate_policy(look: LookupOutput) -> Policy:
    """npm's unpublish rules, as far as the registry lets us tell. The registry decides."""
    hours = look.hours_since_publish
    within = None if hours is None else hours < POLICY_HOURS
    reasons = []
    if within is None:
        reasons.append("publish time unknown: cannot tell whether it is within 72 hours")
    elif within:
        reasons.append(f"published {hours:g} h ago: within the 72-hour window")
    else:
        reasons.append(f"published {hours:g} h ago: past 72 hours, so npm also requires no "
                       "dependents, under 300 downloads last week and a single owner")  # fmt: skip
    reasons.append("dependents: cannot tell (this registry does not report them)")
    if within is False:
        reasons.append("weekly downloads: cannot tell (this registry does not report them)")
        owners = len(look.maintainers)
        if owners > 1:
            reasons.append(f"{owners} maintainers: npm requires a single owner after 72 hours")
            return Policy(allowed=False, within_72h=within, reasons=tuple(reasons))
    return Policy(allowed=None, within_72h=within, reasons=tuple(reasons))


@register
class Unpublish(StepType):
    uses = "npm.unpublish"
    outputs = UnpublishOutput
    mutates = True
    destructive = True
    description = "Unpublish the leaked version (npm's exact sequence); whole package only on flag."
    params = frozenset({"lookup", "retag", "whole_package"})

    async def plan(self, ctx: StepContext) -> Plan:
        look = lookup_of(ctx)
        policy = evaluate_policy(look)
        reg = registry(ctx)
        doc = await reg.packument(ctx.target.name, write=True)
        everything = whole_package(ctx)
        if doc is not None and not everything and list(doc.versions) == [ctx.target.version]:
            out = withheld(UnpublishOutput(policy=policy), ctx)
            return Plan(outputs=out, summary=str(out.withheld_reason))
        actions = await self._actions(ctx, reg, doc, look, everything)
        done = not actions
        out = UnpublishOutput(unpublished=done, policy=policy, whole_package=everything)
        if done:
            return Plan(outputs=out, summary=f"{ctx.target} is already unpublished")
        return Plan(actions=actions, outputs=out, summary="; ".join(a.summary for a in actions))

    async def _actions(
        self,
        ctx: StepContext,
        reg: NpmRegistry,
        doc: Packument | None,
        look: LookupOutput,
        everything: bool,
    ) -> tuple[Action, ...]:
        name, version = ctx.target.name, ctx.target.version
        if doc is None:
            return ()
        if everything:
            url = f"{reg.url}{_path(name, '-rev', str(doc.rev))}"
            return (Action("DELETE", url, f"unpublish every version of {name}"),)
        tarball = look.tarball or default_tarball_url(reg.url, name, version)
        delete = Action(
            "DELETE", f"{tarball}/-rev/<new rev>", f"delete the tarball of {ctx.target}"
        )
        if version not in doc.versions:
            return (delete,) if await reg.tarball_reachable(str(tarball)) else ()
        put = Action(
            "PUT",
            f"{reg.url}{_path(name, '-rev', str(doc.rev))}",
            f"remove {version} and its tags from the document",
        )
        return (put, delete)

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        out = plan.outputs_as(UnpublishOutput)
        reg = registry(ctx)
        intent = intent_of(ctx, "unpublish")
        if not plan.actions:
            if out.withheld:
                ctx.event("npm.unpublish.withheld", {"reason": out.withheld_reason})
            elif intent is not None:  # our own unpublish, sent before a crash, never recorded
                return self._confirmed(ctx, reg, out, intent)
            return Outcome(outputs=out, skipped=out.withheld, summary=plan.summary)
        # Write-ahead: the requests this step is about to send, before any of them goes (in the
        # form `sequence` lists them; a tarball's DELETE names the revision the PUT will return).
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(reg.url))
        requests = [f"{a.method} {origin}{urlsplit(a.url).path}" for a in plan.actions]
        record_intent(ctx, "unpublish", whole_package=out.whole_package, requests=requests)
        # Even when our reading of the policy says no, ask: the registry decides, and private
        # registries have no such policy. A refusal is then recorded in the registry's words.
        try:
            result = await self._unpublish(ctx, reg)
        except LastVersion:  # the other versions went since the plan: npm's rule now applies
            out = withheld(out, ctx)
            ctx.event("npm.unpublish.withheld", {"reason": out.withheld_reason})
            return Outcome(outputs=out, skipped=True, summary=str(out.withheld_reason))
        except PolicyRefused as exc:
            ctx.event("npm.unpublish.refused", {"status": exc.status, "reason": exc.message})
            refused = replace(
                out,
                unpublished=False,
                sequence=(),
                support_request_needed=True,
                registry_reason=exc.message,
            )
            return Outcome(outputs=refused, skipped=True, summary=exc.message)
        if not result.changed and intent is not None:  # finished before the crash after all
            return self._confirmed(ctx, reg, out, intent)
        sequence = tuple(result.sequence)
        if intent is not None and result.note:  # finished one a crash cut short: ours, begun
            planned = list(intent.get("requests") or ())
            sequence = (*planned[: max(0, len(planned) - len(sequence))], *sequence)
        mark_unpublished(ctx.services.cache, reg, ctx.target)
        ctx.event("npm.unpublish", {"sequence": list(sequence), "note": result.note})
        out = replace(out, unpublished=True, sequence=sequence)
        what = "every version of " + ctx.target.name if result.whole_package else str(ctx.target)
        summary = f"unpublished {what}" + (f" ({result.note})" if result.note else "")
        return Outcome(outputs=out, changed=result.changed, summary=summary)

    def _confirmed(
        self, ctx: StepContext, reg: NpmRegistry, out: UnpublishOutput, intent: Mapping[str, Any]
    ) -> Outcome:
        """The registry shows the unpublish this step recorded as intended: this incident's."""
        mark_unpublished(ctx.services.cache, reg, ctx.target)
        everything = bool(intent.get("whole_package"))
        sequence = tuple(str(r) for r in intent.get("requests") or ())  # as recorded before sending
        note = confirmed_note(ctx)
        ctx.event("npm.unpublish", {"sequence": list(sequence), "note": note})
        out = replace(out, unpublished=True, whole_package=everything, sequence=sequence)
        what = "every version of " + ctx.target.name if everything else str(ctx.target)
        return Outcome(outputs=out, changed=True, summary=f"unpublished {what} ({note})")

    async def _unpublish(self, ctx: StepContext, reg: NpmRegistry) -> Any:
        if whole_package(ctx):
            return await reg.unpublish_package(
                ctx.target.name, confirmed=True, progress=ctx.progress
            )
        look = lookup_of(ctx)
        retag = ctx.output(RetagOutput, "retag")
        return await reg.unpublish_version(
            ctx.target.name,
            ctx.target.version,
            tarball=look.tarball,
            latest=retag.safe_version if retag else None,
            progress=ctx.progress,
        )


def whole_package(ctx: StepContext) -> bool:
    """The whole-package flag: `--unpublish-all`, or `with: {whole_package: true}`."""
    return ctx.settings.unpublish_all or ctx.params.get("whole_package") is True


def withheld(out: UnpublishOutput, ctx: StepContext) -> UnpublishOutput:
    """The only version stays (deprecated, off its tags); the support request says why."""
    reason = f"{ctx.target} is the only version: {LAST_VERSION_MESSAGE} {LAST_VERSION_HINT}"
    return replace(
        out,
        unpublished=False,
        withheld=True,
        withheld_reason=reason,
        support_request_needed=True,
        sequence=(),
    )


# -- npm.verify -----------------------------------------------------------------------------------


async def verify(reg: NpmRegistry, spec: PackageSpec, tarball: str | None) -> VerifyOutput:
    """What is true on the registry now: tags, deprecation, presence, tarball reachability.
    The document is read with `?write=true`, as npm reads before a write: the public registry
    then answers from its database, not from a CDN copy up to minutes old."""
    doc = await reg.packument(spec.name, write=True)
    info = doc.versions.get(spec.version) if doc else None
    url = (info.dist.tarball if info else None) or tarball
    url = url or default_tarball_url(reg.url, spec.name, spec.version)
    reachable = await reg.tarball_reachable(url)
    tags = dict(doc.dist_tags) if doc else {}
    on_version = [t for t, v in tags.items() if v == spec.version]
    deprecated = None if info is None else info.deprecated is not None
    contained = not on_version and (info is None or bool(deprecated))
    contained = contained and not (info is None and reachable)
    return VerifyOutput(
        contained=contained,
        dist_tags=tags,
        deprecated=deprecated,
        version_present=info is not None,
        tarball_reachable=reachable,
        tags_on_version=tuple(on_version),
        checked_at=utcnow(),
    )


@register
class Verify(StepType):
    uses = "npm.verify"
    outputs = VerifyOutput
    description = "Re-read the registry and record what is really true now."
    params = frozenset({"lookup"})

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        look = ctx.output(LookupOutput, "lookup")
        out = await verify(registry(ctx), ctx.target, look.tarball if look else None)
        if out.contained:
            state = "gone" if not out.version_present else "deprecated, no tags"
            summary = f"{ctx.target} contained ({state})"
        else:
            problems = []
            if out.tags_on_version:
                problems.append(f"tags {', '.join(out.tags_on_version)} still point at it")
            if out.version_present and not out.deprecated:
                problems.append("not deprecated")
            if not out.version_present and out.tarball_reachable:
                problems.append("removed from the document but the tarball is still served")
            summary = f"{ctx.target} NOT contained: {'; '.join(problems)}"
        return Outcome(outputs=out, summary=summary)
