"""The incident as plain frozen data for templates, built from the Store or a step's context."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from playbook.codec import from_json
from playbook.mirrors.coverage import Coverage
from playbook.mirrors.model import Mirror
from playbook.notices.model import Notice
from playbook.spec import PackageSpec, parse_spec
from playbook.steps.base import StepOutputs
from playbook.steps.mirrors import CdnOutput, HuntOutput, VerifyMirrorsOutput
from playbook.steps.npm import (
    DeprecateOutput,
    LookupOutput,
    RetagOutput,
    ScanOutput,
    SecretSummary,
    UnpublishOutput,
    VerifyOutput,
)
from playbook.store.sqlite import Approval, StepRecord

if TYPE_CHECKING:
    from playbook.steps.base import StepContext
    from playbook.store.history import IncidentHistory

Out = TypeVar("Out", bound=StepOutputs)
# How the view reads one step's outputs: by step type, as that step type's outputs (None: none).
OutputsOf = Callable[[str, type[Out]], Out | None]

# The runbook's default step ids for each step type (contracts.md); `with:` params may rename them.
DEFAULT_IDS = {
    "npm.lookup": "lookup",
    "npm.scan": "scan",
    "npm.retag": "retag",
    "npm.deprecate": "deprecate",
    "npm.unpublish": "unpublish",
    "npm.verify": "verify",
    "cdn.check": "cdn",
    "mirrors.hunt": "hunt",
    "mirrors.verify": "verify_mirrors",
    "notices.draft": "notices",
}
MODE_LABELS = {"dry-run": "DRY RUN", "rehearsal": "REHEARSAL"}


@dataclass(frozen=True)
class IncidentInfo:
    id: str
    mode: str
    created_at: str
    status: str
    targets: tuple[str, ...]

    @property
    def is_draft(self) -> bool:
        """A dry run or rehearsal: every document is marked as a draft of it."""
        return self.mode != "live"

    @property
    def mode_label(self) -> str:
        return MODE_LABELS.get(self.mode, self.mode.upper())


@dataclass(frozen=True)
class EventView:
    seq: int
    at: str
    actor: str
    kind: str
    step_key: str | None
    summary: str


@dataclass(frozen=True)
class ScanView:
    leaky: bool
    reasons: tuple[str, ...]
    files: int
    bytes: int
    sourcemaps: int
    sources: int
    sources_with_content: int
    first_party: int
    node_modules: int
    original_bytes: int
    original_lines: int
    top_dirs: tuple[tuple[str, int], ...]
    sensitive_files: tuple[str, ...]
    secrets: tuple[SecretSummary, ...]
    internal_hosts: tuple[str, ...]
    partial: bool
    notes: tuple[str, ...]


@dataclass(frozen=True)
class TargetView:
    spec: str
    name: str
    version: str
    slug: str
    lookup: LookupOutput | None
    scan: ScanView | None
    retag: RetagOutput | None
    deprecate: DeprecateOutput | None
    unpublish: UnpublishOutput | None
    verify: VerifyOutput | None
    cdn: CdnOutput | None
    steps: tuple[StepRecord, ...]
    coverage: Coverage | None = None  # what the hunt searched and could not (mirrors.coverage)


@dataclass(frozen=True)
class IncidentView:
    incident: IncidentInfo
    targets: tuple[TargetView, ...]
    steps: tuple[StepRecord, ...]
    events: tuple[EventView, ...]
    approvals: tuple[Approval, ...]
    mirrors: tuple[Mirror, ...]
    notices: tuple[Notice, ...]


# building from the Store ---------------------------------------------------------------------


def load_view(store: IncidentHistory, incident_id: str) -> IncidentView:
    """Everything the documents need about one incident, read once from the store."""
    incident = store.get_incident(incident_id)
    steps = tuple(_without_raw_secrets(s) for s in store.steps(incident_id))
    targets = tuple(
        _target_view(spec, _by_uses(steps, spec), tuple(s for s in steps if s.target == spec))
        for spec in incident.targets
    )
    return IncidentView(
        incident=IncidentInfo(
            incident.id, incident.mode, incident.created_at, incident.status, incident.targets
        ),
        targets=targets,
        steps=steps,
        events=tuple(
            EventView(e.seq, e.at, e.actor, e.kind, e.step_key, event_summary(e.kind, e.data))
            for e in store.events(incident_id)
        ),
        approvals=tuple(store.approvals(incident_id)),
        mirrors=tuple(Mirror.from_record(r) for r in store.records(incident_id, "mirror")),
        notices=tuple(Notice.from_record(r) for r in store.records(incident_id, "notice")),
    )


def _without_raw_secrets(step: StepRecord) -> StepRecord:
    """The step with every secret finding in its outputs cut down to its redacted form."""
    return replace(step, outputs=_redacted(step.outputs))


def _redacted(value: Any) -> Any:
    """Outputs with every secret finding cut down to its redacted form: defence in depth."""
    if isinstance(value, Mapping):
        keys = SECRET_KEYS if "redacted" in value else frozenset()
        return {k: _redacted(v) for k, v in value.items() if k not in keys}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    return value


SECRET_KEYS = frozenset({"value", "secret", "raw", "match", "token", "line_text", "context"})


def _by_uses(steps: tuple[StepRecord, ...], target: str) -> OutputsOf[Any]:
    def outputs_for(uses: str, kind: type[Out]) -> Out | None:
        for step in steps:
            if step.target == target and step.uses == uses and step.outputs:
                return from_json(kind, step.outputs)
        return None

    return outputs_for


# building from a step's context (a step run outside the engine, which gives its store) ------


def view_from_context(ctx: StepContext) -> IncidentView:
    """The view a step can build on its own: its needs, the records and the incident folder.

    Without the store there are no step times, events or approvals. The engine gives steps
    its store as `ctx.history`, and `step_view` prefers it.
    """
    spec = str(ctx.target)

    def outputs_for(uses: str, kind: type[Out]) -> Out | None:
        return ctx.output(kind, DEFAULT_IDS[uses])

    mode = str(ctx.settings.mode)
    return IncidentView(
        incident=IncidentInfo(ctx.incident_id, mode, "", "running", (spec,)),
        targets=(_target_view(spec, outputs_for, ()),),
        steps=(),
        events=(),
        approvals=(),
        mirrors=tuple(ctx.records.all(Mirror)),
        notices=tuple(ctx.records.all(Notice)),
    )


def step_view(ctx: StepContext) -> IncidentView:
    """The full view when the step has the incident's history, else what its context gives."""
    if ctx.history is not None:
        return load_view(ctx.history, ctx.incident_id)
    return view_from_context(ctx)


