"""Reading a case out of the graph's state: the result shape the CLI and the API return.

The state keeps references where people need copies (an approval's evidence, its plan): the readers
here put them back together, so a result has the same fields whether its state is lean or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from langgraph.types import GraphOutput, Interrupt

from graph.approvals import approval_view
from graph.state import ApprovalRequest
from packs.common import FINISHED_STATUSES


class Reading(Protocol):
    """What the readers here need of a case's graph: its state and the interrupts it waits on. A
    ``StateSnapshot`` (read from the checkpointer) is one; so is ``RunReading``, what a run itself
    handed back, which saves reading the checkpoint again after every run."""

    @property
    def values(self) -> Any: ...

    @property
    def interrupts(self) -> Sequence[Interrupt]: ...


@dataclass(frozen=True)
class RunReading:
    """The state and interrupts a run ended with, from its own output (``ainvoke(..., version="v2")``
    streaming every state channel): the same values and interrupts its last checkpoint holds."""

    values: dict[str, Any]
    interrupts: tuple[Interrupt, ...]


def run_reading(output: GraphOutput[Any]) -> RunReading | None:
    """``output`` as a reading; None when the run emitted no state (nothing ran: read the checkpoint)."""
    if not isinstance(output.value, dict) or not output.value:
        return None
    return RunReading(dict(output.value), tuple(output.interrupts))


def pending_request(snapshot: Reading) -> dict[str, Any] | None:
    """The approval or manual step the case is waiting on, if any, as people are shown it."""
    for interrupt in snapshot.interrupts:
        value = interrupt.value
        if not isinstance(value, dict):
            continue
        if value.get("kind") == "approval":
            request: ApprovalRequest = value  # type: ignore[assignment]  # the approval node's own value
            return {**approval_view(request, snapshot.values), "interruptId": interrupt.id}
        return {**value, "interruptId": interrupt.id}
    return None


def is_finished(values: Mapping[str, Any]) -> bool:
    """Whether the graph will do nothing more with the case (its last stage has run)."""
    return values.get("status") in FINISHED_STATUSES and values.get("outcome") is not None


def case_result(snapshot: Reading) -> dict[str, Any]:
    """One result of a run: the decisions that matter, by the names of the data contract."""
    values: dict[str, Any] = dict(snapshot.values)
    exception = values.get("exception") or {}
    policy = values.get("policy") or {}
    triage = values.get("triage") or {}
    pending = pending_request(snapshot)
    asked = bool(values.get("approvalRequest") or values.get("approval"))
    return {
        "exceptionId": exception.get("exceptionId") or (values.get("raw") or {}).get("exceptionId"),
        "tenantId": values.get("tenantId"),
        "exceptionType": exception.get("exceptionType"),
        "severity": exception.get("severity"),
        "actionability": policy.get("actionability"),
        "selectedPlaybookId": policy.get("selectedPlaybookId"),
        "recommendedPlaybookId": policy.get("recommendedPlaybookId"),
        "humanApprovalRequired": bool(policy.get("humanApprovalRequired") or asked) if policy else None,
        "resolutionStatus": values.get("status", "OPEN"),
        "confidence": values.get("confidence"),
        "assignedGroup": exception.get("assignedGroup"),
        "summary": triage.get("summary"),
        "recurrenceOf": triage.get("recurrences") or [],
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

    The system of record needs both (the result for the case row, the state for the plan and the
    policy decision); reading the state once for both saves a checkpoint read per run.
    """

    result: dict[str, Any]
    values: dict[str, Any]

    @property
    def finished(self) -> bool:
        return is_finished(self.values) and self.result.get("pending") is None


def case_outcome(snapshot: Reading) -> CaseOutcome:
    return CaseOutcome(case_result(snapshot), dict(snapshot.values))
