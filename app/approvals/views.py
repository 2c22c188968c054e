"""Routes for approvals: list, read one, approve (optionally with an edited plan), reject."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from app.api.deps import Operator, ServicesDep, Viewer
from app.api.params import Offset
from app.api.problems import ProblemError, responses
from app.db.models import Approval
from packs.playbook import PlaybookStep

router = APIRouter(prefix="/approvals", tags=["approvals"])


class ApprovalView(BaseModel):
    approvalId: str
    exceptionId: str
    tenantId: str
    status: str
    severity: str | None
    createdAt: datetime
    deadline: datetime
    payload: dict[str, Any]
    decision: str | None
    decidedBy: str | None
    decidedAt: datetime | None
    comment: str | None


class ApprovalPage(BaseModel):
    items: list[ApprovalView]
    total: int


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str | None = Field(default=None, max_length=5000)
    editedPlan: list[PlaybookStep] | None = Field(
        default=None, description="Approve with these steps instead"
    )


def view(row: Approval) -> ApprovalView:
    return ApprovalView(
        approvalId=row.approval_id, exceptionId=row.exception_id, tenantId=row.tenant_id, status=row.status,
        severity=row.severity, createdAt=row.created_at, deadline=row.deadline, payload=row.payload,
        decision=row.decision, decidedBy=row.decided_by, decidedAt=row.decided_at, comment=row.comment,
    )  # fmt: skip


@router.get("/{tenantId}", response_model=ApprovalPage, responses=responses(401, 403, 404, 429))
async def list_approvals(
    tenantId: str,
    principal: Viewer,
    services: ServicesDep,
    status: Annotated[
        Literal["PENDING", "APPROVED", "EDITED", "REJECTED", "EXPIRED", "ALL"], Query()
    ] = "PENDING",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> ApprovalPage:
    query = select(Approval).where(Approval.tenant_id == tenantId)
    if status != "ALL":
        query = query.where(Approval.status == status)
    async with services.db.session() as session:
        total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
        rows = (
            (await session.execute(query.order_by(Approval.deadline).limit(limit).offset(offset)))
            .scalars()
            .all()
        )
    return ApprovalPage(items=[view(r) for r in rows], total=total)


@router.get("/{tenantId}/{approvalId}", response_model=ApprovalView, responses=responses(401, 403, 404, 429))
async def get_approval(
    tenantId: str, approvalId: str, principal: Viewer, services: ServicesDep
) -> ApprovalView:
    async with services.db.session() as session:
        row = await session.get(Approval, (tenantId, approvalId))
    if row is None or row.tenant_id != tenantId:
        raise ProblemError(404, f"no approval {approvalId}")
    return view(row)


async def _decide(
    services: Any, tenant_id: str, approval_id: str, answer: dict[str, Any], actor: str
) -> ApprovalView:
    await services.cases.decide(tenant_id, approval_id, answer, actor=actor)
    async with services.db.session() as session:
        row = await session.get(Approval, (tenant_id, approval_id))
    assert row is not None
    return view(row)


@router.post(
    "/{tenantId}/{approvalId}/approve",
    response_model=ApprovalView,
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def approve(
    tenantId: str, approvalId: str, body: Decision, principal: Operator, services: ServicesDep
) -> ApprovalView:
    """Approve the plan (or an edited one); the case's run continues."""
    answer: dict[str, Any] = {"decision": "approve", "actor": principal.actor, "comment": body.comment}
    if body.editedPlan:
        answer |= {
            "decision": "edit",
            "editedPlan": [s.model_dump(mode="json", exclude_none=True) for s in body.editedPlan],
        }
    return await _decide(services, tenantId, approvalId, answer, principal.actor)


@router.post(
    "/{tenantId}/{approvalId}/reject",
    response_model=ApprovalView,
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def reject(
    tenantId: str, approvalId: str, body: Decision, principal: Operator, services: ServicesDep
) -> ApprovalView:
    if body.editedPlan:
        raise ProblemError(422, "a rejection carries no plan")
    answer = {"decision": "reject", "actor": principal.actor, "comment": body.comment}
    return await _decide(services, tenantId, approvalId, answer, principal.actor)
