"""Turning a playbook into a plan: what each step is and whether it may run without a person.

The graph's resolution node and the pack test suites share this, so both agree on which steps run
automatically, which wait for approval and which a person does by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from packs.domain import DomainPack, ToolDefinition
from packs.guardrails import EffectiveGuardrails
from packs.playbook import SAFE_STEP_TYPES, CallToolStep, Playbook, PlaybookStep
from packs.tenant import TenantPolicyPack

Disposition = Literal["auto", "needs_approval", "manual"]


@dataclass(frozen=True)
class PlannedStep:
    order: int  # 1-based, as operators count
    step: PlaybookStep
    disposition: Disposition
    reason: str
    tool: ToolDefinition | None = None


def plan_step(
    order: int, step: PlaybookStep, domain: DomainPack, tenant: TenantPolicyPack, rails: EffectiveGuardrails
) -> PlannedStep:
    if step.type == "manual":
        return PlannedStep(order, step, "manual", "a person performs this step")
    if step.type in rails.blocked_actions:
        return PlannedStep(order, step, "needs_approval", f"blockLists.actions includes {step.type}")
    if rails.allowed_actions is not None and step.type not in rails.allowed_actions:
        return PlannedStep(order, step, "needs_approval", f"allowLists.actions does not include {step.type}")
    if isinstance(step, CallToolStep):
        tool = domain.tools.get(step.tool)
        if tool is None:
            return PlannedStep(
                order, step, "manual", f"tool {step.tool} is not defined by {domain.domainName}"
            )
        if step.tool not in tenant.toolsAllowList:
            return PlannedStep(
                order,
                step,
                "manual",
                f"tool {step.tool} is not in the tenant's toolsAllowList: do it by hand",
                tool,
            )
        if step.tool in rails.blocked_tools:
            return PlannedStep(order, step, "needs_approval", f"blockLists.tools includes {step.tool}", tool)
        if rails.allowed_tools is not None and step.tool not in rails.allowed_tools:
            return PlannedStep(
                order, step, "needs_approval", f"allowLists.tools does not include {step.tool}", tool
            )
        if tool.mutating and rails.approve_state_changing_tools:
            return PlannedStep(
                order, step, "needs_approval",
                f"tool {step.tool} changes data and guardrails.approveStateChangingTools is on", tool,
            )  # fmt: skip
        effect = "changes data" if tool.mutating else "read-only"
        return PlannedStep(order, step, "auto", f"tool {step.tool} is allow-listed ({effect})", tool)
    assert step.type in SAFE_STEP_TYPES
    return PlannedStep(order, step, "auto", f"{step.type} changes nothing outside exops")


def plan_playbook(
    playbook: Playbook, domain: DomainPack, tenant: TenantPolicyPack, rails: EffectiveGuardrails
) -> list[PlannedStep]:
    return [plan_step(i, step, domain, tenant, rails) for i, step in enumerate(playbook.steps, start=1)]
