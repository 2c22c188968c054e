"""Resolution: the plan from the selected playbook, or an LLM draft when no approved playbook applies."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from graph.context import RunContext
from graph.drafting import draft_playbook
from graph.nodes.llm_support import LlmFailure, ask, call_audit
from graph.plans import build_plan, find_playbook, playbook_record
from graph.records import audit_event, decision_update, evidence
from graph.state import CaseState, Evidence, ExceptionRecord, PackDocument
from packs.playbook import Playbook


async def _draft(
    runtime: Runtime[RunContext], state: CaseState, hint_id: str | None
) -> tuple[PackDocument | None, list[Evidence], list[Any]]:
    ctx = runtime.context
    llm = ctx.llm
    if llm is None:
        return (
            None,
            [evidence("llm", "no LLM is configured: no draft playbook; a person decides the plan")],
            [],
        )
    facts = [d["detail"] for decision in state.get("decisions", []) for d in decision["evidence"]]
    hint = find_playbook(ctx, hint_id)
    outcome = await ask(
        runtime,
        lambda: draft_playbook(
            llm, exception=state["exception"], domain=ctx.domain, tenant=ctx.tenant, evidence=facts, hint=hint
        ),
    )
    attempt = runtime.execution_info.node_attempt if runtime.execution_info else None
    if isinstance(outcome, LlmFailure):
        event = audit_event(ctx, "resolution", "llm_call", call_audit(outcome.call, attempt))
        return None, [evidence("llm", f"no draft: the LLM failed ({outcome.describe()})")], [event]
    events = [audit_event(ctx, "resolution", "llm_call", call_audit(call, attempt)) for call in outcome.calls]
    if outcome.playbook is None:
        return None, [evidence("llm", outcome.reason)], events
    draft = outcome.playbook.model_dump(mode="json", exclude_none=True)
    return draft, [evidence("llm", f"{outcome.reason}; drafts are never approved automatically")], events


async def resolution(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    policy = state["policy"]
    exception: ExceptionRecord = {**state["exception"]}
    facts: list[Evidence] = []
    audit: list[Any] = []
    draft = None
    if policy["actionability"] == "ACTIONABLE_APPROVED_PROCESS":
        playbook = find_playbook(ctx, policy["selectedPlaybookId"])
        assert playbook is not None, "policy selected a playbook the packs do not have"
        decision = "PLAN_READY"
    else:
        draft, facts, audit = await _draft(runtime, state, policy.get("recommendedPlaybookId"))
        playbook = find_playbook(ctx, policy.get("recommendedPlaybookId"))
        if draft is not None:
            playbook = Playbook.model_validate(draft)
            decision = "DRAFT_READY"
        else:
            decision = "RECOMMENDATION_ONLY" if playbook is not None else "NO_PLAN"
    plan = build_plan(ctx, playbook, state["exception"]) if playbook is not None else []
    for item in plan:
        facts.append(
            evidence(
                "tool" if item["type"] == "call_tool" else "playbook",
                f"step {item['order']} {item['name']}: {item['disposition']} ({item['reason']})",
            )
        )
    if playbook is not None and decision != "DRAFT_READY":
        facts.insert(
            0, evidence("playbook", f"playbook {playbook.id} v{playbook.version} ({len(plan)} steps)")
        )
    exception["suggestedActions"] = [item["name"] for item in plan]
    update = decision_update(
        ctx, "resolution", decision, state.get("confidence", 0.0), facts, "supervisor", extra_audit=audit
    )
    return {
        **update,
        "exception": exception,
        "plan": plan,
        "playbook": playbook_record(playbook) if playbook is not None else None,
        "draft": draft,
        "cursor": 0,
    }
