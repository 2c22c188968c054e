"""Rendering pages: one Jinja2 environment, the context every page shares, and the filters
templates use to show time, age and status without relying on color alone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from app.ui.deps import Page

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
    shared: dict[str, Any] = {"page": page, "session": page.session if page else None,
                              "notice": request.query_params.get("notice"), "error": request.query_params.get("error")}  # fmt: skip
    return templates.TemplateResponse(request, name, {**shared, **context}, status_code=status)


def back(url: str, *, notice: str | None = None, error: str | None = None) -> RedirectResponse:
    """After a form: back to ``url`` (303, so a reload does not post again) with a message."""
    message = f"notice={quote(notice)}" if notice else f"error={quote(error)}" if error else ""
    joiner = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{joiner}{message}" if message else url, status_code=303)
