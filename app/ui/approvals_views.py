"""UI pages: the approval queue, and deciding an approval straight from it.

The queue lists the tenant's waiting approvals (the ``approvals`` table the API lists), soonest deadline
first. The plan shown in a row is the approval's own record of the request, which a recalculation
rewrites while it holds the approval, so the page reads no graph state. The plan's digest travels
with the row's form, and a decision checks it against what the case's graph waits on at that moment
(``actions.decide_approval``): if the plan changed in the meantime, the decision is refused and the
person reviews the new plan first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup, escape
from sqlalchemy import ColumnElement, case, func, select

from app.api.params import MAX_OFFSET
from app.db.models import Approval
from app.metrics.service import WAITING
from app.ui.actions import decide_approval, plan_digest
from app.ui.deps import CheckedForm, OperatorPage, Page, UiError, ViewerPage, field
from app.ui.render import age, back, render

router = APIRouter(prefix="/ui/t/{tenantId}", include_in_schema=False)

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
DECIDED = ("APPROVED", "EDITED", "REJECTED", "EXPIRED", "TAKEN_OVER", "WITHDRAWN")
SORTS = {"deadline": "Deadline (soonest first)", "requested": "Waiting longest first",
         "severity": "Severity (most severe first)"}  # fmt: skip
PAGE_SIZE = 50
RECENT = 25
"""How many decided approvals the "recently decided" toggle shows (latest first)."""
FILTERS = ("severity", "sort", "decided")
MAX_COMMENT = 5000
"""The API's limit for a decision's comment."""


@dataclass(frozen=True)
class QueueRow:
    """One waiting approval, as the queue shows it."""

    approval_id: str
    exception_id: str
    exception_type: str | None
    severity: str | None
    status: str
    what: str
    why: list[str]
    plan: list[dict[str, Any]]
    digest: str | None
    requested_at: datetime
    deadline: datetime
    overdue: bool
    deadline_text: str


def breakable(text: str | None) -> Markup:
    """A long type name (``REGULATORY_REPORT_REJECTED``) that may wrap after each underscore on a
    narrow screen; the text is escaped first, only the ``<wbr>`` hints are markup."""
    return Markup("_<wbr>").join(escape(part) for part in (text or "—").split("_"))


def _choice(value: str | None, allowed: tuple[str, ...] | dict[str, str], default: str) -> str:
    return value if value is not None and value in allowed else default


def _filters(severity: str, sort: str, decided: bool) -> str:
    """The list's query string, kept across a decision so the person lands where they were."""
    values = {
        "severity": severity,
        "sort": sort if sort != "deadline" else "",
        "decided": "1" if decided else "",
    }
    return urlencode({k: v for k, v in values.items() if v})


def _deadline_text(deadline: datetime, now: datetime) -> str:
    if deadline <= now:
        return "overdue by " + age(deadline, now).removesuffix(" ago")
    return age(deadline, now)


def _order(sort: str) -> list[ColumnElement[Any]]:
    if sort == "requested":
        return [Approval.created_at.asc(), Approval.approval_id.asc()]
    if sort == "severity":
        rank = case(
            {name: index for index, name in enumerate(SEVERITIES)},
            value=Approval.severity,
            else_=len(SEVERITIES),
        )
        return [rank.asc(), Approval.deadline.asc(), Approval.approval_id.asc()]
    return [Approval.deadline.asc(), Approval.approval_id.asc()]


def _row(approval: Approval, now: datetime) -> QueueRow:
    payload = approval.payload or {}
    plan: list[dict[str, Any]] = list(payload.get("plan") or [])
    digest = plan_digest(plan) if approval.status == "PENDING" else None
    return QueueRow(
        approval_id=approval.approval_id, exception_id=approval.exception_id,
        exception_type=payload.get("exceptionType"), severity=approval.severity, status=approval.status,
        what=str(payload.get("what") or "Decide how to resolve this exception"),
        why=[str(reason) for reason in payload.get("why") or []], plan=plan, digest=digest,
        requested_at=approval.created_at, deadline=approval.deadline, overdue=approval.deadline <= now,
        deadline_text=_deadline_text(approval.deadline, now),
    )  # fmt: skip


