"""Drafting playbooks: schema-constrained answers, checks against the packs, one corrective retry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml

from graph.drafting import draft_playbook
from graph.llm import LlmClient, LlmConfig, LlmTransientError
from packs.domain import DomainPack
from packs.playbook import CallToolStep, ManualStep
from packs.tenant import TenantPolicyPack
from tests.graph_helpers import PUBLIC_ONLY

BASE_URL = "https://llm.test/v1"
FIXTURES = Path(__file__).parent / "fixtures"
EXCEPTION = {
    "exceptionId": "EX-1001",
    "tenantId": "mini-bank",
    "exceptionType": "POSITION_BREAK",
    "severity": "HIGH",
    "sourceSystem": "RECON",
    "rawPayload": {"tradeId": "T-77", "bookA": 1000, "bookB": 900},
    "normalizedContext": {},
}


@pytest.fixture
async def llm() -> AsyncIterator[LlmClient]:
    config = LlmConfig(base_url=BASE_URL, api_key="test-key", model="test-model")
    async with LlmClient(config, outbound=PUBLIC_ONLY) as client:
        yield client


@pytest.fixture
def packs() -> tuple[DomainPack, TenantPolicyPack]:
    domain_doc = yaml.safe_load((FIXTURES / "mini-domain.yaml").read_text())
    domain_doc["tools"]["wireMoney"] = {
        "description": "Send a payment",
        "parameters": {
            "type": "object",
            "properties": {"amount": {"type": "number"}},
            "required": ["amount"],
        },
    }
    tenant_doc = yaml.safe_load((FIXTURES / "mini-tenant.yaml").read_text())
    return DomainPack.model_validate(domain_doc), TenantPolicyPack.model_validate(tenant_doc)


def step(type_: str, name: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": type_, "name": name, "text": None, "tool": None, "arguments": None}
    return {**base, "status": None, "group": None, **fields}


def draft(*steps: dict[str, Any]) -> str:
    return json.dumps(
        {
            "name": "Investigate position break",
            "description": "Compare the books and fix the wrong one.",
            "steps": list(steps),
            "successCriteria": ["Both books show the same position"],
            "rationale": "The break is a difference between two books.",
        }
    )


GOOD_DRAFT = draft(
    step(
        "call_tool",
        "Read the trade",
        tool="getTrade",
        arguments=[{"name": "tradeId", "value": "{{ exception.rawPayload.tradeId }}"}],
    ),
    step("manual", "Compare books", text="Compare book A and book B for the trade."),
    step("add_comment", "Record", text="Books compared."),
    step("set_status", "Close", status="RESOLVED"),
)
WIRE_DRAFT = draft(
    step("call_tool", "Pay the difference", tool="wireMoney", arguments=[{"name": "amount", "value": "100"}])
)


def reply(content: str | None = None, *, refusal: str | None = None) -> httpx.Response:
    message = {"role": "assistant", "content": content, "refusal": refusal}
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "test-model",
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 200, "total_tokens": 1100},
        },
    )


def messages(route: respx.Route, index: int) -> list[dict[str, str]]:
    sent: list[dict[str, str]] = json.loads(route.calls[index].request.content)["messages"]
    return sent


async def run(
    llm: LlmClient, packs: tuple[DomainPack, TenantPolicyPack], *replies: httpx.Response
) -> tuple[Any, respx.Route]:
    domain, tenant = packs
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as api:
        route = api.post("/chat/completions").mock(side_effect=list(replies))
        outcome = await draft_playbook(
            llm,
            exception=EXCEPTION,
            domain=domain,
            tenant=tenant,
            evidence=["policy: PB_BREAK is not in approvedBusinessProcesses"],
            hint=domain.playbook("PB_BREAK"),
        )
    assert route.call_count == len(replies)
    return outcome, route


async def test_a_valid_draft_becomes_an_unapproved_playbook(llm: LlmClient, packs: Any) -> None:
    outcome, route = await run(llm, packs, reply(GOOD_DRAFT))
    playbook = outcome.playbook
    assert playbook is not None
    assert outcome.reason == "drafted 4 steps"
    assert (outcome.attempts, [c.outcome for c in outcome.calls]) == (1, ["ok"])
    assert outcome.calls[0].prompt_id == "playbook_draft" and outcome.calls[0].total_tokens == 1100
    assert playbook.approved is False
    assert playbook.id.startswith("DRAFT-POSITION_BREAK-")
    assert playbook.appliesTo == ["POSITION_BREAK"]
    assert [s.type for s in playbook.steps] == ["call_tool", "manual", "add_comment", "set_status"]
    first = playbook.steps[0]
    assert isinstance(first, CallToolStep)
    assert first.arguments == {"tradeId": "{{ exception.rawPayload.tradeId }}"}
    user = messages(route, 0)[-1]["content"]
    assert "getTrade" in user and "retrySettlement" in user
    assert "wireMoney" not in user, "the model is only shown tools the tenant may use"
    assert "Compare both books" in user, "the unapproved domain playbook is offered as a hint"
    assert "PB_BREAK is not in approvedBusinessProcesses" in user


async def test_invalid_json_is_retried_with_the_error(llm: LlmClient, packs: Any) -> None:
    outcome, route = await run(llm, packs, reply("Here is a playbook: retry it"), reply(GOOD_DRAFT))
    assert outcome.playbook is not None and outcome.playbook.approved is False
    assert outcome.attempts == 2
    assert [c.outcome for c in outcome.calls] == ["invalid_json", "ok"]
    first, second = messages(route, 0), messages(route, 1)
    assert second[: len(first)] == first
    assert second[-2] == {"role": "assistant", "content": "Here is a playbook: retry it"}
    assert second[-1]["role"] == "user"
    assert "the reply is not valid JSON" in second[-1]["content"]


async def test_a_tool_the_tenant_may_not_use_is_never_drafted(llm: LlmClient, packs: Any) -> None:
    outcome, route = await run(llm, packs, reply(WIRE_DRAFT), reply(WIRE_DRAFT))
    assert outcome.playbook is None
    assert outcome.reason == "no draft: step 1 uses tool 'wireMoney' that tenant mini-bank may not use"
    assert outcome.attempts == 2 and [c.outcome for c in outcome.calls] == ["ok", "ok"]
    retry = messages(route, 1)
    assert retry[-2] == {"role": "assistant", "content": WIRE_DRAFT}
    assert "step 1 uses tool 'wireMoney' that tenant mini-bank may not use" in retry[-1]["content"]


async def test_a_corrected_draft_is_accepted(llm: LlmClient, packs: Any) -> None:
    outcome, _ = await run(llm, packs, reply(WIRE_DRAFT), reply(GOOD_DRAFT))
    assert outcome.playbook is not None and outcome.attempts == 2


async def test_tools_and_parameters_are_checked(llm: LlmClient, packs: Any) -> None:
    bad = draft(
        step("call_tool", "Invent", tool="deleteEverything"),
        step("call_tool", "Retry", tool="retrySettlement", arguments=[{"name": "trade", "value": "T-77"}]),
        step("manual", "Look", text="Check the trade", tool="wireMoney"),
    )
    outcome, _ = await run(llm, packs, reply(bad), reply(bad))
    assert outcome.playbook is None
    assert outcome.reason == (
        "no draft: step 1 uses tool 'deleteEverything' that domain mini-markets does not define; "
        "step 2: tool 'retrySettlement' has no parameter 'trade' (it takes tradeId); "
        "step 2: tool 'retrySettlement' needs parameter 'tradeId'; "
        "step 3 uses tool 'wireMoney' that tenant mini-bank may not use"
    )


async def test_manual_steps_may_suggest_an_allowed_tool(llm: LlmClient, packs: Any) -> None:
    ok = draft(
        step(
            "manual",
            "Look",
            text="Check the trade",
            tool="getTrade",
            arguments=[{"name": "tradeId", "value": "T-77"}],
        )
    )
    outcome, _ = await run(llm, packs, reply(ok))
    assert outcome.playbook is not None
    manual = outcome.playbook.steps[0]
    assert isinstance(manual, ManualStep) and manual.suggestedToolCall is not None
    assert manual.suggestedToolCall.tool == "getTrade"


async def test_step_errors_are_sent_back(llm: LlmClient, packs: Any) -> None:
    bad = draft(step("call_tool", "Call something"), step("notify", "Tell"))
    outcome, route = await run(llm, packs, reply(bad), reply(GOOD_DRAFT))
    assert outcome.playbook is not None
    correction = messages(route, 1)[-1]["content"]
    assert "step 1 (call_tool 'Call something'): needs a tool" in correction
    assert "step 2 (notify 'Tell'): needs a message in text" in correction


async def test_two_refusals_give_no_draft(llm: LlmClient, packs: Any) -> None:
    outcome, route = await run(
        llm, packs, reply(refusal="I can't help with that."), reply(refusal="Still no.")
    )
    assert outcome.playbook is None
    assert outcome.reason == "no draft: the model refused: Still no."
    assert outcome.attempts == 2 and [c.outcome for c in outcome.calls] == ["refusal", "refusal"]
    retry = messages(route, 1)
    assert [m["role"] for m in retry[-2:]] == ["user", "user"], "no assistant turn when there was no answer"
    assert "the model refused: I can't help with that." in retry[-1]["content"]


async def test_schema_violations_are_named(llm: LlmClient, packs: Any) -> None:
    bad = json.dumps({"name": "x", "steps": [{"type": "email", "name": "Mail"}]})
    outcome, _ = await run(llm, packs, reply(bad), reply(bad))
    assert outcome.playbook is None
    assert outcome.reason.startswith("no draft: the reply does not fit the schema: ")
    assert "steps.0.type: Input should be" in outcome.reason


async def test_transient_failures_propagate_to_the_retry_policy(llm: LlmClient, packs: Any) -> None:
    domain, tenant = packs
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as api:
        api.post("/chat/completions").mock(
            return_value=httpx.Response(503, json={"error": {"message": "overloaded"}})
        )
        with pytest.raises(LlmTransientError) as caught:
            await draft_playbook(
                llm, exception=EXCEPTION, domain=domain, tenant=tenant, evidence=[], hint=None
            )
    assert caught.value.call.prompt_id == "playbook_draft"


async def test_without_allowed_tools_call_tool_is_not_offered(llm: LlmClient, packs: Any) -> None:
    domain, tenant = packs
    no_tools = tenant.model_copy(update={"toolsAllowList": []})
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as api:
        route = api.post("/chat/completions").mock(
            return_value=reply(draft(step("manual", "Look", text="Compare books")))
        )
        outcome = await draft_playbook(
            llm, exception=EXCEPTION, domain=domain, tenant=no_tools, evidence=[], hint=None
        )
    assert outcome.playbook is not None
    system = messages(route, 0)[0]["content"]
    assert "Use only these step types: notify, assign_owner, set_status, add_comment, manual." in system
