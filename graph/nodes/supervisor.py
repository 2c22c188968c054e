"""Supervisor: reviews the decisions after policy and after resolution, and can only tighten them.

Deterministic checks catch a low-confidence chain, guardrail breaches and inconsistent decisions;
with an LLM configured it also asks for a second opinion, whose advice is applied only when it is
stricter (continue < require_approval < escalate). It never loosens a guardrail.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from langgraph.runtime import Runtime

from graph.approvals import approval_view
from graph.context import RunContext
from graph.nodes.llm_support import LlmFailure, ask, call_audit
from graph.notices import notice_for, notify
from graph.plans import allowed_decisions
from graph.records import audit_event, decision_update, evidence
from graph.state import ApprovalRequest, CaseState, Evidence, ReviewOutcome, ReviewRecord
from packs.guardrails import effective_guardrails
from prompts.outputs import SupervisorOpinion
from prompts.registry import render_prompt

Outcome = ReviewOutcome
STRICTNESS: dict[Outcome, int] = {"continue": 0, "require_approval": 1, "escalate": 2}


def _stricter(a: Outcome, b: Outcome) -> Outcome:
    return a if STRICTNESS[a] >= STRICTNESS[b] else b


def review_after_policy(state: CaseState, ctx: RunContext) -> tuple[Outcome, list[str]]:
    policy, exception = state["policy"], state["exception"]
    rails = effective_guardrails(ctx.domain.guardrails, ctx.tenant.guardrailOverrides)
    concerns: list[tuple[Outcome, str]] = []
    if policy["escalate"]:
        concerns.append(("escalate", policy["escalationReason"] or "the policy escalates"))
    lowest = min((d["confidence"] for d in state.get("decisions", []) if d["stage"] != "policy"), default=1.0)
    if lowest < rails.escalate_if_confidence_below:
        concerns.append(
            (
                "escalate",
                f"a stage decided with confidence {lowest:.2f}, below {rails.escalate_if_confidence_below:.2f}",
            )
        )
    if policy["autoActionAllowed"]:
        if exception["severity"] in rails.no_auto_action_if_severity_in:
            concerns.append(
                (
                    "require_approval",
                    f"automatic action allowed at {exception['severity']}, which the guardrails forbid",
                )
            )
        if policy["selectedPlaybookId"] not in ctx.tenant.approvedBusinessProcesses:
            concerns.append(
                (
                    "escalate",
                    f"playbook {policy['selectedPlaybookId']} would run without the tenant's approval",
                )
            )
    if policy["actionability"] == "NON_ACTIONABLE_INFO_ONLY" and exception["severity"] == "CRITICAL":
        concerns.append(("escalate", "an information-only type at CRITICAL severity: a person should look"))
    return _fold(concerns)


def review_after_resolution(state: CaseState, ctx: RunContext) -> tuple[Outcome, list[str]]:
    policy, plan = state["policy"], state.get("plan", [])
    concerns: list[tuple[Outcome, str]] = []
    if policy["actionability"] == "ACTIONABLE_APPROVED_PROCESS" and not plan:
        concerns.append(("escalate", "the selected playbook has no steps"))
    if policy["actionability"] != "ACTIONABLE_APPROVED_PROCESS":
        concerns.append(("require_approval", "no approved playbook: a person decides the plan"))
    if policy["humanApprovalRequired"]:
        concerns.append(
            ("require_approval", "; ".join(policy["approvalReasons"]) or "policy requires approval")
        )
    waiting = [item for item in plan if item["disposition"] == "needs_approval"]
    if waiting:
        concerns.append(
            (
                "require_approval",
                f"{len(waiting)} step(s) need approval: " + "; ".join(i["reason"] for i in waiting),
            )
        )
    for item in plan:
        tool = item["step"].get("tool")
        if (
            item["type"] == "call_tool"
            and item["disposition"] == "auto"
            and tool not in ctx.tenant.toolsAllowList
        ):
            concerns.append(
                ("escalate", f"step {item['order']} would call {tool}, which the tenant does not allow")
            )
    if state.get("review", {}).get("outcome") == "require_approval":
        concerns.append(("require_approval", "the review after policy asked for a person"))
    return _fold(concerns)


def _fold(concerns: list[tuple[Outcome, str]]) -> tuple[Outcome, list[str]]:
    outcome: Outcome = "continue"
    for level, _ in concerns:
        outcome = _stricter(outcome, level)
    return outcome, [text for _, text in concerns]


async def _second_opinion(
    runtime: Runtime[RunContext], state: CaseState, point: str
) -> tuple[Outcome | None, list[Evidence], list[Any]]:
    ctx = runtime.context
    llm = ctx.llm
    if llm is None:
        return None, [], []
    prompt = render_prompt(
        "supervisor_review",
        point=point,
        exception=state["exception"],
        decisions=state.get("decisions", []),
        policy=state.get("policy", {}),
        plan=state.get("plan", []),
    )
    answer = await ask(runtime, lambda: llm.structured(prompt, SupervisorOpinion))
    attempt = runtime.execution_info.node_attempt if runtime.execution_info else None
    event = audit_event(ctx, "supervisor", "llm_call", call_audit(getattr(answer, "call", None), attempt))
    if isinstance(answer, LlmFailure):
        return None, [evidence("llm", f"no second opinion ({answer.describe()})")], [event]
    opinion = answer.value
    text = f"LLM second opinion: {opinion.recommendation} ({opinion.rationale})"
    return opinion.recommendation, [evidence("llm", text)], [event]


def approval_request(state: CaseState, ctx: RunContext, reasons: list[str]) -> ApprovalRequest:
    """What a person is asked to approve; computed here, before the approval node, so a resumed
    approval node sees the same request (its deadline does not move). Its evidence is a reference:
    the stage decisions made so far (``graph.approvals``)."""
    exception, policy = state["exception"], state["policy"]
    playbook = state.get("playbook") or {}
    decisions = state.get("decisions", [])
    earlier = sum(1 for d in decisions if d["stage"] == "supervisor" and d["nextStep"] == "approval")
    now = ctx.clock()
    return {
        "approvalId": f"APR-{exception['exceptionId']}-{earlier + 1}",
        "kind": "approval",
        "exceptionId": exception["exceptionId"],
        "tenantId": exception["tenantId"],
        "exceptionType": exception["exceptionType"],
        "severity": exception["severity"],
        "what": f"Run playbook {playbook['id']}" if playbook else "Decide how to resolve this exception",
        "why": reasons,
        "actionability": policy["actionability"],
        "playbookId": playbook.get("id"),
        "evidenceDecisions": len(decisions),
        "allowedDecisions": allowed_decisions(state.get("plan", [])),
        "requestedAt": now.isoformat(),
        "deadline": (now + timedelta(minutes=ctx.approval_timeout_minutes)).isoformat(),
        "comments": [],
        "refusals": [],
    }


async def supervisor(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    point: Literal["policy", "resolution"] = "resolution" if "plan" in state else "policy"
    check = review_after_resolution if point == "resolution" else review_after_policy
    outcome, concerns = check(state, ctx)
    opinion, facts, audit = await _second_opinion(runtime, state, point)
    if opinion is not None and STRICTNESS[opinion] > STRICTNESS[outcome]:
        concerns.append(f"LLM second opinion tightened the decision to {opinion}")
        outcome = opinion
    facts = [evidence("guardrail", text) for text in concerns] + facts
    if not concerns:
        facts.append(
            evidence("guardrail", f"review after {point}: decisions consistent, guardrails respected")
        )
    review: ReviewRecord = {"point": point, "outcome": outcome, "concerns": concerns}
    update: dict[str, Any] = {"review": review}
    if outcome == "escalate":
        update["escalation"] = {"reason": "; ".join(c for c in concerns) or "supervisor escalated"}
        next_step = "escalate"
    elif point == "policy":
        non_actionable = state["policy"]["actionability"] == "NON_ACTIONABLE_INFO_ONLY"
        next_step = "feedback" if non_actionable else "resolution"
    elif outcome == "require_approval":
        request = approval_request(state, ctx, concerns)
        update["approvalRequest"] = request
        update["status"] = "PENDING_APPROVAL"
        asked = approval_view(request, state, with_answers=False)
        audit.append(audit_event(ctx, "supervisor", "approval_requested", asked))
        text = f"{request['what']}. Why: " + "; ".join(concerns) + f". Decide before {request['deadline']}."
        group = state["exception"].get("assignedGroup") or ctx.tenant.defaultGroup
        notice = notice_for(ctx, "approval_required", state["exception"], group=group, text=text,
                            status="PENDING_APPROVAL", facts={"approvalId": request["approvalId"],
                                                              "deadline": request["deadline"]})  # fmt: skip
        audit.extend(await notify(ctx, "supervisor", notice))
        next_step = "approval"
    else:
        next_step = "execute"
    decision = decision_update(
        ctx, "supervisor", f"REVIEW_{point.upper()}_{outcome.upper()}", state.get("confidence", 0.0), facts, next_step,
        extra_audit=audit,
    )  # fmt: skip
    return {**decision, **update}
