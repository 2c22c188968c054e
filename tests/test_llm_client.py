"""The LLM client at the wire: the real openai client, with respx standing in for the endpoint.

Nothing here may reach a real LLM: respx answers every request, and an autouse fixture fails any
test that opens a socket anyway.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from openai import pydantic_function_tool

from graph.llm import (
    STATUS_MEANINGS,
    LlmClient,
    LlmConfig,
    LlmError,
    LlmOutputError,
    LlmRequestError,
    LlmTransientError,
    status_meaning,
)
from prompts.outputs import PlaybookDraft, SupervisorOpinion, TriageSummary
from prompts.registry import RenderedPrompt, render_prompt
from tests.graph_helpers import PUBLIC_ONLY, public_dns
from tools.outbound import OutboundPolicy, parse_networks

BASE_URL = "https://llm.test/v1"
CONFIG = LlmConfig(base_url=BASE_URL, api_key="test-key", model="test-model", timeout_seconds=5)
PROMPT = RenderedPrompt(
    id="triage_summary",
    version=1,
    messages=[{"role": "system", "content": "You summarize."}, {"role": "user", "content": "Summarize E-1."}],
)
GOOD = {"summary": "Trade T1 failed to settle.", "likelyCauses": ["missing SSI", "insufficient securities"]}


@pytest.fixture
async def llm() -> AsyncIterator[LlmClient]:
    async with LlmClient(CONFIG, outbound=PUBLIC_ONLY) as client:
        yield client


def completion(
    content: str | None,
    *,
    finish_reason: str = "stop",
    refusal: str | None = None,
    usage: tuple[int, int] | None = (120, 30),
) -> httpx.Response:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "test-model-2026-01-01",
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
            }
        ],
    }
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return httpx.Response(200, json=body)


def sent(route: respx.Route, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls[index].request.content)
    return body


def objects(schema: Any) -> Iterator[dict[str, Any]]:
    """Every object schema inside a JSON schema, nested ones and $defs included."""
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            yield schema
        for value in schema.values():
            yield from objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from objects(value)


@pytest.mark.parametrize("output", [TriageSummary, SupervisorOpinion, PlaybookDraft])
async def test_request_pins_strict_json_schema(llm: LlmClient, output: type[Any]) -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as api:
        route = api.post("/chat/completions").mock(return_value=completion("{}"))
        with pytest.raises(LlmOutputError):
            await llm.structured(PROMPT, output)
    body = sent(route)
    assert body["model"] == "test-model"
    assert body["temperature"] == 0
    assert body["messages"] == PROMPT.messages
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["name"] == output.__name__
    schema = response_format["json_schema"]["schema"]
    assert schema == pydantic_function_tool(output)["function"]["parameters"]
    for obj in objects(schema):
        assert obj["additionalProperties"] is False
        assert set(obj["required"]) == set(obj["properties"])
    assert route.calls[0].request.headers["Authorization"] == "Bearer test-key"
    assert route.call_count == 1


async def test_valid_reply_is_parsed_with_usage(llm: LlmClient) -> None:
    prompt = render_prompt(
        "triage_summary",
        exception={
            "exceptionType": "SETTLEMENT_FAIL",
            "domainName": "mini-markets",
            "rawPayload": {"tradeId": "T1"},
        },
        type_definition={"description": "A trade did not settle"},
        severity="HIGH",
        severity_reason="rule big_fail",
        matched_rules=["big_fail"],
    )
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as api:
        route = api.post("/chat/completions").mock(return_value=completion(json.dumps(GOOD)))
        result = await llm.structured(prompt, TriageSummary)
    assert result.value == TriageSummary.model_validate(GOOD)
    assert result.content == json.dumps(GOOD)
    call = result.call
    assert (call.prompt_id, call.prompt_version, call.model) == ("triage_summary", 1, "test-model")
    assert (call.prompt_tokens, call.completion_tokens, call.total_tokens) == (120, 30, 150)
    assert call.outcome == "ok" and call.error is None and call.latency_ms >= 0
    assert call.as_audit() == {
        "promptId": "triage_summary",
        "promptVersion": 1,
        "model": "test-model",
        "latencyMs": call.latency_ms,
        "promptTokens": 120,
        "completionTokens": 30,
        "totalTokens": 150,
        "outcome": "ok",
        "error": None,
    }
    assert sent(route)["messages"] == prompt.messages


async def test_missing_usage_leaves_tokens_unknown(llm: LlmClient) -> None:
    with respx.mock(base_url=BASE_URL) as api:
        api.post("/chat/completions").mock(return_value=completion(json.dumps(GOOD), usage=None))
        result = await llm.structured(PROMPT, TriageSummary)
    assert (result.call.prompt_tokens, result.call.total_tokens) == (None, None)


async def test_extra_messages_follow_the_prompt(llm: LlmClient) -> None:
    extra = [{"role": "assistant", "content": "{}"}, {"role": "user", "content": "Fix it."}]
    with respx.mock(base_url=BASE_URL) as api:
        route = api.post("/chat/completions").mock(return_value=completion(json.dumps(GOOD)))
        await llm.structured(PROMPT, TriageSummary, extra_messages=extra)
    assert sent(route)["messages"] == [*PROMPT.messages, *extra]
    with pytest.raises(ValueError, match="role 'tool'"):
        await llm.structured(PROMPT, TriageSummary, extra_messages=[{"role": "tool", "content": "x"}])


async def test_temperature_none_is_left_out() -> None:
    config = LlmConfig(base_url=BASE_URL, api_key="k", model="reasoner", temperature=None)
    async with LlmClient(config, outbound=PUBLIC_ONLY) as client:
        with respx.mock(base_url=BASE_URL) as api:
            route = api.post("/chat/completions").mock(return_value=completion(json.dumps(GOOD)))
            await client.structured(PROMPT, TriageSummary)
    assert "temperature" not in sent(route)


def test_config_hides_the_api_key() -> None:
    assert "test-key" not in repr(CONFIG)
    with pytest.raises(ValueError, match="model"):
        LlmConfig(base_url=None, api_key="k", model="")


async def output_failure(
    llm: LlmClient, response: httpx.Response, output: type[Any] = TriageSummary
) -> LlmOutputError:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as api:
        api.post("/chat/completions").mock(return_value=response)
        with pytest.raises(LlmOutputError) as caught:
            await llm.structured(PROMPT, output)
    return caught.value


async def test_invalid_json_is_an_output_error(llm: LlmClient) -> None:
    error = await output_failure(llm, completion("Sure! Here is the summary: the trade failed."))
    assert error.reason == "invalid_json"
    assert error.content == "Sure! Here is the summary: the trade failed."
    assert "not valid JSON" in str(error)
    assert error.call.outcome == "invalid_json" and error.call.error == str(error)
    assert error.call.total_tokens == 150  # the tokens were spent even though the answer was unusable


async def test_schema_violation_names_each_field(llm: LlmClient) -> None:
    error = await output_failure(llm, completion(json.dumps({"summary": 42, "extra": True})))
    assert error.reason == "schema_violation"
    assert error.call.outcome == "schema_violation"
    text = " | ".join(error.problems)
    assert "summary: Input should be a valid string (got 42)" in text
    assert "likelyCauses: Field required" in text
    assert "extra: Extra inputs are not permitted" in text


async def test_refusal_is_an_output_error(llm: LlmClient) -> None:
    error = await output_failure(llm, completion(None, refusal="I can't help with that."))
    assert error.reason == "refusal"
    assert str(error) == "the model refused: I can't help with that."
    assert error.content is None
    assert error.call.outcome == "refusal"


@pytest.mark.parametrize(
    ("finish_reason", "content", "reason"),
    [("length", '{"summary": "Trade T1 fail', "length"), ("content_filter", None, "content_filter")],
)
async def test_truncated_or_filtered_replies(
    llm: LlmClient, finish_reason: str, content: str | None, reason: str
) -> None:
    error = await output_failure(llm, completion(content, finish_reason=finish_reason))
    assert error.reason == reason
    assert error.call.outcome == reason


async def test_empty_reply_is_invalid_json(llm: LlmClient) -> None:
    error = await output_failure(llm, completion(None))
    assert error.reason == "invalid_json"


async def failure(llm: LlmClient, **mock: Any) -> LlmError:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as api:
        route = api.post("/chat/completions").mock(**mock)
        with pytest.raises(LlmError) as caught:
            await llm.structured(PROMPT, TriageSummary)
    assert route.call_count == 1, "the openai client must not retry on its own"
    return caught.value


@pytest.mark.parametrize("status", [429, 500, 503, 408])
async def test_rate_limits_and_server_errors_are_transient(llm: LlmClient, status: int) -> None:
    response = httpx.Response(status, json={"error": {"message": "slow down", "type": "rate_limit"}})
    error = await failure(llm, return_value=response)
    assert isinstance(error, LlmTransientError)
    assert str(error) == f"LLM endpoint answered HTTP {status}: {status_meaning(status)}"
    assert "slow down" not in str(error) and error.call.error == str(error)
    assert error.call.outcome == "transient" and error.call.latency_ms >= 0
    assert error.call.total_tokens is None


async def test_429_then_200_succeeds_on_the_next_call(llm: LlmClient) -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as api:
        route = api.post("/chat/completions").mock(
            side_effect=[
                httpx.Response(429, json={"error": {"message": "slow down"}}),
                completion(json.dumps(GOOD)),
            ]
        )
        with pytest.raises(LlmTransientError):
            await llm.structured(PROMPT, TriageSummary)
        result = await llm.structured(PROMPT, TriageSummary)
    assert result.value.summary == GOOD["summary"]
    assert route.call_count == 2


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("read timed out"), httpx.ConnectTimeout("connect timed out")]
)
async def test_timeouts_are_transient(llm: LlmClient, exc: Exception) -> None:
    error = await failure(llm, side_effect=exc)
    assert isinstance(error, LlmTransientError)
    assert "timed out" in str(error)
    assert error.call.outcome == "transient"


async def test_connection_errors_are_transient(llm: LlmClient) -> None:
    error = await failure(llm, side_effect=httpx.ConnectError("connection refused"))
    assert isinstance(error, LlmTransientError)
    assert "could not be reached" in str(error)


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_other_client_errors_are_request_errors(llm: LlmClient, status: int) -> None:
    response = httpx.Response(status, json={"error": {"message": "model 'test-model' does not exist"}})
    error = await failure(llm, return_value=response)
    assert isinstance(error, LlmRequestError) and not isinstance(error, LlmTransientError)
    assert error.status_code == status
    assert str(error) == f"LLM endpoint answered HTTP {status}: {status_meaning(status)}"
    assert "does not exist" not in str(error)
    assert error.call.outcome == "request_error"


async def test_an_endpoint_that_is_not_chat_completions_is_a_request_error(llm: LlmClient) -> None:
    error = await failure(llm, return_value=httpx.Response(200, html="<html>Sign in</html>"))
    assert isinstance(error, LlmRequestError)
    assert "did not answer with a chat completion" in str(error) and "Sign in" not in str(error)


# --- the outbound policy, redirects, and bodies never echoed -----------------------------------


@pytest.mark.parametrize(
    ("base_url", "why"),
    [
        ("http://127.0.0.1:8080/v1", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest", "169.254.169.254 is a cloud metadata service address"),
        ("http://2130706433/v1", "127.0.0.1 is a loopback address"),
    ],
)
async def test_an_endpoint_the_policy_refuses_gets_no_request(base_url: str, why: str) -> None:
    config = LlmConfig(base_url=base_url, api_key="sk-tenant-secret", model="m")
    async with LlmClient(config, outbound=PUBLIC_ONLY) as client:
        with respx.mock(assert_all_called=False) as api:
            route = api.route().mock(return_value=completion(json.dumps(GOOD)))
            with pytest.raises(LlmRequestError) as caught:
                await client.structured(PROMPT, TriageSummary)
    assert route.called is False
    error = caught.value
    assert str(error).startswith("refused by the outbound policy: ") and why in str(error)
    assert error.call.outcome == "request_error" and error.call.error == str(error)


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    async def internal(host: str, port: int) -> list[str]:
        return ["10.0.0.9"]

    async with LlmClient(CONFIG, outbound=OutboundPolicy(resolver=internal)) as client:
        with respx.mock(base_url=BASE_URL, assert_all_called=False) as api:
            route = api.post("/chat/completions").mock(return_value=completion(json.dumps(GOOD)))
            with pytest.raises(LlmRequestError, match=r"10\.0\.0\.9 is a private address"):
                await client.structured(PROMPT, TriageSummary)
    assert route.called is False


async def test_a_loopback_endpoint_the_operator_allowed_is_called() -> None:
    allowed = OutboundPolicy(parse_networks(["127.0.0.1/32"]), resolver=public_dns)
    config = LlmConfig(base_url="http://127.0.0.1:8080/v1", api_key="k", model="m")
    async with LlmClient(config, outbound=allowed) as client:
        with respx.mock(base_url="http://127.0.0.1:8080/v1") as api:
            route = api.post("/chat/completions").mock(return_value=completion(json.dumps(GOOD)))
            result = await client.structured(PROMPT, TriageSummary)
    assert route.call_count == 1 and result.value.summary == GOOD["summary"]


async def test_a_redirect_is_not_followed_and_the_key_goes_nowhere_else(llm: LlmClient) -> None:
    with respx.mock(assert_all_called=False) as api:
        first = api.post(f"{BASE_URL}/chat/completions").mock(
            return_value=httpx.Response(
                307, headers={"Location": "https://elsewhere.test/v1/chat/completions"}
            )
        )
        elsewhere = api.post("https://elsewhere.test/v1/chat/completions").mock(
            return_value=completion(json.dumps(GOOD))
        )
        with pytest.raises(LlmRequestError) as caught:
            await llm.structured(PROMPT, TriageSummary)
    assert first.call_count == 1 and elsewhere.called is False
    assert str(caught.value) == "LLM endpoint answered HTTP 307: " + status_meaning(307)
    assert "elsewhere" not in str(caught.value)


async def test_an_error_body_is_never_repeated(llm: LlmClient) -> None:
    leaked = "root:x:0:0 internal page sk-platform-key"
    for status in (400, 401, 500):
        response = httpx.Response(status, text=leaked)
        error = await failure(llm, return_value=response)
        assert "root:x" not in str(error) and "sk-platform" not in str(error)
        assert "root:x" not in repr(error.call.as_audit())
        assert error.__cause__ is None and error.__suppress_context__
    assert set(STATUS_MEANINGS) >= {400, 401, 403, 404, 429}
