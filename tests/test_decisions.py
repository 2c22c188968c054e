"""Severity precedence, playbook matching and ties, the policy decision and type checks."""

from __future__ import annotations

from typing import Any

import pytest

from packs.decisions import case_data, classify_type, decide_case, sla_minutes_remaining
from packs.matching import MatchContext, select_playbook
from packs.policy import decide_policy
from packs.severity import decide_severity
from tests.packs_helpers import build


def data(exception_type: str | None, **payload: Any) -> dict[str, Any]:
    return case_data(
        exception_type=exception_type, tenant_id="t", domain_name="mini-markets", raw_payload=payload
    )


class TestSeverity:
    def test_most_severe_matching_rule_wins(self, domain_doc: dict[str, Any]) -> None:
        domain, _ = build(domain_doc)
        decision = decide_severity(domain, None, data("SETTLEMENT_FAIL", amount=60_000_000))
        assert decision.severity == "CRITICAL" and decision.source == "rule"
        assert [r.id for r in decision.matched_rules] == ["huge_fail", "big_fail"]
        assert decision.reason == "rule huge_fail (CRITICAL, priorityScore 1) won over big_fail"

    def test_ties_broken_by_priority_score_then_pack_order(self, domain_doc: dict[str, Any]) -> None:
        domain_doc["severityRules"] = [
            {
                "id": "first",
                "condition": "exceptionType == 'SETTLEMENT_FAIL'",
                "severity": "HIGH",
                "priorityScore": 1,
            },
            {"id": "second", "condition": "rawPayload.amount > 5", "severity": "HIGH", "priorityScore": 7},
            {"id": "third", "condition": "rawPayload.amount > 1", "severity": "HIGH", "priorityScore": 7},
        ]
        domain, _ = build(domain_doc)
        decision = decide_severity(domain, None, data("SETTLEMENT_FAIL", amount=10))
        assert [r.id for r in decision.matched_rules] == ["second", "third", "first"]

    def test_source_severity_then_default_then_medium(self, domain_doc: dict[str, Any]) -> None:
        domain, _ = build(domain_doc)
        assert decide_severity(domain, None, data("POSITION_BREAK"), source_severity="LOW").source == "source"
        assert decide_severity(domain, None, data("POSITION_BREAK"), source_severity="LOW").severity == "LOW"
        default = decide_severity(domain, None, data("POSITION_BREAK"))
        assert (default.severity, default.source) == ("MEDIUM", "default")
        domain_doc["defaultSeverity"] = None
        domain, _ = build(domain_doc)
        fallback = decide_severity(domain, None, data("POSITION_BREAK"))
        assert (fallback.severity, fallback.source, fallback.confidence) == ("MEDIUM", "fallback", 0.6)

    def test_tenant_override_wins_last(self, domain_doc: dict[str, Any], tenant_doc: dict[str, Any]) -> None:
        tenant_doc["severityOverrides"] = {"SETTLEMENT_FAIL": "LOW"}
        domain, tenant = build(domain_doc, tenant_doc)
        decision = decide_severity(domain, tenant, data("SETTLEMENT_FAIL", amount=60_000_000))
        assert decision.severity == "LOW" and decision.override == "LOW" and decision.source == "rule"
        assert decision.reason.endswith("tenant mini-bank overrides SETTLEMENT_FAIL to LOW")

    def test_missing_field_is_no_match(self, domain_doc: dict[str, Any]) -> None:
        domain, _ = build(domain_doc)
        assert decide_severity(domain, None, data("SETTLEMENT_FAIL")).source == "default"
        assert decide_severity(domain, None, data("SETTLEMENT_FAIL", amount="lots")).source == "default"


