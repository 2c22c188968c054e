"""API shapes for cases: what is posted and what is returned (camelCase, unknown fields refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from graph.inputs import RawException
from packs.common import Actionability, ResolutionStatus, Severity, TenantId


class Accepted(BaseModel):
    exceptionIds: list[str]


class CaseSummary(BaseModel):
    exceptionId: str
    tenantId: str
    sourceSystem: str
    exceptionType: str | None
    severity: Severity | None
    resolutionStatus: ResolutionStatus
    actionability: Actionability | None
    playbookId: str | None
    assignedGroup: str | None
    owner: str | None = Field(
        default=None, description="The person the case is assigned to (after a takeover)"
    )
    confidence: float | None
    summary: str | None
    processing: Literal["accepted", "running", "waiting", "done"]
    receivedAt: datetime
    updatedAt: datetime


class CasePage(BaseModel):
    items: list[CaseSummary]
    total: int
    limit: int
    offset: int
    countsByStatus: dict[str, int]


class Event(BaseModel):
    seq: int
    type: str
    stage: str
    actor: dict[str, str]
    at: datetime
    packVersions: dict[str, str]
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[Event]
    total: int
    limit: int
    offset: int


class CaseDetail(BaseModel):
    exceptionId: str
    tenantId: str
    resolutionStatus: ResolutionStatus
    processing: str
    record: dict[str, Any] = Field(description="The canonical exception record with its audit trail")
    decisions: list[dict[str, Any]] = Field(description="Each stage's decision, confidence and evidence")
    result: dict[str, Any] | None = Field(
        description="The latest run result (plan, pending request, outcome)"
    )


class RunRequest(BaseModel):
    """A synchronous evaluation: packs inline (documents) or by path under the server's packs folder."""

    model_config = ConfigDict(extra="forbid")

    tenantId: TenantId
    exceptions: list[RawException] = Field(min_length=1)
    domainPack: dict[str, Any] | None = None
    tenantPolicy: dict[str, Any] | None = None
    domainPackPath: str | None = None
    tenantPolicyPath: str | None = None


class RunResponse(BaseModel):
    tenantId: str
    runId: str
    results: list[dict[str, Any]]
