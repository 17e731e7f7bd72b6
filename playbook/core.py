"""The commands as plain functions: the CLI parses and prints, these do the work and never print."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playbook import steps as step_types
from playbook.config.settings import Mode, Settings
from playbook.engine import runbook as runbooks
from playbook.engine.runbook import Runbook
from playbook.engine.runner import Approver, Engine, Reporter, RunResult, create_incident
from playbook.errors import RunbookError, UsageError
from playbook.net.http import ClientOptions, RetryPolicy, WaitHook
from playbook.resources import runbooks_dir
from playbook.services.hub import Services
from playbook.spec import PackageSpec, parse_spec
from playbook.store.sqlite import Incident, StepRecord, StepStatus, Store, StoreCache

if TYPE_CHECKING:
    from playbook.mirrors.model import Change
    from playbook.notices.model import Notice
    from playbook.scan import ScanResult
    from playbook.scan.baseline import Baseline
    from playbook.scan.verdict import Verdict
    from playbook.services.npm import Packument

DEFAULT_RUNBOOK = "npm-leak.yaml"


def default_runbook_path() -> Path:
    return runbooks_dir() / DEFAULT_RUNBOOK


def load_runbook(path: Path | None, settings: Settings) -> Runbook:
    """The runbook at `path` (default: the shipped one), its step types checked against the
    built-in ones and the settings' own (RESPOND_STEP_MODULES)."""
    step_types.use_modules(settings.step_modules)
    return runbooks.load(path or default_runbook_path())


def parse_specs(texts: list[str]) -> list[PackageSpec]:
    specs = [parse_spec(t) for t in texts]
    if not specs:
        raise UsageError("No package given; accepted: name@1.2.3 or @scope/name@1.2.3.")
    duplicates = sorted({str(s) for s in specs if specs.count(s) > 1})
    if duplicates:
        raise UsageError(f"{duplicates[0]} is given twice; name each release once.")
    return specs


def open_store(settings: Settings) -> Store:
    return Store(settings.home)


@dataclass
class Session:
    """What one command invocation drives: the store, the services and the engine."""

    settings: Settings
    store: Store
    reporter: Reporter | None = None
    approver: Approver | None = None
    on_wait: WaitHook | None = None
    otp_prompt: Callable[[str], str | None] | None = None

    def __post_init__(self) -> None:
        step_types.use_modules(self.settings.step_modules)  # a resume parses the stored runbook

    def services(self) -> Services:
        """The run's clients, built from the settings: the one place a run's Services is made."""
        options = ClientOptions(
            dry_run=self.settings.dry_run,
            timeout=self.settings.timeout,
            retry=RetryPolicy(backoff=self.settings.retry_backoff),
            on_wait=self.on_wait,
            loopback_only=self.settings.loopback_only,
        )
        return Services(
            self.settings, options, cache=StoreCache(self.store), otp_prompt=self.otp_prompt
        )

    async def run(self, incident_id: str, runbook: Runbook) -> RunResult:
        services = self.services()
        try:
            engine = Engine(
                self.store,
                self.settings,
                services,
                reporter=self.reporter,
                approver=self.approver,
            )
            return await engine.run(incident_id, runbook)
        finally:
            await services.aclose()


