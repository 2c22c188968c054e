"""What counts as "something was done" before a case may be called RESOLVED (graph.closure), and the
status rules around CLOSED_WITHOUT_ACTION."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from graph.closure import did_work, nothing_done, skipped_by_people, withheld_resolution
from graph.status import ALLOWED_TRANSITIONS, can_transition
from packs.common import RESOLUTION_STATUSES
from packs.playbook import SetStatusStep
from tests.graph_helpers import context


def step(order: int, kind: str, status: str, **more: Any) -> dict[str, Any]:
    definition = {"type": kind, "name": f"s{order}", **more.pop("step", {})}
    return {"order": order, "type": kind, "name": f"s{order}", "status": status, "step": definition, **more}


READ = step(1, "call_tool", "SUCCESS", step={"tool": "getTrade"})  # mutating: false in the mini domain
WRITE = step(2, "call_tool", "SUCCESS", step={"tool": "retrySettlement"})
NOTIFY = step(3, "notify", "SUCCESS")
DONE_BY_HAND = step(4, "manual", "SUCCESS", completedBy="bob")
SKIPPED = step(5, "manual", "SKIPPED", completedBy="carol", skipReason="duplicate")
SYSTEM_SKIP = step(6, "notify", "SKIPPED")  # nobody to notify: not a person's choice
RESOLVE = step(7, "set_status", "PENDING", step={"status": "RESOLVED"})


@pytest.mark.parametrize(
    ("item", "worked"),
    [
        (READ, False),
        (WRITE, True),
        (NOTIFY, False),
        (DONE_BY_HAND, True),
        (SKIPPED, False),
        (SYSTEM_SKIP, False),
    ],
)
def test_what_counts_as_work(item: dict[str, Any], worked: bool) -> None:
    assert did_work(context(), item) is worked


def test_only_people_skips_are_listed() -> None:
    assert skipped_by_people([READ, SYSTEM_SKIP, SKIPPED]) == [
        {"order": 5, "name": "s5", "by": "carol", "reason": "duplicate"}
    ]


def test_a_case_is_closed_without_action_only_when_people_skipped_and_nothing_was_done() -> None:
    ctx = context()
    assert nothing_done(ctx, [READ, NOTIFY, SYSTEM_SKIP]) is None  # nobody skipped: the process ran
    assert (
        nothing_done(ctx, [READ, NOTIFY, SKIPPED])
        == "nothing was done: step 5 s5 skipped by carol: duplicate"
    )
    assert nothing_done(ctx, [WRITE, SKIPPED]) is None
    assert nothing_done(ctx, [DONE_BY_HAND, SKIPPED]) is None


def test_the_plans_own_resolve_step_is_withheld_when_nothing_was_done() -> None:
    ctx = context()
    held = withheld_resolution(ctx, [READ, SKIPPED, RESOLVE], RESOLVE)
    assert held is not None and held.outcome == "SKIPPED" and held.status is None
    assert held.detail.startswith("not marked RESOLVED: nothing was done: step 5")
    assert held.events[0][0] == "status_change_withheld"
    assert withheld_resolution(ctx, [WRITE, SKIPPED, RESOLVE], RESOLVE) is None
    escalate = step(7, "set_status", "PENDING", step={"status": "ESCALATED"})
    assert withheld_resolution(ctx, [READ, SKIPPED, escalate], escalate) is None


def test_closed_without_action_is_final_and_reached_only_from_in_progress() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(RESOLUTION_STATUSES)
    assert ALLOWED_TRANSITIONS["CLOSED_WITHOUT_ACTION"] == frozenset()
    sources = [
        s
        for s in RESOLUTION_STATUSES
        if s != "CLOSED_WITHOUT_ACTION" and can_transition(s, "CLOSED_WITHOUT_ACTION")
    ]
    assert sources == ["IN_PROGRESS"]
    assert len("CLOSED_WITHOUT_ACTION") > 20  # why migration 0005 widens the status column


def test_a_playbook_step_cannot_close_a_case_without_action() -> None:
    """Setting a status is itself a step: only the feedback stage judges that nothing was done."""
    with pytest.raises(ValidationError):
        SetStatusStep.model_validate(
            {"type": "set_status", "name": "Close", "status": "CLOSED_WITHOUT_ACTION"}
        )
