"""Policy: actionability, the playbook, approval and escalation, decided from the packs alone."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from graph.context import RunContext
from graph.nodes.triage import condition_facts
from graph.records import decision_update, evidence
from graph.state import CaseState, Evidence, ExceptionRecord, PolicyRecord
from packs.policy import PolicyDecision, decide_policy


def policy_record(decision: PolicyDecision) -> PolicyRecord:
    """The policy decision as the state (and the API's playbook recalculation) keeps it."""
    selection = decision.selection
    return {
        "actionability": decision.actionability,
        "selectedPlaybookId": decision.selected_playbook_id,
        "recommendedPlaybookId": decision.recommended_playbook_id,
        "humanApprovalRequired": decision.human_approval_required,
        "approvalReasons": list(decision.approval_reasons),
        "autoActionAllowed": decision.auto_action_allowed,
        "escalate": decision.escalate,
        "escalationReason": decision.escalation_reason,
        "assignGroup": decision.assign_group,
        "reasoning": selection.reasoning if selection else None,
        "candidates": [
            {
                "playbookId": c.playbook.id,
                "approved": c.approved,
                "origin": c.origin,
                "priority": c.playbook.priority,
            }
            for c in (selection.candidates if selection else ())
        ],
    }


async def policy(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    exception: ExceptionRecord = {**state["exception"]}
    confidence = state.get("confidence", 0.0)
    decision = decide_policy(
        ctx.domain,
        ctx.tenant,
        exception_type=str(exception["exceptionType"]),
        severity=exception["severity"] or "MEDIUM",
        confidence=confidence,
        data=condition_facts(exception, ctx),
        sla_minutes_remaining=exception["normalizedContext"].get("slaMinutesRemaining"),
    )
    facts: list[Evidence] = [evidence("policy", line) for line in decision.evidence]
    exception["assignedGroup"] = decision.assign_group
    record = policy_record(decision)
    update = decision_update(ctx, "policy", decision.actionability, confidence, facts, "supervisor")
    return {**update, "exception": exception, "policy": record}
