"""notices.draft: render every notice the incident needs into local files and notice records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from playbook.mirrors.model import Mirror, MirrorStatus, transition
from playbook.notices.drafts import draft_notices
from playbook.notices.model import Notice, NoticeStatus
from playbook.notices.view import step_view
from playbook.steps import register
from playbook.steps.base import Outcome, Plan, StepContext, StepOutputs, StepType


@dataclass(frozen=True)
class DraftedNotice:
    id: str = ""
    kind: str = ""
    status: NoticeStatus = NoticeStatus.DRAFTED
    file: str = ""


@dataclass(frozen=True)
class NoticesOutput(StepOutputs):
    notices: tuple[DraftedNotice, ...] = ()


@register
class DraftNotices(StepType):
    """Drafts notices for a person to review and file; it sends nothing (mutates=False)."""

    uses = "notices.draft"
    outputs = NoticesOutput
    mutates = False
    description = "Draft DMCA, private-information, npm, CDN, advisory and customer notices."
    params = frozenset(
        {
            "network_statement",
            "dmca_per_network",
            "scan",
            "verify",
            "cdn",
            "verify_mirrors",
            "unpublish",
            "lookup",
        }
    )

    async def apply(self, ctx: StepContext, plan: Plan) -> Outcome:
        org = ctx.org
        requested = ctx.params.get("network_statement") is True
        split = ctx.params.get("dmca_per_network")
        drafts = draft_notices(
            step_view(ctx),
            org,
            target=str(ctx.target),
            network_statement=requested,
            per_network=split if isinstance(split, bool) else None,
        )
        changed = False
        for draft in drafts:
            notice = draft.notice
            ctx.write_file(draft.file, draft.text.encode("utf-8"))
            changed |= ctx.records.update(Notice, notice.id, _keep_final(notice))
            for network, decision in draft.statements.items():
                if decision.requested and not decision.included:
                    ctx.event(
                        "notice.network_statement_refused",
                        {"notice": notice.id, "network": network, "reason": decision.reason},
                    )
            ctx.progress(f"drafted {draft.file} ({notice.status})")
        for mirror_url in {u for d in drafts for u in d.notice.mirrors}:
            _mark_drafted(ctx, mirror_url)
        notices = [d.notice for d in drafts]
        waiting = [n.id for n in notices if n.status is NoticeStatus.NEEDS_DETAILS]
        summary = f"{len(drafts)} notice(s) drafted" + (
            f", {len(waiting)} need details from respond.toml" if waiting else ""
        )
        return Outcome(
            outputs=NoticesOutput(
                tuple(DraftedNotice(n.id, n.kind, n.status, n.file) for n in notices)
            ),
            changed=changed,
            summary=summary,
        )


def _keep_final(notice: Notice) -> Callable[[Notice | None], Notice | None]:
    """The drafted notice, unless a person marked it sent or resolved meanwhile (then theirs)."""

    def change(current: Notice | None) -> Notice | None:
        if current is not None and current.status.final:
            return None if not notice.status.final else notice
        return notice

    return change


def _mark_drafted(ctx: StepContext, url: str) -> None:
    def change(mirror: Mirror | None) -> Mirror | None:
        if mirror is None or mirror.status is not MirrorStatus.OPEN:
            return None
        return transition(mirror, MirrorStatus.NOTICE_DRAFTED, "a notice names it")

    ctx.records.update(Mirror, url, change)
