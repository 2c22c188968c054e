"""Routes for a tenant's tools: what its domain defines, what its policy allows, what it switched off.

A tenant admin can switch an allow-listed tool off (and on again) without writing a new policy
version, e.g. while a downstream system is down. The switch is a ``TenantToolSetting`` row that the
``PackStore`` applies by removing the tool from the tenant's allow-list, so the store is rebuilt at
once and the next run plans that step as a manual one; every other process rebuilds its store within
a second (``app/shared/``), and its executors refuse the tool from then on.

Each tool also shows its circuit breaker (per tenant and tool, shared by every process through the
database, ``app/shared/breakers.py``) and the limits in force for this tenant (its
``toolOverrides`` capped by ``maxAutoRetries``); an admin can close an open breaker once the
downstream system is back, and it closes in every process.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from app.api.deps import Services, ServicesDep, TenantAdmin, Viewer
from app.api.problems import ProblemError, responses
from app.db.models import TenantToolSetting, ToolExecution
from app.db.types import utc_now
from app.shared.changes import announce
from packs.domain import DomainPack
from packs.tenant import TenantPolicyPack
from tools.registry import ToolRegistry

router = APIRouter(prefix="/admin", tags=["admin: tools"])
RECENT = 10


class ToolRun(BaseModel):
    exceptionId: str
    status: str
    mode: str
    at: datetime
    latencyMs: float
    attempts: int
    breaker: Literal["closed", "open", "half_open"] | None = Field(description="After the call (live only)")
    error: str | None


class BreakerView(BaseModel):
    state: Literal["closed", "open", "half_open"]
    consecutiveFailures: int
    openedAt: str | None
    retryAt: str | None = Field(description="When an open breaker lets one trial call through")


class ToolView(BaseModel):
    name: str
    description: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    endpoint: str | None
    mutating: bool
    idempotent: bool
    timeoutSeconds: float = Field(description="For this tenant (toolOverrides, else the domain's)")
    maxRetries: int = Field(description="For this tenant, capped by guardrails.maxAutoRetries")
    breaker: BreakerView
    inAllowList: bool = Field(description="Listed in toolsAllowList of the active policy")
    enabled: bool = Field(description="Not switched off by the tenant admin")
    effective: bool = Field(description="Runs may call it: allow-listed and enabled")
    recentExecutions: list[ToolRun] = Field(description=f"The last {RECENT} calls, newest first")


class ToolList(BaseModel):
    tenantId: str
    domainName: str
    domainVersion: str
    items: list[ToolView]


def packs_of(services: Services, tenant_id: str) -> tuple[TenantPolicyPack, DomainPack]:
    """The tenant's active policy as written (before switches) and its domain pack."""
    policy = services.store.tenants.get(tenant_id)
    if policy is None:
        raise ProblemError(404, f"tenant {tenant_id} has no active policy pack")
    try:
        return policy, services.store.domain_of(policy)
    except LookupError as exc:
        raise ProblemError(409, str(exc)) from None


async def tool_views(services: Services, tenant_id: str, only: str | None = None) -> ToolList:
    policy, domain = packs_of(services, tenant_id)
    names = [only] if only is not None else list(domain.tools)
    ranked = (
        select(
            ToolExecution,
            func.row_number()
            .over(
                partition_by=ToolExecution.tool, order_by=(ToolExecution.at.desc(), ToolExecution.id.desc())
            )
            .label("rank"),
        )
        .where(ToolExecution.tenant_id == tenant_id, ToolExecution.tool.in_(names))
        .subquery()
    )
    async with services.db.session() as session:
        settings = {
            s.tool: s.enabled
            for s in (
                await session.execute(
                    select(TenantToolSetting).where(TenantToolSetting.tenant_id == tenant_id)
                )
            ).scalars()
        }
        runs = (
            await session.execute(
                select(ranked.c.tool, ranked.c.exception_id, ranked.c.status, ranked.c.mode, ranked.c.at,
                       ranked.c.latency_ms, ranked.c.attempts, ranked.c.breaker, ranked.c.error)
                .where(ranked.c.rank <= RECENT)
                .order_by(ranked.c.tool, ranked.c.rank)
            )
        ).all()  # fmt: skip
    recent: dict[str, list[ToolRun]] = {}
    for tool, exception_id, state, mode, at, latency, attempts, breaker, error in runs:
        run = ToolRun(exceptionId=exception_id, status=state, mode=mode, at=at, latencyMs=latency,
                      attempts=attempts, breaker=breaker, error=error)  # fmt: skip
        recent.setdefault(tool, []).append(run)
    registry = ToolRegistry(domain, policy)
    items = []
    for name in names:
        tool, limits = domain.tools[name], registry.get(name)
        assert limits is not None
        allowed, enabled = name in policy.toolsAllowList, settings.get(name, True)
        snapshot = services.runtime.breakers.snapshot(limits.key)
        breaker = BreakerView(state=snapshot.state, consecutiveFailures=snapshot.consecutiveFailures,
                              openedAt=snapshot.openedAt, retryAt=snapshot.retryAt)  # fmt: skip
        items.append(
            ToolView(
                name=name, description=tool.description, method=tool.method, endpoint=tool.endpoint,
                mutating=tool.mutating, idempotent=tool.idempotent, timeoutSeconds=limits.timeout_seconds,
                maxRetries=limits.max_retries, breaker=breaker, inAllowList=allowed, enabled=enabled,
                effective=allowed and enabled, recentExecutions=recent.get(name, []),
            )
        )  # fmt: skip
    return ToolList(
        tenantId=tenant_id, domainName=domain.domainName, domainVersion=domain.version, items=items
    )


