"""The graph's shared state: small typed records, checkpointed at every step, and nothing more.

The checkpoint holds what the graph needs to continue a case; the tables (or, for the CLI and
evaluations, an in-memory sink) hold what people read. So the state carries no audit trail: nodes
hand their audit events to the run context's event sink (``graph.events``), which stores each one
once under a deterministic key. ``decisions`` is the one list that grows (``operator.add``): every
node appends its decision once, and later nodes read the chain (the supervisor's confidence check,
the evidence an approval request refers to, the LLM's context). ``visits`` counts how often each
stage ran, which is what makes an event's key the same when a node runs again on resume.

Every record is a TypedDict: a plain dict in the checkpoint (no custom types for the serializer to
trust), a checked shape in the code. Pack documents (a playbook, a playbook step) stay the JSON the
pack models (``packs.playbook``) validated and dumped. ``ExceptionInput`` is the narrow state a run
starts from; ``CaseOutput`` is what a run returns.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, NotRequired

from typing_extensions import TypedDict

from packs.common import Actionability, ResolutionStatus, Severity
from packs.plan import Disposition

Stage = Literal[
    "intake", "triage", "policy", "supervisor", "resolution", "approval", "execute", "human_step",
    "feedback", "escalate",
]  # fmt: skip
EvidenceKind = Literal[
    "input", "taxonomy", "rule", "policy", "guardrail", "playbook", "tool", "similar_case", "llm", "human",
    "error", "recurrence",
]  # fmt: skip
ActorType = Literal["agent", "human", "system"]
StepStatus = Literal["PENDING", "NEEDS_APPROVAL", "SUCCESS", "FAILED", "SKIPPED"]
ReviewOutcome = Literal["continue", "require_approval", "escalate"]
ApprovalDecision = Literal["approve", "reject", "edit", "comment", "expire", "takeover"]

PackDocument = dict[str, Any]
"""A pack document as its pydantic model (``packs.playbook.Playbook``, ``PlaybookStep``) validated and
dumped it: typed where it is read, by that model."""


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


class Actor(TypedDict):
    type: ActorType
    id: str


class AuditEvent(TypedDict):
    """One entry of a case's audit trail, as the sink receives it and the events API shows it."""

    type: str
    stage: Stage
    actor: Actor
    at: str
    packVersions: dict[str, str]
    data: dict[str, Any]


class ExceptionRecord(TypedDict):
    """The canonical exception record intake builds; later stages fill in severity, rules, group."""

    exceptionId: str
    tenantId: str
    domainName: str
    sourceSystem: str
    exceptionType: str | None
    reportedType: str | None
    reportedTypeFrom: str | None
    severity: Severity | None
    reportedSeverity: Severity | None
    timestamp: str
    receivedAt: str
    rawPayload: dict[str, Any]
    normalizedContext: dict[str, Any]
    detectedRules: list[str]
    suggestedActions: list[str]
    assignedGroup: str | None
    owner: NotRequired[str]
    sourceClaims: NotRequired[dict[str, Any]]


class TypeCheckRecord(TypedDict):
    method: str
    reason: str
    candidates: list[str]


class SimilarCaseRecord(TypedDict):
    exceptionId: str
    exceptionType: str
    score: float
    """Fused rank score (reciprocal rank fusion of vector and keyword search)."""
    summary: str
    outcome: str | None
    vectorScore: NotRequired[float | None]
    keywordScore: NotRequired[float | None]
    playbookId: NotRequired[str | None]
    overridden: NotRequired[bool]
    decidedBy: NotRequired[str | None]


class TriageRecord(TypedDict):
    severity: Severity
    source: str
    matchedRules: list[str]
    override: Severity | None
    reason: str
    summary: str
    summarySource: Literal["template", "llm"]
    similarCases: list[SimilarCaseRecord]
    recurrences: NotRequired[list[str]]
    """Earlier cases of the same entity (the domain's entity keys) within the tenant's window."""


class PlaybookCandidate(TypedDict):
    playbookId: str
    approved: bool
    origin: str
    priority: int


class PolicyRecord(TypedDict):
    actionability: Actionability
    selectedPlaybookId: str | None
    recommendedPlaybookId: str | None
    humanApprovalRequired: bool
    approvalReasons: list[str]
    autoActionAllowed: bool
    escalate: bool
    escalationReason: str | None
    assignGroup: str | None
    reasoning: str | None
    candidates: list[PlaybookCandidate]


class ReviewRecord(TypedDict):
    point: Literal["policy", "resolution"]
    outcome: ReviewOutcome
    concerns: list[str]


