"""Feedback: the final status, what happened, how long each stage took, and the pack versions used."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from langgraph.runtime import Runtime

from graph.context import RunContext
from graph.notices import notice_for, notify
from graph.records import decision_update, evidence
from graph.state import CaseState


def outcome_label(state: CaseState, status: str) -> str:
    if status == "ESCALATED":
        return "escalated"
    if status == "REJECTED":
        return "rejected"
    if state.get("policy", {}).get("actionability") == "NON_ACTIONABLE_INFO_ONLY":
        return "non_actionable"
    if state.get("approval"):
        return "resolved_after_approval"
    if any(item.get("completedBy") for item in state.get("plan", [])):
        return "resolved_with_people"
    return "auto_resolved"


async def feedback(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    status = state.get("status", "IN_PROGRESS")
    if status in ("IN_PROGRESS", "OPEN", "PENDING_APPROVAL"):
        status = "RESOLVED"
    exception = state.get("exception", {})
    label = outcome_label(state, status)
    received = exception.get("receivedAt")
    elapsed = (ctx.clock() - datetime.fromisoformat(received)).total_seconds() if received else None
    plan = state.get("plan", [])
    outcome = {
        "status": status,
        "outcome": label,
        "playbookId": (state.get("playbook") or {}).get("id"),
        "stepsSucceeded": sum(item["status"] == "SUCCESS" for item in plan),
        "stepsSkipped": sum(item["status"] == "SKIPPED" for item in plan),
        "stepsFailed": sum(item["status"] == "FAILED" for item in plan),
        "elapsedSeconds": round(elapsed, 3) if elapsed is not None else None,
        "packVersions": ctx.pack_versions,
        "finishedAt": ctx.now_iso(),
    }
    if ctx.memory is not None and exception.get("exceptionType"):
        await ctx.memory.remember(ctx.tenant.tenantId, exception, outcome)
    facts = [evidence("policy", f"{label}: {status} ({outcome['stepsSucceeded']} step(s) done)")]
    sent = []
    if status == "RESOLVED" and label != "non_actionable":
        group = exception.get("assignedGroup") or ctx.tenant.defaultGroup
        text = (
            f"Resolved ({label.replace('_', ' ')}) by playbook {outcome['playbookId'] or 'none'}: "
            f"{outcome['stepsSucceeded']} step(s) done, {outcome['stepsSkipped']} skipped."
        )
        notice = notice_for(ctx, "resolved", exception, group=group, text=text, status=status)
        sent = await notify(ctx, "feedback", notice)
    recorded = decision_update(
        ctx, "feedback", f"OUTCOME_{label.upper()}", state.get("confidence", 0.0), facts, "end",
        extra_audit=sent,
    )  # fmt: skip
    return {**recorded, "status": status, "outcome": outcome}
