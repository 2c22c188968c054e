"""Execute: carry out the plan's unattended steps in order until a person is needed or it is done.

Each step's outcome is recorded as it happens; nothing here waits (manual steps are handed to the
human_step node, which interrupts), so a resumed run never repeats a call. A failed step triggers
the playbook's rollback tool when it has one, then escalation.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from graph.context import RunContext
from graph.records import audit_event, decision_update, evidence
from graph.state import CaseState, Evidence, EvidenceKind
from graph.steps import call_tool, run_step


async def _rollback(
    ctx: RunContext, state: CaseState, exception: dict[str, Any], failed: dict[str, Any]
) -> list[Any]:
    playbook = state.get("playbook") or {}
    tool = playbook.get("rollbackTool")
    if not tool or tool not in ctx.domain.tools:
        return []
    arguments = failed["step"].get("arguments") or {"exceptionId": exception["exceptionId"]}
    outcome = await call_tool(ctx, exception, tool, arguments, 1000 + failed["order"])
    data = {"tool": tool, "rollbackOf": failed["order"], **outcome.as_audit()}
    return [audit_event(ctx, "execute", "rollback", data)]


async def execute(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    plan = [dict(item) for item in state.get("plan", [])]
    cursor = state.get("cursor", 0)
    exception = dict(state["exception"])
    status = state.get("status", "IN_PROGRESS")
    events: list[Any] = []
    facts: list[Evidence] = []
    playbook_id = (state.get("playbook") or {}).get("id", "plan")
    if cursor == 0 and plan:
        events.append(
            audit_event(ctx, "execute", "playbook_started", {"playbookId": playbook_id, "steps": len(plan)})
        )
    update: dict[str, Any] = {}
    next_step = "feedback"
    for index in range(cursor, len(plan)):
        item = plan[index]
        if item["disposition"] != "auto":
            item["status"] = "NEEDS_APPROVAL" if item["disposition"] == "needs_approval" else "PENDING"
            facts.append(evidence("playbook", f"step {item['order']} {item['name']} waits for a person"))
            cursor, next_step = index, "human_step"
            break
        result = await run_step(ctx, item, exception, status)
        kind: EvidenceKind = "tool" if item["type"] == "call_tool" else "playbook"
        facts.append(evidence(kind, f"step {item['order']} {item['name']}: {result.detail}"))
        events.append(audit_event(ctx, "execute", result.event_type, {"order": item["order"], **result.data}))
        if not result.ok:
            item["status"] = "FAILED"
            events.append(
                audit_event(
                    ctx, "execute", "playbook_step_failed", {"order": item["order"], "reason": result.detail}
                )
            )
            events.extend(await _rollback(ctx, state, exception, item))
            update["escalation"] = {
                "reason": f"step {item['order']} ({item['name']}) failed: {result.detail}"
            }
            cursor, next_step = index, "escalate"
            break
        item["status"] = "SUCCESS"
        exception = result.exception or exception
        status = result.status or status
        events.append(
            audit_event(
                ctx, "execute", "playbook_step_completed", {"order": item["order"], "name": item["name"]}
            )
        )
    else:
        cursor = len(plan)
        if plan:
            events.append(audit_event(ctx, "execute", "playbook_completed", {"playbookId": playbook_id}))
    decision = {"feedback": "STEPS_DONE", "human_step": "WAITING_FOR_PERSON", "escalate": "STEP_FAILED"}[
        next_step
    ]
    recorded = decision_update(
        ctx, "execute", decision, state.get("confidence", 0.0), facts, next_step, extra_audit=events
    )
    return {**recorded, **update, "plan": plan, "cursor": cursor, "exception": exception, "status": status}
