"""Every administration route in one router; fixed paths (``/admin/tenants``, ``/admin/domain-packs``,
``/admin/token-revocations``) are registered before the ``/admin/{tenantId}/...`` ones so that they
always win."""

from __future__ import annotations

from fastapi import APIRouter

from app.admin import keys_views, packs_views, tenants_views, tokens_views, tools_views, whatif_views

router = APIRouter()
for module in (tenants_views, packs_views, whatif_views, tools_views, keys_views, tokens_views):
    router.include_router(module.router)
