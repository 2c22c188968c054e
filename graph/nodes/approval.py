"""Approval: the graph waits for a person (``interrupt``) and resumes with their decision.

The request was prepared by the supervisor, so re-running this node on resume (LangGraph re-runs an
interrupted node from its first line) changes nothing. ``interrupt`` validates the answer against
``ApprovalAnswer``: a malformed answer raises and the approval stays pending. Each well-formed answer
is handled exactly once: a comment, or an edit that cannot be applied (a tool the tenant does not
allow), is recorded on the request and the node runs again to wait for the next answer, so nothing
said is lost and a later change of packs cannot re-judge an earlier answer.
This node deliberately has no error handler: a refused answer must not escalate the case.

The wait also takes one command: ``Recalculate`` (``graph.recalculation``) matches playbooks again
under the packs in force now and, when the choice changed, swaps in the new plan and asks again.
The interrupt's value is the request as the state keeps it, with references (``graph.approvals``
puts the plan, draft and evidence back together for people). A request checkpointed before that
(with copies, and its comments and refusals only once there were some) is still answered as it is.

Approving an empty plan ("no plan is proposed") is refused the same way: approving nothing would
let the case end RESOLVED with nothing done. The ways on are to reject it with a reason (with no
plan proposed, nobody would act, so the case escalates), to edit in a plan of at least one step, or
to take the case over (``takeover``): the plan becomes one manual step for that person, the case
stays open and assigned to them, and nothing runs or resolves until they complete or skip it.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from graph.context import RunContext
from graph.inputs import APPROVAL_RESUME, ApprovalAnswer, Recalculate
from graph.plans import approve, plan_from_steps, takeover_plan, tool_problems
from graph.recalculation import choice, decide_now, replanned
from graph.records import actor, audit_event, decision_update, evidence
from graph.state import (
    ApprovalComment,
    ApprovalRecord,
    AuditEvent,
    CaseState,
    EscalationRecord,
    ExceptionRecord,
)


async def approval(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    request = state["approvalRequest"]
    assert request is not None, "the supervisor asks before the approval node waits"
    answer: ApprovalAnswer | Recalculate = interrupt(request, response_schema=APPROVAL_RESUME)
    if isinstance(answer, Recalculate):
        new = decide_now(ctx, state["exception"], state.get("confidence", 0.0))
        if choice(new) == choice(state["policy"]):  # nothing to change: wait again, record nothing
            return {"approval": None}
        return replanned(ctx, state, request, new, answer.actor)
    who = actor(answer.actorType, answer.actor)
    if answer.decision == "comment":
        note: ApprovalComment = {"actor": answer.actor, "comment": answer.comment, "at": ctx.now_iso()}
        event = audit_event(ctx, "approval", "approval_comment", note, actor=who)
        return {
            "approvalRequest": {**request, "comments": [*request.get("comments", []), note]},
            "approval": None,
            "audit": [event],
        }
    refusal = _refusal(ctx, state, answer)
    if refusal is not None:
        data = {"reason": refusal, "decision": answer.decision}
        event = audit_event(ctx, "approval", "approval_refused", data, actor=who)
        return {
            "approvalRequest": {**request, "refusals": [*request.get("refusals", []), refusal]},
            "approval": None,
            "audit": [event],
        }
    record: ApprovalRecord = {
        "approvalId": request["approvalId"],
        "decision": answer.decision,
        "actor": who,
        "comment": answer.comment,
        "reason": answer.reason,
        "comments": request.get("comments", []),
        "decidedAt": ctx.now_iso(),
    }
    said = "; ".join(text for text in (answer.reason, answer.comment) if text)
    facts = [evidence("human", f"{answer.decision} by {answer.actor}" + (f": {said}" if said else ""))]
    update: dict[str, Any] = {"approval": record, "approvalRequest": None}
    extra: list[AuditEvent] = []
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
    elif answer.decision == "takeover":
        exception: ExceptionRecord = {**state["exception"], "owner": answer.actor}
        plan = takeover_plan(ctx, answer.actor, exception)
        exception["suggestedActions"] = [item["name"] for item in plan]
        record["owner"] = answer.actor
        previous = state.get("plan", [])
        taken = {"approvalId": request["approvalId"], "owner": answer.actor, "comment": answer.comment,
                 "previousPlaybookId": (state.get("playbook") or {}).get("id"), "previousSteps": len(previous)}  # fmt: skip
        extra.append(audit_event(ctx, "approval", "case_taken_over", taken, actor=who))
        facts.append(
            evidence("human", f"case taken over by {answer.actor}: handled by hand, nothing runs on its own")
        )
        update |= {"plan": plan, "cursor": 0, "status": "IN_PROGRESS", "exception": exception}
        next_step = "execute"
    elif answer.decision == "reject":
        if state.get("plan"):
            update["status"] = "REJECTED"
            next_step = "feedback"
        else:  # nothing was proposed: rejecting it leaves nobody acting on the case
            rejected: EscalationRecord = {
                "reason": f"approval {request['approvalId']} rejected by {answer.actor} with no plan "
                f"proposed: {answer.reason}"
            }
            update["escalation"] = rejected
            next_step = "escalate"
    else:
        expired: EscalationRecord = {
            "reason": f"approval {request['approvalId']} passed its deadline {request['deadline']}"
        }
        update["escalation"] = expired
        next_step = "escalate"
    event = audit_event(ctx, "approval", "approval_decided", dict(record), actor=who)
    decision = decision_update(
        ctx, "approval", answer.decision.upper(), 1.0, facts, next_step, extra_audit=[event, *extra]
    )
    return {**decision, **update}


def _refusal(ctx: RunContext, state: CaseState, answer: ApprovalAnswer) -> str | None:
    """Why this answer cannot be applied (the approval keeps waiting), or None."""
    if answer.decision == "approve" and not state.get("plan"):
        return f"approve by {answer.actor} refused: no plan is proposed, so there is nothing to approve"
    if answer.decision == "edit":
        assert answer.editedPlan is not None
        problems = tool_problems(ctx, answer.editedPlan)
        if problems:
            return f"edit by {answer.actor} refused: " + "; ".join(problems)
    return None
