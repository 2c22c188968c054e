"""The playbook engine: each step type, placeholders, status transitions, rollback, notifications."""

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
from graph.plans import build_plan, find_playbook
from graph.steps import run_step
from packs.common import ResolutionStatus
from tests.graph_helpers import context, mini_packs
from tests.secret_helpers import lookup
from tests.test_graph_nodes import through
from tools.notifications.notifier import DeliveringNotifier
from tools.outbound import OutboundPolicy

EXCEPTION = {
    "exceptionId": "E-7",
    "tenantId": "mini-bank",
    "exceptionType": "SETTLEMENT_FAIL",
    "severity": "MEDIUM",
    "assignedGroup": "settlements",
    "rawPayload": {"tradeId": "T-77", "trader": "j.doe", "accountNumber": "GB29NWBK60161331926819"},
}
POLICIES = {
    "channels": {
        "ops-mail": {"kind": "email", "fromAddress": "exops@mini.example"},
        "desk-chat": {"kind": "webhook", "urlRef": "DESK_HOOK", "format": "slack"},
    },
    "recipientsByGroup": {
        "settlements": ["settle@mini.example", "desk-chat"],
        "escalations": ["leads@mini.example"],
    },
    "notifyOn": ["approval_required", "escalation", "resolved"],
}


def with_policies(tenant: dict[str, Any]) -> None:
    tenant["notificationPolicies"] = POLICIES


def item(order: int, step: dict[str, Any]) -> dict[str, Any]:
    return {"order": order, "name": step["name"], "type": step["type"], "step": step}


async def step(
    ctx: RunContext, definition: dict[str, Any], status: ResolutionStatus = "IN_PROGRESS", **exception: Any
) -> Any:
    return await run_step(ctx, item(1, definition), {**EXCEPTION, **exception}, status)