class TestMatching:
    def ctx(
        self, severity: str = "MEDIUM", sla: float | None = None, tags: frozenset[str] = frozenset()
    ) -> MatchContext:
        return MatchContext("SETTLEMENT_FAIL", severity, sla, tags, {"exceptionType": "SETTLEMENT_FAIL"})  # type: ignore[arg-type]

    def test_equal_priority_prefers_the_more_specific_match(self, domain_doc: dict[str, Any]) -> None:
        domain, _ = build(domain_doc)
        selection = select_playbook(domain.playbooks, [], {"PB_RETRY", "PB_ESCALATE_BIG"}, self.ctx("HIGH"))
        assert selection.best is not None and selection.best.playbook.id == "PB_ESCALATE_BIG"
        assert selection.reasoning == (
            "PB_ESCALATE_BIG (domain playbook, priority 5) approved by the tenant; "
            "ranked above PB_RETRY (approved, priority 5)"
        )

    def test_priority_beats_specificity_and_pack_order_breaks_full_ties(
        self, domain_doc: dict[str, Any]
    ) -> None:
        domain_doc["playbooks"][0]["priority"] = 9
        domain, _ = build(domain_doc)
        selection = select_playbook(domain.playbooks, [], {"PB_RETRY", "PB_ESCALATE_BIG"}, self.ctx("HIGH"))
        assert selection.best is not None and selection.best.playbook.id == "PB_RETRY"
        domain_doc["playbooks"][0]["priority"] = 5
        domain_doc["playbooks"][1]["match"] = {}
        domain, _ = build(domain_doc)
        selection = select_playbook(domain.playbooks, [], {"PB_RETRY", "PB_ESCALATE_BIG"}, self.ctx("HIGH"))
        assert selection.best is not None and selection.best.playbook.id == "PB_RETRY"

    def test_approved_beats_higher_priority_unapproved(self, domain_doc: dict[str, Any]) -> None:
        domain_doc["playbooks"][1]["priority"] = 50
        domain, _ = build(domain_doc)
        selection = select_playbook(domain.playbooks, [], {"PB_RETRY"}, self.ctx("HIGH"))
        assert selection.best is not None and selection.best.playbook.id == "PB_RETRY"

    def test_each_criterion_and_its_reason(self, domain_doc: dict[str, Any]) -> None:
        domain_doc["playbooks"][1]["match"] = {
            "severity_in": ["HIGH"],
            "sla_minutes_remaining_lt": 60,
            "policy_tags": ["fast-lane"],
            "condition": "rawPayload.amount > 10",
        }
        domain, _ = build(domain_doc)
        ids = {"PB_RETRY", "PB_ESCALATE_BIG"}

        def rejected(ctx: MatchContext) -> dict[str, str]:
            return dict(select_playbook(domain.playbooks, [], ids, ctx).rejected)

        assert rejected(self.ctx("LOW"))["PB_ESCALATE_BIG"] == "severity LOW not in HIGH"
        assert rejected(self.ctx("HIGH"))["PB_ESCALATE_BIG"] == "SLA minutes remaining unknown not below 60"
        assert rejected(self.ctx("HIGH", 90))["PB_ESCALATE_BIG"] == "SLA minutes remaining 90 not below 60"
        assert rejected(self.ctx("HIGH", 30))["PB_ESCALATE_BIG"] == "tenant lacks policy tags fast-lane"
        tagged = self.ctx("HIGH", 30, frozenset({"fast-lane"}))
        assert rejected(tagged)["PB_ESCALATE_BIG"] == "condition 'rawPayload.amount > 10' does not hold"
        ok = MatchContext(
            "SETTLEMENT_FAIL", "HIGH", 30, frozenset({"fast-lane"}), {"rawPayload": {"amount": 11}}
        )
        assert "PB_ESCALATE_BIG" not in rejected(ok)

    def test_nothing_applies(self, domain_doc: dict[str, Any]) -> None:
        domain, _ = build(domain_doc)
        ctx = MatchContext("SEC_MASTER_MISMATCH", "LOW", None, frozenset(), {})
        selection = select_playbook(domain.playbooks, [], set(), ctx)
        assert (
            selection.best is None
            and selection.reasoning == "no playbook applies to SEC_MASTER_MISMATCH at LOW"
        )


