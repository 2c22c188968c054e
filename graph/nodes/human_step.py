"""Human step: the case waits (``interrupt``) for a person to complete or skip a manual step.

Like the approval node it has no error handler and does nothing before ``interrupt`` that a resume
would repeat; the answer is validated against ``ManualStepAnswer`` and a malformed one leaves the
step waiting.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from graph.context import RunContext
from graph.inputs import MANUAL_STEP_RESUME, ManualStepAnswer
from graph.records import actor, audit_event, decision_update, evidence
from graph.state import CaseState


async def human_step(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    plan = [dict(item) for item in state["plan"]]
    cursor = state["cursor"]
    item = plan[cursor]
    exception = state["exception"]
    request = {
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
    item["status"] = "SUCCESS" if answer.action == "complete" else "SKIPPED"
    item["completedBy"] = answer.actor
    item["notes"] = answer.notes
    plan[cursor] = item
    event_type = "playbook_step_completed" if answer.action == "complete" else "playbook_step_skipped"
    data = {"order": item["order"], "name": item["name"], "notes": answer.notes}
    facts = [
        evidence(
            "human",
            f"step {item['order']} {answer.action}d by {answer.actor}"
            + (f": {answer.notes}" if answer.notes else ""),
        )
    ]
    recorded = decision_update(
        ctx, "human_step", f"STEP_{answer.action.upper()}D", 1.0, facts, "execute",
        extra_audit=[audit_event(ctx, "human_step", event_type, data, actor=who)],
    )  # fmt: skip
    return {**recorded, "plan": plan, "cursor": cursor + 1}
