"""The job status route, and the 202 a request answers when its job is still running.

A request that resumes a case (approve, complete a step, recalculate) waits for its job at most
``EXOPS_ANSWER_WAIT_SECONDS``; past that it answers ``202 Accepted`` with the job, a ``Location``
header and a link to ``GET /jobs/{tenantId}/{jobId}``, which says how the job stands and, once it
is done, what came of the answer (the same status and detail the request would have answered).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.api.deps import Services, ServicesDep, Viewer
from app.api.problems import ProblemError, responses
from app.db.models import ExceptionCase
from app.jobs.base import Job

router = APIRouter(prefix="/jobs", tags=["jobs"])


class JobOutcome(BaseModel):
    status: int = Field(description="What the request would have answered: 200, or the refusal's 409/422")
    detail: str | None = None
    errors: list[dict[str, str]] = Field(default_factory=list)


class JobLinks(BaseModel):
    self: str
    case: str | None = None
    approval: str | None = None
    playbook: str | None = None


class JobView(BaseModel):
    jobId: str
    tenantId: str
    exceptionId: str | None
    kind: Literal["process", "answer", "sweep"]
    status: Literal["queued", "running", "done", "failed"] = Field(
        description="queued (waiting for a worker, or for its case's earlier jobs), running, done, or "
        "failed (tried job_max_attempts times; a lapsed answer is then returned by the sweep)"
    )
    attempts: int
    createdAt: datetime | None
    finishedAt: datetime | None
    error: str | None = Field(description="The last error, while it is retried or once it failed")
    outcome: JobOutcome | None = Field(
        description="For an answer: what came of it, once done. For a new case: its status, once done"
    )
    links: JobLinks


def job_links(tenant_id: str, job: Job) -> JobLinks:
    links = JobLinks(self=f"/jobs/{tenant_id}/{job.job_id}")
    if job.exception_id:
        links.case = f"/exceptions/{tenant_id}/{job.exception_id}"
    target = job.payload.get("target")
    if target == "approval":
        links.approval = f"/approvals/{tenant_id}/{job.payload.get('key')}"
    elif target == "step" and job.exception_id:
        links.playbook = f"/exceptions/{tenant_id}/{job.exception_id}/playbook"
    return links


def job_view(tenant_id: str, job: Job, outcome: dict[str, Any] | None = None) -> JobView:
    return JobView(
        jobId=job.job_id, tenantId=tenant_id, exceptionId=job.exception_id, kind=job.kind, status=job.status,
        attempts=job.attempts, createdAt=job.created_at, finishedAt=job.finished_at, error=job.error,
        outcome=JobOutcome.model_validate(outcome) if outcome is not None else None,
        links=job_links(tenant_id, job),
    )  # fmt: skip


def accepted(tenant_id: str, job: Job) -> JSONResponse:
    """202: the answer was taken and is being applied; follow the ``Location`` to see what came of it."""
    view = job_view(tenant_id, job)
    return JSONResponse(view.model_dump(mode="json"), status_code=202, headers={"Location": view.links.self})


ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {
        "model": JobView,
        "description": "Taken, and still being applied after EXOPS_ANSWER_WAIT_SECONDS: follow the Location "
        "header (GET /jobs/{tenantId}/{jobId}) for the outcome",
        "headers": {"Location": {"description": "The job's status URL", "schema": {"type": "string"}}},
    }
}


async def _outcome(services: Services, tenant_id: str, job: Job) -> dict[str, Any] | None:
    if job.status != "done" or job.exception_id is None:
        return None
    if job.kind == "answer":
        return await services.cases.claim_outcome(tenant_id, job.exception_id, job.payload)
    async with services.db.session() as session:
        case = await session.get(ExceptionCase, (tenant_id, job.exception_id))
    if case is None:
        return None
    return {"status": 200, "detail": f"processed: {case.status} ({case.processing})"}


@router.get("/{tenantId}/{jobId}", response_model=JobView, responses=responses(401, 403, 404, 429))
async def get_job(tenantId: str, jobId: str, principal: Viewer, services: ServicesDep) -> JobView:
    """How a job stands: queued, running, done (with what came of it) or failed. Jobs are kept for
    ``EXOPS_JOB_RETENTION_HOURS`` after they finish."""
    job = await services.cases.jobs.status(jobId)
    if job is None or job.tenant_id != tenantId:
        raise ProblemError(404, f"no job {jobId}")
    return job_view(tenantId, job, await _outcome(services, tenantId, job))