class TestStepTypes:
    async def test_notify_routes_to_the_groups_channels(self) -> None:
        ctx = context(*mini_packs(tenant_edit=with_policies))
        result = await step(
            ctx, {"type": "notify", "name": "Tell", "message": "Fail {{ exception.exceptionId }}"}
        )
        assert result.outcome == "SUCCESS" and result.detail == "settlements notified through 2 channel(s)"
        by_channel = {data["channel"]: (kind, data) for kind, data in result.events}
        assert set(by_channel) == {"ops-mail", "desk-chat"}
        kind, mail = by_channel["ops-mail"]
        assert kind == "notification_recorded" and mail["recipients"] == ["settle@mini.example"]
        assert mail["message"] == "Fail E-7" and mail["event"] == "step" and mail["status"] == "RECORDED"

    async def test_notify_fails_when_nobody_can_be_told(self) -> None:
        ctx = context(*mini_packs(tenant_edit=with_policies),
                      notifier=DeliveringNotifier(lookup({}), smtp=None, outbound=OutboundPolicy()))  # fmt: skip
        result = await step(ctx, {"type": "notify", "name": "Tell", "message": "x"})
        assert result.outcome == "FAILED"
        assert "no SMTP server configured" in result.detail and "DESK_HOOK" in result.detail
        assert {kind for kind, _ in result.events} == {"notification_failed"}

    async def test_assign_owner_renders_from_exception_and_tenant(self) -> None:
        ctx = context()
        definition = {"type": "assign_owner", "name": "Own", "group": "{{ tenant.escalationQueue }}",
                      "owner": "{{ exception.rawPayload.trader }}"}  # fmt: skip
        result = await step(ctx, definition)
        assert result.outcome == "SUCCESS" and result.detail == "assigned to j.doe"
        assert result.exception["assignedGroup"] == "escalations" and result.exception["owner"] == "j.doe"
        assert result.events == [("owner_assigned", {"group": "escalations", "owner": "j.doe"})]

    @pytest.mark.parametrize(
        ("current", "target", "outcome", "event"),
        [
            ("IN_PROGRESS", "RESOLVED", "SUCCESS", "status_changed"),
            ("IN_PROGRESS", "IN_PROGRESS", "SKIPPED", "status_unchanged"),
            ("RESOLVED", "IN_PROGRESS", "FAILED", "status_change_refused"),
            ("REJECTED", "RESOLVED", "FAILED", "status_change_refused"),
        ],
    )
    async def test_set_status_only_allowed_transitions(
        self, current: ResolutionStatus, target: str, outcome: str, event: str
    ) -> None:
        result = await step(context(), {"type": "set_status", "name": "S", "status": target}, current)
        assert result.outcome == outcome
        assert result.events == [(event, {"from": current, "to": target})]
        assert result.status == (target if outcome == "SUCCESS" else None)

    async def test_add_comment_renders_the_domain(self) -> None:
        result = await step(context(), {"type": "add_comment", "name": "C",
                                        "text": "{{ domain.domainName }} {{ exception.rawPayload.tradeId }}"})  # fmt: skip
        assert result.outcome == "SUCCESS" and result.events == [
            ("comment_added", {"text": "mini-markets T-77"})
        ]

    async def test_call_tool_dry_run_records_the_request_redacted(self) -> None:
        def redact(tenant: dict[str, Any]) -> None:
            tenant["auditPolicy"] = {"redactFields": ["tradeId"]}

        ctx = context(*mini_packs(tenant_edit=redact))
        definition = {"type": "call_tool", "name": "Retry", "tool": "retrySettlement",
                      "arguments": {"tradeId": "{{ exception.rawPayload.tradeId }}"}}  # fmt: skip
        result = await step(ctx, definition)
        [(kind, data)] = result.events
        assert result.outcome == "SUCCESS" and kind == "tool_call" and data["status"] == "DRY_RUN"
        assert data["request"]["json"] == {"tradeId": "***"} and data["arguments"] == {"tradeId": "***"}
        assert result.arguments == {"tradeId": "T-77"}  # the real value stays for a rollback

    async def test_call_tool_outside_the_allow_list_is_refused(self) -> None:
        def unlist(tenant: dict[str, Any]) -> None:
            tenant["toolsAllowList"] = ["getTrade"]

        ctx = context(*mini_packs(tenant_edit=unlist))
        result = await step(ctx, {"type": "call_tool", "name": "Retry", "tool": "retrySettlement",
                                  "arguments": {"tradeId": "T"}})  # fmt: skip
        assert result.outcome == "FAILED" and "toolsAllowList" in result.detail
        assert result.events[0][1]["attempts"] == 0

    async def test_manual_steps_never_run_unattended(self) -> None:
        result = await step(context(), {"type": "manual", "name": "M", "instructions": "do it"})
        assert result.outcome == "FAILED" and result.events == [("step_refused", {"type": "manual"})]