class TestPolicy:
    def decide(
        self,
        domain_doc: dict[str, Any],
        tenant_doc: dict[str, Any],
        exception_type: str,
        severity: str,
        confidence: float = 0.9,
        **payload: Any,
    ):  # type: ignore[no-untyped-def]
        domain, tenant = build(domain_doc, tenant_doc)
        facts = {**data(exception_type, **payload), "severity": severity}
        return decide_policy(
            domain,
            tenant,
            exception_type=exception_type,
            severity=severity,  # type: ignore[arg-type]
            confidence=confidence,
            data=facts,
            sla_minutes_remaining=None,
        )

    def test_approved_auto_path(self, domain_doc: dict[str, Any], tenant_doc: dict[str, Any]) -> None:
        decision = self.decide(domain_doc, tenant_doc, "SETTLEMENT_FAIL", "MEDIUM")
        assert decision.actionability == "ACTIONABLE_APPROVED_PROCESS"
        assert decision.selected_playbook_id == "PB_RETRY" and decision.auto_action_allowed
        assert not decision.human_approval_required and decision.assign_group == "settlements"

    def test_critical_waits_for_a_human(self, domain_doc: dict[str, Any], tenant_doc: dict[str, Any]) -> None:
        decision = self.decide(domain_doc, tenant_doc, "SETTLEMENT_FAIL", "CRITICAL")
        assert decision.human_approval_required and not decision.auto_action_allowed
        assert decision.approval_reasons == ("noAutoActionIfSeverityIn includes CRITICAL: a person must act",)
        assert decision.assign_group == "desk-leads"

    def test_tenant_can_lift_the_critical_gate(
        self, domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
    ) -> None:
        tenant_doc["guardrailOverrides"] = {"noAutoActionIfSeverityIn": []}
        decision = self.decide(domain_doc, tenant_doc, "SETTLEMENT_FAIL", "CRITICAL")
        assert decision.auto_action_allowed and not decision.human_approval_required

    def test_not_approved_playbook(self, domain_doc: dict[str, Any], tenant_doc: dict[str, Any]) -> None:
        decision = self.decide(domain_doc, tenant_doc, "POSITION_BREAK", "HIGH")
        assert decision.actionability == "ACTIONABLE_NON_APPROVED_PROCESS"
        assert decision.selected_playbook_id is None and decision.recommended_playbook_id == "PB_BREAK"
        assert decision.human_approval_required and not decision.auto_action_allowed

    def test_non_actionable(self, domain_doc: dict[str, Any], tenant_doc: dict[str, Any]) -> None:
        decision = self.decide(domain_doc, tenant_doc, "SETTLEMENT_NOTICE", "LOW")
        assert decision.actionability == "NON_ACTIONABLE_INFO_ONLY"
        assert not decision.human_approval_required and decision.selection is None

    def test_approval_rules_type_and_confidence(
        self, domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
    ) -> None:
        tenant_doc["humanApprovalRules"] = [{"severityIn": ["MEDIUM"], "requireApproval": True}]
        tenant_doc["guardrailOverrides"] = {"requireHumanApprovalFor": ["SETTLEMENT_FAIL"]}
        decision = self.decide(domain_doc, tenant_doc, "SETTLEMENT_FAIL", "MEDIUM", confidence=0.5)
        assert decision.approval_reasons == (
            "requireHumanApprovalFor lists SETTLEMENT_FAIL",
            "humanApprovalRules[0] requires approval for MEDIUM",
            "confidence 0.50 below humanApprovalThreshold 0.70",
        )

    def test_escalation_by_confidence(self, domain_doc: dict[str, Any], tenant_doc: dict[str, Any]) -> None:
        decision = self.decide(domain_doc, tenant_doc, "SETTLEMENT_FAIL", "MEDIUM", confidence=0.3)
        assert decision.escalate and not decision.auto_action_allowed
        assert decision.escalation_reason == "confidence 0.30 below escalateIfConfidenceBelow 0.40"


