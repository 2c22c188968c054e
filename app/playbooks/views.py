"""Routes for a case's playbook: read it, complete or skip the step it waits on, recalculate it.

A step answer names the step (its order, in the path) and the ``planDigest`` of the plan the caller
was shown (from ``GET .../playbook``), like an approval does. It claims that step in one conditional
UPDATE, which only matches the step the case waits on, not answered by anyone else: of two answers
one wins, and the other is a 409 naming who answered and when; the step after it is never answered
by a request that did not name it. The claim's job resumes the case; the request waits for it at
most ``EXOPS_ANSWER_WAIT_SECONDS``, then answers 202 with the job's link. The actor is always the
credential, never the body.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.api.deps import Operator, Services, ServicesDep, Viewer
from app.api.params import StepOrder
from app.api.problems import ProblemError, responses
from app.cases.record import STEP_EVENTS, load_record, playbook_view
from app.db.models import ExceptionCase
from app.jobs.base import StillRunning
from app.jobs.views import ACCEPTED, accepted
from app.playbooks.service import recalculate

router = APIRouter(prefix="/exceptions", tags=["playbooks"])
StepStatus = Literal["PENDING", "SUCCESS", "FAILED", "SKIPPED", "NEEDS_APPROVAL"]


class PlaybookInfo(BaseModel):
    id: str
    name: str
    version: str | None
    description: str
    approvedForTenant: bool = Field(
        description="The policy decision selected it as one of the tenant's approved business processes"
    )
    origin: str | None = Field(
        description="domain, tenant (a custom playbook), llm_draft, edited (written at approval) or takeover "
        "(a person took the case over by hand)"
    )
    appliesTo: list[str]
    match: dict[str, Any] = Field(description="Match conditions: severity_in, sla_minutes_remaining_lt, ...")
    priority: int | None
    successCriteria: list[str]


class StepView(BaseModel):
    order: int
    type: str
    name: str
    disposition: Literal["auto", "needs_approval", "manual"]
    reason: str | None
    status: StepStatus = Field(description="NEEDS_APPROVAL: pending and held for a person's approval")
    completedBy: str | None = Field(description="The person (from their credential) or 'exops' for the agent")
    actorType: Literal["agent", "human", "system"] | None
    completedAt: str | None
    notes: str | None
    skipReason: str | None = Field(default=None, description="Why a person skipped the step")
    definition: dict[str, Any] = Field(description="The step as the playbook defines it")
    instructions: str | None = Field(
        default=None,
        description="A manual step's instructions with placeholders filled from the case (as written "
        "where the case lacks a value); None for other steps",
    )


class Candidate(BaseModel):
    playbookId: str
    approved: bool
    origin: str
    priority: int


class Selection(BaseModel):
    actionability: str | None
    selectedPlaybookId: str | None = Field(description="Set only for a playbook the tenant approved")
    recommendedPlaybookId: str | None = Field(description="The best match, approved or not")
    reasoning: str | None
    candidates: list[Candidate] = Field(description="Every playbook that applies, best first")


class PlaybookView(BaseModel):
    exceptionId: str
    tenantId: str
    resolutionStatus: str
    playbook: PlaybookInfo
    steps: list[StepView]
    currentStep: int | None = Field(description="Order of the next step to run; none once the case finished")
    waitingFor: Literal["approval", "manual_step"] | None
    approvalId: str | None
    selection: Selection
    planDigest: str = Field(description="Fingerprint of the plan's steps: a step answer sends it back")


PlanDigest = Annotated[
    str,
    Field(pattern="^[0-9a-f]{16}$", description="The playbook's planDigest as the caller was shown it: an "
          "answer to a plan that changed since is refused (409)"),
]  # fmt: skip


class StepAnswer(BaseModel):
    """Completing a step: the plan digest the caller saw, and optionally what was done."""

    model_config = ConfigDict(extra="forbid")

    planDigest: PlanDigest
    notes: str | None = Field(default=None, max_length=5000, description="What was done")


class SkipAnswer(BaseModel):
    """Skipping a step needs a reason; if nothing gets done, the case closes as CLOSED_WITHOUT_ACTION."""

    model_config = ConfigDict(extra="forbid")

    planDigest: PlanDigest
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)] = Field(
        description="Why the step is skipped: required, and not blank"
    )
    notes: str | None = Field(default=None, max_length=5000, description="Anything else worth keeping")


class Recalculation(BaseModel):
    changed: bool = Field(description="False: the same playbook would be chosen; nothing was recorded")
    previous: Selection
    current: Selection
    packVersions: dict[str, str] = Field(description="The active packs the choice was recalculated with")
    playbook: PlaybookView | None = Field(description="The case's playbook after recalculation, if any")


async def _ensure_case(services: Services, tenant_id: str, exception_id: str) -> None:
    async with services.db.session() as session:
        if await session.get(ExceptionCase, (tenant_id, exception_id)) is None:
            raise ProblemError(404, f"no exception {exception_id}")


async def _view(services: Services, tenant_id: str, exception_id: str) -> PlaybookView | None:
    """Read from the tables (``app.cases.record``), for a waiting case as for a finished one."""
    async with services.db.session() as session:
        record = await load_record(session, tenant_id, exception_id, event_types=STEP_EVENTS)
    view = playbook_view(record) if record is not None else None
    return PlaybookView.model_validate(view) if view is not None else None


@router.get("/{tenantId}/{exceptionId}/playbook", response_model=PlaybookView,
            responses=responses(401, 403, 404, 422, 429))  # fmt: skip
async def get_playbook(
    tenantId: str, exceptionId: str, principal: Viewer, services: ServicesDep
) -> PlaybookView:
    """The case's playbook, each step's status and who did it, the current step, and why it was chosen."""
    await _ensure_case(services, tenantId, exceptionId)
    view = await _view(services, tenantId, exceptionId)
    if view is None:
        raise ProblemError(404, f"exception {exceptionId} has no playbook")
    return view


async def _answer(
    services: Services, tenant_id: str, exception_id: str, order: int,
    action: Literal["complete", "skip"], body: StepAnswer | SkipAnswer, actor: str,
) -> PlaybookView | JSONResponse:  # fmt: skip
    await _ensure_case(services, tenant_id, exception_id)
    reason = body.reason if isinstance(body, SkipAnswer) else None
    try:
        await services.cases.complete_step(tenant_id, exception_id, order, action, body.notes, actor=actor,
                                           seen_digest=body.planDigest, reason=reason)  # fmt: skip
    except StillRunning as running:
        return accepted(tenant_id, running.job)
    view = await _view(services, tenant_id, exception_id)
    assert view is not None, "a case that waited on a step has a plan"
    return view


@router.post("/{tenantId}/{exceptionId}/playbook/steps/{stepOrder}/complete", response_model=PlaybookView,
             responses=responses(401, 403, 404, 409, 422, 429) | ACCEPTED)  # fmt: skip
async def complete_step(
    tenantId: str, exceptionId: str, stepOrder: StepOrder, body: StepAnswer, principal: Operator,
    services: ServicesDep,
) -> Any:  # fmt: skip
    """Mark the manual step the case waits on as done; the run continues. 409 for any other step."""
    return await _answer(services, tenantId, exceptionId, stepOrder, "complete", body, principal.actor)


@router.post("/{tenantId}/{exceptionId}/playbook/steps/{stepOrder}/skip", response_model=PlaybookView,
             responses=responses(401, 403, 404, 409, 422, 429) | ACCEPTED)  # fmt: skip
async def skip_step(
    tenantId: str, exceptionId: str, stepOrder: StepOrder, body: SkipAnswer, principal: Operator,
    services: ServicesDep,
) -> Any:  # fmt: skip
    """Skip the manual step the case waits on, saying why (``reason`` is required); the run continues.
    409 for any other step. When people skipped every step left and nothing was done, the case ends
    CLOSED_WITHOUT_ACTION, not RESOLVED; the feedback stage lists what was skipped, by whom and why."""
    return await _answer(services, tenantId, exceptionId, stepOrder, "skip", body, principal.actor)


@router.post("/{tenantId}/{exceptionId}/playbook/recalculate", response_model=Recalculation,
             responses=responses(401, 403, 404, 409, 422, 429) | ACCEPTED)  # fmt: skip
async def recalculate_playbook(
    tenantId: str, exceptionId: str, principal: Operator, services: ServicesDep
) -> Any:
    """Match playbooks again against the packs active now. Idempotent: the same choice records nothing.
    A different choice replaces the plan awaiting approval (same approval, same deadline); once steps
    have run the playbook cannot change (409)."""
    await _ensure_case(services, tenantId, exceptionId)
    try:
        outcome = await recalculate(services.cases, services.runner, services.runtime, tenantId, exceptionId,
                                    who=principal.actor)  # fmt: skip
    except StillRunning as running:
        return accepted(tenantId, running.job)
    view = await _view(services, tenantId, exceptionId)
    return Recalculation.model_validate({**outcome, "playbook": view})
