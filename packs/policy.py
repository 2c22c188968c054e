"""The policy decision: actionability, the playbook, whether a human must approve, and escalation.

Deterministic and computed from the packs only; the graph's policy node and the pack test suites
both call ``decide_policy`` so a suite that passes predicts what the graph will do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packs.common import Actionability, Severity
from packs.conditions import ConditionFacts
from packs.domain import DomainPack
from packs.guardrails import EffectiveGuardrails, effective_guardrails
from packs.matching import MatchContext, PlaybookSelection, select_playbook
from packs.tenant import TenantPolicyPack


@dataclass(frozen=True)
class PolicyDecision:
    actionability: Actionability
    selection: PlaybookSelection | None
    selected_playbook_id: str | None  # set only for a playbook the tenant approved
    recommended_playbook_id: str | None  # the best match even when not approved
    human_approval_required: bool
    approval_reasons: tuple[str, ...]
    auto_action_allowed: bool
    escalate: bool
    escalation_reason: str | None
    assign_group: str
    guardrails: EffectiveGuardrails
    evidence: tuple[str, ...]


def route_group(tenant: TenantPolicyPack, data: Mapping[str, Any]) -> tuple[str, str]:
    """The tenant routing rule that matches first (by priority), else the default group."""
    ordered = sorted(enumerate(tenant.routingRules), key=lambda item: (-item[1].priority, item[0]))
    facts = ConditionFacts(data)
    for _, rule in ordered:
        if facts.matches(rule.condition):
            return rule.assignGroup, f"routing rule {rule.id} → {rule.assignGroup}"
    return tenant.defaultGroup, f"no routing rule matched → default group {tenant.defaultGroup}"


def _approval_reasons(
    rails: EffectiveGuardrails,
    tenant: TenantPolicyPack,
    *,
    exception_type: str,
    severity: Severity,
    confidence: float,
    actionability: Actionability,
) -> list[str]:
    reasons = []
    if actionability == "ACTIONABLE_NON_APPROVED_PROCESS":
        reasons.append("no approved playbook applies: a person decides the plan")
    if exception_type in rails.require_human_approval_for:
        reasons.append(f"requireHumanApprovalFor lists {exception_type}")
    for index, rule in enumerate(tenant.humanApprovalRules):
        if rule.requireApproval and severity in rule.severityIn:
            reasons.append(f"humanApprovalRules[{index}] requires approval for {severity}")
    gate = rails.severity_gates.get(severity)
    if gate is not None and gate.humanApprovalRequired:
        reasons.append(f"severity gate {severity} requires approval")
    if severity in rails.no_auto_action_if_severity_in:
        reasons.append(f"noAutoActionIfSeverityIn includes {severity}: a person must act")
    if confidence < rails.human_approval_threshold:
        reasons.append(
            f"confidence {confidence:.2f} below humanApprovalThreshold {rails.human_approval_threshold:.2f}"
        )
    return reasons


def decide_policy(
    domain: DomainPack,
    tenant: TenantPolicyPack,
    *,
    exception_type: str,
    severity: Severity,
    confidence: float,
    data: Mapping[str, Any],
    sla_minutes_remaining: float | None,
) -> PolicyDecision:
    """Decide what may happen to a triaged exception under this tenant's policy."""
    rails = effective_guardrails(domain.guardrails, tenant.guardrailOverrides)
    group, routing_note = route_group(tenant, data)
    evidence = [routing_note]
    type_def = domain.exceptionTypes.get(exception_type)
    selection: PlaybookSelection | None = None
    actionability: Actionability
    if type_def is not None and not type_def.actionable:
        actionability = "NON_ACTIONABLE_INFO_ONLY"
        evidence.append(f"exceptionTypes.{exception_type}.actionable is false: information only")
    elif domain.fallbacks.typeWithoutPlaybook == "NON_ACTIONABLE" and not any(
        exception_type in p.appliesTo for p in (*domain.playbooks, *tenant.customPlaybooks)
    ):
        actionability = "NON_ACTIONABLE_INFO_ONLY"
        evidence.append(
            f"no playbook applies to {exception_type} and fallbacks.typeWithoutPlaybook is NON_ACTIONABLE: "
            "information only, as the earlier system decided"
        )
    else:
        ctx = MatchContext(
            exception_type, severity, sla_minutes_remaining, frozenset(tenant.policyTags), data
        )
        selection = select_playbook(
            domain.playbooks, tenant.customPlaybooks, tenant.approvedBusinessProcesses, ctx
        )
        evidence.append(f"playbook matching: {selection.reasoning}")
        actionability = (
            "ACTIONABLE_APPROVED_PROCESS"
            if selection.approved_playbook is not None
            else "ACTIONABLE_NON_APPROVED_PROCESS"
        )
    escalate = confidence < rails.escalate_if_confidence_below
    escalation_reason = (
        f"confidence {confidence:.2f} below escalateIfConfidenceBelow {rails.escalate_if_confidence_below:.2f}"
        if escalate
        else None
    )
    reasons: list[str] = []
    if actionability != "NON_ACTIONABLE_INFO_ONLY":
        reasons = _approval_reasons(
            rails,
            tenant,
            exception_type=exception_type,
            severity=severity,
            confidence=confidence,
            actionability=actionability,
        )
    gate = rails.severity_gates.get(severity)
    gate_blocks = gate is not None and gate.autoActionAllowed is False
    if gate_blocks:
        evidence.append(f"severity gate {severity} forbids automatic action")
    auto = actionability == "ACTIONABLE_APPROVED_PROCESS" and not reasons and not escalate and not gate_blocks
    evidence.extend(reasons)
    if escalation_reason:
        evidence.append(escalation_reason)
    best = selection.best if selection is not None else None
    return PolicyDecision(
        actionability=actionability,
        selection=selection,
        selected_playbook_id=selection.approved_playbook.id
        if selection and selection.approved_playbook
        else None,
        recommended_playbook_id=best.playbook.id if best is not None else None,
        human_approval_required=bool(reasons)
        or (gate_blocks and actionability != "NON_ACTIONABLE_INFO_ONLY"),
        approval_reasons=tuple(reasons),
        auto_action_allowed=auto,
        escalate=escalate,
        escalation_reason=escalation_reason,
        assign_group=group,
        guardrails=rails,
        evidence=tuple(evidence),
    )
