"""Step types that exist only for the engine's tests: sleeping, flaky, writing and destructive steps.

They leave marker files in the incident folder so a test can count how often each really ran,
across processes (the SIGKILL test runs them in a subprocess via RESPOND_STEP_MODULES).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from playbook.steps import register
from playbook.steps.base import Action, Outcome, Plan, StepContext, StepOutputs, StepType


@dataclass(frozen=True)
class SleepOutput(StepOutputs):
    started: float = 0.0
    ended: float = 0.0
    value: object = None
    runs: int = 0
    resumed: bool = False


@dataclass(frozen=True)
class CallsOutput(StepOutputs):
    calls: int = 0


@dataclass(frozen=True)
class WriteOutput(StepOutputs):
    written: object = None
    changed: bool = False


@dataclass(frozen=True)
class DestroyOutput(StepOutputs):
    destroyed: bool = False


@dataclass(frozen=True)
class StatusOutput(StepOutputs):
    status: int = 0


@dataclass(frozen=True)
class RunsOutput(StepOutputs):
    runs: int = 0
    resumed: bool = False


def _mark(ctx: StepContext, what: str) -> int:
    """Append a line to the step's marker file; returns how many lines it now has."""
    path = ctx.workdir / "marks" / f"{ctx.step_id}.{what}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(f"{time.time()}\n")
    return len(path.read_text().splitlines())


@register
class Sleep(StepType):
    uses = "test.sleep"
    outputs = SleepOutput
    params = frozenset({"seconds", "value"})

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        started = time.monotonic()
        runs = _mark(ctx, "apply")
        await asyncio.sleep(float(ctx.params.get("seconds", 0)))
        outputs = SleepOutput(
            started=started,
            ended=time.monotonic(),
            value=ctx.params.get("value"),
            runs=runs,
            resumed=ctx.resumed,
        )
        return Outcome(outputs=outputs, changed=False, summary="slept")


@register
class Flaky(StepType):
    uses = "test.flaky"
    outputs = CallsOutput
    params = frozenset({"failures"})

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        calls = _mark(ctx, "apply")
        if calls <= int(ctx.params.get("failures", 0)):
            raise RuntimeError(f"flaky failure {calls}")
        return Outcome(outputs=CallsOutput(calls), summary=f"ok after {calls} calls")


@register
class Write(StepType):
    """A mutating step: plans a PUT, applies it (records it in a marker)."""

    uses = "test.write"
    outputs = WriteOutput
    mutates = True
    params = frozenset({"url", "value"})

    async def plan(self, ctx: StepContext) -> Plan:
        _mark(ctx, "plan")
        action = Action("PUT", str(ctx.params.get("url", "http://127.0.0.1/x")), "write a value")
        return Plan(actions=(action,), outputs=WriteOutput(ctx.params.get("value"), changed=True))

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        _mark(ctx, "apply")
        return Outcome(outputs=WriteOutput(ctx.params.get("value"), changed=True), changed=True)


@register
class Destroy(StepType):
    """A destructive step: needs approval before apply."""

    uses = "test.destroy"
    outputs = DestroyOutput
    mutates = True
    destructive = True

    async def plan(self, ctx: StepContext) -> Plan:
        done = (ctx.workdir / "marks" / f"{ctx.step_id}.apply").exists()
        actions = () if done else (Action("DELETE", "http://127.0.0.1/thing", "destroy it"),)
        return Plan(actions=actions, outputs=DestroyOutput(destroyed=True))

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        if plan.actions:
            _mark(ctx, "apply")
        return Outcome(outputs=DestroyOutput(destroyed=True), changed=bool(plan.actions))


@register
class BuggyWriter(StepType):
    """Claims to be read-only but POSTs: the dry-run transport guard must refuse it."""

    uses = "test.buggy"
    outputs = StatusOutput
    params = frozenset({"url"})

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        client = ctx.services.client()
        await client.get(str(ctx.params["url"]))
        response = await client.post(str(ctx.params["url"]), content=b"oops")
        return Outcome(outputs=StatusOutput(response.status_code), changed=True)


@register
class Hold(StepType):
    """Waits until the file `release` exists in the incident folder (so a test can kill it mid-step)."""

    uses = "test.hold"
    outputs = RunsOutput

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        runs = _mark(ctx, "apply")
        for _ in range(600):
            if (ctx.workdir / "release").exists():
                return Outcome(outputs=RunsOutput(runs, ctx.resumed), summary="released")
            await asyncio.sleep(0.05)
        raise TimeoutError("never released")


@register
class Gather(StepType):
    """Once per incident: runs after every package's instances of its needs."""

    uses = "test.gather"
    outputs = RunsOutput
    once_per_incident = True

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        return Outcome(outputs=RunsOutput(_mark(ctx, "apply")))
