"""Routes for approvals: list, read one, approve (optionally with an edited plan), reject, take over.

A decision claims the approval (PENDING → CLAIMED, one conditional UPDATE: of two decisions one
wins, the other is a 409 naming who decided and when) and queues the job that resumes the case; the
request waits for it at most ``EXOPS_ANSWER_WAIT_SECONDS``, then answers 202 with the job's link.
A body may name the ``planDigest`` the caller was shown (as the UI always does): a decision on a plan
that changed since (a recalculation) is then refused with a 409.

An approval whose plan is empty cannot be approved (409: there is nothing to approve); the detail
names the ways on: reject with a reason (the case escalates), approve with an ``editedPlan`` of at
least one step, or take the case over. 409 rather than 422 because the body is fine: the same body
approves an approval that has a plan; it is the approval's state that refuses it. A rejection needs
a reason; a body without one (or with only whitespace) is a 422 at ``body.reason``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select

from app.api.deps import Operator, ServicesDep, Viewer
from app.api.params import Offset
from app.api.problems import ProblemError, responses
from app.db.models import Approval
from app.jobs.base import StillRunning, plan_digest
from app.jobs.views import ACCEPTED, accepted
from packs.playbook import PlaybookStep

router = APIRouter(prefix="/approvals", tags=["approvals"])


ApprovalStatus = Literal[
    "PENDING", "CLAIMED", "APPROVED", "EDITED", "REJECTED", "EXPIRED", "TAKEN_OVER", "WITHDRAWN"
]
Comment = Annotated[str | None, Field(max_length=5000)]
Digest = Annotated[
    str | None,
    Field(
        default=None, pattern="^[0-9a-f]{16}$",
        description="The planDigest of the approval as the caller was shown it; when given, a decision on "
        "a plan that changed since is refused (409)",
    ),
]  # fmt: skip
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=5000),
    Field(description="Why: required, and not blank"),
]


class ApprovalView(BaseModel):
    approvalId: str
    exceptionId: str
    tenantId: str
    status: str = Field(description="PENDING, CLAIMED (a decision is being applied now), APPROVED, EDITED, "
                        "REJECTED, EXPIRED, TAKEN_OVER, or WITHDRAWN (the case went on without a decision)")  # fmt: skip
    severity: str | None
    createdAt: datetime
    deadline: datetime
    payload: dict[str, Any]
    decision: str | None = Field(description="approve, edit, reject, expire or takeover")
    decidedBy: str | None
    decidedAt: datetime | None
    comment: str | None
    reason: str | None = Field(description="A rejection's reason")
    planDigest: str = Field(description="Fingerprint of the proposed plan: send it back with a decision")
    claimedBy: str | None = Field(description="Who answered last (the answer being applied, or applied)")
    claimedAt: datetime | None


class ApprovalPage(BaseModel):
    items: list[ApprovalView]
    total: int


class Decision(BaseModel):
    """Approve the plan as proposed, or (``editedPlan``) with these steps instead."""

    model_config = ConfigDict(extra="forbid")

    comment: Comment = None
    planDigest: Digest = None
    editedPlan: list[PlaybookStep] | None = Field(
        default=None, min_length=1, description="Approve with these steps instead (at least one)"
    )


class Rejection(BaseModel):
    """Reject the plan; with no plan proposed the case escalates, else it ends REJECTED."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason
    comment: Comment = None
    planDigest: Digest = None


class Takeover(BaseModel):
    """Take the case over by hand: it stays open, assigned to the caller, and nothing runs on its own."""

    model_config = ConfigDict(extra="forbid")

    comment: Comment = None
    planDigest: Digest = None


def view(row: Approval) -> ApprovalView:
    return ApprovalView(
        approvalId=row.approval_id, exceptionId=row.exception_id, tenantId=row.tenant_id, status=row.status,
        severity=row.severity, createdAt=row.created_at, deadline=row.deadline, payload=row.payload,
        decision=row.decision, decidedBy=row.decided_by, decidedAt=row.decided_at, comment=row.comment,
        reason=row.reason, planDigest=plan_digest(row.payload.get("plan")), claimedBy=row.claimed_by,
        claimedAt=row.claimed_at,
    )  # fmt: skip


@router.get("/{tenantId}", response_model=ApprovalPage, responses=responses(401, 403, 404, 429))
async def list_approvals(
    tenantId: str,
    principal: Viewer,
    services: ServicesDep,
    status: Annotated[
        Literal[
            "PENDING",
            "CLAIMED",
            "APPROVED",
            "EDITED",
            "REJECTED",
            "EXPIRED",
            "TAKEN_OVER",
            "WITHDRAWN",
            "ALL",
        ],
        Query(),
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
    services: Any, tenant_id: str, approval_id: str, answer: dict[str, Any], actor: str, seen: str | None
) -> ApprovalView | JSONResponse:
    try:
        await services.cases.decide(tenant_id, approval_id, answer, actor=actor, seen_digest=seen)
    except StillRunning as running:
        return accepted(tenant_id, running.job)
    async with services.db.session() as session:
        row = await session.get(Approval, (tenant_id, approval_id))
    assert row is not None
    return view(row)


@router.post(
    "/{tenantId}/{approvalId}/approve",
    response_model=ApprovalView,
    responses=responses(401, 403, 404, 409, 422, 429) | ACCEPTED,
)
async def approve(
    tenantId: str, approvalId: str, body: Decision, principal: Operator, services: ServicesDep
) -> Any:
    """Approve the plan (or an edited one); the case's run continues. 409 when the approval proposes
    no plan (nothing to approve): reject it, approve with an editedPlan, or take the case over."""
    answer: dict[str, Any] = {"decision": "approve", "actor": principal.actor, "comment": body.comment}
    if body.editedPlan is not None:
        answer |= {
            "decision": "edit",
            "editedPlan": [s.model_dump(mode="json", exclude_none=True) for s in body.editedPlan],
        }
    return await _decide(services, tenantId, approvalId, answer, principal.actor, body.planDigest)


@router.post(
    "/{tenantId}/{approvalId}/reject",
    response_model=ApprovalView,
    responses=responses(401, 403, 404, 409, 422, 429) | ACCEPTED,
)
async def reject(
    tenantId: str, approvalId: str, body: Rejection, principal: Operator, services: ServicesDep
) -> Any:
    """Reject the plan, saying why (``reason`` is required). The case ends REJECTED; when no plan was
    proposed it escalates instead, since nobody would act on it."""
    answer = {"decision": "reject", "actor": principal.actor, "comment": body.comment, "reason": body.reason}
    return await _decide(services, tenantId, approvalId, answer, principal.actor, body.planDigest)


@router.post(
    "/{tenantId}/{approvalId}/takeover",
    response_model=ApprovalView,
    responses=responses(401, 403, 404, 409, 422, 429) | ACCEPTED,
)
async def takeover(
    tenantId: str, approvalId: str, body: Takeover, principal: Operator, services: ServicesDep
) -> Any:
    """Take the case over as a manual case: it stays open (IN_PROGRESS), its owner is the caller, and
    its plan becomes one manual step for them, so nothing runs or resolves on its own. Completing that
    step resolves the case; skipping it (with a reason) closes it without action."""
    answer = {"decision": "takeover", "actor": principal.actor, "comment": body.comment}
    return await _decide(services, tenantId, approvalId, answer, principal.actor, body.planDigest)