def leak(
    session: Session,
    specs: list[PackageSpec],
    runbook: Runbook,
    inputs: Mapping[str, Any] | None = None,
    *,
    first_events: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> RunResult:
    """Open a new incident for the leaked releases and run the runbook on it.

    `first_events` go into the audit trail before the run starts (a rehearsal names its scenario).
    """
    incident_id = create_incident(
        session.store, session.settings.mode, runbook, specs, inputs or {}
    )
    for kind, data in first_events:
        session.store.log(incident_id, kind, data)
    return asyncio.run(session.run(incident_id, runbook))


def resume(session: Session, incident_id: str, *, force: bool = False) -> RunResult:
    """Run what is not finished of an incident, after a crash, a failure or an approval.

    The incident keeps the mode it started in: a dry run resumes as a dry run.
    """
    incident = session.store.get_incident(incident_id)
    session.settings = dataclasses.replace(session.settings, mode=Mode(incident.mode))
    runbook = _runbook_for_resume(session.store, incident, force=force)
    return asyncio.run(session.run(incident_id, runbook))


def _runbook_for_resume(store: Store, incident: Incident, *, force: bool) -> Runbook:
    path = Path(incident.runbook_path)
    if not path.is_file():
        return runbooks.parse(incident.runbook_text, incident.runbook_path)
    current = runbooks.load(path)
    if current.digest == incident.runbook_hash:
        return current
    if not force:
        raise RunbookError(
            f"Runbook {path} changed since incident {incident.id} started "
            f"(sha256 {incident.runbook_hash[:12]} then, {current.digest[:12]} now).",
            "Resume with --force to continue under the changed runbook; the change is recorded.",
        )
    store.replace_runbook(incident.id, str(path), current.digest, current.text)
    return current


def approve(store: Store, incident_id: str, step: str, who: str, note: str) -> list[str]:
    """Record approval for a step (by id: every package's instance of it) before a resume."""
    store.get_incident(incident_id)
    keys = [r.key for r in store.steps(incident_id) if step in (r.key, r.step_id)]
    if not keys:
        known = ", ".join(sorted({r.step_id for r in store.steps(incident_id)}))
        raise UsageError(f"Incident {incident_id} has no step {step!r}; its steps: {known}.")
    for key in keys:
        store.approve(incident_id, key, who, note)
    return keys


def not_contained(result: RunResult) -> list[str]:
    """The verification's words for each npm.verify that found the leaked version still served:
    a live run ending so exits NOT_CONTAINED (8), not 0."""
    return [
        step.summary
        for step in result.steps
        if step.uses == "npm.verify"
        and step.status is StepStatus.SUCCEEDED
        and (step.outputs or {}).get("contained") is False
    ]


def result_json(result: RunResult) -> dict[str, Any]:
    return {
        "incident": result.incident_id,
        "status": result.status,
        "steps": [step_json(s) for s in result.steps],
    }


def step_json(step: StepRecord) -> dict[str, Any]:
    return {
        "key": step.key,
        "package": step.target,
        "id": step.step_id,
        "uses": step.uses,
        "status": step.status.value,
        "attempt": step.attempt,
        "changed": step.changed,
        "summary": step.summary,
        "error": step.error,
        "started_at": step.started_at,
        "ended_at": step.ended_at,
        "outputs": step.outputs,
    }


def track_notice(
    settings: Settings,
    notice_id: str,
    incident_id: str | None,
    *,
    sent: bool,
    ref: str | None = None,
) -> Notice:
    """Record that a person sent a notice, or that it is resolved."""
    from playbook.notices import mark_resolved, mark_sent

    store = open_store(settings)
    try:
        owner = incident_of_notice(store, notice_id, incident_id)
        with store.driving(owner):  # as a run does, while the command writes
            if sent:
                return mark_sent(store, owner, notice_id, ref, settings.operator)
            return mark_resolved(store, owner, notice_id, settings.operator)
    finally:
        store.close()


def incident_of_notice(store: Store, notice_id: str, incident_id: str | None) -> str:
    """The incident that holds a notice id (given, or found when exactly one holds it)."""
    if incident_id is not None:
        store.get_incident(incident_id)
        return incident_id
    owners = [
        i.id for i in store.list_incidents() if store.record(i.id, "notice", notice_id) is not None
    ]
    if len(owners) == 1:
        return owners[0]
    if not owners:
        raise UsageError(f"No incident holds a notice {notice_id!r}; see `respond notices ID`.")
    raise UsageError(
        f"Notice {notice_id!r} exists in {len(owners)} incidents ({', '.join(owners)}); "
        "name one with --incident."
    )


@contextlib.asynccontextmanager
async def _own_services(settings: Settings) -> AsyncIterator[Services]:
    """A store and its services for one guard command, both closed however it ends."""
    store = open_store(settings)
    services = Session(settings, store).services()
    try:
        yield services
    finally:
        await services.aclose()
        store.close()


async def _download_and_scan(
    services: Services, spec: PackageSpec, doc: Packument | None = None
) -> ScanResult:
    """Scan a published version: its tarball, checked against the packument (`doc`, when the
    caller read it already), in a temp folder."""
    import tempfile

    from playbook.scan import scan_tarball
    from playbook.scan.model import GUARD_LIMITS
    from playbook.services.npm import download_version, registry_for

    registry = registry_for(services, spec.name)
    with tempfile.TemporaryDirectory(prefix="respond-scan-") as tmp:
        path = await download_version(registry, spec.name, spec.version, Path(tmp), doc)
        if path is None:
            raise UsageError(f"{spec} has no downloadable tarball on {registry.url}.")
        return await asyncio.to_thread(
            scan_tarball, path, package=spec.name, version=spec.version, limits=GUARD_LIMITS
        )


@dataclass(frozen=True)
class Guarded:
    """`respond scan`: the scan of the release and the verdict against its baseline."""

    result: ScanResult
    verdict: Verdict


def guard(
    settings: Settings, target: str, *, baseline: str | None = None, no_baseline: bool = False
) -> Guarded:
    """The pre-publish guard: scan `target`, compare it with its baseline, judge what is new.

    `target` is a package folder, a tarball, or a published name@version; `baseline` chooses the
    release to compare with (a version, name@version, a folder or a tarball); `no_baseline` asks
    for the absolute view. The allowlist comes from respond.toml (`[[scan.allow]]`).
    """
    from playbook.scan import scan_path
    from playbook.scan.allowlist import load_allowlist
    from playbook.scan.model import GUARD_LIMITS
    from playbook.scan.verdict import judge

    if baseline is not None and no_baseline:
        raise UsageError("--baseline and --no-baseline contradict each other; give one of them.")
    allow = load_allowlist(settings.org)
    path = Path(target).expanduser()
    if path.exists():
        result = scan_path(path, npm=settings.npm, limits=GUARD_LIMITS)
        base = asyncio.run(_local_baseline(settings, result, baseline, no_baseline))
    else:
        if "@" not in target.lstrip("@"):
            raise UsageError(
                f"{target!r} is neither a file nor a folder here, nor a package spec; "
                "accepted: a package folder, a .tgz, or name@1.2.3"
            )
        result, base = asyncio.run(
            _guard_published(settings, parse_spec(target), baseline, no_baseline)
        )
    verdict = judge(result, base.exposure, baseline_note=base.note, allow=allow)
    return Guarded(result, verdict)


def _chosen_baseline(given: str, name: str) -> tuple[Path | None, PackageSpec | None]:
    """`--baseline`: an existing folder/tarball, name@version, or a bare version of `name`."""
    path = Path(given).expanduser()
    if path.exists():
        return path, None
    if "@" in given.lstrip("@"):
        return None, parse_spec(given)
    if not name:
        raise UsageError(
            f"--baseline {given}: the scanned package names no package, so give name@version."
        )
    return None, parse_spec(f"{name}@{given}")


async def _baseline(
    settings: Settings,
    services: Services,
    name: str,
    version: str,
    given: str | None,
    doc: Any = None,
) -> Baseline:
    from playbook.scan import baseline as bl
    from playbook.scan import scan_path
    from playbook.scan.model import GUARD_LIMITS
    from playbook.scan.verdict import exposure
    from playbook.services.npm import registry_for

    if given is not None:
        path, spec = _chosen_baseline(given, name)
        if path is not None:
            scanned = await asyncio.to_thread(
                scan_path, path, npm=settings.npm, limits=GUARD_LIMITS
            )
            found = exposure(scanned)
            return bl.Baseline(found, f"{found.label} ({path.name}), chosen by --baseline")
        assert spec is not None
        reg = registry_for(services, spec.name)
        return await bl.guarded(bl.named(reg, spec.name, spec.version), reg.url)
    reg = registry_for(services, name or "respond-unnamed")
    if doc is not None:
        return await bl.guarded(bl.before(reg, doc, version), reg.url)
    return await bl.guarded(bl.for_local(reg, name, version), reg.url)


async def _local_baseline(
    settings: Settings, result: ScanResult, given: str | None, no_baseline: bool
) -> Baseline:
    from playbook.scan.baseline import Baseline

    if no_baseline:
        return Baseline(None, "--no-baseline: absolute view")
    async with _own_services(settings) as services:
        return await _baseline(settings, services, result.meta.name, result.meta.version, given)


async def _guard_published(
    settings: Settings, spec: PackageSpec, given: str | None, no_baseline: bool
) -> tuple[ScanResult, Baseline]:
    from playbook.scan.baseline import Baseline
    from playbook.services.npm import registry_for

    async with _own_services(settings) as services:
        doc = await registry_for(services, spec.name).packument(spec.name)  # read once, used twice
        result = await _download_and_scan(services, spec, doc)
        if no_baseline:
            return result, Baseline(None, "--no-baseline: absolute view")
        base = await _baseline(settings, services, spec.name, spec.version, given, doc)
        return result, base


def recheck_mirrors(session: Session, incident_id: str) -> list[Change]:
    """Verify an incident's mirrors again; resolve the notices whose targets are all down."""
    from playbook.mirrors.track import recheck
    from playbook.notices import auto_resolve

    async def go() -> list[Change]:
        services = session.services()
        try:
            return await recheck(session.store, incident_id, services)
        finally:
            await services.aclose()

    session.store.get_incident(incident_id)
    with session.store.driving(incident_id):
        changes = asyncio.run(go())
        auto_resolve(session.store, incident_id, who=session.settings.operator)
    return changes
