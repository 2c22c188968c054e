"""``fallbacks``: a domain pack may ask for the earlier system's answers where the packs say nothing
(severity guessed from the type name, a type without a playbook information only); exops's own
choices otherwise. ``exops packs import --legacy-behaviour`` writes the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from app.cli.main import cli
from graph.builder import build_graph
from graph.checkpoint import open_checkpointer
from graph.runner import CaseRunner
from packs.decisions import case_data, decide_case
from packs.domain import DomainPack
from packs.loader import load_domain
from packs.policy import decide_policy
from packs.problems import PackError
from packs.severity import decide_severity
from packs.tenant import TenantPolicyPack
from tests.conftest import FIXTURES
from tests.graph_helpers import context, mini_packs, raw

LEGACY = {"severityFromTypeName": True, "typeWithoutPlaybook": "NON_ACTIONABLE"}


def payments(fallbacks: dict[str, Any] | None = None, **changes: Any) -> DomainPack:
    """A small domain of our own: one rule, one playbook, type names with and without telling words."""
    doc: dict[str, Any] = {
        "domainName": "payments",
        "version": "1.0.0",
        "exceptionTypes": {
            name: {"description": name.replace("_", " ").lower()}
            for name in (
                "PAYMENT_FAILED",
                "LEDGER_BREAK",
                "FAILED_LEDGER_BREAK",
                "REFUND_MISMATCH",
                "CARD_EXPIRED",
                "HIGH_VALUE_HOLD",
            )
        },
        "severityRules": [
            {"id": "expired", "condition": "exceptionType == 'CARD_EXPIRED'", "severity": "LOW"}
        ],
        "playbooks": [
            {
                "id": "PB_PAY",
                "name": "Pay",
                "appliesTo": ["PAYMENT_FAILED"],
                "steps": [{"type": "manual", "name": "Call the bank", "instructions": "Call the bank"}],
            },
            {
                "id": "PB_LEDGER_BIG",
                "name": "Big ledger",
                "appliesTo": ["LEDGER_BREAK"],
                "match": {"severity_in": ["CRITICAL"]},
                "steps": [{"type": "manual", "name": "Recount", "instructions": "Recount"}],
            },
        ],
        **changes,
    }
    if fallbacks is not None:
        doc["fallbacks"] = fallbacks
    return DomainPack.model_validate(doc)


def tenant(**changes: Any) -> TenantPolicyPack:
    return TenantPolicyPack.model_validate(
        {
            "tenantId": "PAY_001",
            "tenantName": "Pay",
            "domainName": "payments",
            "approvedBusinessProcesses": ["PB_PAY", "PB_LEDGER_BIG"],
            **changes,
        }
    )


def severity_of(domain: DomainPack, exception_type: str, **kwargs: Any) -> tuple[str, str, float, str]:
    data = case_data(
        exception_type=exception_type, tenant_id="PAY_001", domain_name="payments", raw_payload={}
    )
    decided = decide_severity(domain, kwargs.pop("tenant_pack", tenant()), data, **kwargs)
    return decided.severity, decided.source, decided.confidence, decided.reason


class TestSeverityFromTypeName:
    def test_off_by_default_no_rule_means_the_pack_default(self) -> None:
        assert severity_of(payments(), "PAYMENT_FAILED")[:3] == ("MEDIUM", "fallback", 0.6)
        assert severity_of(payments(defaultSeverity="LOW"), "PAYMENT_FAILED")[:3] == ("LOW", "default", 0.75)

    @pytest.mark.parametrize(
        ("exception_type", "expected", "word"),
        [
            ("PAYMENT_FAILED", "HIGH", "FAIL"),
            ("LEDGER_BREAK", "CRITICAL", "BREAK"),
            ("FAILED_LEDGER_BREAK", "CRITICAL", "BREAK"),  # the table is tried in order: BREAK before FAIL
            ("REFUND_MISMATCH", "LOW", "MISMATCH"),
            ("HIGH_VALUE_HOLD", "HIGH", "HIGH"),
        ],
    )
    def test_the_earlier_systems_table(self, exception_type: str, expected: str, word: str) -> None:
        severity, source, confidence, reason = severity_of(payments(LEGACY), exception_type)
        assert (severity, source, confidence) == (expected, "type_name", 0.75)
        assert reason == (
            f"no rule matched; fallbacks.severityFromTypeName: the type name contains {word!r} → {expected}"
        )

    def test_rules_and_the_source_come_first_and_the_tenant_last(self) -> None:
        assert severity_of(payments(LEGACY), "CARD_EXPIRED")[:2] == ("LOW", "rule")
        assert severity_of(payments(LEGACY), "PAYMENT_FAILED", source_severity="LOW")[:2] == ("LOW", "source")
        overridden = severity_of(
            payments(LEGACY),
            "PAYMENT_FAILED",
            tenant_pack=tenant(severityOverrides={"PAYMENT_FAILED": "CRITICAL"}),
        )
        assert overridden[0] == "CRITICAL" and "fallbacks.severityFromTypeName" in overridden[3]

    def test_a_name_without_the_words_falls_back_as_usual(self) -> None:
        domain = payments(
            {**LEGACY, "typeNameKeywords": [{"contains": ["ledger"], "severity": "HIGH"}]},
            defaultSeverity="LOW",
        )
        assert severity_of(domain, "LEDGER_BREAK")[:2] == ("HIGH", "type_name")  # words ignore case
        assert severity_of(domain, "PAYMENT_FAILED")[:2] == ("LOW", "default")  # not the earlier table


class TestTypeWithoutPlaybook:
    def policy_of(
        self, domain: DomainPack, exception_type: str, severity: str = "HIGH", **changes: Any
    ) -> Any:
        data = case_data(
            exception_type=exception_type, tenant_id="PAY_001", domain_name="payments", raw_payload={}
        )
        return decide_policy(
            domain,
            tenant(**changes),
            exception_type=exception_type,
            severity=severity,  # type: ignore[arg-type]
            confidence=0.9,
            data={**data, "severity": severity},
            sla_minutes_remaining=None,
        )

    def test_by_default_a_person_gets_a_plan_to_decide(self) -> None:
        decided = self.policy_of(payments(), "REFUND_MISMATCH")
        assert decided.actionability == "ACTIONABLE_NON_APPROVED_PROCESS" and decided.human_approval_required

    def test_non_actionable_when_the_pack_asks(self) -> None:
        decided = self.policy_of(payments({"typeWithoutPlaybook": "NON_ACTIONABLE"}), "REFUND_MISMATCH")
        assert decided.actionability == "NON_ACTIONABLE_INFO_ONLY" and not decided.human_approval_required
        assert decided.selected_playbook_id is None and decided.selection is None
        assert (
            "no playbook applies to REFUND_MISMATCH and fallbacks.typeWithoutPlaybook is NON_ACTIONABLE: "
            "information only, as the earlier system decided"
        ) in decided.evidence

    def test_a_type_with_a_playbook_is_never_made_non_actionable(self) -> None:
        domain = payments({"typeWithoutPlaybook": "NON_ACTIONABLE"})
        # PB_LEDGER_BIG lists the type but does not match at HIGH: a person decides, as without the option.
        assert self.policy_of(domain, "LEDGER_BREAK").actionability == "ACTIONABLE_NON_APPROVED_PROCESS"
        assert self.policy_of(domain, "PAYMENT_FAILED").actionability == "ACTIONABLE_APPROVED_PROCESS"
        custom = {
            "id": "PB_REFUND",
            "name": "Refund",
            "appliesTo": ["REFUND_MISMATCH"],
            "steps": [{"type": "manual", "name": "Check", "instructions": "Check"}],
        }
        assert (
            self.policy_of(domain, "REFUND_MISMATCH", customPlaybooks=[custom]).actionability
            == "ACTIONABLE_NON_APPROVED_PROCESS"
        )


@pytest.mark.parametrize(
    ("fallbacks", "problem"),
    [
        (
            {"typeNameKeywords": [{"contains": ["FAIL"], "severity": "HIGH"}]},
            ("$.fallbacks", "typeNameKeywords is only read with severityFromTypeName: true"),
        ),
        (
            {"typeWithoutPlaybook": "X"},
            (
                "$.fallbacks.typeWithoutPlaybook",
                "invalid value 'X': expected 'DRAFT_FOR_APPROVAL' or 'NON_ACTIONABLE'",
            ),
        ),
        (
            {"severityFromTypeName": True, "typeNameKeywords": [{"contains": [" "], "severity": "HIGH"}]},
            ("$.fallbacks.typeNameKeywords[0].contains", "a word to look for cannot be empty"),
        ),
    ],
)
def test_fallbacks_problems_name_what_the_author_wrote(
    fallbacks: dict[str, Any], problem: tuple[str, str]
) -> None:
    doc = yaml.safe_load((FIXTURES / "mini-domain.yaml").read_text())
    doc["fallbacks"] = fallbacks
    with pytest.raises(PackError) as refused:
        load_domain(doc, "mini.yaml")
    assert [(p.path, p.message) for p in refused.value.problems] == [problem]


async def test_the_graph_decides_with_the_fallbacks_and_says_so() -> None:
    domain, tenant_pack = mini_packs(domain_edit=lambda d: d.update(fallbacks=LEGACY, defaultSeverity=None))
    ctx = context(domain, tenant_pack)
    async with open_checkpointer("memory", None) as saver:
        runner = CaseRunner(build_graph(checkpointer=saver))
        # SEC_MASTER_MISMATCH: no rule matches without an ECONOMIC impact, and no playbook covers it.
        result = await runner.start(ctx, raw("E-SM", "SEC_MASTER_MISMATCH", isin="X"))
        assert result["severity"] == "LOW" and result["actionability"] == "NON_ACTIONABLE_INFO_ONLY"
        assert result["resolutionStatus"] == "RESOLVED" and result["outcome"]["outcome"] == "non_actionable"
        triage, policy = result["stages"][1], result["stages"][2]
        assert any("fallbacks.severityFromTypeName" in e["detail"] for e in triage["evidence"])
        assert any("fallbacks.typeWithoutPlaybook" in e["detail"] for e in policy["evidence"])
        # At CRITICAL an information-only case still goes to a person.
        critical = await runner.start(ctx, raw("E-SM2", "SEC_MASTER_MISMATCH", impact="ECONOMIC"))
        assert critical["actionability"] == "NON_ACTIONABLE_INFO_ONLY"
        assert critical["resolutionStatus"] == "ESCALATED"


EARLIER_DOMAIN = {
    "domainName": "Payments",
    "version": "1.0.0",
    "exceptionTypes": {
        "PAYMENT_FAILED": {"description": "A payment failed"},
        "REFUND_MISMATCH": {"description": "A refund does not match its payment"},
    },
    "severityRules": [],
    "tools": {
        "refundPayment": {"description": "Refund a payment", "endpoint": "https://pay.example.test/refund"}
    },
    "playbooks": [
        {"exceptionType": "PAYMENT_FAILED", "steps": [{"action": "Call the bank", "parameters": {}}]}
    ],
}


def test_import_with_legacy_behaviour_writes_the_fallbacks(tmp_path: Path) -> None:
    source = tmp_path / "payments.json"
    source.write_text(json.dumps(EARLIER_DOMAIN))
    plain, legacy = tmp_path / "plain.yaml", tmp_path / "legacy.yaml"
    runner = CliRunner()
    assert runner.invoke(cli, ["packs", "import", str(source), "-o", str(plain)]).exit_code == 0
    imported = runner.invoke(cli, ["packs", "import", str(source), "-o", str(legacy), "--legacy-behaviour"])
    assert imported.exit_code == 0, imported.stderr
    assert "$.fallbacks" in imported.stderr and "--legacy-behaviour" in imported.stderr
    assert "fallbacks" not in yaml.safe_load(plain.read_text())
    assert yaml.safe_load(legacy.read_text())["fallbacks"] == LEGACY
    domain = load_domain(yaml.safe_load(legacy.read_text()), str(legacy)).pack
    assert isinstance(domain, DomainPack)
    assert severity_of(domain, "PAYMENT_FAILED", tenant_pack=None)[:2] == ("HIGH", "type_name")
    assert severity_of(domain, "REFUND_MISMATCH", tenant_pack=None)[:2] == ("LOW", "type_name")


@pytest.mark.parametrize(
    ("payload", "status"), [({"isin": "X"}, "RESOLVED"), ({"impact": "ECONOMIC"}, "ESCALATED")]
)
def test_pack_suites_predict_what_the_graph_does(payload: dict[str, Any], status: str) -> None:
    """The decision chain suites use agrees with the graph run above, CRITICAL escalation included."""
    domain, tenant_pack = mini_packs(domain_edit=lambda d: d.update(fallbacks=LEGACY, defaultSeverity=None))
    decided = decide_case(domain, tenant_pack, exception_type="SEC_MASTER_MISMATCH", raw_payload=payload)
    assert decided.policy is not None and decided.policy.actionability == "NON_ACTIONABLE_INFO_ONLY"
    assert decided.resolution_status == status


def test_import_of_a_folder_with_legacy_behaviour(tmp_path: Path) -> None:
    source = tmp_path / "old"
    source.mkdir()
    (source / "payments.json").write_text(json.dumps(EARLIER_DOMAIN))
    earlier_tenant = {"tenantId": "PAY_001", "domainName": "Payments", "approvedTools": ["refundPayment"]}
    (source / "tenant.json").write_text(json.dumps(earlier_tenant))
    out = tmp_path / "new"
    imported = CliRunner().invoke(cli, ["packs", "import", str(source), "-o", str(out), "--legacy-behaviour"])
    assert imported.exit_code == 0, imported.output
    domains, tenants = list((out / "domains").iterdir()), list((out / "tenants").iterdir())
    assert json.loads(domains[0].read_text())["fallbacks"] == LEGACY
    assert "fallbacks" not in json.loads(tenants[0].read_text())
    assert "$.fallbacks" in (out / "IMPORT-NOTES.md").read_text()