async def switch(services: Services, tenant_id: str, tool: str, enabled: bool, actor: str) -> ToolView:
    policy, domain = packs_of(services, tenant_id)
    if tool not in domain.tools:
        raise ProblemError(404, f"domain {domain.domainName} defines no tool {tool}")
    if enabled and tool not in policy.toolsAllowList:
        raise ProblemError(
            409, f"{tool} is not in the policy's allow-list: add it to toolsAllowList in the policy pack"
        )
    async with services.db.session() as session:
        await announce(session, "packs")  # every process reloads its PackStore within a second
        setting = await session.get(TenantToolSetting, (tenant_id, tool))
        if setting is None:
            session.add(TenantToolSetting(tenant_id=tenant_id, tool=tool, enabled=enabled, changed_by=actor))
        else:
            setting.enabled, setting.changed_by, setting.changed_at = enabled, actor, utc_now()
    async with services.db.session() as session:
        await services.store.load_tool_switches(session)
    return (await tool_views(services, tenant_id, only=tool)).items[0]


@router.get("/{tenantId}/tools", response_model=ToolList, responses=responses(401, 403, 404, 409, 429))
async def list_tools(tenantId: str, principal: Viewer, services: ServicesDep) -> ToolList:
    """Every tool of the tenant's domain, whether runs may call it, and its latest calls."""
    return await tool_views(services, tenantId)


@router.post("/{tenantId}/tools/{tool}/disable", response_model=ToolView,
             responses=responses(401, 403, 404, 409, 429))  # fmt: skip
async def disable_tool(tenantId: str, tool: str, principal: TenantAdmin, services: ServicesDep) -> ToolView:
    """Switch a tool off for this tenant; steps calling it become manual in new runs."""
    return await switch(services, tenantId, tool, False, principal.actor)


@router.post("/{tenantId}/tools/{tool}/enable", response_model=ToolView,
             responses=responses(401, 403, 404, 409, 429))  # fmt: skip
async def enable_tool(tenantId: str, tool: str, principal: TenantAdmin, services: ServicesDep) -> ToolView:
    """Switch an allow-listed tool back on."""
    return await switch(services, tenantId, tool, True, principal.actor)


async def reset_tool_breaker(services: Services, tenant_id: str, tool: str) -> None:
    """Close one tool's breaker for one tenant (404 when its domain has no such tool), written to
    the database before answering, so the other processes close theirs at their next poll."""
    policy, domain = packs_of(services, tenant_id)
    registered = ToolRegistry(domain, policy).get(tool)
    if registered is None:
        raise ProblemError(404, f"domain {domain.domainName} defines no tool {tool}")
    services.runtime.breakers.reset(registered.key)
    if services.shared is not None:
        await services.shared.publish()


@router.post("/{tenantId}/tools/{tool}/breaker/reset", response_model=ToolView,
             responses=responses(401, 403, 404, 409, 429))  # fmt: skip
async def reset_breaker(tenantId: str, tool: str, principal: TenantAdmin, services: ServicesDep) -> ToolView:
    """Close the tool's circuit breaker for this tenant (the downstream system is back)."""
    await reset_tool_breaker(services, tenantId, tool)
    return (await tool_views(services, tenantId, only=tool)).items[0]
