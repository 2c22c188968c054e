"""Each kind of bad pack gives an exact, located message; every problem is reported at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from packs.loader import load_many
from packs.problems import PackError


def problems_of(*paths: Path) -> list[str]:
    return [str(p) for p in load_many(paths).errors]


def test_mini_packs_are_valid(
    write_pack: Callable[..., Path], domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
) -> None:
    result = load_many([write_pack("d.yaml", domain_doc), write_pack("t.yaml", tenant_doc)])
    assert result.errors == []
    assert sorted(p.key for p in result.packs) == ["mini-bank", "mini-markets@1.0.0"]
    assert result.notices == []


def test_unknown_exception_type_in_playbook(
    write_pack: Callable[..., Path], domain_doc: dict[str, Any]
) -> None:
    domain_doc["playbooks"][0]["appliesTo"] = ["SETTLEMENT_FAIL", "SETTLE_FAIL"]
    path = write_pack("d.yaml", domain_doc)
    assert problems_of(path) == [f"{path}: $.playbooks[0].appliesTo[1]: unknown exception type 'SETTLE_FAIL'"]


def test_unknown_tool_in_step(write_pack: Callable[..., Path], domain_doc: dict[str, Any]) -> None:
    domain_doc["playbooks"][0]["steps"][0]["tool"] = "retryTrade"
    path = write_pack("d.yaml", domain_doc)
    assert problems_of(path) == [f"{path}: $.playbooks[0].steps[0].tool: unknown tool 'retryTrade'"]


def test_unknown_playbook_id_in_tenant(
    write_pack: Callable[..., Path], domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
) -> None:
    tenant_doc["approvedBusinessProcesses"].append("PB_MISSING")
    domain, tenant = write_pack("d.yaml", domain_doc), write_pack("t.yaml", tenant_doc)
    assert problems_of(domain, tenant) == [
        f"{tenant}: $.approvedBusinessProcesses[2]: unknown playbook id 'PB_MISSING'"
    ]


def test_bad_severity_value(write_pack: Callable[..., Path], domain_doc: dict[str, Any]) -> None:
    domain_doc["severityRules"][0]["severity"] = "SEVERE"
    path = write_pack("d.yaml", domain_doc)
    assert problems_of(path) == [
        f"{path}: $.severityRules[0].severity: invalid value 'SEVERE': expected 'LOW', 'MEDIUM', 'HIGH' or 'CRITICAL'"
    ]


def test_broken_condition(write_pack: Callable[..., Path], domain_doc: dict[str, Any]) -> None:
    domain_doc["severityRules"][1]["condition"] = "exceptionType == 'SEC_MASTER_MISMATCH' &&"
    path = write_pack("d.yaml", domain_doc)
    [problem] = problems_of(path)
    assert problem.startswith(
        f"{path}: $.severityRules[1].condition: condition does not compile: column 42: Syntax error"
    )


def test_condition_reading_an_unknown_variable(
    write_pack: Callable[..., Path], domain_doc: dict[str, Any]
) -> None:
    domain_doc["severityRules"][0]["condition"] = "rawPayld.amount > 5"
    path = write_pack("d.yaml", domain_doc)
    [problem] = problems_of(path)
    assert problem.startswith(
        f"{path}: $.severityRules[0].condition: condition reads unknown variable 'rawPayld';"
    )


def test_truncated_json_file(write_pack: Callable[..., Path]) -> None:
    path = write_pack("d.json", '{"domainName": "x", "exceptionTypes": {"A": {"descr')
    assert problems_of(path) == [
        f"{path}: $: invalid JSON at line 1, column 46: Unterminated string starting at"
    ]


def test_truncated_yaml_file(write_pack: Callable[..., Path]) -> None:
    path = write_pack("d.yaml", "domainName: x\nexceptionTypes:\n  A: {description: 'oops\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: $: invalid YAML at line 4, column 1: found unexpected end of stream")


def test_unknown_field(write_pack: Callable[..., Path], domain_doc: dict[str, Any]) -> None:
    domain_doc["playbooks"][1]["steps"][0]["channel"] = "slack"
    domain_doc["colour"] = "blue"
    path = write_pack("d.yaml", domain_doc)
    assert problems_of(path) == [
        f"{path}: $.colour: unknown field",
        f"{path}: $.playbooks[1].steps[0].channel: unknown field",
    ]


def test_unknown_step_type(write_pack: Callable[..., Path], domain_doc: dict[str, Any]) -> None:
    domain_doc["playbooks"][0]["steps"][1]["type"] = "reboot"
    path = write_pack("d.yaml", domain_doc)
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: $.playbooks[0].steps[1]: unknown type 'reboot': expected 'notify', ")


def test_every_problem_is_reported(
    write_pack: Callable[..., Path], domain_doc: dict[str, Any], tenant_doc: dict[str, Any]
) -> None:
    tenant_doc["toolsAllowList"] = ["retrySettlement", "wireMoney"]
    tenant_doc["severityOverrides"] = {"NO_SUCH_TYPE": "HIGH"}
    tenant_doc["approvedBusinessProcesses"] = ["PB_RETRY", "PB_NOPE"]
    domain, tenant = write_pack("d.yaml", domain_doc), write_pack("t.yaml", tenant_doc)
    assert problems_of(domain, tenant) == [
        f"{tenant}: $.approvedBusinessProcesses[1]: unknown playbook id 'PB_NOPE'",
        f"{tenant}: $.severityOverrides.NO_SUCH_TYPE: unknown exception type 'NO_SUCH_TYPE'",
        f"{tenant}: $.toolsAllowList[1]: unknown tool 'wireMoney' in domain 'mini-markets'",
    ]


def test_duplicate_ids(write_pack: Callable[..., Path], domain_doc: dict[str, Any]) -> None:
    domain_doc["playbooks"][2]["id"] = "PB_RETRY"
    domain_doc["severityRules"][2]["id"] = "big_fail"
    path = write_pack("d.yaml", domain_doc)
    assert problems_of(path) == [
        f"{path}: $.playbooks[2].id: duplicate playbook id 'PB_RETRY'",
        f"{path}: $.severityRules[2].id: duplicate severity rule id 'big_fail'",
    ]


def test_tenant_without_its_domain(write_pack: Callable[..., Path], tenant_doc: dict[str, Any]) -> None:
    path = write_pack("t.yaml", tenant_doc)
    assert problems_of(path) == [f"{path}: $.domainName: domain pack 'mini-markets' is not loaded"]


def test_not_a_pack(write_pack: Callable[..., Path]) -> None:
    path = write_pack("x.yaml", "just: a mapping\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}: $: cannot tell the pack kind")


def test_bad_tool_parameter_schema(write_pack: Callable[..., Path], domain_doc: dict[str, Any]) -> None:
    domain_doc["tools"]["getTrade"]["parameters"] = {"type": "objekt"}
    path = write_pack("d.yaml", domain_doc)
    [problem] = problems_of(path)
    assert problem.startswith(
        f"{path}: $.tools.getTrade.parameters: not a valid JSON Schema: 'objekt' is not valid"
    )


def test_pack_error_carries_every_problem(
    write_pack: Callable[..., Path], domain_doc: dict[str, Any]
) -> None:
    from packs.loader import load_file

    domain_doc["playbooks"][0]["appliesTo"] = ["X"]
    domain_doc["playbooks"][0]["steps"][0]["tool"] = "Y"
    with pytest.raises(PackError) as caught:
        load_file(write_pack("d.yaml", domain_doc), lambda name, version: None)
    assert len(caught.value.problems) == 2
