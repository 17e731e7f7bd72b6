"""The incident as plain frozen data for templates, built from the Store or a step's context."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playbook.spec import PackageSpec, parse_spec

if TYPE_CHECKING:
    from playbook.steps.base import StepContext
    from playbook.store.sqlite import Store

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
class StepView:
    key: str
    target: str
    step_id: str
    uses: str
    status: str
    attempt: int
    changed: bool | None
    summary: str
    error: str | None
    started_at: str | None
    ended_at: str | None
    outputs: Mapping[str, Any]


@dataclass(frozen=True)
class EventView:
    seq: int
    at: str
    actor: str
    kind: str
    step_key: str | None
    summary: str


@dataclass(frozen=True)
class ApprovalView:
    step_key: str
    who: str
    at: str
    note: str


@dataclass(frozen=True)
class MirrorView:
    url: str
    host: str
    kind: str
    name: str
    description: str
    verdict: str
    matched: int
    total: int
    tree_files: int
    sample_paths: tuple[str, ...]
    parent: str | None
    network_root: str | None
    network_has_non_copies: bool | None
    found_by: tuple[str, ...]
    checked_at: str
    evidence: str
    status: str
    commit_sha: str | None = None
    tree_sha: str | None = None
    matched_paths: tuple[tuple[str, str], ...] = ()  # (path in the checked tree, leaked path)
    unvendored_files: int = 0


@dataclass(frozen=True)
class NoticeView:
    id: str
    kind: str
    title: str
    status: str
    file: str
    mirrors: tuple[str, ...]
    missing: tuple[str, ...]
    ref: str | None
    sent_at: str | None
    resolved_at: str | None
    rehearsal: bool
    note: str


@dataclass(frozen=True)
class SecretView:
    kind: str
    file: str
    line: int | None
    redacted: str


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
    secrets: tuple[SecretView, ...]
    internal_hosts: tuple[str, ...]
    partial: bool
    notes: tuple[str, ...]


@dataclass(frozen=True)
class TargetView:
    spec: str
    name: str
    version: str
    slug: str
    lookup: Mapping[str, Any]
    scan: ScanView | None
    retag: Mapping[str, Any]
    deprecate: Mapping[str, Any]
    unpublish: Mapping[str, Any]
    verify: Mapping[str, Any]
    cdn: Mapping[str, Any]
    steps: tuple[StepView, ...]


@dataclass(frozen=True)
class IncidentView:
    incident: IncidentInfo
    targets: tuple[TargetView, ...]
    steps: tuple[StepView, ...]
    events: tuple[EventView, ...]
    approvals: tuple[ApprovalView, ...]
    mirrors: tuple[MirrorView, ...]
    notices: tuple[NoticeView, ...]


# building from the Store ---------------------------------------------------------------------


def load_view(store: Store, incident_id: str) -> IncidentView:
    """Everything the documents need about one incident, read once from the store."""
    incident = store.get_incident(incident_id)
    steps = tuple(_step_view(s) for s in store.steps(incident_id))
    folder = store.incident_dir(incident_id)
    targets = tuple(
        _target_view(
            spec, _by_uses(steps, spec), folder, tuple(s for s in steps if s.target == spec)
        )
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
        approvals=tuple(
            ApprovalView(a.step_key, a.who, a.at, a.note) for a in store.approvals(incident_id)
        ),
        mirrors=tuple(mirror_view(r) for r in store.records(incident_id, "mirror")),
        notices=tuple(notice_view(r) for r in store.records(incident_id, "notice")),
    )


def view_loader(store: Store, incident_id: str) -> Callable[[], IncidentView]:
    """What the engine puts in Services under VIEW_KEY so steps can build the full view."""
    return lambda: load_view(store, incident_id)


VIEW_KEY = "incident_view_loader"


def _step_view(step: Any) -> StepView:
    return StepView(
        key=step.key,
        target=step.target,
        step_id=step.step_id,
        uses=step.uses,
        status=str(step.status),
        attempt=step.attempt,
        changed=step.changed,
        summary=step.summary,
        error=step.error,
        started_at=step.started_at,
        ended_at=step.ended_at,
        outputs=_without_raw_secrets(step.outputs),
    )


def _without_raw_secrets(value: Any) -> Any:
    """Outputs with every secret finding cut down to its redacted form: defence in depth."""
    if isinstance(value, Mapping):
        keys = SECRET_KEYS if "redacted" in value else frozenset()
        return {k: _without_raw_secrets(v) for k, v in value.items() if k not in keys}
    if isinstance(value, list | tuple):
        return [_without_raw_secrets(v) for v in value]
    return value


SECRET_KEYS = frozenset({"value", "secret", "raw", "match", "token", "line_text", "context"})


def _by_uses(steps: tuple[StepView, ...], target: str) -> Callable[[str], Mapping[str, Any]]:
    def outputs_for(uses: str) -> Mapping[str, Any]:
        for step in steps:
            if step.target == target and step.uses == uses:
                return step.outputs
        return {}

    return outputs_for


# building from a step's context (a step run outside the engine, which registers a loader) ------


def view_from_context(ctx: StepContext) -> IncidentView:
    """The view a step can build on its own: its needs, the records and the incident folder.

    Without the store there are no step times, events or approvals. The engine puts
    `view_loader(store, incident_id)` in Services under VIEW_KEY, and `step_view` prefers it.
    """
    spec = str(ctx.target)

    def outputs_for(uses: str) -> Mapping[str, Any]:
        step_id = str(ctx.params.get(DEFAULT_IDS.get(uses, ""), DEFAULT_IDS.get(uses, "")))
        return ctx.output_of(step_id)

    mode = str(ctx.settings.mode)
    return IncidentView(
        incident=IncidentInfo(ctx.incident_id, mode, "", "running", (spec,)),
        targets=(_target_view(spec, outputs_for, ctx.workdir, ()),),
        steps=(),
        events=(),
        approvals=(),
        mirrors=tuple(mirror_view(r) for r in ctx.records.all("mirror")),
        notices=tuple(notice_view(r) for r in ctx.records.all("notice")),
    )


def step_view(ctx: StepContext) -> IncidentView:
    """The full view when the engine registered a loader, else what the context alone gives."""
    loader: Callable[[], IncidentView] | None = ctx.services.cached(VIEW_KEY, lambda: None)
    return loader() if loader is not None else view_from_context(ctx)


# shared pieces --------------------------------------------------------------------------------


def _target_view(
    spec_text: str,
    outputs_for: Callable[[str], Mapping[str, Any]],
    folder: Path,
    steps: tuple[StepView, ...],
) -> TargetView:
    spec = _spec(spec_text)
    scan_outputs = outputs_for("npm.scan")
    return TargetView(
        spec=str(spec),
        name=spec.name,
        version=spec.version,
        slug=spec.slug,
        lookup=outputs_for("npm.lookup"),
        scan=scan_view(scan_outputs, _findings(folder, scan_outputs)) if scan_outputs else None,
        retag=outputs_for("npm.retag"),
        deprecate=outputs_for("npm.deprecate"),
        unpublish=outputs_for("npm.unpublish"),
        verify=outputs_for("npm.verify"),
        cdn=outputs_for("cdn.check"),
        steps=steps,
    )


def _spec(text: str) -> PackageSpec:
    try:
        return parse_spec(text)
    except Exception:
        name, _, version = text.rpartition("@")
        return PackageSpec(name or text, version)


def _findings(folder: Path, scan_outputs: Mapping[str, Any]) -> Mapping[str, Any]:
    """scan/findings.json, when the scan wrote one inside the incident folder."""
    name = str(scan_outputs.get("findings_file") or "scan/findings.json")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()) or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def scan_view(outputs: Mapping[str, Any], findings: Mapping[str, Any]) -> ScanView:
    """The scan's summary; the findings file fills what the step outputs lack."""
    base = findings.get("summary", findings)
    summary = {**(base if isinstance(base, Mapping) else {}), **outputs.get("summary", {})}

    def num(key: str) -> int:
        value = summary.get(key)
        return int(value) if isinstance(value, int | float) else 0

    return ScanView(
        leaky=bool(outputs.get("leaky", findings.get("leaky", False))),
        reasons=_strs(outputs.get("reasons", findings.get("reasons"))),
        files=num("files"),
        bytes=num("bytes"),
        sourcemaps=num("sourcemaps"),
        sources=num("sources"),
        sources_with_content=num("sources_with_content"),
        first_party=num("first_party"),
        node_modules=num("node_modules"),
        original_bytes=num("original_bytes"),
        original_lines=num("original_lines"),
        top_dirs=tuple(
            (str(d[0]), int(d[1])) for d in summary.get("top_dirs") or () if len(d) == 2
        ),
        sensitive_files=_strs(summary.get("sensitive_files")),
        secrets=tuple(_secret(s) for s in summary.get("secrets") or () if isinstance(s, Mapping)),
        internal_hosts=_strs(summary.get("internal_hosts")),
        partial=bool(summary.get("partial", False)),
        notes=_strs(summary.get("notes")),
    )


