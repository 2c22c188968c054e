"""UI pages: the exceptions list, one exception's detail, and the forms that act on it.

The list reads through the same ``filtered``/``page`` queries as ``GET /exceptions/{tenant}``; the
detail page's data is assembled in ``case_page``. Every form goes through ``app.ui.actions`` (or the
playbook service) with the signed-in person as actor, then back to the detail page with a message.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy import select
from starlette.datastructures import QueryParams

from app.api.params import StepOrder
from app.api.problems import ProblemError
from app.cases.queries import filtered
from app.cases.queries import page as page_of
from app.db.models import ExceptionCase
from app.jobs.base import StillRunning
from app.playbooks.service import recalculate
from app.ui.actions import DECISIONS, answer_step, decide_approval, still_running
from app.ui.case_page import case_view, load_case, status_value
from app.ui.deps import CheckedForm, OperatorPage, Page, ViewerPage, field
from app.ui.render import back, refused, render
from packs.common import RESOLUTION_STATUSES, SEVERITIES

router = APIRouter(prefix="/ui/t/{tenantId}", include_in_schema=False)

PAGE_SIZE = 25
SORTS = {"received": "receivedAt", "updated": "updatedAt", "severity": "severity", "status": "status",
         "type": "exceptionType"}  # fmt: skip
"""The list's sort keys (short, for links) and the API sort each one means."""
FIRST_DIRECTION = {"received": "desc", "updated": "desc"}
"""A newly chosen column sorts newest first for times, A→Z otherwise."""
MAX_NOTES = 5000


@dataclass(frozen=True)
class ListQuery:
    """The list's filters, sort and page exactly as they appear in its URL."""

    status: str = ""
    severity: str = ""
    type: str = ""
    q: str = ""
    date_from: str = ""
    date_to: str = ""
    sort: str = "received"
    dir: str = "desc"
    page: int = 1
    size: int = PAGE_SIZE

    @property
    def filtering(self) -> bool:
        return any((self.status, self.severity, self.type, self.q, self.date_from, self.date_to))

    def params(self, **changes: Any) -> dict[str, str]:
        """The URL parameters of this view with ``changes``; defaults are left out to keep links short."""
        current = {"status": self.status, "severity": self.severity, "type": self.type, "q": self.q,
                   "from": self.date_from, "to": self.date_to, "sort": self.sort, "dir": self.dir,
                   "page": self.page, "size": self.size}  # fmt: skip
        current |= changes
        defaults = {"sort": "received", "dir": "desc", "page": 1, "size": PAGE_SIZE}
        return {k: str(v) for k, v in current.items() if v not in (None, "") and defaults.get(k) != v}


def _day(text: str, name: str, problems: list[str]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(f"{name} is not a date: use YYYY-MM-DD")
        return None


def _number(text: str, name: str, low: int, high: int, default: int, problems: list[str]) -> int:
    if not text:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 9) or not low <= int(text) <= high:
        problems.append(f"{name} must be a whole number from {low} to {high}")
        return default
    return int(text)


def parse_list_query(params: QueryParams) -> tuple[ListQuery, list[str], date | None, date | None]:
    """The filters with every problem found (each said plainly), and the parsed dates. A problem
    never repeats what was typed: the banner shows the server's words only, so a link cannot make
    the page display a message of its own (the fields above still show what was typed)."""
    text = {key: (params.get(key) or "").strip() for key in
            ("status", "severity", "type", "q", "from", "to", "sort", "dir", "page", "size")}  # fmt: skip
    problems: list[str] = []
    if text["status"] and text["status"] not in RESOLUTION_STATUSES:
        problems.append(f"the status is none of {', '.join(RESOLUTION_STATUSES)}")
    if text["severity"] and text["severity"] not in SEVERITIES:
        problems.append(f"the severity is none of {', '.join(SEVERITIES)}")
    if text["sort"] and text["sort"] not in SORTS:
        problems.append(f"the list sorts by one of {', '.join(SORTS)}")
    if text["dir"] and text["dir"] not in ("asc", "desc"):
        problems.append("the sort direction is asc or desc")
    if len(text["q"]) > 200:
        problems.append("the search text is limited to 200 characters")
    start, end = _day(text["from"], "Received from", problems), _day(text["to"], "Received to", problems)
    if start and end and start > end:
        problems.append("Received from is after Received to")
    query = ListQuery(
        status=text["status"], severity=text["severity"], type=text["type"], q=text["q"][:200],
        date_from=text["from"], date_to=text["to"],
        sort=text["sort"] if text["sort"] in SORTS else "received",
        dir=text["dir"] if text["dir"] in ("asc", "desc") else "desc",
        page=_number(text["page"], "page", 1, 100_000, 1, problems),
        size=_number(text["size"], "size", 1, 200, PAGE_SIZE, problems),
    )  # fmt: skip
    return query, problems, start, end


