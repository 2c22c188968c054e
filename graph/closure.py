"""When a case may be called RESOLVED: only when something was actually done about it.

A plan's bookkeeping steps (assign an owner, notify, comment, set a status) and read-only tool calls
record and route; they do not act on the exception. Work is a step a person completed, or a tool call
the agent made that changes something (the tool's ``mutating`` flag, true unless the pack says
otherwise). When people skipped steps and no work was done, the case closes as
``CLOSED_WITHOUT_ACTION``, and the plan's own ``set_status: RESOLVED`` step is withheld rather than
claim otherwise. When some work was done and the rest was skipped, the case is RESOLVED and the
feedback stage lists every skipped step (who, why). A case nobody skipped anything on is judged as
before: its approved process ran.
"""

from __future__ import annotations

from collections.abc import Sequence

from graph.context import RunContext
from graph.state import PlanItem, SkippedStep
from graph.steps import StepResult


def skipped_by_people(plan: Sequence[PlanItem]) -> list[SkippedStep]:
    """The steps people skipped, in plan order: order, name, who and why. Steps the agent skipped on
    its own (nobody to notify, a status already set) are not choices and are not listed."""
    return [
        SkippedStep(order=item["order"], name=item["name"], by=item.get("completedBy"),
                    reason=item.get("skipReason"))
        for item in plan
        if item.get("status") == "SKIPPED" and item.get("completedBy")
    ]  # fmt: skip


def did_work(ctx: RunContext, item: PlanItem) -> bool:
    """Whether this step acted on the exception (see the module docstring)."""
    if item.get("status") != "SUCCESS":
        return False
    if item.get("completedBy"):  # a person says they did it
        return True
    if item["type"] != "call_tool":
        return False
    tool = ctx.domain.tools.get(str(item.get("step", {}).get("tool")))
    return tool is None or tool.mutating


def describe_skip(skip: SkippedStep) -> str:
    return (
        f"step {skip['order']} {skip['name']} skipped by {skip['by']}: {skip['reason'] or 'no reason given'}"
    )


def nothing_done(ctx: RunContext, plan: Sequence[PlanItem]) -> str | None:
    """Why the case may not be called RESOLVED (people skipped steps and no work was done); None when
    it may."""
    skipped = skipped_by_people(plan)
    if not skipped or any(did_work(ctx, item) for item in plan):
        return None
    return "nothing was done: " + "; ".join(describe_skip(skip) for skip in skipped)


def withheld_resolution(ctx: RunContext, plan: Sequence[PlanItem], item: PlanItem) -> StepResult | None:
    """A ``set_status: RESOLVED`` step reached after people skipped everything that mattered does not
    run: the case is not resolved, and the feedback stage closes it without action."""
    if item["type"] != "set_status" or item.get("step", {}).get("status") != "RESOLVED":
        return None
    why = nothing_done(ctx, plan)
    if why is None:
        return None
    return StepResult("SKIPPED", f"not marked RESOLVED: {why}", [("status_change_withheld", {"to": "RESOLVED",
                      "reason": why})])  # fmt: skip
