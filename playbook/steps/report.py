"""report.write: the incident report as Markdown, self-contained HTML and JSON files."""

from __future__ import annotations

from dataclasses import dataclass

from playbook.clock import utcnow
from playbook.notices.render import Renderer
from playbook.notices.report import Format, render_documents
from playbook.notices.view import step_view
from playbook.steps import register
from playbook.steps.base import Outcome, Plan, StepContext, StepOutputs, StepType

FILES = {"markdown": "report/report.md", "html": "report/report.html", "json": "report/report.json"}
FORMAT_OF: dict[str, Format] = {"markdown": "md", "html": "html", "json": "json"}


@dataclass(frozen=True)
class ReportOutput(StepOutputs):
    """Where the report files are, relative to the incident folder."""

    markdown: str = FILES["markdown"]
    html: str = FILES["html"]
    json: str = FILES["json"]


@register
class WriteReport(StepType):
    """Writes the report from the incident record; local files only (mutates=False)."""

    uses = "report.write"
    outputs = ReportOutput
    mutates = False
    once_per_incident = True
    description = "Write the incident report (Markdown, HTML with a timeline, JSON)."

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        org = ctx.org
        view = step_view(ctx)
        renderer, now = Renderer(org.templates_dir), utcnow()
        for key, name in FILES.items():
            text = render_documents(view, org, FORMAT_OF[key], renderer=renderer, now=now)
            ctx.write_file(name, text.encode("utf-8"))
        return Outcome(outputs=ReportOutput(), changed=True, summary="report written to report/")
