"""Routes for tenants: only the platform admin creates and lists them.

A tenant's id is a path segment next to fixed ones (``/admin/tenants``, ``/admin/domain-packs``), so
those words cannot be tenant ids. Ids are kept exactly as written (``TENANT_FINANCE_001``); one that
differs from an existing tenant's only in case is refused with 409.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from app.admin.accounts import RESERVED_TENANT_IDS, TenantIdConflict, ensure_tenant
from app.api.deps import PlatformAdmin, ServicesDep
from app.api.problems import FieldProblem, ProblemError, responses
from app.db.models import PackVersion, Tenant
from packs.common import TenantId

router = APIRouter(prefix="/admin", tags=["admin: tenants"])


class TenantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenantId: TenantId
    name: str = Field(min_length=1, max_length=200)


class TenantView(BaseModel):
    tenantId: str
    name: str
    active: bool
    createdAt: datetime
    hasActivePolicy: bool
    policyVersion: str | None = Field(description="The active policy pack version")


class TenantList(BaseModel):
    items: list[TenantView]


def view(row: Tenant, policy: str | None) -> TenantView:
    return TenantView(tenantId=row.tenant_id, name=row.name, active=row.active, createdAt=row.created_at,
                      hasActivePolicy=policy is not None, policyVersion=policy)  # fmt: skip


@router.post("/tenants", status_code=status.HTTP_201_CREATED, response_model=TenantView,
             responses=responses(401, 403, 409, 422))  # fmt: skip
async def create_tenant(body: TenantRequest, principal: PlatformAdmin, services: ServicesDep) -> TenantView:
    """A new tenant; its policy pack and keys follow through the tenant's own admin routes."""
    if body.tenantId.lower() in RESERVED_TENANT_IDS:
        problem = FieldProblem(path="body.tenantId", message=f"{body.tenantId!r} is reserved")
        raise ProblemError(422, "reserved tenant id", errors=[problem])
    try:
        async with services.db.session() as session:
            tenant, created = await ensure_tenant(session, body.tenantId, body.name)
    except TenantIdConflict as exc:
        raise ProblemError(409, str(exc)) from None
    if not created:
        raise ProblemError(409, f"tenant {body.tenantId} already exists")
    policy = services.store.tenants.get(body.tenantId)
    return view(tenant, policy.version if policy else None)


@router.get("/tenants", response_model=TenantList, responses=responses(401, 403))
async def list_tenants(principal: PlatformAdmin, services: ServicesDep) -> TenantList:
    """Every tenant, and whether a policy pack is active for it."""
    async with services.db.session() as session:
        tenants = (await session.execute(select(Tenant).order_by(Tenant.tenant_id))).scalars().all()
        policies = await session.execute(
            select(PackVersion.name, PackVersion.version).where(
                PackVersion.kind == "tenant", PackVersion.active.is_(True)
            )
        )
        active = {name: version for name, version in policies.all()}
    return TenantList(items=[view(t, active.get(t.tenant_id)) for t in tenants])
