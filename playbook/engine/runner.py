"""Runs a runbook's step graph for an incident, recording each transition before the next."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from playbook import steps as step_types
from playbook.clock import utcnow
from playbook.codec import DecodeError, from_json, to_json
from playbook.config.settings import Mode, Settings
from playbook.engine.runbook import Runbook, StepSpec, evaluate_condition, render_params
from playbook.errors import (
    DryRunViolation,
    LoopbackViolation,
    NetworkFatal,
    OtpRequired,
    PolicyRefused,
    RespondError,
    UsageError,
)
from playbook.gaps import gaps_of
from playbook.services.hub import Services
from playbook.spec import PackageSpec, parse_spec
from playbook.steps.base import Outcome, Plan, StepContext, StepOutputs, StepType
from playbook.store.records import Records
from playbook.store.sqlite import Incident, StepRecord, StepStatus, Store

# Errors that a retry cannot fix: the same request would be refused the same way.
NOT_RETRYABLE: tuple[type[BaseException], ...] = (
    DryRunViolation,
    LoopbackViolation,
    NetworkFatal,
    PolicyRefused,
    OtpRequired,
    UsageError,
)


class Reporter(Protocol):
    """Where the engine tells a person what is happening (the CLI's live table, or nothing)."""

    def step(self, key: str, status: StepStatus, summary: str) -> None: ...

    def progress(self, key: str, message: str) -> None: ...


class QuietReporter:
    def step(self, key: str, status: StepStatus, summary: str) -> None:
        pass

    def progress(self, key: str, message: str) -> None:
        pass


@dataclass(frozen=True)
class ApprovalRequest:
    incident_id: str
    key: str
    spec: StepSpec
    plan: Plan


Approver = Callable[[ApprovalRequest], Awaitable[tuple[bool, str]]]


@dataclass(frozen=True)
class Node:
    """One step of the runbook instantiated for one target, or once for the whole incident."""

    key: str
    target: PackageSpec
    spec: StepSpec
    wide: bool = False  # once per incident: it needs every package's instances of its needs


@dataclass(frozen=True)
class RunResult:
    incident_id: str
    status: str
    steps: list[StepRecord]


@dataclass
class _Run:
    incident: Incident
    runbook: Runbook
    nodes: dict[str, Node]
    status: dict[str, StepStatus] = field(default_factory=dict)
    outputs: dict[str, StepOutputs] = field(default_factory=dict)
    stop: bool = False

    @property
    def many(self) -> bool:
        return len(self.incident.targets) > 1

    def need_keys(self, node: Node, step_id: str) -> list[str]:
        """The keys of step `step_id` that `node` waits on: its own package's, every package's
        for a once-per-incident node, or the single one of a once-per-incident step."""
        if step_id in self.nodes:
            return [step_id]
        targets = {n.target for n in self.nodes.values()} if node.wide else {node.target}
        return [node_key(t, step_id, self.many) for t in sorted(targets)]

    def sibling(self, node: Node, step_id: str) -> str:
        """The key of step `step_id` whose outputs `node` sees (the first package's, if wide)."""
        return self.need_keys(node, step_id)[0]


def node_key(target: PackageSpec, step_id: str, many: bool) -> str:
    return f"{target}#{step_id}" if many else step_id


def incident_id_base(targets: list[PackageSpec], when: datetime | None = None) -> str:
    day = (when or datetime.now(UTC)).strftime("%Y%m%d")
    first = targets[0].slug
    more = f"-and-{len(targets) - 1}-more" if len(targets) > 1 else ""
    return f"{day}-{first}{more}"


def build_nodes(runbook: Runbook, targets: list[PackageSpec]) -> dict[str, Node]:
    """One node per package and step; a step type that works on the whole incident (the
    report) gets one node, keyed by its step id, instead of one per package."""
    many = len(targets) > 1
    nodes: dict[str, Node] = {}
    for spec in runbook.steps:
        step_type = step_types.get(spec.uses)
        if many and step_type is not None and step_type.once_per_incident:
            nodes[spec.id] = Node(spec.id, targets[0], spec, wide=True)
            continue
        for t in targets:
            key = node_key(t, spec.id, many)
            nodes[key] = Node(key, t, spec)
    return nodes


def create_incident(
    store: Store,
    mode: Mode,
    runbook: Runbook,
    targets: list[PackageSpec],
    inputs: Mapping[str, Any],
) -> str:
    """Record a new incident with every step pending; returns its readable, unique id."""
    if not targets:
        raise UsageError("No package given; accepted: name@1.2.3 or @scope/name@1.2.3.")
    resolved = _resolve_inputs(runbook, inputs)
    incident_id = store.new_incident_id(incident_id_base(targets))
    nodes = build_nodes(runbook, targets)
    incident = Incident(
        id=incident_id,
        created_at=utcnow(),
        mode=mode.value,
        targets=tuple(str(t) for t in targets),
        inputs=resolved,
        runbook_path=runbook.path,
        runbook_hash=runbook.digest,
        runbook_text=runbook.text,
        status="created",
    )
    store.create_incident(incident, _step_rows(nodes))
    return incident_id


class Engine:
    """Drives one incident. Use `start` for a new incident and `resume` for an existing one."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        services: Services,
        *,
        reporter: Reporter | None = None,
        approver: Approver | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.services = services
        self.reporter = reporter or QuietReporter()
        self.approver = approver

    # -- entry points ---------------------------------------------------------------------

    async def run(self, incident_id: str, runbook: Runbook) -> RunResult:
        """Run (or resume) every step not yet finished. Holds the incident's driver lock."""
        with self.store.driving(incident_id):
            return await self._run_locked(incident_id, runbook)

    async def _run_locked(self, incident_id: str, runbook: Runbook) -> RunResult:
        incident = self.store.get_incident(incident_id)
        targets = [parse_spec(t) for t in incident.targets]
        run = _Run(incident, runbook, build_nodes(runbook, targets))
        self.store.ensure_steps(incident_id, _step_rows(run.nodes))
        resumed = self._load_state(run)
        self.store.set_incident_status(incident_id, "running")
        self.store.log(
            incident_id, "run.started", {"operator": self.settings.operator, "pid": _pid()}
        )
        await self._schedule(run, resumed)
        status = _incident_status(run, self.settings.mode)
        self.store.set_incident_status(incident_id, status)
        return RunResult(incident_id, status, self.store.steps(incident_id))

    def _load_state(self, run: _Run) -> set[str]:
        """Load recorded statuses; steps found running were abandoned by a dead process."""
        resumed: set[str] = set()
        for record in self.store.steps(run.incident.id):
            if record.key not in run.nodes:  # dropped from a changed runbook: history only
                continue
            status = record.status
            if status is StepStatus.RUNNING:
                self.store.transition(
                    run.incident.id,
                    record.key,
                    StepStatus.ABANDONED,
                    summary="found running at resume: the process died under it; re-checking",
                )
                status = StepStatus.ABANDONED
            if status is StepStatus.ABANDONED:
                resumed.add(record.key)
            elif status.finished and record.outputs:
                run.outputs[record.key] = _decode(record)
            else:  # failed, timed out, awaiting approval: run again
                status = StepStatus.PENDING
            run.status[record.key] = status
        return resumed

    # -- scheduling -----------------------------------------------------------------------------

    async def _schedule(self, run: _Run, resumed: set[str]) -> None:
        running: dict[asyncio.Task[None], str] = {}
        while True:
            if not run.stop:
                for key in self._ready(run, running.values()):
                    task = asyncio.create_task(self._drive(run, run.nodes[key], key in resumed))
                    running[task] = key
            if not running:
                return
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                running.pop(task)
                task.result()

    def _ready(self, run: _Run, running: Any) -> list[str]:
        busy = set(running)
        ready = []
        for key, node in run.nodes.items():
            if key in busy or run.status[key] not in (StepStatus.PENDING, StepStatus.ABANDONED):
                continue
            # A step whose needs did not all finish stays pending: a later resume runs it.
            needs = [k for n in node.spec.needs for k in run.need_keys(node, n)]
            if all(run.status[k].finished for k in needs):
                ready.append(key)
        return ready

    # -- one step -------------------------------------------------------------------------------

    async def _drive(self, run: _Run, node: Node, resumed: bool) -> None:
        spec = node.spec
        step_type = step_types.get(spec.uses)
        if step_type is None:
            self._finish(run, node.key, StepStatus.FAILED, error=f"unknown step type {spec.uses!r}")
            return
        scope = self._scope(run, node)
        try:
            if spec.condition is not None and not evaluate_condition(spec.condition, scope):
                self._finish(
                    run, node.key, StepStatus.SKIPPED, summary=f"if: {spec.condition} was false"
                )
                return
            params = render_params(spec.params, scope)
        except Exception as exc:  # a runtime expression error is the runbook's fault
            self._fail(run, node, f"expression error: {exc}")
            return
        ctx = self._context(run, node, params, scope, resumed)
        await self._attempts(run, node, step_type(), ctx)

    async def _attempts(self, run: _Run, node: Node, step: StepType, ctx: StepContext) -> None:
        spec = node.spec
        for attempt in range(1, spec.retry.count + 2):
            ctx.attempt = attempt
            self._transition(run, node.key, StepStatus.RUNNING, data={"attempt": attempt})
            try:
                await self._once(run, node, step, ctx)
                return
            except TimeoutError:
                error, status = f"timed out after {spec.timeout:g}s", StepStatus.TIMED_OUT
            except NOT_RETRYABLE as exc:
                self._fail(run, node, _describe(exc))
                return
            except Exception as exc:
                error, status = _describe(exc), StepStatus.FAILED
                if not isinstance(exc, RespondError):
                    self.store.log(
                        run.incident.id,
                        "step.traceback",
                        {"traceback": traceback.format_exc()},
                        step_key=node.key,
                    )
            if attempt <= spec.retry.count:
                wait = spec.retry.backoff * 2 ** (attempt - 1)
                self.store.log(
                    run.incident.id, "step.retry", {"error": error, "wait": wait}, step_key=node.key
                )
                self.reporter.progress(node.key, f"{error}; retrying in {wait:g}s")
                await asyncio.sleep(wait)
                continue
            self._fail(run, node, error, status)

    async def _once(self, run: _Run, node: Node, step: StepType, ctx: StepContext) -> None:
        coro = self._plan_and_apply(run, node, step, ctx)
        await asyncio.wait_for(coro, node.spec.timeout) if node.spec.timeout else await coro

    async def _plan_and_apply(
        self, run: _Run, node: Node, step: StepType, ctx: StepContext
    ) -> None:
        plan = await step.plan(ctx)
        _check_outputs(step, plan.outputs)
        if step.mutates and self.settings.dry_run:
            self._finish(
                run,
                node.key,
                StepStatus.PLANNED,
                plan.outputs,
                plan.summary or _actions(plan),
                changed=False,
                data={"actions": [a.__dict__ for a in plan.actions]},
            )
            return
        if node.spec.approval and plan.actions and not await self._approved(run, node, plan):
            return
        outcome: Outcome = await step.apply(ctx, plan)
        _check_outputs(step, outcome.outputs)
        status = StepStatus.SKIPPED if outcome.skipped else StepStatus.SUCCEEDED
        self._finish(
            run, node.key, status, outcome.outputs, outcome.summary, changed=outcome.changed
        )

    async def _approved(self, run: _Run, node: Node, plan: Plan) -> bool:
        incident_id = run.incident.id
        for key in (node.key, node.spec.id):
            if self.store.approval(incident_id, key) is not None:
                return True
        how = self._standing_approval(node)
        if how is not None:
            who = "rehearsal" if self.settings.mode is Mode.REHEARSAL else self.settings.operator
            self.store.approve(incident_id, node.key, who, how)
            return True
        if self.approver is not None and self.settings.interactive:
            granted, note = await self.approver(
                ApprovalRequest(incident_id, node.key, node.spec, plan)
            )
            if granted:
                self.store.approve(incident_id, node.key, self.settings.operator, note)
                return True
        self._finish(
            run,
            node.key,
            StepStatus.AWAITING_APPROVAL,
            summary=f"needs approval: {_actions(plan)}",
            data={"actions": [a.__dict__ for a in plan.actions]},
        )
        return False

    def _standing_approval(self, node: Node) -> str | None:
        if self.settings.mode is Mode.REHEARSAL:
            return "granted automatically: rehearsal"
        if self.settings.yes:
            return "granted by --yes"
        if {node.key, node.spec.id} & self.settings.approve:
            return f"granted by --approve {node.spec.id}"
        return None

    # -- context and scope ---------------------------------------------------------------

    def _scope(self, run: _Run, node: Node) -> dict[str, Any]:
        steps = {
            spec.id: {
                "outputs": _json(run.outputs.get(run.sibling(node, spec.id))),
                "status": run.status[run.sibling(node, spec.id)].value,
            }
            for spec in run.runbook.steps
        }
        return {
            "inputs": {
                **run.incident.inputs,
                "package": node.target.name,
                "version": node.target.version,
            },
            "incident": {
                "id": run.incident.id,
                "mode": run.incident.mode,
                "targets": list(run.incident.targets),
            },
            "steps": steps,
        }

    def _context(
        self,
        run: _Run,
        node: Node,
        params: Mapping[str, Any],
        scope: Mapping[str, Any],
        resumed: bool,
    ) -> StepContext:
        incident_id = run.incident.id
        needs = {
            s: run.outputs[run.sibling(node, s)]
            for s in run.runbook.ancestors(node.spec.id)
            if run.sibling(node, s) in run.outputs
        }
        return StepContext(
            incident_id=incident_id,
            step_id=node.spec.id,
            target=node.target,
            params=params,
            inputs=scope["inputs"],
            needs=needs,
            settings=self.settings,
            services=self.services,
            workdir=self.store.incident_dir(incident_id),
            records=Records(self.store, incident_id),
            file_prefix=f"{node.target.slug}/" if run.many and not node.wide else "",
            resumed=resumed,
            progress=lambda message: self.reporter.progress(node.key, message),
            event=lambda kind, data: self.store.log(incident_id, kind, data, step_key=node.key),
            history=self.store,
            clock=self.services.clock,
        )

    # -- transitions ------------------------------------------------------------------------------

    def _transition(self, run: _Run, key: str, status: StepStatus, **kw: Any) -> None:
        self.store.transition(run.incident.id, key, status, actor=self.settings.operator, **kw)
        run.status[key] = status
        self.reporter.step(key, status, kw.get("summary") or kw.get("error") or "")

    def _finish(
        self,
        run: _Run,
        key: str,
        status: StepStatus,
        outputs: StepOutputs | None = None,
        summary: str = "",
        **kw: Any,
    ) -> None:
        if outputs is not None:
            run.outputs[key] = outputs
        stored = to_json(outputs) if outputs is not None else None
        self._transition(run, key, status, outputs=stored, summary=summary, **kw)

    def _fail(
        self, run: _Run, node: Node, error: str, status: StepStatus = StepStatus.FAILED
    ) -> None:
        self._transition(run, node.key, status, error=error)
        if node.spec.on_failure == "stop":
            run.stop = True


def _json(outputs: StepOutputs | None) -> Any:
    """The JSON form runbook expressions see (`steps.<id>.outputs.x`); {} when there are none."""
    return to_json(outputs) if outputs is not None else {}


def _decode(record: StepRecord) -> StepOutputs:
    """A finished step's stored outputs, as its step type's outputs."""
    step_type = step_types.get(record.uses)
    if step_type is None:
        raise UsageError(f"Step {record.key} uses an unknown step type {record.uses!r}.")
    try:
        return from_json(step_type.outputs, record.outputs)
    except DecodeError as exc:
        raise UsageError(
            f"The recorded outputs of step {record.key} ({record.uses}) cannot be read: {exc}.",
            "The incident was written by an incompatible version of respond.",
        ) from None


def _check_outputs(step: StepType, outputs: StepOutputs | None) -> None:
    """A step returns its declared outputs type, or none: downstream steps rely on it."""
    if outputs is not None and not isinstance(outputs, step.outputs):
        raise TypeError(
            f"step type {step.uses!r} returned {type(outputs).__name__}, "
            f"not its declared {step.outputs.__name__}"
        )


def _step_rows(nodes: Mapping[str, Node]) -> list[tuple[str, str, str, str]]:
    return [
        (n.key, "*" if n.wide else str(n.target), n.spec.id, n.spec.uses) for n in nodes.values()
    ]


def _resolve_inputs(runbook: Runbook, given: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(runbook.inputs) - {"package", "version"})
    if unknown:
        accepted = ", ".join(sorted(runbook.inputs)) or "none"
        raise UsageError(
            f"Runbook {runbook.path} has no input {unknown[0]!r}; accepted: {accepted}."
        )
    resolved: dict[str, Any] = {}
    for name, spec in runbook.inputs.items():
        if name in given:
            resolved[name] = given[name]
        elif spec.default is not None:
            resolved[name] = spec.default
        elif spec.required and name not in ("package", "version"):
            raise UsageError(f"Runbook {runbook.path} needs input {name!r} ({spec.description}).")
    return resolved


def _incident_status(run: _Run, mode: Mode) -> str:
    statuses = set(run.status.values())
    if statuses & {StepStatus.FAILED, StepStatus.TIMED_OUT}:
        return "failed"
    if StepStatus.AWAITING_APPROVAL in statuses:
        return "awaiting_approval"
    if statuses & {StepStatus.PENDING, StepStatus.ABANDONED, StepStatus.RUNNING}:
        return "incomplete"
    done = "planned" if mode is Mode.DRY_RUN else "done"
    if any(gaps_of(outputs) for outputs in run.outputs.values()):
        return f"{done}_with_gaps"  # an outside service failed: the report says what was missed
    return done


def _actions(plan: Plan) -> str:
    if not plan.actions:
        return "nothing to do"
    return "; ".join(f"{a.method} {a.url}: {a.summary}" for a in plan.actions)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RespondError):
        return exc.message + (f" ({exc.hint})" if exc.hint else "")
    return f"{type(exc).__name__}: {exc}"


def _pid() -> int:
    import os

    return os.getpid()
