"""Rendering pages: one Jinja2 environment, the context every page shares, and the filters
templates use to show time, age and status without relying on color alone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from app.api.problems import FieldProblem, ProblemError
from app.ui import flash
from app.ui.deps import Page, UiError

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

STATUS_ICONS = {
    "RESOLVED": "✓", "ESCALATED": "⚠", "REJECTED": "✗", "PENDING_APPROVAL": "‖", "IN_PROGRESS": "▶", "OPEN": "○",
    "SUCCESS": "✓", "FAILED": "✗", "SKIPPED": "↷", "NEEDS_APPROVAL": "‖", "PENDING": "○", "DRY_RUN": "◌",
    "APPROVED": "✓", "EDITED": "✎", "EXPIRED": "⊗", "CLOSED_WITHOUT_ACTION": "∅", "TAKEN_OVER": "☞",
}  # fmt: skip
"""A symbol beside every status word, so a status never depends on color alone."""


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def when(value: Any) -> str:
    moment = _when(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def age(value: Any, now: datetime | None = None) -> str:
    """``3 h 12 min`` ago (or ``in ...`` for a future deadline)."""
    moment = _when(value)
    if moment is None:
        return "—"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    text = f"{days} d {hours} h" if days else f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f"in {text}" if future else f"{text} ago"


def status_icon(status: Any) -> str:
    return STATUS_ICONS.get(str(status), "•")


templates.env.filters.update(
    when=when, age=age, status_icon=status_icon, quote=lambda v: quote(str(v), safe="")
)


def render(
    request: Request, name: str, page: Page | None, *, status: int = 200, **context: Any
) -> HTMLResponse:
    """The page, with the message a form left for this session (shown once, then forgotten)."""
    session = page.session if page else context.get("session")
    secret: bytes = request.app.state.services.ui_secret
    message = flash.decode(request.cookies.get(flash.COOKIE), session, secret) or flash.Flash()
    shared: dict[str, Any] = {"page": page, "session": session, "notice": message.notice,
                              "error": message.error, "flash_problems": list(message.problems)}  # fmt: skip
    response = templates.TemplateResponse(request, name, {**shared, **context}, status_code=status)
    if flash.COOKIE in request.cookies:
        response.delete_cookie(flash.COOKIE, path="/ui")
    return response


def back(
    page: Page, url: str, *, notice: str | None = None, error: str | None = None, problems: Sequence[str] = ()
) -> RedirectResponse:
    """After a form: back to ``url`` (303, so a reload does not post again), with a message for the
    next page this session sees. The URL never carries the message: a link cannot forge one."""
    response = RedirectResponse(url, status_code=303)
    if notice or error or problems:
        value = flash.encode(flash.Flash(notice, error, tuple(problems)), page.session, page.secret)
        response.set_cookie(flash.COOKIE, value, httponly=True, samesite="strict", path="/ui",
                            secure=page.services.settings.ui_secure_cookies)  # fmt: skip
    return response


SHOWN_PROBLEMS = 12
"""Problems of a refusal carried to the next page (in the signed message cookie): enough to act on."""


def problem_lines(problems: Sequence[FieldProblem]) -> list[str]:
    """The first problems of a refusal, one line each, for the page the form redirects to."""
    lines = [f"{p.path}: {p.message}" for p in problems[:SHOWN_PROBLEMS]]
    if len(problems) > SHOWN_PROBLEMS:
        lines.append(f"… and {len(problems) - SHOWN_PROBLEMS} more")
    return lines


def refused(page: Page, url: str, exc: ProblemError) -> RedirectResponse:
    """After a form the service refused: back to ``url`` with the reason, except when the form names
    something this tenant does not have (the service's 404: a case, an approval, a pack version, a
    tool). That is the not-found page, as the API answers 404, so another tenant's id and an id
    nobody has get the same answer, and no redirect treats the id as something that exists."""
    if exc.status == 404:
        raise UiError(404, exc.detail)
    return back(page, url, error=exc.detail, problems=problem_lines(exc.errors))
