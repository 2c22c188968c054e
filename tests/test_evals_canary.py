"""``exops eval canary`` at the wire: respx stands in for an OpenAI-compatible server on loopback.

A server that answers HTTP 200 with JSON that does not fit the schema (it ignored
``response_format``) or with prose must be reported ``ignored`` with exit 1; one that honours it,
``honoured`` with exit 0; a refused connection, ``unreachable``. The request itself must carry the
shape llama.cpp's server turns into a grammar: ``{type: json_schema, json_schema: {schema}}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from typer.testing import CliRunner

import app.settings
from app.cli.main import cli
from app.settings import Settings

BASE_URL = "http://127.0.0.1:18555/v1"
runner = CliRunner()


@pytest.fixture(autouse=True)
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    settings = Settings(llm_base_url=BASE_URL, outbound_allowed_networks=["127.0.0.1/32"])
    monkeypatch.setattr(app.settings, "get_settings", lambda: settings)
    yield


def completion(content: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "smollm2-135m",
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
            ],
            "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52},
        },
    )


def canary(route_answer: Any) -> tuple[int, str, dict[str, Any] | None]:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE_URL}/chat/completions").mock(side_effect=route_answer)
        result = runner.invoke(cli, ["eval", "canary", "--model", "smollm2-135m"])
        body = json.loads(route.calls[-1].request.content) if route.calls else None
    return result.exit_code, result.output, body


def test_schema_invalid_json_with_http_200_is_detected() -> None:
    code, output, body = canary(lambda request: completion('{"greeting": "Hello!", "words": "one"}'))
    assert code == 1
    assert "response_format ignored: smollm2-135m answered outside the schema (schema_violation)" in output
    assert body is not None
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    schema = response_format["json_schema"]["schema"]  # nested under json_schema, not flat
    assert schema["properties"]["marker"]["const"] == "exops-canary-7f3a"
    assert "schema" not in response_format


def test_prose_with_http_200_is_detected() -> None:
    code, output, _ = canary(lambda request: completion("Hello there! How can I help you today?"))
    assert code == 1 and "response_format ignored" in output and "(invalid_json)" in output


def test_a_schema_valid_answer_is_honoured() -> None:
    answer = {"marker": "exops-canary-7f3a", "greeting": "Hello, team!", "words": 2}
    code, output, _ = canary(lambda request: completion(json.dumps(answer)))
    assert (
        code == 0
        and 'response_format honoured: smollm2-135m returned {"marker":"exops-canary-7f3a"' in output
    )


def test_a_refused_connection_is_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    code, output, _ = canary(refuse)
    assert code == 1 and "response_format unreachable: LLM endpoint could not be reached" in output


def test_a_loopback_server_outside_the_outbound_policy_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.settings, "get_settings", lambda: Settings())
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{BASE_URL}/chat/completions").mock(return_value=completion("{}"))
        result = runner.invoke(cli, ["eval", "canary", "--model", "m", "--base-url", BASE_URL])
    assert result.exit_code == 1 and "refused by the outbound policy" in result.output
    assert not route.called
