"""Escalate: hand the case to the tenant's escalation queue with the reason it could not proceed,
and tell that queue (when the tenant's ``notifyOn`` includes escalation)."""

from __future__ import annotations

from typing import Any, cast

from langgraph.runtime import Runtime

from graph.context import RunContext
from graph.notices import notice_for, notify
from graph.records import audit_event, decision_update, evidence
from graph.state import CaseState, EscalationRecord, ExceptionRecord


def escalation_reason(state: CaseState) -> str:
    error, escalation = state.get("error"), state.get("escalation")
    if error:
        return f"stage {error['stage']} failed: {error['message']}"
    if escalation:
        return escalation["reason"]
    return "escalated"


async def escalate(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    reason = escalation_reason(state)
    queue = ctx.tenant.escalationQueue
    record: EscalationRecord = {"reason": reason, "queue": queue, "at": ctx.now_iso()}
    if "exception" in state:
        exception: ExceptionRecord = {**state["exception"], "assignedGroup": queue}
    else:  # intake itself failed: no record was built; results fall back to the raw input for the id
        exception = cast(ExceptionRecord, {"assignedGroup": queue})
    notice = notice_for(ctx, "escalation", exception, group=queue, text=reason, status="ESCALATED")
    sent = await notify(ctx, "escalate", notice)
    handed = audit_event(ctx, "escalate", "escalated", {"queue": queue, "reason": reason})
    recorded = decision_update(
        ctx, "escalate", "ESCALATED", state.get("confidence", 0.0), [evidence("policy", f"to {queue}: {reason}")],
        "feedback", extra_audit=[handed, *sent],
    )  # fmt: skip
    return {**recorded, "escalation": record, "status": "ESCALATED", "exception": exception}
