"""The graph with an LLM configured, at the wire: the real openai client, respx as the endpoint.

Covers classification of an unknown type (enum-constrained), the LLM triage summary, a drafted
playbook for a non-approved case, a 429 retried by the node's RetryPolicy, a timeout that degrades
to "no draft", and a supervisor second opinion that can only tighten.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from graph.builder import build_graph
from graph.checkpoint import open_checkpointer
from graph.events import MemoryEventSink
from graph.runner import CaseRunner
from tests.graph_helpers import LLM_BASE, completion, context, raw, schema_name

SUMMARY = {"summary": "Trade T-1 failed: counterparty lacked securities.", "likelyCauses": ["short position"]}
CONTINUE = {"recommendation": "continue", "concerns": [], "rationale": "consistent"}
DRAFT = {
    "name": "Reconcile the break",
    "description": "Look up the trade, then close.",
    "steps": [
        {"type": "call_tool", "name": "Read trade", "text": None, "tool": "getTrade",
         "arguments": [{"name": "tradeId", "value": "{{ exception.rawPayload.tradeId }}"}], "status": None, "group": None},
        {"type": "manual", "name": "Fix books", "text": "Book the missing trade", "tool": None, "arguments": None,
         "status": None, "group": None},
    ],
    "successCriteria": ["books agree"],
    "rationale": "standard break handling",
}  # fmt: skip


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[CaseRunner]:
    async with open_checkpointer("memory") as saver:
        yield CaseRunner(build_graph(checkpointer=saver, llm_retry_interval=0.01))


def llm_replies(
    **by_schema: Callable[[httpx.Request], httpx.Response] | dict[str, Any],
) -> Callable[[httpx.Request], httpx.Response]:
    """Answer each structured-output request by the name of the schema it asks for."""

    def answer(request: httpx.Request) -> httpx.Response:
        name = schema_name(request)
        reply = by_schema.get(name, CONTINUE if name == "SupervisorOpinion" else SUMMARY)
        return reply(request) if callable(reply) else completion(reply)

    return answer


def bodies(route: respx.Route, name: str) -> list[dict[str, Any]]:
    found = [json.loads(call.request.content) for call in route.calls]
    return [b for b in found if b["response_format"]["json_schema"]["name"] == name]


async def test_unknown_type_classified_into_the_taxonomy(runner: CaseRunner) -> None:
    with respx.mock(base_url=LLM_BASE) as mock:
        route = mock.post("/chat/completions").mock(
            side_effect=llm_replies(
                TypeClassification={
                    "exceptionType": "SETTLEMENT_FAIL",
                    "confidence": 0.97,
                    "rationale": "fail status",
                }
            )
        )
        result = await runner.start(
            context(llm=True), raw("E-CL", "MISSED_DELIVERY", tradeId="T-1", amount=10)
        )
    [sent] = bodies(route, "TypeClassification")
    schema = sent["response_format"]["json_schema"]
    assert schema["strict"] is True and sent["model"] == "test-model"
    assert schema["schema"]["properties"]["exceptionType"]["enum"] == [
        "SETTLEMENT_FAIL", "POSITION_BREAK", "SEC_MASTER_MISMATCH", "SETTLEMENT_NOTICE", "UNKNOWN",
    ]  # fmt: skip
    assert result["exceptionType"] == "SETTLEMENT_FAIL" and result["stages"][0]["confidence"] == 0.85
    assert result["resolutionStatus"] == "RESOLVED"
    intake_evidence = [e["detail"] for e in result["stages"][0]["evidence"]]
    assert "LLM classified as SETTLEMENT_FAIL (confidence 0.85): fail status" in intake_evidence


async def test_llm_says_unknown_then_the_case_escalates(runner: CaseRunner) -> None:
    with respx.mock(base_url=LLM_BASE) as mock:
        mock.post("/chat/completions").mock(
            side_effect=llm_replies(
                TypeClassification={"exceptionType": "UNKNOWN", "confidence": 0.2, "rationale": "no idea"}
            )
        )
        result = await runner.start(context(llm=True), raw("E-UN", "MISSED_DELIVERY"))
    assert result["resolutionStatus"] == "ESCALATED"


async def test_llm_summary_and_usage_in_the_audit_trail(runner: CaseRunner) -> None:
    ctx = context(llm=True)
    with respx.mock(base_url=LLM_BASE) as mock:
        mock.post("/chat/completions").mock(side_effect=llm_replies())
        result = await runner.start(ctx, raw("E-SUM", "SETTLEMENT_FAIL", tradeId="T-1", amount=10))
    assert (
        result["summary"]
        == "Trade T-1 failed: counterparty lacked securities. Likely causes: short position."
    )
    assert isinstance(ctx.events, MemoryEventSink)  # the audit trail is the sink's, not the state's
    calls = [e["data"] for e in ctx.events.trail("mini-bank", "E-SUM") if e["type"] == "llm_call"]
    assert {c["promptId"] for c in calls} == {"triage_summary", "supervisor_review"}
    assert all(
        c["model"] and c["totalTokens"] == 120 and c["promptVersion"] >= 1 and "latencyMs" in c for c in calls
    )


async def test_non_approved_case_gets_a_validated_draft_that_is_never_approved(runner: CaseRunner) -> None:
    with respx.mock(base_url=LLM_BASE) as mock:
        mock.post("/chat/completions").mock(side_effect=llm_replies(PlaybookDraft=DRAFT))
        result = await runner.start(context(llm=True), raw("E-DR", "POSITION_BREAK", tradeId="T-7"))
    assert result["resolutionStatus"] == "PENDING_APPROVAL" and result["draft"]["approved"] is False
    assert [s["name"] for s in result["plan"]] == ["Read trade", "Fix books"]
    assert result["pending"]["draft"]["steps"][0]["tool"] == "getTrade"
    resolution = next(s for s in result["stages"] if s["stage"] == "resolution")
    assert resolution["decision"] == "DRAFT_READY"


async def test_a_429_is_retried_by_the_node_retry_policy(runner: CaseRunner) -> None:
    seen: list[int] = []

    def rate_limited_once(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        if len(seen) == 1:
            return httpx.Response(429, json={"error": {"message": "slow down", "type": "rate_limit"}})
        return completion(DRAFT)

    with respx.mock(base_url=LLM_BASE) as mock:
        mock.post("/chat/completions").mock(side_effect=llm_replies(PlaybookDraft=rate_limited_once))
        ctx = context(llm=True)
        result = await runner.start(ctx, raw("E-429", "POSITION_BREAK", tradeId="T"))
    assert len(seen) == 2 and result["draft"] is not None
    assert isinstance(ctx.events, MemoryEventSink)
    attempts = [
        e["data"].get("nodeAttempt")
        for e in ctx.events.trail("mini-bank", "E-429")
        if e["type"] == "llm_call" and e["stage"] == "resolution"
    ]
    assert attempts == [2]


async def test_a_timeout_on_every_attempt_means_no_draft_not_a_lost_case(runner: CaseRunner) -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with respx.mock(base_url=LLM_BASE) as mock:
        route = mock.post("/chat/completions").mock(side_effect=llm_replies(PlaybookDraft=timeout))
        result = await runner.start(context(llm=True), raw("E-TO", "POSITION_BREAK", tradeId="T"))
    assert len(bodies(route, "PlaybookDraft")) == 3
    assert result["resolutionStatus"] == "PENDING_APPROVAL" and result["draft"] is None
    resolution = next(s for s in result["stages"] if s["stage"] == "resolution")
    assert any(
        e["detail"].startswith("no draft: the LLM failed (LlmTransientError") for e in resolution["evidence"]
    )


async def test_supervisor_second_opinion_only_tightens(runner: CaseRunner) -> None:
    escalate = {"recommendation": "escalate", "concerns": ["odd amount"], "rationale": "looks like fraud"}
    with respx.mock(base_url=LLM_BASE) as mock:
        mock.post("/chat/completions").mock(side_effect=llm_replies(SupervisorOpinion=escalate))
        tightened = await runner.start(
            context(llm=True), raw("E-SV1", "SETTLEMENT_FAIL", tradeId="T", amount=10)
        )
    assert tightened["resolutionStatus"] == "ESCALATED"
    assert "LLM second opinion tightened the decision to escalate" in tightened["escalation"]["reason"]
    loosen = {"recommendation": "continue", "concerns": [], "rationale": "fine to auto-run"}
    with respx.mock(base_url=LLM_BASE) as mock:
        mock.post("/chat/completions").mock(side_effect=llm_replies(SupervisorOpinion=loosen))
        held = await runner.start(
            context(llm=True), raw("E-SV2", "SETTLEMENT_FAIL", tradeId="T", amount=60_000_000)
        )
    assert held["resolutionStatus"] == "PENDING_APPROVAL"