def _secret(data: Mapping[str, Any]) -> SecretView:
    line = data.get("line")
    return SecretView(
        kind=str(data.get("kind", "secret")),
        file=str(data.get("file", "")),
        line=line if isinstance(line, int) else None,
        # Only the redacted form is ever copied; a raw value field, if any, is never read.
        redacted=str(data.get("redacted", "<redacted>")),
    )


def _strs(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(str(v) for v in value)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def mirror_view(data: Mapping[str, Any]) -> MirrorView:
    flag = data.get("network_has_non_copies")
    return MirrorView(
        url=str(data.get("url", "")),
        host=str(data.get("host", "")),
        kind=str(data.get("kind", "repo")),
        name=str(data.get("name", "")),
        description=str(data.get("description") or ""),
        verdict=str(data.get("verdict", "unverified")),
        matched=_int(data.get("matched")),
        total=_int(data.get("total")),
        tree_files=_int(data.get("tree_files")),
        sample_paths=_strs(data.get("sample_paths")),
        parent=_opt(data.get("parent")),
        network_root=_opt(data.get("network_root")),
        network_has_non_copies=flag if isinstance(flag, bool) else None,
        found_by=_strs(data.get("found_by")),
        checked_at=str(data.get("checked_at") or ""),
        evidence=str(data.get("evidence") or ""),
        status=str(data.get("status", "open")),
        commit_sha=_opt(data.get("commit_sha")),
        tree_sha=_opt(data.get("tree_sha")),
        matched_paths=_pairs(data.get("matched_paths")),
        unvendored_files=_int(data.get("unvendored_files")),
    )


def _pairs(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(
        (str(v[0]), str(v[1])) for v in value if isinstance(v, list | tuple) and len(v) == 2
    )


def notice_view(data: Mapping[str, Any]) -> NoticeView:
    return NoticeView(
        id=str(data.get("id", "")),
        kind=str(data.get("kind", "")),
        title=str(data.get("title", "")),
        status=str(data.get("status", "drafted")),
        file=str(data.get("file", "")),
        mirrors=_strs(data.get("mirrors")),
        missing=_strs(data.get("missing")),
        ref=_opt(data.get("ref")),
        sent_at=_opt(data.get("sent_at")),
        resolved_at=_opt(data.get("resolved_at")),
        rehearsal=bool(data.get("rehearsal", False)),
        note=str(data.get("note") or ""),
    )


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
