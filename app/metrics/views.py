"""``GET /metrics/{tenantId}``: the tenant's case figures, each defined where the response model is."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import ServicesDep, Viewer
from app.api.problems import responses
from app.metrics.service import tenant_metrics

router = APIRouter(prefix="/metrics", tags=["metrics"])


class Metrics(BaseModel):
    exceptionCount: int = Field(description="Every case the tenant has, in any status")
    autoResolutionRate: float | None = Field(
        description="Finished cases (RESOLVED, REJECTED, ESCALATED or CLOSED_WITHOUT_ACTION) whose stored "
        "run outcome is "
        "auto_resolved (no approval, no person doing a step, not information-only), divided by all "
        "finished cases; null while none has finished"
    )
    mttrSeconds: float | None = Field(
        description="Mean time to resolve: the mean of resolvedAt - receivedAt over RESOLVED cases, in "
        "seconds (rejected, escalated and closed-without-action cases are not resolutions); null while none "
        "is resolved"
    )
    actionableApprovedCount: int = Field(
        description="Cases whose policy decision is ACTIONABLE_APPROVED_PROCESS (an approved playbook applies)"
    )
    actionableNonApprovedCount: int = Field(
        description="Cases whose policy decision is ACTIONABLE_NON_APPROVED_PROCESS (a person decides the plan)"
    )
    nonActionableCount: int = Field(description="Cases decided NON_ACTIONABLE_INFO_ONLY")
    pendingApprovals: int = Field(
        description="Approvals not yet decided (PENDING, or being decided right now)"
    )
    escalations: int = Field(description="Cases whose status is ESCALATED")
    recurrences: int = Field(
        description="Cases whose triage found the same entity (an identifier the domain pack names, such as "
        "an account or instruction id) in a case finished within the tenant's memory.recurrenceWindowHours"
    )
    closedWithoutAction: int = Field(
        description="Cases whose status is CLOSED_WITHOUT_ACTION: people skipped the steps left and "
        "nothing was done"
    )
    byStatus: dict[str, int] = Field(description="Cases per resolution status")
    bySeverity: dict[str, int] = Field(description="Cases per severity; UNKNOWN before triage")
    byType: dict[str, int] = Field(
        description="Cases per exception type (the triaged type, else the reported one; UNKNOWN when neither)"
    )


@router.get("/{tenantId}", response_model=Metrics, responses=responses(401, 403, 404, 422, 429))
async def get_metrics(tenantId: str, principal: Viewer, services: ServicesDep) -> Metrics:
    """Figures over the tenant's cases and approvals, computed in the database at request time."""
    async with services.db.session() as session:
        figures = await tenant_metrics(session, tenantId, dialect=services.db.engine.dialect.name)
    return Metrics.model_validate(figures)
