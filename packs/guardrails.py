"""Guardrails: the limits on automatic action, set by the domain and tightened or loosened per tenant.

One model serves both places: every field is optional, a domain pack states its defaults and a
tenant's ``guardrailOverrides`` replaces whichever fields it gives. ``effective_guardrails`` folds
the two (and the built-in defaults) into concrete values the policy decision reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from packs.common import PackModel, Severity
from packs.playbook import StepType


class NameLists(PackModel):
    tools: list[str] = Field(default_factory=list, description="Tool names.")
    actions: list[StepType] = Field(default_factory=list, description="Step types.")


class SeverityGate(PackModel):
    autoActionAllowed: bool | None = None
    humanApprovalRequired: bool | None = None


class Guardrails(PackModel):
    allowLists: NameLists | None = Field(
        default=None, description="When given, only these tools/actions may run without a human."
    )
    blockLists: NameLists | None = Field(default=None, description="Never run these automatically.")
    humanApprovalThreshold: float | None = Field(
        default=None, ge=0, le=1, description="Below this confidence a human approves."
    )
    noAutoActionIfSeverityIn: list[Severity] | None = None
    requireHumanApprovalFor: list[str] | None = Field(
        default=None, description="Exception types that always need a human."
    )
    maxAutoRetries: int | None = Field(
        default=None, ge=0, le=10, description="The most retries any tool call may make."
    )
    approveStateChangingTools: bool | None = Field(
        default=None, description="A call_tool step whose tool changes data waits for a human approval."
    )
    escalateIfConfidenceBelow: float | None = Field(default=None, ge=0, le=1)
    autoActionAllowedOnlyForApprovedPlaybooks: bool | None = None
    severityGates: dict[Severity, SeverityGate] | None = None


@dataclass(frozen=True)
class EffectiveGuardrails:
    """Guardrails in force for one tenant: domain values, overridden by the tenant, else defaults."""

    allowed_tools: frozenset[str] | None = None
    allowed_actions: frozenset[str] | None = None
    blocked_tools: frozenset[str] = frozenset()
    blocked_actions: frozenset[str] = frozenset()
    human_approval_threshold: float = 0.7
    no_auto_action_if_severity_in: frozenset[str] = frozenset({"CRITICAL"})
    require_human_approval_for: frozenset[str] = frozenset()
    max_auto_retries: int = 2
    approve_state_changing_tools: bool = False
    escalate_if_confidence_below: float = 0.4
    auto_action_only_for_approved_playbooks: bool = True
    severity_gates: dict[str, SeverityGate] = field(default_factory=dict)


def effective_guardrails(domain: Guardrails, tenant: Guardrails | None) -> EffectiveGuardrails:
    """Fold domain guardrails and a tenant's overrides (field by field, tenant wins) over the defaults.

    Block lists are the exception: a tenant adds to the domain's, it cannot unblock what the domain
    says must never run unattended."""
    base = EffectiveGuardrails()

    def pick(name: str, fallback: Any) -> Any:
        for layer in (tenant, domain):
            if layer is not None and getattr(layer, name) is not None:
                return getattr(layer, name)
        return fallback

    allow = pick("allowLists", None)
    blocked_tools = {
        t for layer in (domain, tenant) if layer and layer.blockLists for t in layer.blockLists.tools
    }
    blocked_actions = {
        a for layer in (domain, tenant) if layer and layer.blockLists for a in layer.blockLists.actions
    }
    gates = pick("severityGates", {})
    return EffectiveGuardrails(
        allowed_tools=frozenset(allow.tools) if allow is not None and allow.tools else None,
        allowed_actions=frozenset(allow.actions) if allow is not None and allow.actions else None,
        blocked_tools=frozenset(blocked_tools),
        blocked_actions=frozenset(blocked_actions),
        human_approval_threshold=pick("humanApprovalThreshold", base.human_approval_threshold),
        no_auto_action_if_severity_in=frozenset(
            pick("noAutoActionIfSeverityIn", sorted(base.no_auto_action_if_severity_in))
        ),
        require_human_approval_for=frozenset(pick("requireHumanApprovalFor", [])),
        max_auto_retries=pick("maxAutoRetries", base.max_auto_retries),
        approve_state_changing_tools=pick("approveStateChangingTools", base.approve_state_changing_tools),
        escalate_if_confidence_below=pick("escalateIfConfidenceBelow", base.escalate_if_confidence_below),
        auto_action_only_for_approved_playbooks=pick(
            "autoActionAllowedOnlyForApprovedPlaybooks", base.auto_action_only_for_approved_playbooks
        ),
        severity_gates=dict(gates),
    )
