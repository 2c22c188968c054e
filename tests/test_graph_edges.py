"""Routers are pure functions of the state."""

from __future__ import annotations

from typing import Any

import pytest

from graph.edges import route_after_approval, route_after_execute, route_after_intake, route_after_supervisor


def test_after_intake() -> None:
    assert route_after_intake({"exception": {"exceptionType": "SETTLEMENT_FAIL"}}) == "triage"
    assert route_after_intake({"exception": {"exceptionType": None}}) == "escalate"
    assert route_after_intake({}) == "escalate"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"review": {"point": "policy", "outcome": "escalate"}}, "escalate"),
        (
            {
                "review": {"point": "policy", "outcome": "continue"},
                "policy": {"actionability": "NON_ACTIONABLE_INFO_ONLY"},
            },
            "feedback",
        ),
        (
            {
                "review": {"point": "policy", "outcome": "continue"},
                "policy": {"actionability": "ACTIONABLE_APPROVED_PROCESS"},
            },
            "resolution",
        ),
        (
            {
                "review": {"point": "policy", "outcome": "require_approval"},
                "policy": {"actionability": "ACTIONABLE_APPROVED_PROCESS"},
            },
            "resolution",
        ),
        ({"review": {"point": "resolution", "outcome": "require_approval"}}, "approval"),
        ({"review": {"point": "resolution", "outcome": "continue"}}, "execute"),
        ({"review": {"point": "resolution", "outcome": "escalate"}}, "escalate"),
    ],
)
def test_after_supervisor(state: dict[str, Any], expected: str) -> None:
    assert route_after_supervisor(state) == expected  # type: ignore[arg-type]


STEP = {"order": 1, "type": "manual", "name": "Fix it"}


@pytest.mark.parametrize(
    ("decision", "plan", "expected"),
    [
        ("approve", [STEP], "execute"),
        ("edit", [STEP], "execute"),
        ("takeover", [STEP], "execute"),
        ("reject", [STEP], "feedback"),
        ("reject", [], "escalate"),  # nothing was proposed: rejecting leaves nobody acting on the case
        ("expire", [STEP], "escalate"),
        (None, [STEP], "approval"),
    ],
)
def test_after_approval(decision: str | None, plan: list[dict[str, Any]], expected: str) -> None:
    state = {"approval": {"decision": decision}, "plan": plan}
    assert route_after_approval(state) == expected  # type: ignore[arg-type]


def test_after_execute() -> None:
    plan = [{"order": 1}, {"order": 2}]
    assert route_after_execute({"plan": plan, "cursor": 2}) == "feedback"  # type: ignore[typeddict-item]
    assert route_after_execute({"plan": plan, "cursor": 1}) == "human_step"  # type: ignore[typeddict-item]
    assert route_after_execute({"plan": plan, "cursor": 1, "escalation": {"reason": "x"}}) == "escalate"  # type: ignore[typeddict-item]
    assert route_after_execute({}) == "feedback"
