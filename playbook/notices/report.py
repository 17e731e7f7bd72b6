"""The incident report: Markdown, one self-contained HTML file with an SVG timeline, and JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from playbook.clock import utcnow
from playbook.config.org import ORG_FIELDS, OrgConfig
from playbook.errors import UsageError
from playbook.mirrors.model import Mirror
from playbook.notices.claims import claims
from playbook.notices.dmca import LISTED_VERDICTS, networks
from playbook.notices.drafts import org_context
from playbook.notices.render import Renderer
from playbook.notices.view import EventView, IncidentView, load_view
from playbook.secret import scrub_data

if TYPE_CHECKING:
    from playbook.config.settings import Settings
    from playbook.store.sqlite import Store

Format = Literal["md", "html", "json"]
FORMATS: tuple[Format, ...] = ("md", "html", "json")
TERMINAL = {"succeeded", "failed", "skipped", "planned", "timed_out", "awaiting_approval"}
LABEL_W, PLOT_W, ROW_H, TOP = 190, 640, 24, 34


@dataclass(frozen=True)
class Bar:
    label: str
    x: float
    width: float
    y: float
    status: str
    start: str
    end: str


@dataclass(frozen=True)
class Mark:
    x: float
    y: float
    label: str
    kind: str
    at: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    bars: tuple[Bar, ...]
    marks: tuple[Mark, ...]
    ticks: tuple[Tick, ...]


def _t(at: str) -> float:
    return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


def _intervals(events: tuple[EventView, ...]) -> dict[str, tuple[str, str, str]]:
    """step key -> (first start, last end, last status), from the event log alone."""
    spans: dict[str, tuple[str, str, str]] = {}
    for e in events:
        if not e.kind.startswith("step.") or e.step_key is None:
            continue
        status = e.kind.removeprefix("step.")
        start, _, _ = spans.get(e.step_key, (e.at, e.at, status))
        spans[e.step_key] = (start, e.at, status)
    return spans


def _milestones(events: tuple[EventView, ...]) -> list[tuple[str, str, str]]:
    """(at, kind, label) for what is not a step: approvals, copies found, notices sent."""
    found, marks = False, []
    for e in events:
        if e.kind == "incident.created":
            marks.append((e.at, "created", "incident opened"))
        elif e.kind == "approval.granted":
            marks.append((e.at, "approval", f"{e.step_key} approved by {e.actor}"))
        elif e.kind == "mirror.added" and not found:
            found = True
            marks.append((e.at, "mirror", "first copy recorded"))
        elif e.kind.startswith("notice.") and e.summary in ("sent", "resolved"):
            marks.append((e.at, e.summary, f"notice {e.summary}"))
    return marks


def build_timeline(view: IncidentView) -> Timeline:
    """Lay the event log out for an SVG: one bar per step, one row of milestones."""
    spans = _intervals(view.events)
    marks = _milestones(view.events)
    moments = [_t(e.at) for e in view.events] or [0.0]
    t0, t1 = min(moments), max(moments)
    span = max(t1 - t0, 1.0)

    def x(at: str) -> float:
        return round(LABEL_W + (_t(at) - t0) / span * PLOT_W, 1)

    bars = tuple(
        Bar(key, x(a), max(round(x(b) - x(a), 1), 3.0), TOP + i * ROW_H, status, a, b)
        for i, (key, (a, b, status)) in enumerate(spans.items())
    )
    mark_y = TOP + len(bars) * ROW_H + 6
    ticks = tuple(
        Tick(
            round(LABEL_W + f * PLOT_W, 1),
            datetime.fromtimestamp(t0 + f * span, UTC).strftime("%H:%M:%S"),
        )
        for f in (0.0, 0.25, 0.5, 0.75, 1.0)
    )
    return Timeline(
        width=LABEL_W + PLOT_W + 40,
        height=int(mark_y + 2 * ROW_H),
        bars=bars,
        marks=tuple(Mark(x(at), mark_y, label, kind, at) for at, kind, label in marks),
        ticks=ticks,
    )


def _exposure(view: IncidentView) -> dict[str, int]:
    scans = [t.scan for t in view.targets if t.scan]
    return {
        "first_party": sum(s.first_party for s in scans),
        "original_bytes": sum(s.original_bytes for s in scans),
        "original_lines": sum(s.original_lines for s in scans),
        "secrets": sum(len(s.secrets) for s in scans),
        "sources": sum(s.sources for s in scans),
    }


def claim_labels(mirrors: tuple[Mirror, ...]) -> dict[str, str]:
    """What a takedown claims of each listed copy: `entire`, or `files (N)`."""
    found = claims(m for m in mirrors if m.verdict in LISTED_VERDICTS)
    return {u: "entire" if c.entire else f"files ({len(c.files):,})" for u, c in found.items()}


def not_checked(view: IncidentView) -> list[dict[str, str]]:
    """What an outside service's failure left unchecked, and why (the steps' recorded gaps)."""
    out: list[dict[str, str]] = []
    for step in view.steps:
        for gap in (step.outputs or {}).get("gaps") or ():
            if isinstance(gap, dict):
                out.append(
                    {
                        "step": step.key,
                        "service": str(gap.get("service", "")),
                        "what": str(gap.get("what", "")),
                        "reason": str(gap.get("reason", "")),
                    }
                )
    return out


def report_context(view: IncidentView, org: OrgConfig, now: str) -> dict[str, Any]:
    verdicts: dict[str, int] = {}
    for m in view.mirrors:
        verdicts[m.verdict] = verdicts.get(m.verdict, 0) + 1
    return {
        "incident": view.incident,
        "targets": view.targets,
        "steps": view.steps,
        "events": view.events,
        "approvals": view.approvals,
        "mirrors": view.mirrors,
        "notices": view.notices,
        "networks": networks(view.mirrors, org.official),
        "claims": claim_labels(view.mirrors),
        "verdicts": sorted(verdicts.items()),
        "exposure": _exposure(view),
        "timeline": build_timeline(view),
        "org": org_context(org),
        "given": [name for name in ORG_FIELDS if org.detail(name)],
        "generated_at": now,
        "not_checked": not_checked(view),
    }


def report_json(view: IncidentView, now: str) -> str:
    data = {
        "generated_at": now,
        "draft": view.incident.is_draft,
        "not_checked": not_checked(view),
        **dataclasses.asdict(view),
    }
    plain = json.loads(json.dumps(data, default=str))
    for mirror in plain["mirrors"]:
        # Thousands of paths per copy: the report counts them; the mirror records
        # (`respond mirrors`, mirrors/mirrors.json) and the notices list every one.
        mirror["matched_paths"] = len(mirror.get("matched_paths") or ())
    return json.dumps(scrub_data(plain), indent=2, sort_keys=True) + "\n"


def render_documents(
    view: IncidentView,
    org: OrgConfig,
    fmt: Format,
    *,
    renderer: Renderer | None = None,
    now: str | None = None,
) -> str:
    """One report document from a view (the step and the CLI share it)."""
    now = now or utcnow()
    if fmt == "json":
        return report_json(view, now)
    if fmt not in FORMATS:
        raise UsageError(f"Report format {fmt!r} is not one of {', '.join(FORMATS)}.")
    renderer = renderer or Renderer(org.templates_dir)
    return renderer.render(f"report/report.{fmt}.j2", report_context(view, org, now))


def render_report(
    store: Store, incident_id: str, fmt: Format, *, settings: Settings | None = None
) -> str:
    """The report of a stored incident as Markdown, self-contained HTML or JSON."""
    org = org_for(store.home, settings)
    return render_documents(load_view(store, incident_id), org, fmt)


def org_for(home: Path, settings: Settings | None) -> OrgConfig:
    """The command's respond.toml (read once by Settings), else the one here or in `home`."""
    if settings is not None:
        return settings.org
    from playbook.config.settings import Settings

    return Settings(home=home).org