# shared pieces --------------------------------------------------------------------------------


def _target_view(
    spec_text: str, outputs_for: OutputsOf[Any], steps: tuple[StepRecord, ...]
) -> TargetView:
    spec = _spec(spec_text)
    scan = outputs_for("npm.scan", ScanOutput)
    return TargetView(
        spec=str(spec),
        name=spec.name,
        version=spec.version,
        slug=spec.slug,
        lookup=outputs_for("npm.lookup", LookupOutput),
        scan=scan_view(scan) if scan else None,
        retag=outputs_for("npm.retag", RetagOutput),
        deprecate=outputs_for("npm.deprecate", DeprecateOutput),
        unpublish=outputs_for("npm.unpublish", UnpublishOutput),
        verify=outputs_for("npm.verify", VerifyOutput),
        cdn=outputs_for("cdn.check", CdnOutput),
        steps=steps,
        coverage=_coverage(outputs_for),
    )


def _coverage(outputs_for: OutputsOf[Any]) -> Coverage | None:
    """The verification's coverage (it carries the hunt's), else the hunt's alone."""
    verified = outputs_for("mirrors.verify", VerifyMirrorsOutput)
    if verified is not None and (verified.coverage.searched or verified.coverage.gaps):
        return verified.coverage  # type: ignore[no-any-return]
    hunted = outputs_for("mirrors.hunt", HuntOutput)
    return hunted.coverage if hunted is not None else None


def _spec(text: str) -> PackageSpec:
    try:
        return parse_spec(text)
    except Exception:
        name, _, version = text.rpartition("@")
        return PackageSpec(name or text, version)


def scan_view(scan: ScanOutput) -> ScanView:
    """The scan's verdict and summary in one flat record for the documents."""
    summary = scan.summary
    return ScanView(
        leaky=scan.leaky,
        reasons=scan.reasons,
        files=summary.files,
        bytes=summary.bytes,
        sourcemaps=summary.sourcemaps,
        sources=summary.sources,
        sources_with_content=summary.sources_with_content,
        first_party=summary.first_party,
        node_modules=summary.node_modules,
        original_bytes=summary.original_bytes,
        original_lines=summary.original_lines,
        top_dirs=summary.top_dirs,
        sensitive_files=summary.sensitive_files,
        secrets=summary.secrets,
        internal_hosts=summary.internal_hosts,
        partial=summary.partial,
        notes=summary.notes,
    )


def _strs(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(str(v) for v in value)


def event_summary(kind: str, data: Mapping[str, Any]) -> str:
    """One line for the timeline: the summary or status, never the whole record."""
    if "key" in data and kind.endswith((".added", ".updated")):
        state = data.get("verdict") if kind.startswith("mirror.") else data.get("status")
        return f"{data['key']} ({state})"[:200]
    for key in ("summary", "error", "note", "status"):
        value = data.get(key)
        if value:
            text = str(value)
            break
    else:
        text = str(data.get("key") or data.get("mode") or "")
    return text.splitlines()[0][:200] if text else ""
