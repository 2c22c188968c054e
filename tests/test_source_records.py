"""Exception records as the earlier system sends them: the canonical record's own decision fields are
accepted and kept as what the source said (never used to decide), and a type given only inside
``rawPayload`` is read from there, the evidence saying so."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from app.cli.main import cli
from graph.builder import build_graph
from graph.checkpoint import open_checkpointer
from graph.events import MemoryEventSink
from graph.inputs import RawException
from graph.runner import CaseRunner
from tests.api_helpers import Api
from tests.conftest import FIXTURES
from tests.graph_helpers import context

# The earlier system's canonical record (its ExceptionRecord, camelCase on the wire), as it stored
# one after running it: its own status, rules, actions and audit trail.
LEGACY_RECORD: dict[str, Any] = {
    "exceptionId": "exc_ORD-001",
    "sourceSystem": "ERP",
    "exceptionType": "SETTLEMENT_FAIL",
    "severity": "HIGH",
    "timestamp": "2026-11-20 08:30:00.000000+00:00",
    "rawPayload": {"tradeId": "T-1", "amount": 10},
    "normalizedContext": {"pipelineId": "p-42", "attributes": {"tradeId": "FORGED"}},
    "detectedRules": ["exceptionType == 'SETTLEMENT_FAIL' -> HIGH"],
    "suggestedActions": ["triggerSettlementRetry(orderId)"],
    "resolutionStatus": "RESOLVED",
    "auditTrail": [
        {
            "action": "Triaged SETTLEMENT_FAIL HIGH",
            "timestamp": "2026-11-20T08:31:00Z",
            "actor": "TriageAgent",
        }
    ],
    "currentPlaybookId": 7,
    "currentStep": 2,
}


def record(**changes: Any) -> dict[str, Any]:
    return {**LEGACY_RECORD, **changes}


def without(*keys: str, **changes: Any) -> dict[str, Any]:
    return {k: v for k, v in record(**changes).items() if k not in keys}


class TestTheRecordModel:
    def test_the_decision_fields_are_kept_as_sent(self) -> None:
        raw = RawException.model_validate(record(resolutionStatus="resolved"))
        assert raw.source_claims() == {
            "detectedRules": ["exceptionType == 'SETTLEMENT_FAIL' -> HIGH"],
            "suggestedActions": ["triggerSettlementRetry(orderId)"],
            "resolutionStatus": "RESOLVED",
            "auditTrail": [
                {
                    "action": "Triaged SETTLEMENT_FAIL HIGH",
                    "timestamp": "2026-11-20T08:31:00Z",
                    "actor": "TriageAgent",
                }
            ],
            "currentPlaybookId": 7,
            "currentStep": 2,
            "normalizedContext": {"pipelineId": "p-42", "attributes": {"tradeId": "FORGED"}},
        }

    def test_a_record_without_them_claims_nothing(self) -> None:
        raw = RawException.model_validate(
            {"exceptionType": "SETTLEMENT_FAIL", "rawPayload": {"tradeId": "T"}}
        )
        assert raw.source_claims() == {}

    def test_an_audit_entry_of_another_shape_is_refused_where_it_is(self) -> None:
        with pytest.raises(ValidationError) as refused:
            RawException.model_validate(
                record(auditTrail=[{"action": "x", "timestamp": "2026-11-20T08:31:00Z"}])
            )
        assert [e["loc"] for e in refused.value.errors()] == [("auditTrail", 0, "actor")]
        with pytest.raises(ValidationError):
            RawException.model_validate(record(resolutionStatus="DONE"))

    @pytest.mark.parametrize(
        ("payload", "given", "expected"),
        [
            ({"exceptionType": "FROM_PAYLOAD"}, "GIVEN", ("GIVEN", "exceptionType")),
            (
                {"exceptionType": "FROM_PAYLOAD", "type": "OTHER"},
                None,
                ("FROM_PAYLOAD", "rawPayload.exceptionType"),
            ),
            ({"exception_type": "SNAKE"}, None, ("SNAKE", "rawPayload.exception_type")),
            ({"type": " SETTLEMENT_FAIL "}, None, ("SETTLEMENT_FAIL", "rawPayload.type")),
            ({"type": 3, "exceptionType": ""}, None, (None, None)),
            ({}, None, (None, None)),
        ],
    )
    def test_where_the_type_comes_from(
        self, payload: dict[str, Any], given: str | None, expected: tuple[str | None, str | None]
    ) -> None:
        raw = RawException(exceptionType=given, rawPayload=payload)
        assert raw.reported_type() == expected


@pytest.fixture
async def runner() -> AsyncIterator[CaseRunner]:
    async with open_checkpointer("memory", None) as saver:
        yield CaseRunner(build_graph(checkpointer=saver))


def intake_evidence(result: dict[str, Any]) -> list[str]:
    return [e["detail"] for e in result["stages"][0]["evidence"]]


class TestTheGraph:
    async def test_claims_are_kept_and_never_decide(self, runner: CaseRunner) -> None:
        ctx = context()
        result = await runner.start(ctx, RawException.model_validate(record(resolutionStatus="ESCALATED")))
        values = await runner.values(ctx.tenant.tenantId, "exc_ORD-001")
        exception = values["exception"]
        # Our own decisions: no severity rule matches (the source's severity is a fact it gives, used as
        # such); the case waits on the playbook's manual step, whatever status the source claimed.
        assert result["severity"] == "HIGH" and result["selectedPlaybookId"] == "PB_ESCALATE_BIG"
        assert result["resolutionStatus"] == "IN_PROGRESS"
        assert exception["detectedRules"] == [] and exception["suggestedActions"] == [
            "Tell desk",
            "Desk review",
        ]
        assert exception["normalizedContext"] == {
            "pipelineId": "p-42",
            "entity": "Trade",
            "attributes": {"tradeId": "T-1", "amount": 10},
            "missingRequired": [],
        }
        assert exception["sourceClaims"]["resolutionStatus"] == "ESCALATED"
        assert exception["sourceClaims"]["detectedRules"] == LEGACY_RECORD["detectedRules"]
        assert exception["sourceClaims"]["normalizedContext"]["attributes"] == {"tradeId": "FORGED"}
        assert exception["sourceClaims"]["currentPlaybookId"] == 7
        assert isinstance(ctx.events, MemoryEventSink)
        trail = ctx.events.trail(ctx.tenant.tenantId, "exc_ORD-001")
        assert trail and all(e["actor"]["id"] != "TriageAgent" for e in trail)  # our trail is ours
        assert any("kept under sourceClaims" in detail for detail in intake_evidence(result))

    async def test_a_type_only_in_the_payload_is_read_from_there(self, runner: CaseRunner) -> None:
        raw = RawException.model_validate(
            without(
                "exceptionType",
                exceptionId="E-PAYLOAD",
                rawPayload={"type": "settlement_fail", "tradeId": "T"},
            )
        )
        result = await runner.start(context(), raw)
        assert result["exceptionType"] == "SETTLEMENT_FAIL"
        assert result["stages"][0]["decision"] == "TYPE_NORMALIZED"
        assert intake_evidence(result)[0] == (
            "type 'settlement_fail' read from rawPayload.type: the record has no exceptionType"
        )
        values = await runner.values("mini-bank", "E-PAYLOAD")
        assert values["exception"]["reportedType"] == "settlement_fail"
        assert values["exception"]["reportedTypeFrom"] == "rawPayload.type"


def test_exops_run_reads_a_file_of_earlier_records(tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    packs.mkdir()
    for name in ("mini-domain.yaml", "mini-tenant.yaml"):
        (packs / name).write_text((FIXTURES / name).read_text())
    exceptions = tmp_path / "earlier.json"
    exceptions.write_text(
        json.dumps(
            [
                record(tenantId="mini-bank"),
                without("exceptionType", exceptionId="exc_2", rawPayload={"exceptionType": "POSITION_BREAK"}),
            ]
        )
    )
    result = CliRunner().invoke(
        cli, ["run", str(exceptions), "--tenant", "mini-bank", "--packs", str(packs), "--json", "--audit",
              "--checkpoints", str(tmp_path / "cp.sqlite")],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    first, second = json.loads(result.stdout)["results"]
    # The record says RESOLVED; the case is ours to work, and waits on the playbook's manual step.
    assert first["resolutionStatus"] == "IN_PROGRESS" and first["exceptionType"] == "SETTLEMENT_FAIL"
    assert second["exceptionType"] == "POSITION_BREAK"
    assert second["severity"] == "HIGH"  # the tenant's override
    assert (
        "type 'POSITION_BREAK' read from rawPayload.exceptionType: the record has no exceptionType"
        in intake_evidence(second)
    )


async def test_api_and_case_page_keep_what_the_source_said(api: Api) -> None:
    body = without(
        "exceptionType",
        exceptionId="GLX-LEGACY-1",
        sourceSystem="murex",
        rawPayload={"type": "SETTLEMENT_FAIL", "tradeId": "T-9", "settlementAmount": 62000},
        resolutionStatus="RESOLVED",
    )
    accepted = await api.post_and_settle("globex-markets", body)
    assert accepted.status_code == 202, accepted.text
    viewer = api.as_("viewer")
    detail = (await api.client.get("/exceptions/globex-markets/GLX-LEGACY-1", headers=viewer)).json()
    record_ = detail["record"]
    assert record_["exceptionType"] == "SETTLEMENT_FAIL" and record_["reportedTypeFrom"] == "rawPayload.type"
    assert record_["sourceClaims"]["resolutionStatus"] == "RESOLVED"
    assert record_["sourceClaims"]["auditTrail"][0]["actor"] == "TriageAgent"
    assert all(event.get("actor") != "TriageAgent" for event in record_["auditTrail"])
    assert detail["resolutionStatus"] == record_["resolutionStatus"]
    listed = (await api.client.get("/exceptions/globex-markets?type=SETTLEMENT_FAIL", headers=viewer)).json()
    assert "GLX-LEGACY-1" in [c["exceptionId"] for c in listed["items"]]

    signed_in = await api.client.post(
        "/ui/login", data={"credential": api.keys[("globex-markets", "viewer")], "next": "/ui/"}
    )
    assert signed_in.status_code == 303
    page = (await api.client.get("/ui/t/globex-markets/exceptions/GLX-LEGACY-1")).text
    assert "What the source said" in page and "TriageAgent" in page
    assert "read from <code>rawPayload.type</code>" in page
