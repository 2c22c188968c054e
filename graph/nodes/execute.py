"""Execute: carry out the plan's unattended steps in order until a person is needed or it is done.

Each step's outcome is recorded as it happens (``playbook_started``, ``playbook_step_completed``,
``playbook_step_skipped``, ``playbook_step_failed``, ``playbook_completed``, with the agent as
actor, and what the step did: tool calls, notifications, status changes). Nothing here waits
(manual steps and steps that need approval are handed to the human_step node, which interrupts),
so a resumed run never repeats a call. A failed step runs the playbook's rollback tool when it has
one (the system acts), then the case escalates with both outcomes in the reason.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from graph.closure import withheld_resolution
from graph.context import RunContext
from graph.records import SYSTEM, audit_event, decision_update, evidence
from graph.state import (
    AuditEvent,
    CaseState,
    EscalationRecord,
    Evidence,
    EvidenceKind,
    ExceptionRecord,
    PlanItem,
    StepStatus,
)
from graph.steps import StepResult, rollback, run_step

STEP_EVENTS = {"SUCCESS": "playbook_step_completed", "SKIPPED": "playbook_step_skipped",
               "FAILED": "playbook_step_failed"}  # fmt: skip


def _step_events(ctx: RunContext, item: PlanItem, result: StepResult) -> list[AuditEvent]:
    order = {"order": item["order"]}
    events = [audit_event(ctx, "execute", kind, {**order, **data}) for kind, data in result.events]
    summary = {**order, "name": item["name"], "type": item["type"], "status": result.outcome,
               "detail": result.detail}  # fmt: skip
    events.append(audit_event(ctx, "execute", STEP_EVENTS[result.outcome], summary))
    return events


async def execute(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    plan: list[PlanItem] = [{**item} for item in state.get("plan", [])]
    cursor = state.get("cursor", 0)
    exception: ExceptionRecord = {**state["exception"]}
    status = state.get("status", "IN_PROGRESS")
    playbook = state.get("playbook") or {}
    escalation: EscalationRecord | None = None
    events: list[AuditEvent] = []
    facts: list[Evidence] = []
    playbook_id = playbook.get("id", "plan")
    if cursor == 0 and plan:
        events.append(
            audit_event(ctx, "execute", "playbook_started", {"playbookId": playbook_id, "steps": len(plan)})
        )
    update: dict[str, Any] = {}
    next_step = "feedback"
    if not plan:
        reason = "there is no plan to carry out: nothing would be done, so the case cannot be resolved"
        escalation = {"reason": reason}
        facts.append(evidence("playbook", reason))
        next_step = "escalate"
    for index in range(cursor, len(plan)):
        item = plan[index]
        if item["disposition"] != "auto":
            waiting: StepStatus = "NEEDS_APPROVAL" if item["disposition"] == "needs_approval" else "PENDING"
            item["status"] = waiting
            facts.append(evidence("playbook", f"step {item['order']} {item['name']} waits for a person"))
            cursor, next_step = index, "human_step"
            break
        result = withheld_resolution(ctx, plan, item) or await run_step(ctx, item, exception, status)
        kind: EvidenceKind = "tool" if item["type"] == "call_tool" else "playbook"
        facts.append(evidence(kind, f"step {item['order']} {item['name']}: {result.detail}"))
        events.extend(_step_events(ctx, item, result))
        item["status"] = result.outcome
        if not result.ok:
            undo, data = await rollback(ctx, playbook, exception, item, result.arguments)
            if data is not None:
                events.append(audit_event(ctx, "execute", "rollback", data, actor=SYSTEM))
                facts.append(evidence("tool", undo))
            escalation = {"reason": f"step {item['order']} ({item['name']}) failed: {result.detail}; {undo}"}
            cursor, next_step = index, "escalate"
            break
        exception = result.exception or exception
        status = result.status or status
    else:
        cursor = len(plan)
        if plan:
            events.append(audit_event(ctx, "execute", "playbook_completed", {"playbookId": playbook_id}))
    decision = {"feedback": "STEPS_DONE", "human_step": "WAITING_FOR_PERSON", "escalate": "STEP_FAILED"}[
        next_step
    ]
    if not plan:
        decision = "NOTHING_TO_DO"
    recorded = decision_update(
        ctx, "execute", decision, state.get("confidence", 0.0), facts, next_step, extra_audit=events
    )
    if escalation is not None:
        update["escalation"] = escalation
    return {**recorded, **update, "plan": plan, "cursor": cursor, "exception": exception, "status": status}
