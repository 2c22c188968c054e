"""Each node alone: called with a state and a Runtime, checked on the update it returns."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.runtime import Runtime

from graph.context import RunContext
from graph.nodes.escalate import escalate
from graph.nodes.execute import execute
from graph.nodes.feedback import feedback
from graph.nodes.intake import intake
from graph.nodes.policy import policy
from graph.nodes.resolution import resolution
from graph.nodes.supervisor import supervisor
from graph.nodes.triage import triage
from graph.records import merge_updates
from tests.graph_helpers import context, mini_packs, raw


def apply(state: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Apply an update the way the graph's reducers do (decisions and audit only grow)."""
    merged = dict(state)
    for key, value in update.items():
        merged[key] = [*state.get(key, []), *value] if key in ("decisions", "audit") else value
    return merged


async def through(ctx: RunContext, exception_type: str | None, *nodes: Any, **payload: Any) -> dict[str, Any]:
    runtime = Runtime(context=ctx)
    state: dict[str, Any] = {
        "tenantId": ctx.tenant.tenantId,
        "raw": raw("E-1", exception_type, **payload).model_dump(mode="json"),
    }
    for node in nodes:
        state = apply(state, await node(state, runtime=runtime))
    return state


def last(state: dict[str, Any]) -> dict[str, Any]:
    decision: dict[str, Any] = state["decisions"][-1]
    return decision


def every_decision_has_the_contract(state: dict[str, Any]) -> None:
    for decision in state["decisions"]:
        assert set(decision) == {"stage", "decision", "confidence", "evidence", "nextStep", "at"}
        assert 0.0 <= decision["confidence"] <= 1.0 and decision["evidence"]
    assert [e for e in state["audit"] if e["type"] == "stage_decision"] and all(
        e["packVersions"] == {"domain": "mini-markets@1.0.0", "tenant": "mini-bank@1.0.0"}
        for e in state["audit"]
    )


class TestIntake:
    async def test_known_type_becomes_a_canonical_record(self) -> None:
        state = await through(context(), "SETTLEMENT_FAIL", intake, tradeId="T-1", amount=10)
        record = state["exception"]
        assert record["exceptionId"] == "E-1" and record["tenantId"] == "mini-bank"
        assert (
            record["exceptionType"] == "SETTLEMENT_FAIL"
            and record["timestamp"] == "2026-11-20T09:00:00+00:00"
        )
        assert record["normalizedContext"] == {
            "entity": "Trade",
            "attributes": {"tradeId": "T-1", "amount": 10},
            "missingRequired": [],
        }
        assert last(state) | {"evidence": []} == {
            "stage": "intake", "decision": "TYPE_GIVEN", "confidence": 1.0, "evidence": [], "nextStep": "triage",
            "at": "2026-11-20T09:00:00+00:00",
        }  # fmt: skip
        every_decision_has_the_contract(state)

    async def test_type_detected_from_payload_and_missing_fields_noted(self) -> None:
        state = await through(context(), None, intake, settlementStatus="FAILED")
        assert (
            state["exception"]["exceptionType"] == "SETTLEMENT_FAIL"
            and last(state)["decision"] == "TYPE_DETECTED"
        )
        assert state["confidence"] == 0.8
        assert {"kind": "input", "detail": "payload lacks required tradeId"} in last(state)["evidence"]

    async def test_unknown_type_without_llm_goes_to_escalation(self) -> None:
        state = await through(context(), "MARGIN_CALL", intake)
        assert state["exception"]["exceptionType"] is None and last(state)["nextStep"] == "escalate"
        assert {"kind": "llm", "detail": "no LLM is configured to classify it: a person must"} in last(state)[
            "evidence"
        ]

    async def test_sla_minutes_from_tenant_sla(self) -> None:
        domain, tenant = mini_packs(
            tenant_edit=lambda t: t.update(sla={"byExceptionType": {"SETTLEMENT_FAIL": 120}})
        )
        state = await through(context(domain, tenant), "SETTLEMENT_FAIL", intake, tradeId="T")
        assert state["exception"]["normalizedContext"]["slaMinutesRemaining"] == 120.0


class TestTriageAndPolicy:
    async def test_severity_rules_and_template_summary(self) -> None:
        state = await through(context(), "SETTLEMENT_FAIL", intake, triage, tradeId="T-1", amount=2_000_000)
        assert state["exception"]["severity"] == "HIGH" and state["exception"]["detectedRules"] == [
            "big_fail"
        ]
        assert state["triage"]["summarySource"] == "template"
        assert state["triage"]["summary"].startswith(
            "SETTLEMENT_FAIL from test: A trade did not settle on its intended date. Severity HIGH"
        )
        details = [e["detail"] for e in last(state)["evidence"]]
        assert "severityRules.big_fail matched (HIGH)" in details
        assert "similar-case memory is off on this server" in details
        assert last(state)["confidence"] == 0.9

    async def test_policy_picks_the_approved_playbook_and_group(self) -> None:
        state = await through(context(), "SETTLEMENT_FAIL", intake, triage, policy, tradeId="T", amount=10)
        assert state["policy"]["actionability"] == "ACTIONABLE_APPROVED_PROCESS"
        assert (
            state["policy"]["selectedPlaybookId"] == "PB_RETRY"
            and state["exception"]["assignedGroup"] == "settlements"
        )
        assert (
            last(state)["decision"] == "ACTIONABLE_APPROVED_PROCESS"
            and last(state)["nextStep"] == "supervisor"
        )


