"""All UI routes under ``/ui``: sign-in and home, then one module per page family."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from app.ui import (
    approvals_views,
    auth_views,
    dashboard_views,
    exceptions_views,
    packs_views,
    tools_views,
)

UI_STATIC = Path(__file__).parent / "static"

router = APIRouter()
for module in (auth_views, exceptions_views, approvals_views, dashboard_views, packs_views, tools_views):
    router.include_router(module.router)
