"""Reading a case out of the graph's state: the result shape the CLI and the API return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langgraph.types import StateSnapshot


def pending_request(snapshot: StateSnapshot) -> dict[str, Any] | None:
    """The approval or manual step the case is waiting on, if any."""
    for interrupt in snapshot.interrupts:
        if isinstance(interrupt.value, dict):
            return {**interrupt.value, "interruptId": interrupt.id}
    return None


def case_record(values: dict[str, Any]) -> dict[str, Any]:
    """The canonical exception record: the record intake built, with status and audit trail."""
    exception = dict(values.get("exception") or {})
    exception["resolutionStatus"] = values.get("status", "OPEN")
    exception["auditTrail"] = values.get("audit", [])
    return exception


def case_result(snapshot: StateSnapshot) -> dict[str, Any]:
    """One result of a run: the decisions that matter, by the names of the data contract."""
    values: dict[str, Any] = dict(snapshot.values)
    exception = values.get("exception") or {}
    policy = values.get("policy") or {}
    triage = values.get("triage") or {}
    pending = pending_request(snapshot)
    asked = any(event["type"] == "approval_requested" for event in values.get("audit", []))
    return {
        "exceptionId": exception.get("exceptionId") or (values.get("raw") or {}).get("exceptionId"),
        "tenantId": values.get("tenantId"),
        "exceptionType": exception.get("exceptionType"),
        "severity": exception.get("severity"),
        "actionability": policy.get("actionability"),
        "selectedPlaybookId": policy.get("selectedPlaybookId"),
        "recommendedPlaybookId": policy.get("recommendedPlaybookId"),
        "humanApprovalRequired": bool(policy.get("humanApprovalRequired") or values.get("approval") or asked)
        if policy
        else None,
        "resolutionStatus": values.get("status", "OPEN"),
        "confidence": values.get("confidence"),
        "assignedGroup": exception.get("assignedGroup"),
        "summary": triage.get("summary"),
        "stages": [
            {k: d[k] for k in ("stage", "decision", "confidence", "nextStep", "evidence")}
            for d in values.get("decisions", [])
        ],
        "plan": [
            {k: item.get(k) for k in ("order", "type", "name", "disposition", "status", "reason")}
            for item in values.get("plan", [])
        ],
        "draft": values.get("draft"),
        "pending": pending,
        "approvalId": pending.get("approvalId") if pending and pending.get("kind") == "approval" else None,
        "escalation": values.get("escalation"),
        "outcome": values.get("outcome"),
        "timingsMs": values.get("timings", {}),
    }


@dataclass(frozen=True)
class CaseOutcome:
    """What a run or resume left behind, read from one snapshot: the result and the whole state.

    The system of record needs both (the result for the case row, the state for the audit trail and
    the plan); reading the state once for both saves a checkpoint read per run.
    """

    result: dict[str, Any]
    values: dict[str, Any]


def case_outcome(snapshot: StateSnapshot) -> CaseOutcome:
    return CaseOutcome(case_result(snapshot), dict(snapshot.values))