class TestTypes:
    def test_given_normalized_detected_unknown(self, domain_doc: dict[str, Any]) -> None:
        domain, _ = build(domain_doc)
        assert classify_type(domain, "SETTLEMENT_FAIL", {}).method == "given"
        normalized = classify_type(domain, "settlement-fail", {})
        assert (normalized.exception_type, normalized.method) == ("SETTLEMENT_FAIL", "normalized")
        detected = classify_type(domain, None, data(None, settlementStatus="FAILED"))
        assert (detected.exception_type, detected.method, detected.confidence) == (
            "SETTLEMENT_FAIL",
            "detected",
            0.8,
        )
        unknown = classify_type(domain, "MARGIN_CALL", data("MARGIN_CALL"))
        assert unknown.exception_type is None
        assert (
            unknown.reason
            == "type 'MARGIN_CALL' is not in the mini-markets taxonomy and no detection rule matches"
        )

    def test_unknown_type_escalates(self, domain_doc: dict[str, Any], tenant_doc: dict[str, Any]) -> None:
        domain, tenant = build(domain_doc, tenant_doc)
        decision = decide_case(domain, tenant, exception_type="MARGIN_CALL", raw_payload={})
        assert decision.resolution_status == "ESCALATED" and decision.policy is None

    @pytest.mark.parametrize(("given", "expected"), [(15.0, 15.0), (None, 50.0)])
    def test_sla_minutes_remaining(
        self, domain_doc: dict[str, Any], tenant_doc: dict[str, Any], given: float | None, expected: float
    ) -> None:
        from datetime import UTC, datetime, timedelta

        tenant_doc["sla"] = {"byExceptionType": {"SETTLEMENT_FAIL": 60}}
        _, tenant = build(domain_doc, tenant_doc)
        now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        assert (
            sla_minutes_remaining(
                tenant, "SETTLEMENT_FAIL", given=given, timestamp=now - timedelta(minutes=10), now=now
            )
            == expected
        )


class TestReviewFixes:
    def test_dates_in_payload_are_readable_by_conditions(self, domain_doc: dict[str, Any]) -> None:
        from datetime import date

        domain_doc["severityRules"][0]["condition"] = "rawPayload.tradeDate == '2026-11-20'"
        domain, _ = build(domain_doc)
        decision = decide_severity(domain, None, data("SETTLEMENT_FAIL", tradeDate=date(2026, 11, 20)))
        assert decision.source == "rule"

    def test_tenant_block_lists_add_to_the_domains(
        self, domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
    ) -> None:
        from packs.guardrails import effective_guardrails

        domain_doc["guardrails"]["blockLists"] = {"tools": ["retrySettlement"]}
        tenant_doc["guardrailOverrides"] = {"blockLists": {"tools": ["getTrade"], "actions": ["notify"]}}
        domain, tenant = build(domain_doc, tenant_doc)
        rails = effective_guardrails(domain.guardrails, tenant.guardrailOverrides)
        assert rails.blocked_tools == {"retrySettlement", "getTrade"} and rails.blocked_actions == {"notify"}

    def test_tenant_override_is_as_sure_as_a_rule(
        self, domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
    ) -> None:
        domain, tenant = build(domain_doc, tenant_doc)
        decision = decide_severity(domain, tenant, data("POSITION_BREAK"))
        assert (decision.severity, decision.source, decision.confidence) == ("HIGH", "default", 0.9)

    def test_a_step_needing_approval_means_approval_required(
        self, domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
    ) -> None:
        tenant_doc["guardrailOverrides"] = {"blockLists": {"tools": ["retrySettlement"]}}
        domain, tenant = build(domain_doc, tenant_doc)
        decision = decide_case(
            domain, tenant, exception_type="SETTLEMENT_FAIL", raw_payload={"tradeId": "T", "amount": 5}
        )
        assert decision.policy is not None and not decision.policy.human_approval_required
        assert decision.outcome()["humanApprovalRequired"] is True
        assert decision.resolution_status == "PENDING_APPROVAL"
