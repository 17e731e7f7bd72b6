"""Notices and the incident report: the incident view, the templates, the notice lifecycle."""

from playbook.notices.drafts import Draft, draft_notices
from playbook.notices.lifecycle import auto_resolve, list_notices, mark_resolved, mark_sent
from playbook.notices.report import render_documents, render_report
from playbook.notices.view import IncidentView, load_view

__all__ = [
    "Draft",
    "IncidentView",
    "auto_resolve",
    "draft_notices",
    "list_notices",
    "load_view",
    "mark_resolved",
    "mark_sent",
    "render_documents",
    "render_report",
]
