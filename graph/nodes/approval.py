"""Approval: the graph waits for a person (``interrupt``) and resumes with their decision.

The request was prepared by the supervisor, so re-running this node on resume (LangGraph re-runs
an interrupted node from its first line) changes nothing. ``interrupt`` validates the answer
against ``ApprovalAnswer``: a malformed answer raises and the approval stays pending. A well-formed
answer that cannot be applied (an edited plan naming a tool the tenant does not allow) and a plain
comment re-open the same request with the refusal or the comment on it, so nothing is lost.
This node deliberately has no error handler: a refused answer must not escalate the case.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from graph.context import RunContext
from graph.inputs import ApprovalAnswer
from graph.plans import approve, plan_from_steps, tool_problems
from graph.records import actor, audit_event, decision_update, evidence
from graph.state import CaseState


async def approval(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    request = dict(state["approvalRequest"] or {})
    comments: list[dict[str, Any]] = []
    refusals: list[str] = []
    while True:
        answer: ApprovalAnswer = interrupt({**request, "comments": comments, "refusals": refusals},
                                           response_schema=ApprovalAnswer)  # fmt: skip
        who = actor(answer.actorType, answer.actor)
        if answer.decision == "comment":
            comments.append({"actor": answer.actor, "comment": answer.comment})
            continue
        if answer.decision == "edit":
            assert answer.editedPlan is not None
            problems = tool_problems(ctx, answer.editedPlan)
            if problems:
                refusals.append(f"edit by {answer.actor} refused: " + "; ".join(problems))
                continue
        break
    decided_at = ctx.now_iso()
    record = {
        "approvalId": request["approvalId"],
        "decision": answer.decision,
        "actor": who,
        "comment": answer.comment,
        "comments": comments,
        "refusals": refusals,
        "decidedAt": decided_at,
    }
    events = [
        audit_event(ctx, "approval", "approval_comment", c, actor=actor("human", c["actor"]))
        for c in comments
    ] + [audit_event(ctx, "approval", "approval_refused", {"reason": r}) for r in refusals]
    events.append(audit_event(ctx, "approval", "approval_decided", record, actor=who))
    facts = [
        evidence(
            "human",
            f"{answer.decision} by {answer.actor}" + (f": {answer.comment}" if answer.comment else ""),
        )
    ]
    update: dict[str, Any] = {"approval": record, "approvalRequest": None}
    if answer.decision in ("approve", "edit"):
        plan = state.get("plan", [])
        if answer.decision == "edit":
            assert answer.editedPlan is not None
            plan = plan_from_steps(ctx, answer.editedPlan, name="Plan edited at approval",
                                   applies_to=state["exception"]["exceptionType"])  # fmt: skip
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
    decision = decision_update(
        ctx, "approval", answer.decision.upper(), 1.0, facts, next_step, extra_audit=events
    )
    return {**decision, **update}
