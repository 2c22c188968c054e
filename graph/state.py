"""The graph's shared state: a TypedDict whose list fields declare how updates combine.

``decisions`` and ``audit`` only ever grow (``operator.add``): every node appends its decision and
its audit events, and nothing rewrites history. Other fields are replaced by the node that owns
them. ``ExceptionInput`` is the narrow state a run starts from; ``CaseOutput`` is what a run returns.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal

from typing_extensions import TypedDict

from packs.common import ResolutionStatus

Stage = Literal[
    "intake", "triage", "policy", "supervisor", "resolution", "approval", "execute", "human_step",
    "feedback", "escalate",
]  # fmt: skip
EvidenceKind = Literal[
    "input", "taxonomy", "rule", "policy", "guardrail", "playbook", "tool", "similar_case", "llm", "human",
    "error",
]  # fmt: skip
ActorType = Literal["agent", "human", "system"]


class Evidence(TypedDict):
    kind: EvidenceKind
    detail: str


class AgentDecision(TypedDict):
    """The contract every node returns: what it decided, how sure it is, on what, and what is next."""

    stage: Stage
    decision: str
    confidence: float
    evidence: list[Evidence]
    nextStep: str
    at: str


class AuditEvent(TypedDict):
    type: str
    stage: Stage
    actor: dict[str, str]
    at: str
    packVersions: dict[str, str]
    data: dict[str, Any]


def add_timings(left: dict[str, float], right: dict[str, float]) -> dict[str, float]:
    """Milliseconds per stage, summed over visits (the supervisor runs twice)."""
    merged = dict(left)
    for stage, ms in right.items():
        merged[stage] = round(merged.get(stage, 0.0) + ms, 3)
    return merged


class ExceptionInput(TypedDict):
    """What a run starts from: the tenant and the exception as received (exceptionId already set)."""

    tenantId: str
    raw: dict[str, Any]


class CaseState(TypedDict, total=False):
    tenantId: str
    raw: dict[str, Any]
    exception: dict[str, Any]
    decisions: Annotated[list[AgentDecision], operator.add]
    audit: Annotated[list[AuditEvent], operator.add]
    timings: Annotated[dict[str, float], add_timings]
    confidence: float
    typeCheck: dict[str, Any]
    triage: dict[str, Any]
    policy: dict[str, Any]
    review: dict[str, Any]
    plan: list[dict[str, Any]]
    playbook: dict[str, Any] | None
    draft: dict[str, Any] | None
    approvalRequest: dict[str, Any] | None
    approval: dict[str, Any] | None
    cursor: int
    status: ResolutionStatus
    escalation: dict[str, Any] | None
    error: dict[str, Any] | None
    outcome: dict[str, Any] | None


class CaseOutput(TypedDict, total=False):
    exception: dict[str, Any]
    status: ResolutionStatus
    confidence: float
    decisions: list[AgentDecision]
    audit: list[AuditEvent]
    timings: dict[str, float]
    triage: dict[str, Any]
    policy: dict[str, Any]
    plan: list[dict[str, Any]]
    playbook: dict[str, Any] | None
    draft: dict[str, Any] | None
    approvalRequest: dict[str, Any] | None
    approval: dict[str, Any] | None
    escalation: dict[str, Any] | None
    error: dict[str, Any] | None
    outcome: dict[str, Any] | None