@router.get("/approvals", response_class=HTMLResponse)
async def approvals(
    request: Request, page: ViewerPage, severity: str | None = None, sort: str | None = None,
    decided: str | None = None, offset: int = 0,
) -> HTMLResponse:  # fmt: skip
    """The approval queue, with a severity filter, a sort, and a toggle for recently decided ones."""
    chosen_severity = _choice(severity, SEVERITIES, "")
    chosen_sort = _choice(sort, SORTS, "deadline")
    show_decided = decided in ("1", "true", "on")
    offset = min(
        max(offset, 0), MAX_OFFSET
    )  # a hand-edited URL pages to the end, never past the database's int
    now = datetime.now(UTC)
    mine = [Approval.tenant_id == page.tenant_id]
    if chosen_severity:
        mine.append(Approval.severity == chosen_severity)
    async with page.services.db.session() as session:
        waiting = select(Approval).where(*mine, Approval.status.in_(WAITING))
        total = (await session.execute(select(func.count()).select_from(waiting.subquery()))).scalar_one()
        rows = (
            (await session.execute(waiting.order_by(*_order(chosen_sort)).limit(PAGE_SIZE).offset(offset)))
            .scalars()
            .all()
        )
        recent: list[Approval] = []
        if show_decided:
            recent = list(
                (
                    await session.execute(
                        select(Approval)
                        .where(*mine, Approval.status.in_(DECIDED))
                        .order_by(Approval.decided_at.desc().nulls_last(), Approval.approval_id.asc())
                        .limit(RECENT)
                    )
                )
                .scalars()
                .all()
            )
    queue = [_row(row, now) for row in rows]
    return render(
        request, "approvals.html", page, active="approvals", queue=queue, recent=recent, total=total,
        offset=offset, page_size=PAGE_SIZE, severities=SEVERITIES, sorts=SORTS, severity=chosen_severity,
        sort=chosen_sort, decided=show_decided, filters=_filters(chosen_severity, chosen_sort, show_decided),
        now=now, breakable=breakable,
    )  # fmt: skip


def _return_to(page: Page, view: str) -> str:
    """The list URL to go back to: only the known filters of the posted query string are kept."""
    kept = {key: value for key, value in parse_qsl(view) if key in FILTERS}
    base = f"/ui/t/{page.tenant_id}/approvals"
    return f"{base}?{urlencode(kept)}" if kept else base


@router.post("/approvals/{approvalId}/decide")
async def decide(approvalId: str, page: OperatorPage, form: CheckedForm) -> RedirectResponse:
    """Approve or reject (with a reason) from the queue; the plan digest proves which plan the person
    saw. An approval with no plan offers only Reject here; editing and taking over are on the case page."""
    url = _return_to(page, field(form, "view"))
    decision = field(form, "decision")
    if decision not in ("approve", "reject"):
        return back(page, url, error="choose Approve or Reject")
    chosen: Literal["approve", "reject"] = "approve" if decision == "approve" else "reject"
    comment, reason = field(form, "comment"), field(form, "reason")
    if len(comment) > MAX_COMMENT or len(reason) > MAX_COMMENT:
        return back(page, url, error=f"a comment or a reason is longer than {MAX_COMMENT} characters")
    async with page.services.db.session() as session:
        approval = await session.get(Approval, (page.tenant_id, approvalId))
    if approval is None:  # not this tenant's: the not-found page, as for any id it does not have
        raise UiError(404, f"no approval {approvalId}")
    try:
        message = await decide_approval(
            page, approval.exception_id, approvalId, chosen, comment=comment or None,
            seen_digest=field(form, "plan_digest") or None, reason=reason,
        )  # fmt: skip
    except ValueError as exc:
        return back(page, url, error=f"{approval.exception_id}: {exc}")
    return back(page, url, notice=f"{approval.exception_id} ({approvalId}): {message}")
