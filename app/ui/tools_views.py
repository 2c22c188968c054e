"""UI page for a tenant's tools: which ones runs may call, with what limits, how their circuit
breakers stand and how their latest calls went; and the admin's switches for them.

The figures come from ``app.admin.tools_views.tool_views``, the same function the API's
``GET /admin/{tenantId}/tools`` returns, and the switches call the same ``switch`` and breaker
reset as the API, so the page and the API can never disagree about a tool.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app.admin.tools_views import ToolList, reset_tool_breaker, switch, tool_views
from app.api.problems import ProblemError
from app.ui.deps import AdminPage, CheckedForm, Page, ViewerPage
from app.ui.render import back, refused, render

router = APIRouter(prefix="/ui/t/{tenantId}", include_in_schema=False)

BREAKER_WORDS = {
    "closed": ("✓", "closed", "status-success"),
    "open": ("✗", "open", "status-failed"),
    "half_open": ("◐", "half open", "status-escalated"),
}
"""Each breaker state as symbol, words and badge class: never color alone."""


def tools_url(page: Page) -> str:
    return f"/ui/t/{page.tenant_id}/tools"


@router.get("/tools", response_class=HTMLResponse)
async def tools(request: Request, page: ViewerPage) -> HTMLResponse:
    """Every tool of the tenant's domain with its allow-list status, limits, breaker and latest calls."""
    listing: ToolList | None = None
    unavailable: str | None = None
    try:
        listing = await tool_views(page.services, page.tenant_id)
    except ProblemError as exc:
        unavailable = exc.detail
    return render(request, "tools.html", page, active="tools", listing=listing, unavailable=unavailable,
                  breaker_words=BREAKER_WORDS)  # fmt: skip


async def _switch(page: Page, tool: str, enabled: bool) -> RedirectResponse:
    try:
        view = await switch(page.services, page.tenant_id, tool, enabled, page.principal.actor)
    except ProblemError as exc:
        return refused(page, tools_url(page), exc)
    if view.enabled:
        return back(page, tools_url(page), notice=f"{tool} is switched on again for {page.tenant_id}")
    return back(
        page,
        tools_url(page),
        notice=f"{tool} is switched off for {page.tenant_id}: new runs plan its steps as manual",
    )


@router.post("/tools/{tool}/disable")
async def disable(page: AdminPage, form: CheckedForm, tool: str) -> RedirectResponse:
    """Switch a tool off for this tenant, e.g. while the system behind it is down."""
    return await _switch(page, tool, False)


@router.post("/tools/{tool}/enable")
async def enable(page: AdminPage, form: CheckedForm, tool: str) -> RedirectResponse:
    """Switch an allow-listed tool back on."""
    return await _switch(page, tool, True)


@router.post("/tools/{tool}/breaker/reset")
async def reset_breaker(page: AdminPage, form: CheckedForm, tool: str) -> RedirectResponse:
    """Close the tool's circuit breaker for this tenant, once the system behind it is back."""
    try:
        await reset_tool_breaker(page.services, page.tenant_id, tool)
    except ProblemError as exc:
        return refused(page, tools_url(page), exc)
    return back(
        page, tools_url(page), notice=f"the circuit breaker of {tool} is closed: calls go through again"
    )