class TestPlaceholders:
    async def test_a_missing_value_fails_the_step_clearly(self) -> None:
        result = await step(context(), {"type": "add_comment", "name": "C",
                                        "text": "order {{ exception.rawPayload.orderId }}"})  # fmt: skip
        assert result.outcome == "FAILED"
        assert result.detail.startswith("cannot fill in the step's parameters: step 1.text:")
        assert "orderId" in result.detail

    async def test_the_sandbox_refuses_attribute_tricks(self) -> None:
        result = await step(context(), {"type": "add_comment", "name": "C",
                                        "text": "{{ exception.__class__.__mro__ }}"})  # fmt: skip
        assert result.outcome == "FAILED" and result.events[0][0] == "step_parameters_invalid"

    async def test_a_whole_placeholder_keeps_its_type(self) -> None:
        def numeric(domain: dict[str, Any]) -> None:
            domain["tools"]["retrySettlement"]["parameters"] = {
                "type": "object", "properties": {"tradeId": {"type": "string"}, "amount": {"type": "number"}}}  # fmt: skip

        ctx = context(*mini_packs(domain_edit=numeric))
        result = await step(ctx, {"type": "call_tool", "name": "R", "tool": "retrySettlement",
                                  "arguments": {"tradeId": "x", "amount": "{{ exception.rawPayload.amount }}"}},
                            rawPayload={"amount": 12.5})  # fmt: skip
        assert result.outcome == "SUCCESS" and result.arguments == {"tradeId": "x", "amount": 12.5}

    def test_manual_instructions_are_shown_filled_from_the_case(self) -> None:
        def add_manual(domain: dict[str, Any]) -> None:
            domain["playbooks"][0]["steps"].insert(0, {
                "type": "manual", "name": "Call the desk",
                "instructions": "Ask {{ tenant.tenantId }} about {{ exception.rawPayload.tradeId }}.",
            })  # fmt: skip
            domain["playbooks"][0]["steps"].insert(1, {
                "type": "manual", "name": "Check", "instructions": "Look up {{ exception.rawPayload.nothing }}.",
            })  # fmt: skip

        ctx = context(*mini_packs(domain_edit=add_manual))
        playbook = find_playbook(ctx, "PB_RETRY")
        assert playbook is not None
        exception = {
            "exceptionId": "E-1",
            "exceptionType": "SETTLEMENT_FAIL",
            "rawPayload": {"tradeId": "T-42"},
        }
        plan = build_plan(ctx, playbook, exception)
        assert plan[0]["instructions"] == f"Ask {ctx.tenant.tenantId} about T-42."
        assert plan[0]["step"]["instructions"].startswith(
            "Ask {{ tenant.tenantId }}"
        )  # the definition as written
        assert (
            plan[1]["instructions"] == "Look up {{ exception.rawPayload.nothing }}."
        )  # no value: as written
        assert all("instructions" not in item for item in plan[2:])


class TestExecution:
    async def test_rollback_runs_with_its_own_arguments_then_escalates(self) -> None:
        def rollback(domain: dict[str, Any]) -> None:
            playbook = domain["playbooks"][0]
            playbook["rollbackTool"] = "getTrade"
            playbook["rollbackArguments"] = {"tradeId": "{{ failedStep.arguments.tradeId }}-undo"}
            playbook["steps"].insert(0, {"type": "add_comment", "name": "Note", "text": "retrying"})
            playbook["steps"][1]["arguments"]["tradeId"] = "{{ exception.rawPayload.amount }}"  # not a string

        ctx = context(*mini_packs(domain_edit=rollback))
        state = await through(ctx, "SETTLEMENT_FAIL", intake, triage, policy, supervisor, resolution, supervisor,
                              execute, tradeId="T-5", amount=10)  # fmt: skip
        assert [s["status"] for s in state["plan"]] == ["SUCCESS", "FAILED", "PENDING"]
        [undo] = [e for e in state["audit"] if e["type"] == "rollback"]
        assert undo["actor"] == {"type": "system", "id": "exops"}
        assert undo["data"]["tool"] == "getTrade" and undo["data"]["request"]["params"] == {
            "tradeId": "10-undo"
        }
        reason = state["escalation"]["reason"]
        assert reason.startswith(
            "step 2 (Retry) failed: retrySettlement: FAILED (arguments.tradeId: 10 is not"
        )
        assert reason.endswith("; rolled back with getTrade: DRY_RUN")

    async def test_events_and_actors_of_an_automatic_run(self) -> None:
        ctx = context(*mini_packs(tenant_edit=with_policies))
        state = await through(ctx, "SETTLEMENT_FAIL", intake, triage, policy, supervisor, resolution, supervisor,
                              execute, feedback, tradeId="T-9", amount=10)  # fmt: skip
        trail = [(e["type"], e["actor"]["type"]) for e in state["audit"] if e["type"] != "stage_decision"]
        assert trail[-8:] == [
            ("playbook_started", "agent"), ("tool_call", "agent"), ("playbook_step_completed", "agent"),
            ("status_changed", "agent"), ("playbook_step_completed", "agent"), ("playbook_completed", "agent"),
            ("notification_recorded", "system"), ("notification_recorded", "system"),
        ]  # fmt: skip
        resolved = [e["data"] for e in state["audit"] if e["type"].startswith("notification_")]
        assert {d["event"] for d in resolved} == {"resolved"}
        assert {d["channel"] for d in resolved} == {"ops-mail", "desk-chat"}

    async def test_state_changing_tools_wait_for_approval_when_the_policy_says_so(self) -> None:
        def approve_writes(tenant: dict[str, Any]) -> None:
            tenant["guardrailOverrides"] = {"approveStateChangingTools": True}

        def read_first(domain: dict[str, Any]) -> None:
            domain["playbooks"][0]["steps"].insert(
                0, {"type": "call_tool", "name": "Read", "tool": "getTrade", "arguments": {"tradeId": "T"}}
            )

        ctx = context(*mini_packs(domain_edit=read_first, tenant_edit=approve_writes))
        playbook = find_playbook(ctx, "PB_RETRY")
        assert playbook is not None
        exception = {"exceptionId": "E-1", "exceptionType": "SETTLEMENT_FAIL", "rawPayload": {}}
        assert [(s["name"], s["disposition"]) for s in build_plan(ctx, playbook, exception)] == [
            ("Read", "auto"), ("Retry", "needs_approval"), ("Close", "auto")]  # fmt: skip
        state = await through(ctx, "SETTLEMENT_FAIL", intake, triage, policy, supervisor, resolution, supervisor,
                              tradeId="T-9", amount=10)  # fmt: skip
        assert state["status"] == "PENDING_APPROVAL"
        assert any("approveStateChangingTools" in why for why in state["approvalRequest"]["why"])