class TestSupervisor:
    async def test_after_policy_continues_to_resolution(self) -> None:
        state = await through(
            context(), "SETTLEMENT_FAIL", intake, triage, policy, supervisor, tradeId="T", amount=10
        )
        assert state["review"] == {"point": "policy", "outcome": "continue", "concerns": []}
        assert last(state)["nextStep"] == "resolution"

    async def test_non_actionable_skips_resolution(self) -> None:
        state = await through(context(), "SETTLEMENT_NOTICE", intake, triage, policy, supervisor)
        assert last(state)["nextStep"] == "feedback"

    async def test_after_resolution_asks_for_approval_with_a_deadline(self) -> None:
        state = await through(
            context(),
            "SETTLEMENT_FAIL",
            intake,
            triage,
            policy,
            supervisor,
            resolution,
            supervisor,
            tradeId="T",
            amount=60_000_000,
        )
        request = state["approvalRequest"]
        assert state["review"]["outcome"] == "require_approval" and state["status"] == "PENDING_APPROVAL"
        assert request["approvalId"] == "APR-E-1-1" and request["deadline"] == "2026-11-20T13:00:00+00:00"
        assert "noAutoActionIfSeverityIn includes CRITICAL: a person must act" in request["why"]
        assert request["allowedDecisions"] == ["approve", "reject", "edit", "comment", "takeover"]

    async def test_low_confidence_chain_escalates(self) -> None:
        domain, tenant = mini_packs(
            tenant_edit=lambda t: t.update(guardrailOverrides={"escalateIfConfidenceBelow": 0.85})
        )
        state = await through(
            context(domain, tenant),
            None,
            intake,
            triage,
            policy,
            supervisor,
            settlementStatus="FAILED",
            tradeId="T",
        )
        assert state["review"]["outcome"] == "escalate" and last(state)["nextStep"] == "escalate"
        assert "confidence 0.75 below escalateIfConfidenceBelow 0.85" in state["escalation"]["reason"]


class TestResolutionAndExecute:
    async def test_plan_then_dry_run_records_the_exact_request(self) -> None:
        state = await through(
            context(),
            "SETTLEMENT_FAIL",
            intake,
            triage,
            policy,
            supervisor,
            resolution,
            supervisor,
            execute,
            tradeId="T-9",
            amount=10,
        )
        assert [(s["type"], s["disposition"], s["status"]) for s in state["plan"]] == [
            ("call_tool", "auto", "SUCCESS"),
            ("set_status", "auto", "SUCCESS"),
        ]
        [call] = [e["data"] for e in state["audit"] if e["type"] == "tool_call"]
        assert call["status"] == "DRY_RUN" and call["arguments"] == {"tradeId": "T-9"}
        assert call["request"]["url"] == "https://settle.example.test/retry" and call["request"]["json"] == {
            "tradeId": "T-9"
        }
        assert call["request"]["headers"]["Idempotency-Key"]
        assert state["status"] == "RESOLVED" and last(state)["nextStep"] == "feedback"
        types = [
            e["type"] for e in state["audit"] if e["stage"] == "execute" and e["type"] != "stage_decision"
        ]
        assert types[0] == "playbook_started" and types[-2:] == [
            "playbook_step_completed",
            "playbook_completed",
        ]

    async def test_missing_placeholder_fails_the_step_and_escalates(self) -> None:
        state = await through(
            context(),
            "SETTLEMENT_FAIL",
            intake,
            triage,
            policy,
            supervisor,
            resolution,
            supervisor,
            execute,
            amount=10,
        )
        assert state["plan"][0]["status"] == "FAILED" and last(state)["nextStep"] == "escalate"
        assert (
            "step 1 (Retry) failed: cannot fill in the step's parameters: step 1.arguments.tradeId"
            in state["escalation"]["reason"]
        )

    async def test_rollback_tool_runs_when_a_step_fails(self) -> None:
        def rollback(domain: dict[str, Any]) -> None:
            domain["playbooks"][0]["rollbackTool"] = "getTrade"

        domain, tenant = mini_packs(domain_edit=rollback)
        state = await through(
            context(domain, tenant),
            "SETTLEMENT_FAIL",
            intake,
            triage,
            policy,
            supervisor,
            resolution,
            supervisor,
            execute,
            amount=10,
        )
        [event] = [e for e in state["audit"] if e["type"] == "rollback"]
        assert event["data"]["tool"] == "getTrade" and event["data"]["rollbackOf"] == 1

    async def test_not_approved_without_llm_recommends_only(self) -> None:
        state = await through(context(), "POSITION_BREAK", intake, triage, policy, supervisor, resolution)
        assert last(state)["decision"] == "RECOMMENDATION_ONLY" and state["draft"] is None
        assert {
            "kind": "llm",
            "detail": "no LLM is configured: no draft playbook; a person decides the plan",
        } in last(state)["evidence"]


class TestEnd:
    async def test_escalate_uses_the_tenant_queue(self) -> None:
        state = await through(context(), "MARGIN_CALL", intake, escalate, feedback)
        assert state["escalation"]["queue"] == "escalations" and state["status"] == "ESCALATED"
        assert state["outcome"]["outcome"] == "escalated"
        assert state["outcome"]["packVersions"] == {
            "domain": "mini-markets@1.0.0",
            "tenant": "mini-bank@1.0.0",
        }

    async def test_feedback_after_non_actionable(self) -> None:
        state = await through(context(), "SETTLEMENT_NOTICE", intake, triage, policy, supervisor, feedback)
        assert state["status"] == "RESOLVED" and state["outcome"]["outcome"] == "non_actionable"


def test_merge_updates_concatenates_history() -> None:
    assert merge_updates({"audit": [1], "x": 1}, {"audit": [2], "x": 2}) == {"audit": [1, 2], "x": 2}


@pytest.mark.parametrize(
    "node", [intake, triage, policy, supervisor, resolution, execute, feedback, escalate]
)
def test_every_node_has_a_docstring_module(node: Any) -> None:
    import sys

    assert sys.modules[node.__module__].__doc__
