"""Running a domain pack's test suites through the decision code the graph uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from packs.decisions import CaseDecision, decide_case
from packs.domain import DomainPack
from packs.tenant import TenantPolicyPack
from packs.testsuite import TestCase

TenantLookup = Callable[[str], TenantPolicyPack | None]
CaseExecutor = Callable[[DomainPack, TenantPolicyPack, TestCase], dict[str, Any]]
"""Runs one case and returns its outcome by the names test cases use (see CaseDecision.outcome)."""

AUTHOR_TENANT_ID = "domain-author"


def author_tenant(domain: DomainPack) -> TenantPolicyPack:
    """The domain author's view: every playbook not flagged ``approved: false`` and every tool allowed."""
    return TenantPolicyPack(
        tenantId=AUTHOR_TENANT_ID,
        tenantName=f"{domain.domainName} defaults",
        domainName=domain.domainName,
        approvedBusinessProcesses=[p.id for p in domain.playbooks if p.approved],
        toolsAllowList=list(domain.tools),
    )


@dataclass(frozen=True)
class Difference:
    field: str
    expected: Any
    actual: Any
    reason: str | None = None
    """Why the packs decided ``actual`` (when the executor says)."""


@dataclass(frozen=True)
class CaseResult:
    suite_id: str
    case_id: str
    tenant_id: str
    differences: tuple[Difference, ...] = ()
    error: str | None = None
    outcome: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.error is None and not self.differences


def decide_test_case(domain: DomainPack, tenant: TenantPolicyPack, case: TestCase) -> dict[str, Any]:
    """The default executor: the deterministic decision chain."""
    decision: CaseDecision = decide_case(
        domain,
        tenant,
        exception_type=case.input.exceptionType,
        raw_payload=case.input.rawPayload,
        normalized_context=case.input.normalizedContext,
        source_system=case.input.sourceSystem,
        source_severity=case.input.severity,
        sla_remaining=case.input.slaMinutesRemaining,
    )
    return {**decision.outcome(), REASONS: reasons(decision)}


REASONS = "reasons"
"""The outcome key holding, per decided field, why the packs decided it."""


def reasons(decision: CaseDecision) -> dict[str, str]:
    """Why each field of a case's outcome came out as it did, in the decision's own words."""
    out = {"exceptionType": decision.type_check.reason}
    if decision.severity is not None:
        out["severity"] = decision.severity.reason
    policy = decision.policy
    if policy is not None:
        matching = policy.selection.reasoning if policy.selection is not None else "; ".join(policy.evidence)
        out["playbookId"] = out["actionability"] = matching
        out["humanApprovalRequired"] = "; ".join(policy.approval_reasons) or "no approval rule applies"
        out["resolutionStatus"] = policy.escalation_reason or "; ".join(policy.approval_reasons) or matching
    return out


def compare(
    case: TestCase, outcome: dict[str, Any], why: dict[str, str] | None = None
) -> tuple[Difference, ...]:
    """The expected fields the outcome gets wrong, with why the packs decided otherwise."""
    why = why or {}
    return tuple(
        Difference(name, expected, outcome.get(name), why.get(name))
        for name, expected in sorted(case.expected.checked().items())
        if outcome.get(name) != expected
    )


@dataclass(frozen=True)
class PlannedCase:
    suite_id: str
    case: TestCase
    tenant_id: str
    tenant: TenantPolicyPack | None  # None when the case names a tenant that is not loaded


def planned_cases(
    domain: DomainPack, *, tenant: TenantPolicyPack | None, find_tenant: TenantLookup
) -> list[PlannedCase]:
    """Every case with the tenant it runs under: its own tenantId, then ``tenant``, then the author's view."""
    default = tenant or author_tenant(domain)
    planned = []
    for suite in domain.testSuites:
        for case in suite.cases:
            case_tenant = find_tenant(case.tenantId) if case.tenantId else default
            planned.append(PlannedCase(suite.suiteId, case, case.tenantId or default.tenantId, case_tenant))
    return planned


def judge(
    planned: PlannedCase, outcome: dict[str, Any] | None = None, error: str | None = None
) -> CaseResult:
    if planned.tenant is None:
        error = f"tenant {planned.tenant_id!r} is not loaded"
    if error is not None or outcome is None:
        return CaseResult(
            planned.suite_id, planned.case.caseId, planned.tenant_id, error=error or "no outcome"
        )
    decided = {k: v for k, v in outcome.items() if k != REASONS}
    differences = compare(planned.case, decided, outcome.get(REASONS))
    return CaseResult(planned.suite_id, planned.case.caseId, planned.tenant_id, differences, outcome=decided)


def run_suites(
    domain: DomainPack,
    *,
    tenant: TenantPolicyPack | None = None,
    find_tenant: TenantLookup = lambda _tenant_id: None,
    execute: CaseExecutor = decide_test_case,
) -> list[CaseResult]:
    """Run every case through ``execute`` (the deterministic decision chain by default)."""
    results = []
    for planned in planned_cases(domain, tenant=tenant, find_tenant=find_tenant):
        if planned.tenant is None:
            results.append(judge(planned))
            continue
        try:
            outcome = execute(domain, planned.tenant, planned.case)
        except Exception as exc:  # a broken case is a failed case, never a stopped run
            results.append(judge(planned, error=f"{type(exc).__name__}: {exc}"))
            continue
        results.append(judge(planned, outcome))
    return results
