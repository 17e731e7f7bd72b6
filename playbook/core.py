"""The commands as plain functions: the CLI parses and prints, these do the work and never print."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playbook.config.settings import Mode, Settings
from playbook.engine import runbook as runbooks
from playbook.engine.runbook import Runbook
from playbook.engine.runner import Approver, Engine, Reporter, RunResult, create_incident
from playbook.errors import RunbookError, UsageError
from playbook.net.http import ClientOptions, RetryPolicy, WaitHook
from playbook.resources import runbooks_dir
from playbook.services.hub import Services
from playbook.spec import PackageSpec, parse_spec
from playbook.store.sqlite import Incident, StepRecord, Store, StoreCache

if TYPE_CHECKING:
    from playbook.mirrors.model import Change
    from playbook.notices.model import Notice
    from playbook.scan import ScanResult

DEFAULT_RUNBOOK = "npm-leak.yaml"


def default_runbook_path() -> Path:
    return runbooks_dir() / DEFAULT_RUNBOOK


def load_runbook(path: Path | None) -> Runbook:
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

    def services(self) -> Services:
        options = ClientOptions(
            dry_run=self.settings.dry_run,
            timeout=self.settings.timeout,
            retry=RetryPolicy(backoff=self.settings.retry_backoff),
            on_wait=self.on_wait,
            loopback_only=self.settings.env.get("RESPOND_LOOPBACK_ONLY") == "1",
        )
        services = Services(self.settings, options, cache=StoreCache(self.store))
        if self.otp_prompt is not None:
            from playbook.services.npm import set_otp_prompt

            set_otp_prompt(services, self.otp_prompt)
        return services

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
) -> RunResult:
    """Open a new incident for the leaked releases and run the runbook on it."""
    incident_id = create_incident(
        session.store, session.settings.mode, runbook, specs, inputs or {}
    )
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


def scan_target(settings: Settings, target: str) -> ScanResult:
    """The pre-publish guard's scan: a package folder, a tarball, or a published name@version."""
    from playbook.scan import scan_path

    path = Path(target).expanduser()
    if path.exists():
        return scan_path(path)
    if "@" not in target.lstrip("@"):
        raise UsageError(
            f"{target!r} is neither a file nor a folder here, nor a package spec; "
            "accepted: a package folder, a .tgz, or name@1.2.3"
        )
    return asyncio.run(_scan_published(settings, parse_spec(target)))


async def _scan_published(settings: Settings, spec: PackageSpec) -> ScanResult:
    import tempfile

    from playbook.scan import scan_tarball
    from playbook.services.npm import registry_for
    from playbook.steps.npm import fetch_tarball, lookup

    store = open_store(settings)
    session = Session(settings, store)
    services = session.services()
    try:
        registry = registry_for(services, spec.name)
        look = await lookup(registry, spec, services.cache)
        if not look.tarball:
            raise UsageError(f"{spec} has no downloadable tarball on {registry.url}.")
        with tempfile.TemporaryDirectory(prefix="respond-scan-") as tmp:
            path = await fetch_tarball(registry, look, Path(tmp))
            return await asyncio.to_thread(
                scan_tarball, path, package=spec.name, version=spec.version
            )
    finally:
        await services.aclose()
        store.close()


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
    changes = asyncio.run(go())
    auto_resolve(session.store, incident_id, who=session.settings.operator)
    return changes