class PlanItem(TypedDict):
    """One step of the case's plan: the pack's step, whether it may run unattended, how it went."""

    order: int
    type: str
    name: str
    disposition: Disposition
    reason: str
    status: StepStatus
    step: PackDocument
    instructions: NotRequired[str]
    completedBy: NotRequired[str]
    notes: NotRequired[str | None]
    skipReason: NotRequired[str | None]


class ApprovalComment(TypedDict):
    actor: str
    comment: str | None
    at: str


class ApprovalRequest(TypedDict):
    """What a person is asked to approve. It refers to the rest instead of copying it: the plan and the
    draft are the state's own, and its evidence is that of the case's first ``evidenceDecisions`` stage
    decisions (``graph.results.approval_view`` puts them together for people)."""

    approvalId: str
    kind: Literal["approval"]
    exceptionId: str
    tenantId: str
    exceptionType: str | None
    severity: Severity | None
    what: str
    why: list[str]
    actionability: Actionability
    playbookId: str | None
    evidenceDecisions: int
    allowedDecisions: list[str]
    requestedAt: str
    deadline: str
    comments: list[ApprovalComment]
    refusals: list[str]


class ApprovalRecord(TypedDict):
    """A decided approval: who decided what, when, and what was said on the way."""

    approvalId: str
    decision: ApprovalDecision
    actor: Actor
    comment: str | None
    reason: str | None
    comments: list[ApprovalComment]
    decidedAt: str
    editedPlan: NotRequired[list[PackDocument]]
    owner: NotRequired[str]


class ManualStepRequest(TypedDict):
    """What a person is asked to do when the case waits on a manual step (the interrupt's value)."""

    kind: Literal["manual_step"]
    exceptionId: str
    tenantId: str
    order: int
    name: str
    step: PackDocument
    instructions: str | None
    reason: str
    allowedActions: list[str]


class EscalationRecord(TypedDict):
    reason: str
    queue: NotRequired[str]
    at: NotRequired[str]


class ErrorRecord(TypedDict):
    stage: str
    message: str


class SkippedStep(TypedDict):
    order: int
    name: str
    by: str | None
    reason: str | None


class OutcomeRecord(TypedDict):
    status: ResolutionStatus
    outcome: str
    playbookId: str | None
    stepsSucceeded: int
    stepsSkipped: int
    stepsFailed: int
    skipped: list[SkippedStep]
    elapsedSeconds: float | None
    packVersions: dict[str, str]
    finishedAt: str


def add_timings(left: dict[str, float], right: dict[str, float]) -> dict[str, float]:
    """Milliseconds per stage, summed over visits (the supervisor runs twice)."""
    merged = dict(left)
    for stage, ms in right.items():
        merged[stage] = round(merged.get(stage, 0.0) + ms, 3)
    return merged


def add_visits(left: dict[str, int], right: dict[str, int]) -> dict[str, int]:
    """Visits per stage: each node run that completes adds one to its stage."""
    merged = dict(left)
    for stage, count in right.items():
        merged[stage] = merged.get(stage, 0) + count
    return merged


class ExceptionInput(TypedDict):
    """What a run starts from: the tenant and the exception as received (exceptionId already set)."""

    tenantId: str
    raw: dict[str, Any]


class CaseState(TypedDict, total=False):
    tenantId: str
    raw: dict[str, Any]
    """The exception as received: ``graph.inputs.RawException`` dumped to JSON."""
    exception: ExceptionRecord
    decisions: Annotated[list[AgentDecision], operator.add]
    visits: Annotated[dict[str, int], add_visits]
    timings: Annotated[dict[str, float], add_timings]
    confidence: float
    typeCheck: TypeCheckRecord
    triage: TriageRecord
    policy: PolicyRecord
    review: ReviewRecord
    plan: list[PlanItem]
    playbook: PackDocument | None
    """The chosen (or recommended) playbook without its steps: the plan holds those."""
    draft: PackDocument | None
    approvalRequest: ApprovalRequest | None
    approval: ApprovalRecord | None
    cursor: int
    status: ResolutionStatus
    escalation: EscalationRecord | None
    error: ErrorRecord | None
    outcome: OutcomeRecord | None


class CaseOutput(TypedDict, total=False):
    exception: ExceptionRecord
    status: ResolutionStatus
    confidence: float
    decisions: list[AgentDecision]
    timings: dict[str, float]
    triage: TriageRecord
    policy: PolicyRecord
    plan: list[PlanItem]
    playbook: PackDocument | None
    draft: PackDocument | None
    approvalRequest: ApprovalRequest | None
    approval: ApprovalRecord | None
    escalation: EscalationRecord | None
    error: ErrorRecord | None
    outcome: OutcomeRecord | None