class TestNotificationTriggers:
    async def test_approval_required_notifies_the_assigned_group(self) -> None:
        def break_to_settlements(tenant: dict[str, Any]) -> None:
            with_policies(tenant)
            tenant["routingRules"] = []
            tenant["defaultGroup"] = "settlements"

        ctx = context(*mini_packs(tenant_edit=break_to_settlements))
        state = await through(
            ctx, "POSITION_BREAK", intake, triage, policy, supervisor, resolution, supervisor
        )
        sent = [e for e in state["audit"] if e["type"] == "notification_recorded"]
        assert {e["data"]["event"] for e in sent} == {"approval_required"} and len(sent) == 2
        assert all(e["stage"] == "supervisor" and e["data"]["group"] == "settlements" for e in sent)
        assert sent[0]["data"]["subject"] == "Approval needed: POSITION_BREAK E-1 (HIGH)"

    async def test_escalation_notifies_the_escalation_queue(self) -> None:
        ctx = context(*mini_packs(tenant_edit=with_policies))
        state = {"exception": dict(EXCEPTION), "escalation": {"reason": "step 1 failed"}, "confidence": 0.9}
        update = await escalate(state, runtime=Runtime(context=ctx))  # type: ignore[arg-type]
        [sent] = [e for e in update["audit"] if e["type"] == "notification_recorded"]
        assert sent["data"]["group"] == "escalations" and sent["data"]["recipients"] == ["leads@mini.example"]
        assert sent["data"]["event"] == "escalation" and update["status"] == "ESCALATED"

    async def test_notify_on_filters_events(self) -> None:
        def quiet(tenant: dict[str, Any]) -> None:
            with_policies(tenant)
            tenant["notificationPolicies"]["notifyOn"] = ["approval_required"]

        ctx = context(*mini_packs(tenant_edit=quiet))
        state = {"exception": dict(EXCEPTION), "escalation": {"reason": "r"}, "confidence": 0.9}
        update = await escalate(state, runtime=Runtime(context=ctx))  # type: ignore[arg-type]
        assert not [e for e in update["audit"] if e["type"].startswith("notification_")]
