"""Approval: the graph waits for a person (``interrupt``) and resumes with their decision.

The request was prepared by the supervisor, so re-running this node on resume (LangGraph re-runs an
interrupted node from its first line) changes nothing. ``interrupt`` validates the answer against
``ApprovalAnswer``: a malformed answer raises and the approval stays pending. Each well-formed answer
is handled exactly once: a comment, or an edit that cannot be applied (a tool the tenant does not
allow), is recorded on the request and the node runs again to wait for the next answer, so nothing
said is lost and a later change of packs cannot re-judge an earlier answer.
This node deliberately has no error handler: a refused answer must not escalate the case.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from graph.context import RunContext
from graph.inputs import APPROVAL_RESUME, ApprovalAnswer
from graph.plans import approve, plan_from_steps, tool_problems
from graph.records import actor, audit_event, decision_update, evidence
from graph.state import CaseState


async def approval(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    request = dict(state["approvalRequest"] or {})
    request.setdefault("comments", [])
    request.setdefault("refusals", [])
    answer: ApprovalAnswer = interrupt(request, response_schema=APPROVAL_RESUME)
    who = actor(answer.actorType, answer.actor)
    if answer.decision == "comment":
        note = {"actor": answer.actor, "comment": answer.comment, "at": ctx.now_iso()}
        event = audit_event(ctx, "approval", "approval_comment", note, actor=who)
        return {
            "approvalRequest": {**request, "comments": [*request["comments"], note]},
            "approval": None,
            "audit": [event],
        }
    if answer.decision == "edit":
        assert answer.editedPlan is not None
        problems = tool_problems(ctx, answer.editedPlan)
        if problems:
            refusal = f"edit by {answer.actor} refused: " + "; ".join(problems)
            event = audit_event(ctx, "approval", "approval_refused", {"reason": refusal}, actor=who)
            return {
                "approvalRequest": {**request, "refusals": [*request["refusals"], refusal]},
                "approval": None,
                "audit": [event],
            }
    record: dict[str, Any] = {
        "approvalId": request["approvalId"],
        "decision": answer.decision,
        "actor": who,
        "comment": answer.comment,
        "comments": request["comments"],
        "decidedAt": ctx.now_iso(),
    }
    facts = [
        evidence(
            "human",
            f"{answer.decision} by {answer.actor}" + (f": {answer.comment}" if answer.comment else ""),
        )
    ]
    update: dict[str, Any] = {"approval": record, "approvalRequest": None}
    if answer.decision in ("approve", "edit"):
        plan = state.get("plan", [])
        if answer.editedPlan is not None:
            plan = plan_from_steps(ctx, answer.editedPlan, state["exception"], name="Plan edited at approval")
            record["editedPlan"] = [
                step.model_dump(mode="json", exclude_none=True) for step in answer.editedPlan
            ]
            facts.append(evidence("human", f"plan replaced by {len(plan)} edited step(s)"))
        update |= {"plan": approve(plan), "cursor": 0, "status": "IN_PROGRESS"}
        next_step = "execute"
    elif answer.decision == "reject":
        update["status"] = "REJECTED"
        next_step = "feedback"
    else:
        update["escalation"] = {
            "reason": f"approval {request['approvalId']} passed its deadline {request['deadline']}"
        }
        next_step = "escalate"
    event = audit_event(ctx, "approval", "approval_decided", record, actor=who)
    decision = decision_update(
        ctx, "approval", answer.decision.upper(), 1.0, facts, next_step, extra_audit=[event]
    )
    return {**decision, **update}
