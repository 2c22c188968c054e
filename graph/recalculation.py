"""Recalculating a case's playbook choice against the packs in force now: a command the graph handles.

Playbook matching is the policy rules alone (``decide_policy``, no LLM) on the triaged record, so it
gives the same answer for the same packs, and a second recalculation with nothing new records
nothing. The choice may change a case only while it waits for its approval and before anything ran:
the approval node takes the command (``Recalculate`` as the resume value), swaps in the new policy
decision, playbook and plan, records ``playbook_recalculated``, and asks again: the same approval
(same id, same deadline) now shows the new plan. It never removes the approval gate: a person who
was going to decide still decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graph.context import RunContext
from graph.nodes.policy import policy_record
from graph.nodes.triage import condition_facts
from graph.plans import allowed_decisions, build_plan, find_playbook, playbook_record
from graph.records import actor, audit_event
from graph.state import ApprovalRequest, CaseState, ExceptionRecord, PolicyRecord
from packs.policy import decide_policy

CHOICE = ("actionability", "selectedPlaybookId", "recommendedPlaybookId")
"""What a recalculation compares: a different choice is a change; new reasoning alone is not."""


def decide_now(ctx: RunContext, exception: ExceptionRecord, confidence: float) -> PolicyRecord:
    """Playbook matching for the triaged record (type, severity, payload, context) under ``ctx``'s packs."""
    decision = decide_policy(
        ctx.domain, ctx.tenant, exception_type=str(exception["exceptionType"]),
        severity=exception["severity"] or "MEDIUM", confidence=confidence,
        data=condition_facts(exception, ctx),
        sla_minutes_remaining=exception["normalizedContext"].get("slaMinutesRemaining"),
    )  # fmt: skip
    return policy_record(decision)


def choice(policy: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(policy.get(key) for key in CHOICE)


def replanned(
    ctx: RunContext, state: CaseState, request: ApprovalRequest, new: PolicyRecord, who: str
) -> dict[str, Any]:
    """The update that swaps in ``new`` (the policy decision), its playbook and plan, and the same
    approval asking about them; with the ``playbook_recalculated`` event."""
    approved = new["actionability"] == "ACTIONABLE_APPROVED_PROCESS"
    playbook = find_playbook(ctx, new["selectedPlaybookId"] if approved else new["recommendedPlaybookId"])
    exception: ExceptionRecord = {**state["exception"]}
    plan = build_plan(ctx, playbook, exception) if playbook is not None else []
    old = state["policy"]
    data = {"actor": who, "previous": dict(zip(CHOICE, choice(old), strict=True)),
            "current": dict(zip(CHOICE, choice(new), strict=True)),
            "reasoning": new["reasoning"], "steps": len(plan)}  # fmt: skip
    note = (
        f"playbook recalculated by {who}: {old.get('recommendedPlaybookId')} → {new['recommendedPlaybookId']}"
    )
    asked: ApprovalRequest = {
        **request,
        "what": f"Run playbook {playbook.id}" if playbook else "Decide how to resolve this exception",
        "why": [*request["why"], note],
        "actionability": new["actionability"],
        "playbookId": playbook.id if playbook else None,
        "allowedDecisions": allowed_decisions(plan),
    }
    exception["suggestedActions"] = [item["name"] for item in plan]
    event = audit_event(ctx, "policy", "playbook_recalculated", data, actor=actor("human", who))
    return {
        "policy": new, "playbook": playbook_record(playbook) if playbook else None, "plan": plan, "cursor": 0,
        "draft": None, "approvalRequest": asked, "exception": exception, "approval": None, "audit": [event],
    }  # fmt: skip
