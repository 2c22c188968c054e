"""Deterministic decisions over one exception, from the packs alone.

These are the functions the graph's intake, triage and policy nodes call; ``decide_case`` chains them
the way the graph does when no LLM is configured, which is what pack test suites check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from packs.common import ResolutionStatus, Severity
from packs.conditions import ConditionFacts
from packs.domain import DomainPack
from packs.plan import plan_playbook
from packs.policy import PolicyDecision, decide_policy
from packs.severity import SeverityDecision, decide_severity
from packs.tenant import TenantPolicyPack

TypeMethod = Literal["given", "normalized", "detected", "unknown"]
TYPE_CONFIDENCE: dict[TypeMethod, float] = {"given": 1.0, "normalized": 0.95, "detected": 0.8, "unknown": 0.0}


@dataclass(frozen=True)
class TypeCheck:
    exception_type: str | None
    method: TypeMethod
    reason: str
    candidates: tuple[str, ...] = ()

    @property
    def confidence(self) -> float:
        return TYPE_CONFIDENCE[self.method]


def _canonical(name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")


def plain(value: Any) -> Any:
    """Payload values CEL can read: dates and times as ISO strings (YAML makes ``2026-11-20`` a date)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def case_data(
    *,
    exception_type: str | None,
    tenant_id: str,
    domain_name: str,
    raw_payload: Mapping[str, Any],
    normalized_context: Mapping[str, Any] | None = None,
    source_system: str | None = None,
    timestamp: str | None = None,
    sla_minutes_remaining: float | None = None,
    policy_tags: list[str] | None = None,
    severity: Severity | None = None,
) -> dict[str, Any]:
    """The variables conditions read; absent values are left out so they simply do not match."""
    values: dict[str, Any] = {
        "exceptionType": exception_type,
        "tenantId": tenant_id,
        "domainName": domain_name,
        "rawPayload": plain(raw_payload),
        "normalizedContext": plain(normalized_context or {}),
        "sourceSystem": source_system,
        "timestamp": timestamp,
        "slaMinutesRemaining": sla_minutes_remaining,
        "policyTags": list(policy_tags or []),
        "severity": severity,
    }
    return {key: value for key, value in values.items() if value is not None}


def classify_type(domain: DomainPack, given: str | None, data: Mapping[str, Any]) -> TypeCheck:
    """Check a given type against the taxonomy, else recognize it by the types' detection rules."""
    if given is not None and given in domain.exceptionTypes:
        return TypeCheck(given, "given", f"{given} is an exception type of {domain.domainName}")
    if given is not None:
        by_canonical = {_canonical(name): name for name in domain.exceptionTypes}
        found = by_canonical.get(_canonical(given))
        if found is not None:
            return TypeCheck(found, "normalized", f"{given!r} read as {found}")
    facts = ConditionFacts(data)
    detected = tuple(
        name
        for name, definition in domain.exceptionTypes.items()
        if any(r.condition is not None and facts.matches(r.condition) for r in definition.detectionRules)
    )
    label = f"type {given!r}" if given else "no type"
    if len(detected) == 1:
        return TypeCheck(
            detected[0], "detected", f"{label}; detection rules of {detected[0]} match the payload"
        )
    if detected:
        return TypeCheck(
            None,
            "unknown",
            f"{label}; detection rules of several types match: {', '.join(detected)}",
            detected,
        )
    return TypeCheck(
        None, "unknown", f"{label} is not in the {domain.domainName} taxonomy and no detection rule matches"
    )


def sla_minutes_remaining(
    tenant: TenantPolicyPack,
    exception_type: str,
    *,
    given: float | None,
    timestamp: datetime | None,
    now: datetime | None,
) -> float | None:
    """Minutes left before the tenant's SLA for this type: as given, else from the timestamp."""
    if given is not None:
        return given
    minutes = tenant.sla.byExceptionType.get(exception_type, tenant.sla.defaultMinutes)
    if minutes is None or timestamp is None or now is None:
        return None
    return round(minutes - (now - timestamp).total_seconds() / 60, 1)


@dataclass(frozen=True)
class CaseDecision:
    type_check: TypeCheck
    severity: SeverityDecision | None
    policy: PolicyDecision | None
    confidence: float
    resolution_status: ResolutionStatus

    def outcome(self) -> dict[str, Any]:
        """The decisions a pack test case can check, by the names test cases use."""
        return {
            "exceptionType": self.type_check.exception_type,
            "severity": self.severity.severity if self.severity else None,
            "actionability": self.policy.actionability if self.policy else None,
            "playbookId": self.policy.selected_playbook_id if self.policy else None,
            "humanApprovalRequired": self.resolution_status == "PENDING_APPROVAL" if self.policy else None,
            "resolutionStatus": self.resolution_status,
        }


def predicted_status(
    domain: DomainPack, tenant: TenantPolicyPack, policy: PolicyDecision, severity: Severity | None = None
) -> ResolutionStatus:
    """Where the graph leaves a case when nobody has acted yet (tools in dry-run)."""
    if policy.escalate:
        return "ESCALATED"
    if policy.actionability == "NON_ACTIONABLE_INFO_ONLY" and severity == "CRITICAL":
        return "ESCALATED"  # the supervisor sends an information-only CRITICAL case to a person
    if policy.human_approval_required:
        return "PENDING_APPROVAL"
    if policy.selected_playbook_id is None:
        return "RESOLVED"
    playbook = next(
        p for p in (*domain.playbooks, *tenant.customPlaybooks) if p.id == policy.selected_playbook_id
    )
    plan = plan_playbook(playbook, domain, tenant, policy.guardrails)
    if any(step.disposition == "needs_approval" for step in plan):
        return "PENDING_APPROVAL"
    if any(step.disposition == "manual" for step in plan):
        return "IN_PROGRESS"
    return "RESOLVED"


def decide_case(
    domain: DomainPack,
    tenant: TenantPolicyPack,
    *,
    exception_type: str | None,
    raw_payload: Mapping[str, Any],
    normalized_context: Mapping[str, Any] | None = None,
    source_system: str | None = None,
    source_severity: Severity | None = None,
    sla_remaining: float | None = None,
) -> CaseDecision:
    """Intake type check, triage severity and policy, chained as the graph does without an LLM."""
    common: dict[str, Any] = {
        "tenant_id": tenant.tenantId,
        "domain_name": domain.domainName,
        "raw_payload": raw_payload,
        "normalized_context": normalized_context,
        "source_system": source_system,
        "sla_minutes_remaining": sla_remaining,
        "policy_tags": tenant.policyTags,
    }
    type_check = classify_type(domain, exception_type, case_data(exception_type=exception_type, **common))
    if type_check.exception_type is None:
        return CaseDecision(type_check, None, None, 0.0, "ESCALATED")
    resolved_type = type_check.exception_type
    data = case_data(exception_type=resolved_type, **common)
    severity = decide_severity(domain, tenant, data, source_severity=source_severity)
    confidence = min(type_check.confidence, severity.confidence)
    policy = decide_policy(
        domain,
        tenant,
        exception_type=resolved_type,
        severity=severity.severity,
        confidence=confidence,
        data={**data, "severity": severity.severity},
        sla_minutes_remaining=sla_remaining,
    )
    status = predicted_status(domain, tenant, policy, severity.severity)
    return CaseDecision(type_check, severity, policy, confidence, status)
