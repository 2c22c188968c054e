"""Routers: pure functions of the state that name the next node."""

from __future__ import annotations

from typing import Literal

from graph.state import CaseState


def route_after_intake(state: CaseState) -> Literal["triage", "escalate"]:
    exception = state.get("exception")
    return "triage" if exception and exception.get("exceptionType") else "escalate"


def route_after_supervisor(
    state: CaseState,
) -> Literal["resolution", "approval", "execute", "feedback", "escalate"]:
    review = state.get("review")
    if review is None or review["outcome"] == "escalate":
        return "escalate"
    if review["point"] == "policy":
        policy = state.get("policy")
        non_actionable = policy is not None and policy["actionability"] == "NON_ACTIONABLE_INFO_ONLY"
        return "feedback" if non_actionable else "resolution"
    return "approval" if review["outcome"] == "require_approval" else "execute"


def route_after_approval(state: CaseState) -> Literal["approval", "execute", "feedback", "escalate"]:
    """Undecided (a comment, a refused answer) waits again; approve, edit or takeover runs the plan;
    reject ends, or escalates when no plan was proposed (nobody would act); expiry escalates."""
    approval = state.get("approval")
    decision = approval["decision"] if approval else None
    if decision is None:
        return "approval"
    if decision in ("approve", "edit", "takeover"):
        return "execute"
    if decision == "reject":
        return "feedback" if state.get("plan") else "escalate"
    return "escalate"


def route_after_execute(state: CaseState) -> Literal["human_step", "feedback", "escalate"]:
    if state.get("escalation"):
        return "escalate"
    return "human_step" if state.get("cursor", 0) < len(state.get("plan", [])) else "feedback"
