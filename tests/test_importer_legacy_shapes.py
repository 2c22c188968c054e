"""Every pack shape of the earlier system, each with a minimal pack of its own: what it becomes,
the notice that says so, and that the rewritten pack means what the author meant."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from packs.decisions import decide_case
from packs.domain import DomainPack
from packs.guardrails import effective_guardrails
from packs.importer import upgrade_document
from packs.loader import LoadedPack, load_domain, load_many, load_tenant
from packs.playbook import CallToolStep, ManualStep
from packs.policy import route_group
from packs.problems import PackError
from packs.severity import decide_severity
from packs.suite_runner import run_suites
from packs.tenant import TenantPolicyPack
from tools.templating import render_value

BASE: dict[str, Any] = {
    "domainName": "Shop",
    "version": "1.0.0",
    "exceptionTypes": {
        "PAYMENT_FAILED": {"description": "A payment failed"},
        "ORDER_STUCK": {"description": "An order is stuck"},
    },
    "tools": {
        "refundPayment": {
            "description": "Refund a payment",
            "parameters": {"type": "object", "properties": {"paymentId": {"type": "string"}}},
        },
        "openCase": {
            "description": "Open a case",
            "parameters": {
                "type": "object",
                "properties": {"caseType": {"type": "string"}, "payload": {"type": "object"}},
            },
        },
    },
}


def domain_of(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    doc.update(changes)
    return doc


def load(doc: dict[str, Any], file: str = "shop.json") -> LoadedPack:
    return load_domain(doc, file)


def notices(loaded: LoadedPack) -> list[str]:
    return [f"{n.path}: {n.message}" for n in loaded.notices]


def has(loaded: LoadedPack, path: str, *fragments: str) -> bool:
    return any(n.path == path and all(f in n.message for f in fragments) for n in loaded.notices)


def problems(doc: dict[str, Any], file: str = "shop.json") -> list[str]:
    with pytest.raises(PackError) as caught:
        load_domain(doc, file)
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


def pack(loaded: LoadedPack) -> DomainPack:
    assert isinstance(loaded.pack, DomainPack)
    return loaded.pack


def tenant(doc: dict[str, Any], domain: DomainPack, file: str = "tenant.json") -> LoadedPack:
    return load_tenant(doc, file, lambda name, version: domain if name == domain.domainName else None)


def tenant_pack(loaded: LoadedPack) -> TenantPolicyPack:
    assert isinstance(loaded.pack, TenantPolicyPack)
    return loaded.pack


TENANT: dict[str, Any] = {"tenantId": "TENANT_SHOP_001", "domainName": "Shop"}


# Versions


@pytest.mark.parametrize(
    ("file", "version", "said"),
    [
        (
            "runtime/domainpacks/T1/Shop/2.1.0.json",
            "2.1.0",
            "missing: took 2.1.0 from the file name 2.1.0.json",
        ),
        ("packs/v3.0.json", "3.0", "missing: took 3.0 from the file name v3.0.json"),
        ("packs/shop.sample.json", "1.0.0", "missing, and the file name shop.sample.json is not a version"),
    ],
)
def test_missing_version(file: str, version: str, said: str) -> None:
    doc = domain_of()
    del doc["version"]
    loaded = load(doc, file)
    assert pack(loaded).version == version
    assert has(loaded, "$.version", said)


@pytest.mark.parametrize(
    ("written", "version"), [("v1.0", "1.0"), ("V2.3.1", "2.3.1"), (2, "2.0"), (1.5, "1.5")]
)
def test_version_written_differently(written: Any, version: str) -> None:
    loaded = load(domain_of(version=written))
    assert pack(loaded).version == version
    assert any(n.path == "$.version" for n in loaded.notices)


# Ontology and entities


def test_ontology_concepts_are_lifted() -> None:
    loaded = load(
        domain_of(ontology={"concepts": {"Trade": {"definition": "a trade", "synonyms": ["deal"]}}})
    )
    assert pack(loaded).ontology["Trade"].synonyms == ["deal"]
    assert has(loaded, "$.ontology.concepts", "lifted")


def test_relations_as_strings_and_to_entity_objects() -> None:
    entities = {
        "Order": {"attributes": {"orderId": {"type": "string", "required": True}}, "relations": []},
        "Line": {"attributes": {}, "relations": ["Order", {"toEntity": "Order", "type": "hasMany"}]},
        "Refund": {"attributes": {}, "relations": [{"toEntity": "Order", "type": "belongsTo"}]},
    }
    loaded = load(domain_of(entities=entities))
    line, refund = pack(loaded).entities["Line"], pack(loaded).entities["Refund"]
    assert [(r.name, r.target, r.cardinality) for r in line.relations] == [
        ("order", "Order", "one"),
        ("order", "Order", "many"),
    ]
    assert refund.relations[0].cardinality == "one"
    assert has(loaded, "$.entities.Line.relations[0]", "became {name: order, target: Order}")
    assert has(loaded, "$.entities.Line.relations[1]", "type 'hasMany' read as cardinality many")


def test_relation_to_an_unknown_entity_is_reported_where_written() -> None:
    found = problems(domain_of(entities={"Line": {"relations": [{"toEntity": "Nope", "type": "x"}]}}))
    assert found == ["$.entities.Line.relations[0].toEntity: unknown entity 'Nope'"]


def test_entities_with_keys_and_fields() -> None:
    loaded = load(domain_of(entities={"Patient": {"keys": ["patientId"], "fields": ["patientId", "dob"]}}))
    attributes = pack(loaded).entities["Patient"].attributes
    assert {name: (a.type, a.required) for name, a in attributes.items()} == {
        "patientId": ("string", True),
        "dob": ("string", False),
    }
    assert has(loaded, "$.entities.Patient", "typed 'string' (the file gives no types", "keys patientId")


def test_fields_given_with_types() -> None:
    loaded = load(
        domain_of(
            entities={"Claim": {"keys": ["claimId"], "fields": {"claimId": "string", "amount": "float"}}}
        )
    )
    attributes = pack(loaded).entities["Claim"].attributes
    assert attributes["amount"].type == "number" and attributes["claimId"].required is True


def test_bare_type_attributes() -> None:
    entities = {
        "Trade": {
            "attributes": {
                "id": "string",
                "qty": "int",
                "tags": "string[]",
                "on": "Date",
                "px": {"type": "Float"},
            }
        }
    }
    loaded = load(domain_of(entities=entities))
    types = {n: a.type for n, a in pack(loaded).entities["Trade"].attributes.items()}
    assert types == {"id": "string", "qty": "integer", "tags": "array", "on": "date", "px": "number"}
    assert has(loaded, "$.entities.Trade.attributes.qty", "bare type 'int' became {type: integer}")


def test_an_unknown_bare_type_is_a_problem_naming_the_choices() -> None:
    found = problems(domain_of(entities={"Trade": {"attributes": {"px": "money"}}}))
    assert found == [
        "$.entities.Trade.attributes.px: type 'money' is not understood: write one of string, number, "
        "integer, boolean, object, array, date, datetime, or TYPE[] for a list"
    ]


# Guardrails


def test_domain_allow_and_block_lists_as_plain_lists() -> None:
    loaded = load(
        domain_of(guardrails={"allowLists": ["refundPayment", "notify"], "blockLists": ["openCase"]})
    )
    rails = effective_guardrails(pack(loaded).guardrails, None)
    assert rails.allowed_tools == {"refundPayment"} and rails.allowed_actions == {"notify"}
    assert rails.blocked_tools == {"openCase"}
    assert has(loaded, "$.guardrails.allowLists", "exops enforces it")


def test_empty_plain_lists_restrict_nothing() -> None:
    loaded = load(domain_of(guardrails={"allowLists": [], "blockLists": [], "humanApprovalThreshold": 0.8}))
    rails = effective_guardrails(pack(loaded).guardrails, None)
    assert rails.allowed_tools is None and rails.blocked_tools == frozenset()
    assert has(loaded, "$.guardrails.allowLists", "no tool or action is restricted")


def test_severity_gates_with_require_approval_and_lower_case() -> None:
    loaded = load(domain_of(guardrails={"severityGates": {"high": {"requireApproval": True}}}))
    gates = pack(loaded).guardrails.severityGates
    assert gates is not None and gates["HIGH"].humanApprovalRequired is True


def test_null_guardrails_mean_the_defaults() -> None:
    loaded = load(domain_of(guardrails=None))
    assert pack(loaded).guardrails.allowLists is None
    assert has(loaded, "$.guardrails", "null")


# Exception types and severity


def test_name_repeating_the_key_and_tags() -> None:
    types = {"PAYMENT_FAILED": {"name": "PAYMENT_FAILED", "description": "x", "tags": ["billing"]}}
    loaded = load(domain_of(exceptionTypes=types))
    assert has(loaded, "$.exceptionTypes.PAYMENT_FAILED.name", "repeats the key: dropped")
    assert has(loaded, "$.exceptionTypes.PAYMENT_FAILED.tags", "dropped (['billing'])")


def test_a_name_differing_from_the_key_is_said() -> None:
    loaded = load(domain_of(exceptionTypes={"PAYMENT_FAILED": {"name": "PaymentFailed", "description": "x"}}))
    assert "PAYMENT_FAILED" in pack(loaded).exceptionTypes
    assert has(loaded, "$.exceptionTypes.PAYMENT_FAILED.name", "'PaymentFailed' differs from the key")


def test_default_severity_of_a_type_survives_as_a_rule() -> None:
    types = {
        "CREDENTIAL_EXPIRED": {"description": "x", "defaultSeverity": "HIGH"},
        "DEMOGRAPHIC_CONFLICT": {"description": "y", "defaultSeverity": "low"},
    }
    rules = [
        {
            "if": "exceptionType == 'DEMOGRAPHIC_CONFLICT' && rawPayload.affectsBilling == true",
            "severity": "MEDIUM",
        }
    ]
    loaded = load(domain_of(exceptionTypes=types, severityRules=rules, playbooks=[]))
    domain = pack(loaded)
    expired = decide_severity(domain, None, {"exceptionType": "CREDENTIAL_EXPIRED", "rawPayload": {}})
    assert (expired.severity, expired.source, expired.confidence) == ("HIGH", "rule", 0.9)
    assert expired.winning_rule is not None and expired.winning_rule.id == "CREDENTIAL_EXPIRED_default"
    quiet = decide_severity(domain, None, {"exceptionType": "DEMOGRAPHIC_CONFLICT", "rawPayload": {}})
    billing = decide_severity(
        domain, None, {"exceptionType": "DEMOGRAPHIC_CONFLICT", "rawPayload": {"affectsBilling": True}}
    )
    assert (quiet.severity, billing.severity) == ("LOW", "MEDIUM")
    assert has(loaded, "$.exceptionTypes.DEMOGRAPHIC_CONFLICT.defaultSeverity", "severity 'low' read as LOW")
    assert has(loaded, "$.exceptionTypes.CREDENTIAL_EXPIRED.defaultSeverity", "became the severity rule")


def test_severity_on_a_type_as_the_guide_writes_it() -> None:
    loaded = load(domain_of(exceptionTypes={"PaymentFailed": {"description": "x", "severity": "high"}}))
    decided = decide_severity(pack(loaded), None, {"exceptionType": "PaymentFailed", "rawPayload": {}})
    assert decided.severity == "HIGH"


def test_a_bad_default_severity_is_reported_where_written() -> None:
    found = problems(
        domain_of(exceptionTypes={"PAYMENT_FAILED": {"description": "x", "defaultSeverity": "urgent"}})
    )
    assert len(found) == 1 and found[0].startswith(
        "$.exceptionTypes.PAYMENT_FAILED.defaultSeverity: invalid value 'urgent'"
    )


def test_type_level_severity_rules_apply_to_their_type_only() -> None:
    types = {
        "PAYMENT_FAILED": {
            "description": "x",
            "severityRules": [{"condition": "rawPayload.amount > 100", "severity": "critical"}],
        },
        "ORDER_STUCK": {"description": "y"},
    }
    domain = pack(load(domain_of(exceptionTypes=types)))
    big = {"rawPayload": {"amount": 500}}
    assert decide_severity(domain, None, {"exceptionType": "PAYMENT_FAILED", **big}).severity == "CRITICAL"
    assert decide_severity(domain, None, {"exceptionType": "ORDER_STUCK", **big}).source == "fallback"


def test_lower_case_severities_and_if_prefixed_conditions() -> None:
    rules = [{"condition": "if: exceptionType == 'ORDER_STUCK'", "severity": "high"}]
    loaded = load(domain_of(severityRules=rules, defaultSeverity="low"))
    domain = pack(loaded)
    assert domain.defaultSeverity == "LOW" and domain.severityRules[0].severity == "HIGH"
    assert domain.severityRules[0].condition == "exceptionType == 'ORDER_STUCK'"
    assert has(loaded, "$.severityRules[0].condition", "leading 'if:' removed")


# Tools


def test_tools_grouped_by_category_as_objects() -> None:
    tools = {
        "dbQueries": [
            {
                "name": "getClaim",
                "description": "Fetch a claim",
                "argsSchema": {"claimId": "string"},
                "returns": "Claim",
            }
        ],
        "apiActions": [
            {
                "name": "reprocessClaim",
                "description": "Replay",
                "argsSchema": {"claimId": "string", "codes": "string[]"},
            }
        ],
    }
    steps = [{"action": "reprocessClaim", "parameters": {"claimId": "{{ exception.rawPayload.claimId }}"}}]
    doc = domain_of(
        entities={"Claim": {"attributes": {"claimId": "string"}}},
        tools=tools,
        playbooks=[{"exceptionType": "PAYMENT_FAILED", "steps": steps}],
    )
    loaded = load(doc)
    domain = pack(loaded)
    assert sorted(domain.tools) == ["getClaim", "reprocessClaim"]
    get_claim, reprocess = domain.tools["getClaim"], domain.tools["reprocessClaim"]
    assert (get_claim.mutating, reprocess.mutating) == (False, True)
    assert reprocess.parameters == {
        "type": "object",
        "properties": {
            "claimId": {"type": "string"},
            "codes": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["claimId", "codes"],
    }
    assert get_claim.outputSchema == {"type": "object", "description": "the entity Claim"}
    step = domain.playbooks[0].steps[0]
    assert isinstance(step, CallToolStep) and step.tool == "reprocessClaim"
    assert has(loaded, "$.tools.reprocessClaim.argsSchema", "every argument (claimId, codes) is required")


def test_old_parameter_form_becomes_a_schema_that_checks() -> None:
    tools = {
        "getOrder": {
            "description": "Fetch an order",
            "parameters": {
                "orderId": {"type": "string", "required": True},
                "limit": {"type": "int", "required": False},
            },
            "endpoint": "https://api.example.test/getOrder",
        }
    }
    loaded = load(domain_of(tools=tools))
    schema = pack(loaded).tools["getOrder"].parameters
    assert schema["required"] == ["orderId"]
    validator = Draft202012Validator(schema)
    assert not validator.is_valid({"limit": 3})  # today: a schema that checked nothing accepted this
    assert validator.is_valid({"orderId": "O-1", "limit": 3})
    assert has(loaded, "$.tools.getOrder.parameters", "became a JSON Schema (required: orderId)")


def test_tool_name_version_max_retries() -> None:
    tools = {
        "refundPayment": {
            "name": "refundPayment",
            "description": "Refund",
            "endpoint": "https://api.example.test/refund",
            "version": "2.0.0",
            "maxRetries": 3,
            "timeoutSeconds": 5,
        }
    }
    loaded = load(domain_of(tools=tools))
    tool = pack(loaded).tools["refundPayment"]
    assert (tool.retries, tool.timeoutSeconds) == (3, 5)
    assert has(loaded, "$.tools.refundPayment.version", "dropped")
    assert has(loaded, "$.tools.refundPayment.maxRetries", "renamed to retries")
    assert has(loaded, "$.tools.refundPayment.name", "repeats the key")


def test_too_many_retries_is_reported_at_max_retries() -> None:
    tools = {"refundPayment": {"description": "Refund", "maxRetries": 50}}
    found = problems(domain_of(tools=tools))
    assert [f.split(":")[0] for f in found] == ["$.tools.refundPayment.maxRetries"]


def test_tool_auth_never_carries_a_secret_into_the_pack() -> None:
    tools = {"refundPayment": {"description": "Refund", "auth": {"type": "apiKey", "key": "sk-live-123"}}}
    loaded = load(domain_of(tools=tools))
    auth = pack(loaded).tools["refundPayment"].auth
    assert (auth.kind, auth.secretRef) == ("api_key", "SHOP_REFUNDPAYMENT_API_KEY")
    assert "sk-live-123" not in json.dumps(loaded.document) + " ".join(notices(loaded))
    assert has(
        loaded, "$.tools.refundPayment.auth", "set the secret SHOP_REFUNDPAYMENT_API_KEY", "not copied"
    )


# Steps and placeholders


def _playbook(*steps: Any) -> list[dict[str, Any]]:
    return [{"exceptionType": "PAYMENT_FAILED", "steps": list(steps)}]


def test_action_sentence_naming_a_tool_call() -> None:
    loaded = load(
        domain_of(playbooks=_playbook({"action": "Retry using refundPayment(paymentId)", "parameters": {}}))
    )
    step = pack(loaded).playbooks[0].steps[0]
    assert isinstance(step, ManualStep) and step.suggestedToolCall is not None
    assert step.suggestedToolCall.tool == "refundPayment"
    assert step.suggestedToolCall.arguments == {"paymentId": "{{ exception.rawPayload.paymentId }}"}


def test_sentence_with_a_literal_and_a_wrong_case_tool() -> None:
    loaded = load(domain_of(playbooks=_playbook("OpenCase('CODING_REVIEW') and assign to Coders.")))
    step = pack(loaded).playbooks[0].steps[0]
    assert isinstance(step, ManualStep) and step.suggestedToolCall is not None
    assert (step.suggestedToolCall.tool, step.suggestedToolCall.arguments) == (
        "openCase",
        {"caseType": "CODING_REVIEW"},
    )
    assert has(loaded, "$.playbooks[0].steps[0]", "tool 'openCase' (written 'OpenCase')")


def test_invoke_tool_and_call_tool_actions() -> None:
    steps = [
        {"action": "invokeTool('refundPayment')", "parameters": {"paymentId": "P-1"}},
        {"action": "callTool", "parameters": {"tool": "openCase", "caseType": "X"}},
        {"action": "callTool", "parameters": {"toolName": "openCase", "arguments": {"caseType": "Y"}}},
        {"action": "RefundPayment", "parameters": {"paymentId": "P-2"}},
    ]
    loaded = load(domain_of(playbooks=_playbook(*steps)))
    calls = pack(loaded).playbooks[0].steps
    assert all(isinstance(s, CallToolStep) for s in calls)
    assert [(s.tool, s.arguments) for s in calls if isinstance(s, CallToolStep)] == [
        ("refundPayment", {"paymentId": "P-1"}),
        ("openCase", {"caseType": "X"}),
        ("openCase", {"caseType": "Y"}),
        ("refundPayment", {"paymentId": "P-2"}),
    ]
    assert has(
        loaded, "$.playbooks[0].steps[3]", "'RefundPayment' matched to the defined tool 'refundPayment'"
    )


def test_an_invoked_tool_that_does_not_exist_is_reported_at_the_action() -> None:
    found = problems(domain_of(playbooks=_playbook({"action": "invokeTool('nope')", "parameters": {}})))
    assert found == ["$.playbooks[0].steps[0].action: unknown tool 'nope'"]


def test_conditional_and_fallback_steps_wait_for_a_person() -> None:
    step = {
        "stepId": "s1",
        "action": "refundPayment",
        "parameters": {"paymentId": "P-1"},
        "conditional": "amount < 100",
        "fallback": "escalate to finance",
    }
    loaded = load(domain_of(playbooks=_playbook(step)))
    converted = pack(loaded).playbooks[0].steps[0]
    assert isinstance(converted, ManualStep)
    assert converted.instructions == "If amount < 100: call refundPayment If that fails: escalate to finance"
    assert converted.suggestedToolCall is not None and converted.suggestedToolCall.tool == "refundPayment"
    assert has(loaded, "$.playbooks[0].steps[0]", "exops steps have no conditions")
    assert has(loaded, "$.playbooks[0].steps[0]", "stepId 's1' dropped")


@pytest.mark.parametrize(
    ("written", "current", "rendered"),
    [
        ("{{paymentId}}", "{{ exception.rawPayload.paymentId }}", "P-9"),
        ("${exception.normalizedContext.orderId}", "{{ exception.normalizedContext.orderId }}", "O-7"),
        ("{exception.normalized_context.orderId}", "{{ exception.normalizedContext.orderId }}", "O-7"),
        ("ref {exception.exception_id}", "ref {{ exception.exceptionId }}", "ref E-1"),
        ("{{ exception.rawPayload.paymentId }}", "{{ exception.rawPayload.paymentId }}", "P-9"),
    ],
)
def test_placeholders_are_rewritten_and_render(written: str, current: str, rendered: str) -> None:
    loaded = load(
        domain_of(playbooks=_playbook({"action": "refundPayment", "parameters": {"paymentId": written}}))
    )
    step = pack(loaded).playbooks[0].steps[0]
    assert isinstance(step, CallToolStep) and step.arguments == {"paymentId": current}
    exception = {
        "exceptionId": "E-1",
        "rawPayload": {"paymentId": "P-9"},
        "normalizedContext": {"orderId": "O-7"},
    }
    assert render_value(step.arguments, {"exception": exception}) == {"paymentId": rendered}
    assert has(loaded, "$.playbooks[0].steps[0].parameters.paymentId", "placeholder rewritten") == (
        written != current
    )


# Test suites


def _suites(*cases: dict[str, Any]) -> dict[str, Any]:
    playbooks = [{"playbookId": "PB_REFUND", "appliesTo": ["PAYMENT_FAILED"], "steps": ["Check the payment"]}]
    rules = [{"condition": "exceptionType == 'PAYMENT_FAILED'", "severity": "HIGH"}]
    return domain_of(playbooks=playbooks, severityRules=rules, testSuites=list(cases))


def test_runner_keys_are_kept_and_checked() -> None:
    case = {
        "input": {
            "exceptionType": "PAYMENT_FAILED",
            "rawPayload": {},
            "tenantId": "TENANT_SHOP_001",
            "domainName": "Shop",
        },
        "expectedOutput": {
            "expectedSeverity": "high",
            "expectedExceptionType": "PAYMENT_FAILED",
            "expectedPlaybookId": "PB_REFUND",
        },
    }
    loaded = load(_suites(case))
    [suite] = pack(loaded).testSuites
    checked = suite.cases[0]
    assert checked.tenantId == "TENANT_SHOP_001"
    assert checked.expected.checked() == {
        "severity": "HIGH",
        "exceptionType": "PAYMENT_FAILED",
        "playbookId": "PB_REFUND",
    }
    assert has(loaded, "$.testSuites[0].input.tenantId", "kept: the case runs under tenant TENANT_SHOP_001")
    # the runner runs it under that tenant, and fails it when the tenant is not loaded
    [missing] = run_suites(pack(loaded))
    assert missing.error == "tenant 'TENANT_SHOP_001' is not loaded"
    shop = tenant_pack(tenant(TENANT, pack(loaded)))
    [result] = run_suites(pack(loaded), find_tenant=lambda t: shop if t == shop.tenantId else None)
    assert result.passed and result.tenant_id == "TENANT_SHOP_001"


def test_expected_stages_are_read_into_expectations() -> None:
    case = {
        "input": {"exceptionType": "PAYMENT_FAILED"},
        "expectedOutput": {
            "expectedStages": {
                "intake": {"decision": "Normalized as PAYMENT_FAILED"},
                "triage": {"decision": "Triaged PAYMENT_FAILED HIGH"},
                "policy": {"decision": "Approved"},
                "feedback": {"decision": "FEEDBACK_CAPTURED"},
            }
        },
    }
    loaded = load(_suites(case))
    expected = pack(loaded).testSuites[0].cases[0].expected.checked()
    assert expected == {
        "exceptionType": "PAYMENT_FAILED",
        "severity": "HIGH",
        "actionability": "ACTIONABLE_APPROVED_PROCESS",
        "humanApprovalRequired": False,
    }
    assert has(
        loaded, "$.testSuites[0].expectedOutput.expectedStages.policy.decision", "checked as actionability"
    )


def test_a_failing_legacy_expectation_fails_with_the_reason() -> None:
    case = {"input": {"exceptionType": "ORDER_STUCK"}, "expectedOutput": {"expectedSeverity": "HIGH"}}
    [result] = run_suites(pack(load(_suites(case))))
    assert not result.passed
    [difference] = result.differences
    assert (difference.field, difference.expected, difference.actual) == ("severity", "HIGH", "MEDIUM")
    assert difference.reason == "no rule matched and the domain has no default: MEDIUM"


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ({"expectedStages": {"triage": {"decision": "CLASSIFIED"}}}, "cannot tell what 'CLASSIFIED' checks"),
        ({"stages.resolution.decision": "Done"}, "cannot tell what 'Done' checks"),
        ({"exceptionId": "E-1"}, "cannot check 'exceptionId'"),
        (
            {"severity": "LOW", "expectedSeverity": "HIGH"},
            "expects severity 'HIGH', but the case also expects 'LOW'",
        ),
    ],
)
def test_expectations_nobody_could_read_are_problems(expected: dict[str, Any], message: str) -> None:
    found = problems(_suites({"input": {"exceptionType": "PAYMENT_FAILED"}, "expectedOutput": expected}))
    assert len(found) == 1 and message in found[0] and found[0].startswith("$.testSuites[0].expectedOutput")


def test_suite_cases_in_input_expected_output_form_inside_a_suite() -> None:
    suite = {
        "suiteId": "s",
        "cases": [
            {
                "caseId": "c1",
                "input": {"exceptionType": "PAYMENT_FAILED"},
                "expectedOutput": {"expectedSeverity": "HIGH"},
            }
        ],
    }
    loaded = load(_suites(suite))
    assert pack(loaded).testSuites[0].cases[0].expected.checked() == {"severity": "HIGH"}


# Tenant packs


@pytest.fixture(scope="module")
def shop() -> DomainPack:
    return pack(
        load(
            domain_of(
                playbooks=[
                    {"playbookId": "PB_REFUND", "appliesTo": ["PAYMENT_FAILED"], "steps": ["Check it"]}
                ]
            )
        )
    )


def test_tenant_ids_as_users_wrote_them(shop: DomainPack) -> None:
    for tenant_id in ("TENANT_FINANCE_001", "ACME_CAPITAL", "acme-capital", "t.1"):
        assert tenant_pack(tenant({**TENANT, "tenantId": tenant_id}, shop)).tenantId == tenant_id


def test_routing_rules_keyed_if(shop: DomainPack) -> None:
    rules = [
        {"if": "exceptionType == 'ORDER_STUCK'", "assignGroup": "Ops"},
        {"if": "severity == 'HIGH'", "assignGroup": "Desk"},
    ]
    loaded = tenant({**TENANT, "routingRules": rules}, shop)
    routed = tenant_pack(loaded)
    assert [r.id for r in routed.routingRules] == ["route_1", "route_2"]
    assert route_group(routed, {"exceptionType": "ORDER_STUCK"})[0] == "Ops"
    assert has(loaded, "$.routingRules[0]", "renamed 'if' to 'condition'")


def test_a_bad_routing_condition_is_reported_at_if(shop: DomainPack) -> None:
    with pytest.raises(PackError) as caught:
        tenant({**TENANT, "routingRules": [{"if": "exceptionType ==", "assignGroup": "Ops"}]}, shop)
    assert [p.path for p in caught.value.problems] == ["$.routingRules[0].if"]


def test_notification_channels_webhooks_and_smtp(shop: DomainPack) -> None:
    url = "https://hooks.slack.example/services/T000/B000/XXXX"
    policies = {
        "channels": ["email", "slackWebhook", "teamsWebhook"],
        "recipientsByGroup": {"Ops": ["ops@shop.example", "slackWebhook"]},
        "webhookUrls": {"slackWebhook": url},
        "smtpConfig": {
            "host": "smtp.shop.example",
            "port": 587,
            "user": "bot",
            "password": "hunter2",
            "useTls": True,
            "from": "bot@shop.example",
        },
    }
    loaded = tenant({**TENANT, "notificationPolicies": policies}, shop)
    channels = tenant_pack(loaded).notificationPolicies.channels
    assert channels["email"].kind == "email" and channels["email"].fromAddress == "bot@shop.example"
    slack, teams = channels["slackWebhook"], channels["teamsWebhook"]
    assert (slack.kind, slack.urlRef, slack.format) == (
        "webhook",
        "TENANT_SHOP_001_SLACKWEBHOOK_URL",
        "slack",
    )
    assert (teams.kind, teams.format) == ("webhook", "teams")
    said = " ".join(notices(loaded))
    assert url not in json.dumps(loaded.document) and url not in said
    assert "hunter2" not in json.dumps(loaded.document) and "hunter2" not in said
    assert has(
        loaded,
        "$.notificationPolicies.channels[1]",
        "set TENANT_SHOP_001_SLACKWEBHOOK_URL in EXOPS_SECRETS",
        "not copied",
    )
    assert has(
        loaded,
        "$.notificationPolicies.smtpConfig",
        "EXOPS_SMTP_HOST=smtp.shop.example",
        "EXOPS_SMTP_PASSWORD",
    )


def test_an_unknown_channel_is_a_problem(shop: DomainPack) -> None:
    with pytest.raises(PackError) as caught:
        tenant({**TENANT, "notificationPolicies": {"channels": ["sms"]}}, shop)
    assert [(p.path, p.message.split(":")[0]) for p in caught.value.problems] == [
        ("$.notificationPolicies.channels[0]", "channel 'sms'")
    ]


def test_environment_embedding_config_and_tool_overrides(shop: DomainPack) -> None:
    doc = {
        **TENANT,
        "environment": "UAT",
        "embeddingConfig": {
            "provider": "openai",
            "model": "text-embedding-3-small",
            "apiKey": "sk-emb",
            "dimension": 1536,
        },
        "toolOverrides": [{"toolName": "refundPayment", "timeoutSeconds": 3, "maxRetries": 1}],
    }
    loaded = tenant(doc, shop)
    built = tenant_pack(loaded)
    assert (built.embeddings.provider, built.embeddings.apiKeyRef) == (
        "openai",
        "TENANT_SHOP_001_EMBEDDING_API_KEY",
    )
    assert (
        built.toolOverrides["refundPayment"].retries == 1
        and built.toolOverrides["refundPayment"].timeoutSeconds == 3
    )
    assert "sk-emb" not in json.dumps(loaded.document)
    assert has(loaded, "$.environment", "dropped ('UAT')")
    assert has(loaded, "$.embeddingConfig", "dimension 1536 dropped")


def test_tenant_guardrails_plain_lists_and_nulls(shop: DomainPack) -> None:
    doc = {
        **TENANT,
        "customGuardrails": {"allowLists": ["refundPayment"], "blockLists": []},
        "retentionPolicies": None,
        "customSeverityOverrides": [{"exceptionType": "ORDER_STUCK", "severity": "low"}],
        "humanApprovalRules": [{"severity": "critical", "requireApproval": True}],
    }
    built = tenant_pack(tenant(doc, shop))
    assert built.guardrailOverrides.allowLists is not None and built.guardrailOverrides.allowLists.tools == [
        "refundPayment"
    ]
    assert built.severityOverrides == {"ORDER_STUCK": "LOW"}
    assert built.humanApprovalRules[0].severityIn == ["CRITICAL"]
    assert built.retentionPolicies.dataTTLDays is None
    nulls = tenant(
        {**TENANT, "customGuardrails": None, "retentionPolicies": None, "customSeverityOverrides": None}, shop
    )
    assert has(nulls, "$.customGuardrails", "null") and has(nulls, "$.retentionPolicies", "null")


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"customGuardrails": {"allowLists": ["refundPayment", "nope"]}}, "$.customGuardrails.allowLists[1]"),
        (
            {"customSeverityOverrides": [{"exceptionType": "NOPE", "severity": "HIGH"}]},
            "$.customSeverityOverrides[0]",
        ),
        (
            {"customSeverityOverrides": [{"exceptionType": "ORDER_STUCK", "severity": "urgent"}]},
            "$.customSeverityOverrides[0]",
        ),
        ({"approvedTools": ["refundPayment", "nope"]}, "$.approvedTools[1]"),
        ({"toolsAllowList": {"apiActions": ["nope"]}}, "$.toolsAllowList.apiActions[0]"),
        (
            {"workflowPolicies": {"approvedBusinessProcesses": ["PB_NOPE"]}},
            "$.workflowPolicies.approvedBusinessProcesses[0]",
        ),
        (
            {"humanApprovalRules": [{"severity": "urgent", "requireApproval": True}]},
            "$.humanApprovalRules[0].severity",
        ),
        ({"toolOverrides": [{"toolName": "nope", "timeoutSeconds": 1}]}, "$.toolOverrides[0]"),
        ({"retentionPolicies": {"dataTTL": 0}}, "$.retentionPolicies.dataTTL"),
    ],
)
def test_problems_name_what_the_author_wrote(shop: DomainPack, change: dict[str, Any], path: str) -> None:
    with pytest.raises(PackError) as caught:
        tenant({**TENANT, **change}, shop)
    assert [p.path for p in caught.value.problems] == [path]


def _write(tmp_path: Path, name: str, doc: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_tenant_naming_no_domain_takes_the_one_beside_it(tmp_path: Path) -> None:
    _write(tmp_path, "shop.json", domain_of())
    _write(tmp_path, "t.json", {"tenantId": "TENANT_SHOP_001", "approvedTools": ["refundPayment"]})
    result = load_many(sorted(tmp_path.iterdir()))
    assert result.errors == []
    [loaded] = [p for p in result.packs if p.kind == "tenant"]
    assert tenant_pack(loaded).domainName == "Shop"
    assert has(loaded, "$.domainName", "missing: set to Shop (the only domain pack beside it")


def test_tenant_naming_no_domain_among_several(tmp_path: Path) -> None:
    _write(tmp_path, "shop.json", domain_of())
    _write(
        tmp_path, "other.json", {**domain_of(), "domainName": "Other", "tools": {"x": {"description": "x"}}}
    )
    _write(tmp_path, "fits.json", {"tenantId": "T1", "approvedTools": ["refundPayment"]})
    _write(tmp_path, "vague.json", {"tenantId": "T2"})
    result = load_many(sorted(tmp_path.iterdir()))
    fits = next(p for p in result.packs if p.key == "T1")
    assert tenant_pack(fits).domainName == "Shop" and has(
        fits, "$.domainName", "holding every type, tool and playbook"
    )
    assert [(p.file.rsplit("/", 1)[-1], p.path) for p in result.errors] == [("vague.json", "$.domainName")]
    assert "2 domain packs are beside it" in result.errors[0].message


def test_a_tenant_whose_domain_failed_reports_only_that(tmp_path: Path) -> None:
    broken = _write(tmp_path, "shop.json", {**domain_of(), "exceptionTypes": {"X": {}}})
    _write(
        tmp_path,
        "t.json",
        {"tenantId": "TENANT_SHOP_001", "domainName": "Shop", "approvedTools": ["refundPayment"]},
    )
    result = load_many(sorted(tmp_path.iterdir()))
    tenant_problems = [p for p in result.errors if p.file.endswith("t.json")]
    assert [(p.path, p.message) for p in tenant_problems] == [
        ("$.domainName", f"not checked: its domain pack 'Shop' ({broken}) did not load; fix that file first")
    ]


def test_runtime_layout_copies_per_tenant(tmp_path: Path) -> None:
    root = tmp_path / "runtime" / "domainpacks"
    plain = domain_of()
    del plain["version"]
    other = {**plain, "exceptionTypes": {**plain["exceptionTypes"], "FRAUD": {"description": "fraud"}}}
    _write(root, "T_A/Shop/1.2.0.json", plain)
    _write(root, "T_B/Shop/1.2.0.json", other)
    _write(root, "T_C/Shop.json", plain)
    _write(root, "T_D/Shop.json", plain)
    _write(tmp_path, "tenants/a.json", {"tenantId": "T_A", "domainName": "Shop"})
    _write(tmp_path, "tenants/b.json", {"tenantId": "T_B", "domainName": "Shop"})
    _write(
        tmp_path,
        "tenants/z.json",
        {"tenantId": "T_Z", "domainName": "Shop", "severityOverrides": {"FRAUD": "HIGH"}},
    )
    result = load_many(sorted(p for p in tmp_path.rglob("*.json")))
    assert result.errors == []
    assert sorted(p.key for p in result.packs if p.kind == "domain") == [
        "Shop@1.0.0",
        "Shop@1.2.0+T-A",
        "Shop@1.2.0+T-B",
    ]
    assert result.duplicates == {str(root / "T_D/Shop.json"): str(root / "T_C/Shop.json")}
    pinned = {p.key: tenant_pack(p).domainVersion for p in result.packs if p.kind == "tenant"}
    assert pinned == {"T_A": "1.2.0+T-A", "T_B": "1.2.0+T-B", "T_Z": "1.2.0+T-B"}


def test_current_layout_is_untouched_and_importing_twice_changes_nothing(
    tmp_path: Path, shop: DomainPack
) -> None:
    legacy = _suites(
        {"input": {"exceptionType": "PAYMENT_FAILED"}, "expectedOutput": {"expectedSeverity": "HIGH"}}
    )
    once = upgrade_document("domain", legacy, "shop.json")
    twice = upgrade_document("domain", once.document, "domains/Shop-1.0.0.json")
    assert once.notices and twice.notices == [] and twice.document == once.document


def test_no_pydantic_class_names_in_messages(shop: DomainPack) -> None:
    from pydantic import BaseModel

    names: set[str] = set()
    pending: list[type[BaseModel]] = [BaseModel]
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("packs."):
            names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    assert {"NameLists", "Relation", "ToolDefinition"} <= names
    bad_domains = [
        domain_of(guardrails={"allowLists": "refundPayment"}),
        domain_of(guardrails={"allowLists": 3, "blockLists": {"tools": "x"}}),
        domain_of(entities={"Trade": {"relations": [5]}}),
        domain_of(entities={"Trade": ["a"]}),
        domain_of(tools={"refundPayment": "a tool"}),
        domain_of(playbooks=[{"id": "P", "appliesTo": ["PAYMENT_FAILED"], "steps": ["ok", 7]}]),
        domain_of(testSuites=[{"suiteId": "s", "cases": ["x"]}]),
    ]
    messages: list[str] = []
    for doc in bad_domains:
        messages += problems(doc)
    for change in ({"notificationPolicies": {"channels": {"x": 5}}}, {"routingRules": ["x"]}, {"sla": []}):
        with pytest.raises(PackError) as caught:
            tenant({**TENANT, **change}, shop)
        messages += [f"{p.path}: {p.message}" for p in caught.value.problems]
    leaked = [m for m in messages if any(re.search(rf"\b{name}\b", m) for name in names)]
    assert leaked == []
    assert (
        "$.guardrails.allowLists: expected an object with the fields tools, actions, not the text 'refundPayment'"
        in messages
    )


def test_every_shape_loads_with_a_tenant_from_one_folder(write_pack: Callable[..., Path]) -> None:
    # a domain and a tenant of the earlier system, side by side, load together with no problem
    domain = write_pack(
        "shop.json",
        _suites(
            {
                "input": {"exceptionType": "PAYMENT_FAILED"},
                "expectedOutput": {"expectedPlaybookId": "PB_REFUND"},
            }
        ),
    )
    write_pack(
        "tenant.json",
        {"tenantId": "TENANT_SHOP_001", "approvedTools": ["refundPayment"], "customGuardrails": None},
    )
    result = load_many(sorted(domain.parent.iterdir()))
    assert result.errors == []
    shop_pack = result.domain("Shop")
    assert shop_pack is not None
    outcome = decide_case(
        shop_pack,
        tenant_pack(next(p for p in result.packs if p.kind == "tenant")),
        exception_type="PAYMENT_FAILED",
        raw_payload={},
    ).outcome()
    assert outcome["playbookId"] == "PB_REFUND"
