"""Plans in the state: a playbook's steps with what may run unattended and how far execution got."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from graph.context import RunContext
from graph.state import PackDocument, PlanItem
from graph.steps import template_values
from packs.guardrails import effective_guardrails
from packs.plan import PlannedStep, plan_playbook
from packs.playbook import ManualStep, Playbook, PlaybookStep
from tools.templating import TemplateRenderError, render_value


def find_playbook(ctx: RunContext, playbook_id: str | None) -> Playbook | None:
    if playbook_id is None:
        return None
    return next(
        (p for p in (*ctx.domain.playbooks, *ctx.tenant.customPlaybooks) if p.id == playbook_id), None
    )


def entry(planned: PlannedStep, values: Mapping[str, Any]) -> PlanItem:
    item: PlanItem = {
        "order": planned.order,
        "type": planned.step.type,
        "name": planned.step.name,
        "disposition": planned.disposition,
        "reason": planned.reason,
        "status": "PENDING",
        "step": planned.step.model_dump(mode="json", exclude_none=True),
    }
    if isinstance(planned.step, ManualStep):
        item["instructions"] = shown_instructions(planned.step.instructions, values)
    return item


def shown_instructions(text: str, values: Mapping[str, Any]) -> str:
    """A manual step's instructions with their placeholders filled from the case, as the person reads
    them. A placeholder naming a value the case does not have stays as written: the person can still
    look it up, and a manual step must not fail for want of a hint."""
    try:
        return str(render_value(text, values, "instructions"))
    except TemplateRenderError:
        return text


def playbook_record(playbook: Playbook) -> PackDocument:
    """The playbook as the state keeps it: everything but its steps, which the plan holds (each plan
    item carries its step), so they are not stored twice."""
    return playbook.model_dump(mode="json", exclude_none=True, exclude={"steps"})


def build_plan(ctx: RunContext, playbook: Playbook, exception: Mapping[str, Any]) -> list[PlanItem]:
    rails = effective_guardrails(ctx.domain.guardrails, ctx.tenant.guardrailOverrides)
    values = template_values(ctx, dict(exception))
    return [entry(planned, values) for planned in plan_playbook(playbook, ctx.domain, ctx.tenant, rails)]


def plan_from_steps(
    ctx: RunContext, steps: Sequence[PlaybookStep], exception: Mapping[str, Any], *, name: str
) -> list[PlanItem]:
    """A plan for steps a person wrote (an edited plan), checked like a playbook's."""
    playbook = Playbook(
        id="EDITED", name=name, appliesTo=[exception["exceptionType"]], steps=list(steps), approved=False
    )
    return build_plan(ctx, playbook, exception)


def allowed_decisions(plan: Sequence[PlanItem]) -> list[str]:
    """What a person may answer an approval asking about ``plan``: no approve while it is empty."""
    return (
        ["approve", "reject", "edit", "comment", "takeover"]
        if plan
        else ["reject", "edit", "comment", "takeover"]
    )


def takeover_plan(ctx: RunContext, who: str, exception: Mapping[str, Any]) -> list[PlanItem]:
    """The plan of a case a person took over: one manual step, theirs. Nothing in it runs on its own,
    so the case stays open until they complete it (resolved) or skip it (closed without action)."""
    step = ManualStep(
        type="manual",
        name="Handle the case by hand",
        instructions=f"{who} took this case over. Handle the exception by hand, then complete this step "
        "saying what was done, or skip it with the reason to close the case without action.",
    )
    return plan_from_steps(ctx, [step], exception, name="Taken over")


def approve(plan: Sequence[PlanItem]) -> list[PlanItem]:
    """After a human approval, steps that waited for one may run; manual steps still wait for a person."""
    approved: list[PlanItem] = []
    for item in plan:
        if item["disposition"] == "needs_approval":
            item = {**item, "disposition": "auto", "reason": f"approved by a person ({item['reason']})"}
        approved.append(item)
    return approved


def tool_problems(ctx: RunContext, steps: Sequence[PlaybookStep]) -> list[str]:
    """Steps naming a tool the domain does not define or the tenant does not allow."""
    problems = []
    for index, step in enumerate(steps, start=1):
        tool = getattr(step, "tool", None)
        if step.type != "call_tool" or tool is None:
            continue
        if tool not in ctx.domain.tools:
            problems.append(
                f"step {index} calls tool {tool!r}, which {ctx.domain.domainName} does not define"
            )
        elif tool not in ctx.tenant.toolsAllowList:
            problems.append(
                f"step {index} calls tool {tool!r}, which tenant {ctx.tenant.tenantId} does not allow"
            )
    return problems
