"""Routers: pure functions of the state that name the next node."""

from __future__ import annotations

from typing import Literal

from graph.state import CaseState


def route_after_intake(state: CaseState) -> Literal["triage", "escalate"]:
    return "triage" if state.get("exception", {}).get("exceptionType") else "escalate"


def route_after_supervisor(
    state: CaseState,
) -> Literal["resolution", "approval", "execute", "feedback", "escalate"]:
    review = state.get("review") or {}
    if review.get("outcome") == "escalate":
        return "escalate"
    if review.get("point") == "policy":
        non_actionable = state.get("policy", {}).get("actionability") == "NON_ACTIONABLE_INFO_ONLY"
        return "feedback" if non_actionable else "resolution"
    return "approval" if review.get("outcome") == "require_approval" else "execute"


def route_after_approval(state: CaseState) -> Literal["approval", "execute", "feedback", "escalate"]:
    """Undecided (a comment, a refused answer) waits again; approve, edit or takeover runs the plan;
    reject ends, or escalates when no plan was proposed (nobody would act); expiry escalates."""
    decision = (state.get("approval") or {}).get("decision")
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