def _midnight(day: date | None, plus_days: int = 0) -> datetime | None:
    return datetime.combine(day + timedelta(days=plus_days), time(), tzinfo=UTC) if day else None


async def _type_options(page: Page) -> list[str]:
    """Exception types of the tenant's domain pack and any other type already seen in its data."""
    async with page.services.db.session() as session:
        rows = await session.execute(
            select(ExceptionCase.exception_type).where(ExceptionCase.tenant_id == page.tenant_id).distinct()
        )
        seen = {value for value in rows.scalars() if value}
    policy = page.services.store.tenants.get(page.tenant_id)
    if policy is not None:
        with suppress(LookupError):  # a tenant whose domain is gone still lists the types it has
            seen |= set(page.services.store.domain_of(policy).exceptionTypes)
    return sorted(seen)


@router.get("/exceptions", response_class=HTMLResponse)
async def exceptions_list(request: Request, page: ViewerPage) -> HTMLResponse:
    base = f"/ui/t/{page.tenant_id}/exceptions"
    query, problems, start, end = parse_list_query(request.query_params)

    def link(**changes: Any) -> str:
        params = query.params(**changes)
        return f"{base}?{urlencode(params)}" if params else base

    def sort_link(column: str) -> str:
        flipped = "asc" if query.dir == "desc" else "desc"
        direction = flipped if query.sort == column else FIRST_DIRECTION.get(column, "asc")
        return link(sort=column, dir=direction, page=None)

    shared: dict[str, Any] = {"active": "exceptions", "base": base, "link": link, "sort_link": sort_link,
                              "statuses": RESOLUTION_STATUSES, "severities": SEVERITIES,
                              "types": await _type_options(page)}  # fmt: skip
    if problems:
        return render(request, "exceptions.html", page, status=400, error="; ".join(problems), q=query, rows=[],
                      total=0, counts={}, all_count=0, first=0, last=0, pages=1, problems=problems, **shared)  # fmt: skip
    criteria: dict[str, Any] = {"severity": query.severity or None, "exception_type": query.type or None,
                                "text": query.q or None, "received_from": _midnight(start),
                                "received_to": _midnight(end, 1)}  # fmt: skip
    sort = ("-" if query.dir == "desc" else "") + SORTS[query.sort]
    selected = filtered(page.tenant_id, status=query.status or None, **criteria)
    async with page.services.db.session() as session:
        rows, total, counts = await page_of(session, selected, sort=sort, limit=query.size,
                                            offset=(query.page - 1) * query.size)  # fmt: skip
        pages = max(1, -(-total // query.size))
        if query.page > pages:  # past the end (rows went away): show the last page instead of nothing
            query = replace(query, page=pages)
            rows, total, counts = await page_of(session, selected, sort=sort, limit=query.size,
                                                offset=(query.page - 1) * query.size)  # fmt: skip
        if query.status:  # counts of the other filters, so each status link says what it would show
            _, _, counts = await page_of(session, filtered(page.tenant_id, **criteria), sort=sort, limit=1,
                                         offset=0)  # fmt: skip
    first = (query.page - 1) * query.size + 1 if rows else 0
    return render(request, "exceptions.html", page, q=query, rows=rows, total=total, counts=counts,
                  all_count=sum(counts.values()), first=first, last=first + len(rows) - 1 if rows else 0,
                  pages=pages, problems=[], **shared)  # fmt: skip


def detail_url(page: Page, exception_id: str) -> str:
    return f"/ui/t/{page.tenant_id}/exceptions/{quote(exception_id, safe='')}"


@router.get("/exceptions/{exceptionId}", response_class=HTMLResponse)
async def exception_detail(request: Request, page: ViewerPage, exceptionId: str) -> HTMLResponse:
    view = await case_view(page, exceptionId)
    return render(request, "exception.html", page, active="exceptions", view=view,
                  detail_url=detail_url(page, exceptionId))  # fmt: skip


@router.get("/exceptions/{exceptionId}/status.json")
async def exception_status(page: ViewerPage, exceptionId: str) -> JSONResponse:
    """What the detail page polls while the case runs or waits; any change reloads the page."""
    return JSONResponse(
        {"value": await status_value(page, exceptionId)}, headers={"Cache-Control": "no-store"}
    )


async def _ensure_case(page: Page, exception_id: str) -> None:
    async with page.services.db.session() as session:
        await load_case(session, page.tenant_id, exception_id)


async def _answer(page: Page, exception_id: str, order: int, action: Literal["complete", "skip"],
                  notes: str, digest: str, reason: str = "") -> RedirectResponse:  # fmt: skip
    await _ensure_case(page, exception_id)
    url = detail_url(page, exception_id)
    if len(notes) > MAX_NOTES or len(reason) > MAX_NOTES:
        return back(page, url, error=f"notes and reasons are limited to {MAX_NOTES} characters")
    try:
        message = await answer_step(page, exception_id, order, action, notes or None, reason,
                                    seen_digest=digest or None)  # fmt: skip
    except ValueError as exc:
        return back(page, url, error=str(exc))
    return back(page, url, notice=message)


@router.post("/exceptions/{exceptionId}/steps/{order}/complete")
async def complete_step(
    page: OperatorPage, form: CheckedForm, exceptionId: str, order: StepOrder
) -> RedirectResponse:
    return await _answer(
        page, exceptionId, order, "complete", field(form, "notes"), field(form, "plan_digest")
    )


@router.post("/exceptions/{exceptionId}/steps/{order}/skip")
async def skip_step(
    page: OperatorPage, form: CheckedForm, exceptionId: str, order: StepOrder
) -> RedirectResponse:
    return await _answer(
        page,
        exceptionId,
        order,
        "skip",
        field(form, "notes"),
        field(form, "plan_digest"),
        field(form, "reason"),
    )


@router.post("/exceptions/{exceptionId}/recalculate")
async def recalculate_playbook(page: OperatorPage, form: CheckedForm, exceptionId: str) -> RedirectResponse:
    await _ensure_case(page, exceptionId)
    url = detail_url(page, exceptionId)
    services = page.services
    try:
        outcome = await recalculate(services.cases, services.runner, services.runtime, page.tenant_id, exceptionId,
                                    who=page.principal.actor)  # fmt: skip
    except ProblemError as exc:
        return refused(page, url, exc)
    except StillRunning as running:
        return back(page, url, notice=still_running(running))
    before = outcome["previous"].get("recommendedPlaybookId") or "no playbook"
    now = outcome["current"].get("recommendedPlaybookId") or "no playbook"
    if not outcome["changed"]:
        return back(page, url, notice=f"Recalculated with the active packs: the choice is unchanged ({now}).")
    return back(
        page, url, notice=f"Playbook recalculated: {before} → {now}. Review the new plan before deciding."
    )


@router.post("/exceptions/{exceptionId}/approvals/{approvalId}/decide")
async def decide(
    page: OperatorPage, form: CheckedForm, exceptionId: str, approvalId: str
) -> RedirectResponse:
    await _ensure_case(page, exceptionId)
    url = detail_url(page, exceptionId)
    decision = field(form, "decision")
    if decision not in DECISIONS:
        return back(
            page, url, error=f"unknown decision “{decision}”: approve, reject, edit, comment or takeover"
        )
    comment, reason = field(form, "comment"), field(form, "reason")
    if len(comment) > MAX_NOTES or len(reason) > MAX_NOTES:
        return back(page, url, error=f"a comment or a reason is limited to {MAX_NOTES} characters")
    try:
        message = await decide_approval(
            page, exceptionId, approvalId, decision, comment=comment or None,
            seen_digest=field(form, "plan_digest") or None, edited_plan=field(form, "edited_plan"),
            reason=reason,
        )  # fmt: skip
    except ValueError as exc:
        return back(page, url, error=str(exc))
    return back(page, url, notice=message)
