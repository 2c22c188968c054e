"""Older pack layouts load with notices and are rewritten into the current layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from packs.domain import DomainPack
from packs.importer import duration_minutes, upgrade_document
from packs.loader import load_many
from packs.playbook import CallToolStep, ManualStep
from packs.tenant import TenantPolicyPack

LEGACY = Path(__file__).parent / "fixtures" / "legacy"


@pytest.fixture(scope="module")
def loaded() -> dict[str, Any]:
    result = load_many(sorted(LEGACY.iterdir()))
    assert [str(e) for e in result.errors] == []
    return {p.key: p for p in result.packs} | {"notices": [str(n) for n in result.notices]}


def domain(loaded: dict[str, Any]) -> DomainPack:
    pack = loaded["orders@0.9"].pack
    assert isinstance(pack, DomainPack)
    return pack


def test_exception_type_list_becomes_a_map(loaded: dict[str, Any]) -> None:
    pack = domain(loaded)
    assert list(pack.exceptionTypes) == ["PAYMENT_CAPTURE_FAILED", "DUPLICATE_ORDER", "ADDRESS_INVALID"]
    assert (
        pack.exceptionTypes["PAYMENT_CAPTURE_FAILED"].detectionRules[0].description
        == "capture status is FAILED"
    )


def test_severity_rules_keyed_if(loaded: dict[str, Any]) -> None:
    rules = domain(loaded).severityRules
    assert [(r.id, r.condition, r.severity) for r in rules] == [
        ("severity_rule_1", "exceptionType == 'PAYMENT_CAPTURE_FAILED' && rawPayload.amount > 1000", "HIGH"),
        ("dup", "exceptionType == 'DUPLICATE_ORDER'", "LOW"),
    ]
    assert any("$.severityRules[0]: renamed 'if' to 'condition'" in n for n in loaded["notices"])


def test_tools_grouped_by_category_become_minimal_definitions(loaded: dict[str, Any]) -> None:
    tools = domain(loaded).tools
    assert sorted(tools) == ["cancelOrder", "getOrder", "openTicket", "retryPaymentCapture"]
    assert tools["getOrder"].mutating is False and tools["cancelOrder"].mutating is True
    assert tools["getOrder"].endpoint is None and tools["getOrder"].parameters == {"type": "object"}
    assert any(
        "2 minimal definitions (retryPaymentCapture, cancelOrder), assumed state-changing" in n
        for n in loaded["notices"]
    )


def test_playbook_given_as_exception_type_and_sentences(loaded: dict[str, Any]) -> None:
    playbook = domain(loaded).playbook("PB_PAYMENT_CAPTURE_FAILED")
    assert playbook is not None and playbook.appliesTo == ["PAYMENT_CAPTURE_FAILED"]
    steps = playbook.steps
    assert all(isinstance(s, ManualStep) for s in steps)
    assert (
        isinstance(steps[1], ManualStep) and steps[1].instructions == "Call retryPaymentCapture(orderId) once"
    )
    assert steps[1].suggestedToolCall is not None
    assert steps[1].suggestedToolCall.tool == "retryPaymentCapture"
    assert steps[1].suggestedToolCall.arguments == {"orderId": "{{ exception.rawPayload.orderId }}"}
    assert isinstance(steps[0], ManualStep) and steps[0].suggestedToolCall is None


def test_playbook_with_playbook_id_and_action_steps(loaded: dict[str, Any]) -> None:
    playbook = domain(loaded).playbook("PB_DUPLICATE")
    assert playbook is not None and playbook.appliesTo == ["DUPLICATE_ORDER"]
    first, second, third = playbook.steps
    assert isinstance(first, CallToolStep) and first.tool == "cancelOrder"
    assert first.arguments == {"orderId": "{{ exception.rawPayload.orderId }}"}
    assert second.type == "add_comment"
    assert isinstance(third, ManualStep) and third.instructions == "callTheWarehouse(site=north)"
    assert playbook.successCriteria == ["Only one order remains"]
    not_approved = domain(loaded).playbook("PB_ADDRESS")
    assert not_approved is not None and not_approved.approved is False


def test_test_suites_as_input_expected_output(loaded: dict[str, Any]) -> None:
    [suite] = domain(loaded).testSuites
    assert suite.suiteId == "imported"
    first = suite.cases[0]
    assert first.input.exceptionType == "PAYMENT_CAPTURE_FAILED" and first.input.rawPayload == {
        "amount": 5000
    }
    assert first.expected.checked() == {"severity": "HIGH", "playbookId": "PB_PAYMENT_CAPTURE_FAILED"}
    assert first.caseId == "E1" and first.description == "x"
    assert any("$.testSuites[0].input.exceptionId: became the case id 'E1'" in n for n in loaded["notices"])
    assert any("expectedOutput.notes: a remark, not an expectation" in n for n in loaded["notices"])


def test_test_suites_with_case_ids(loaded: dict[str, Any]) -> None:
    pack = loaded["orders-lite@1.0"].pack
    assert isinstance(pack, DomainPack)
    case = pack.testSuites[0].cases[0]
    assert case.caseId == "dup" and case.input.exceptionType == "DUPLICATE_ORDER"
    assert case.expected.checked() == {"playbookId": "PB_DUP"}


def test_tenant_with_custom_fields_and_no_approved_list(loaded: dict[str, Any]) -> None:
    tenant = loaded["shop-one"].pack
    assert isinstance(tenant, TenantPolicyPack)
    assert tenant.severityOverrides == {"DUPLICATE_ORDER": "MEDIUM"}
    assert tenant.guardrailOverrides.humanApprovalThreshold == 0.9
    assert tenant.toolsAllowList == ["getOrder", "retryPaymentCapture"]
    assert [(r.severityIn, r.requireApproval) for r in tenant.humanApprovalRules] == [
        (["HIGH"], True),
        (["LOW"], False),
    ]
    assert tenant.retentionPolicies.dataTTLDays == 90
    assert [p.id for p in tenant.customPlaybooks] == ["PB_ADDRESS_INVALID"]
    # every domain playbook not flagged approved: false, and no custom playbook
    assert tenant.approvedBusinessProcesses == ["PB_PAYMENT_CAPTURE_FAILED", "PB_DUPLICATE"]


def test_tenant_with_workflow_policies_and_grouped_allow_list(loaded: dict[str, Any]) -> None:
    tenant = loaded["shop-two"].pack
    assert isinstance(tenant, TenantPolicyPack)
    assert tenant.approvedBusinessProcesses == ["PB_DUPLICATE"]
    assert tenant.severityOverrides == {"ADDRESS_INVALID": "LOW"}
    assert tenant.escalationQueue == "shop-two-escalations"
    assert tenant.sla.agingThresholdMinutes == {"PAYMENT_CAPTURE_FAILED": 2880, "DUPLICATE_ORDER": 30}
    assert tenant.toolsAllowList == ["getOrder", "cancelOrder"]


def test_current_layout_gets_no_notes(domain_doc: dict[str, Any], tenant_doc: dict[str, Any]) -> None:
    done = upgrade_document("domain", domain_doc, "d.yaml")
    assert done.notices == [] and done.problems == [] and done.document == domain_doc
    done = upgrade_document("tenant", tenant_doc, "t.yaml")
    assert done.notices == [] and done.problems == [] and done.document == tenant_doc


def test_upgrade_does_not_touch_its_input() -> None:
    data = {"domainName": "x", "exceptionTypes": {"A": {"description": "a", "detectionRules": ["text"]}}}
    upgrade_document("domain", data, "x.yaml")
    assert data["exceptionTypes"]["A"]["detectionRules"] == ["text"]


@pytest.mark.parametrize(
    ("text", "minutes"), [("48h", 2880), ("30m", 30), ("2d", 2880), ("1w", 10080), (90, 90), ("soon", None)]
)
def test_durations(text: object, minutes: int | None) -> None:
    assert duration_minutes(text) == minutes
