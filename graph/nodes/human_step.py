"""Human step: the case waits (``interrupt``) for a person to complete or skip a manual step.

Like the approval node it has no error handler and does nothing before ``interrupt`` that a resume
would repeat; the answer is validated against ``ManualStepAnswer`` and a malformed one leaves the
step waiting. A skip carries the person's reason, kept on the step (``skipReason``) for the feedback
stage, which says what was skipped and decides whether anything was done at all (``graph.closure``).
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from graph.context import RunContext
from graph.inputs import MANUAL_STEP_RESUME, ManualStepAnswer
from graph.records import actor, audit_event, decision_update, evidence
from graph.state import CaseState, ManualStepRequest, PlanItem


async def human_step(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    plan = list(state["plan"])
    cursor = state["cursor"]
    item: PlanItem = {**plan[cursor]}
    exception = state["exception"]
    request: ManualStepRequest = {
        "kind": "manual_step",
        "exceptionId": exception["exceptionId"],
        "tenantId": exception["tenantId"],
        "order": item["order"],
        "name": item["name"],
        "step": item["step"],
        "instructions": item.get("instructions"),
        "reason": item["reason"],
        "allowedActions": ["complete", "skip"],
    }
    answer: ManualStepAnswer = interrupt(request, response_schema=MANUAL_STEP_RESUME)
    who = actor("human", answer.actor)
    skipped = answer.action == "skip"
    item["status"] = "SKIPPED" if skipped else "SUCCESS"
    item["completedBy"] = answer.actor
    item["notes"] = answer.notes
    if skipped:
        item["skipReason"] = answer.reason
    plan[cursor] = item
    event_type = "playbook_step_skipped" if skipped else "playbook_step_completed"
    data = {"order": item["order"], "name": item["name"], "notes": answer.notes}
    said = answer.reason if skipped else answer.notes
    if skipped:
        data["reason"] = answer.reason
    done = "skipped" if skipped else "completed"
    facts = [
        evidence("human", f"step {item['order']} {done} by {answer.actor}" + (f": {said}" if said else ""))
    ]
    recorded = decision_update(
        ctx, "human_step", f"STEP_{done.upper()}", 1.0, facts, "execute",
        extra_audit=[audit_event(ctx, "human_step", event_type, data, actor=who)],
    )  # fmt: skip
    return {**recorded, "plan": plan, "cursor": cursor + 1}
