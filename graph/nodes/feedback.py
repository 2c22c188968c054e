"""Feedback: the final status, what happened, how long each stage took, and the pack versions used.

A case still open here is RESOLVED only if something was done: when people skipped the steps left
and no work was done it is ``CLOSED_WITHOUT_ACTION`` (``graph.closure``). Either way the decision
lists every step people skipped, with who and why, so a skip is never silent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from langgraph.runtime import Runtime

from graph.closure import describe_skip, nothing_done, skipped_by_people
from graph.context import RunContext
from graph.notices import notice_for, notify
from graph.records import decision_update, evidence
from graph.state import AuditEvent, CaseState, Evidence, OutcomeRecord
from packs.common import ResolutionStatus

STILL_OPEN = ("IN_PROGRESS", "OPEN", "PENDING_APPROVAL")


def outcome_label(state: CaseState, status: str) -> str:
    if status == "ESCALATED":
        return "escalated"
    if status == "REJECTED":
        return "rejected"
    if status == "CLOSED_WITHOUT_ACTION":
        return "closed_without_action"
    policy = state.get("policy")
    if policy is not None and policy["actionability"] == "NON_ACTIONABLE_INFO_ONLY":
        return "non_actionable"
    approval = state.get("approval")
    decision = approval["decision"] if approval else None
    if decision == "takeover":
        return "resolved_by_hand"
    if decision:
        return "resolved_after_approval"
    if any(item.get("completedBy") for item in state.get("plan", [])):
        return "resolved_with_people"
    return "auto_resolved"


def final_status(ctx: RunContext, state: CaseState) -> tuple[ResolutionStatus, str | None]:
    """The case's closing status, and why nothing counts as done when it is closed without action."""
    status = state.get("status", "IN_PROGRESS")
    if status not in STILL_OPEN:
        return status, None
    why = nothing_done(ctx, state.get("plan", []))
    return ("CLOSED_WITHOUT_ACTION", why) if why else ("RESOLVED", None)


async def feedback(state: CaseState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    status, why = final_status(ctx, state)
    exception: Mapping[str, Any] = state.get("exception") or {}
    label = outcome_label(state, status)
    received = exception.get("receivedAt")
    elapsed = (ctx.clock() - datetime.fromisoformat(received)).total_seconds() if received else None
    plan = state.get("plan", [])
    skipped = skipped_by_people(plan)
    outcome: OutcomeRecord = {
        "status": status,
        "outcome": label,
        "playbookId": (state.get("playbook") or {}).get("id"),
        "stepsSucceeded": sum(item["status"] == "SUCCESS" for item in plan),
        "stepsSkipped": sum(item["status"] == "SKIPPED" for item in plan),
        "stepsFailed": sum(item["status"] == "FAILED" for item in plan),
        "skipped": skipped,
        "elapsedSeconds": round(elapsed, 3) if elapsed is not None else None,
        "packVersions": ctx.pack_versions,
        "finishedAt": ctx.now_iso(),
    }
    facts: list[Evidence] = [
        evidence("policy", f"{label}: {status} ({outcome['stepsSucceeded']} step(s) done)")
    ]
    facts += [evidence("human", describe_skip(skip)) for skip in skipped]
    if why:
        facts.append(evidence("policy", f"not resolved: {why}"))
    sent: list[AuditEvent] = []
    if status in ("RESOLVED", "CLOSED_WITHOUT_ACTION") and label != "non_actionable":
        group = exception.get("assignedGroup") or ctx.tenant.defaultGroup
        headline = "Resolved" if status == "RESOLVED" else "Closed without action"
        text = (
            f"{headline} ({label.replace('_', ' ')}) by playbook {outcome['playbookId'] or 'none'}: "
            f"{outcome['stepsSucceeded']} step(s) done, {outcome['stepsSkipped']} skipped."
        )
        text += "".join(f" {describe_skip(skip)}." for skip in skipped)
        notice = notice_for(
            ctx, "resolved", exception, group=group, text=text, status=status, headline=headline
        )
        sent = await notify(ctx, "feedback", notice)
    recorded = decision_update(
        ctx, "feedback", f"OUTCOME_{label.upper()}", state.get("confidence", 0.0), facts, "end",
        extra_audit=sent,
    )  # fmt: skip
    return {**recorded, "status": status, "outcome": outcome}
