"""The one place exops builds an LLM client: any OpenAI-compatible endpoint, strict structured output.

Every call asks for a pydantic model through Structured Outputs (``chat.completions.parse`` sends
``response_format={"type": "json_schema", "json_schema": {..., "strict": true}}``) and is validated
again here, because LLM output is advice that must fit a schema before anything reads it.

Failures are sorted by what the caller should do about them:

- ``LlmTransientError`` (429, 408/409, 5xx, timeouts, connection errors): try again later. The
  openai client does not retry (``max_retries=0``); the graph's LangGraph ``RetryPolicy`` re-runs the
  node, so retries, back-off and attempt counts live in one place and show in the audit trail.
- ``LlmOutputError`` (refusal, invalid JSON, schema violation, cut off by length, content filter):
  the model answered but the answer is unusable; the caller may ask again with the errors.
- ``LlmRequestError`` (other 4xx, or an endpoint that does not speak chat completions): retrying
  will not help; fix the configuration.

Every request goes through the outbound policy (``tools.outbound.PolicedTransport``): the endpoint,
whether the operator's or a tenant's, must resolve to addresses exops may reach, and redirects are
never followed, so a bearer key is only ever sent to the host that was configured. A refusal is an
``LlmRequestError`` ("refused by the outbound policy: <reason>"), with nothing sent.

What the endpoint answers in an error is never repeated: errors say the HTTP status and a fixed
description of it, because an endpoint's error body may hold anything (an internal service's page,
a reflected credential), and LLM errors reach the audit trail, the API and the UI.

Each outcome yields an ``LlmCall`` (prompt id/version, model, latency, tokens) for the audit trail:
in ``LlmResult.call`` on success, as ``error.call`` on failure.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

import httpx
import openai
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)
from pydantic import BaseModel, ValidationError

from prompts.registry import RenderedPrompt
from tools.outbound import OutboundPolicy, OutboundRefused, PolicedTransport

T = TypeVar("T", bound=BaseModel)

OutputFailure = Literal["refusal", "invalid_json", "schema_violation", "length", "content_filter"]
Outcome = Literal[
    "ok", "transient", "request_error", "refusal", "invalid_json", "schema_violation", "length", "content_filter"
]  # fmt: skip

TRANSIENT_STATUS = frozenset({408, 409, 429})
"""Besides 5xx: the statuses the openai client itself would retry (timeout, lock, rate limit)."""


@dataclass(frozen=True)
class LlmConfig:
    """Where and how to call the LLM; the app builds it from its settings (and the tenant's pack)."""

    base_url: str | None
    api_key: str = field(repr=False)  # never in logs or tracebacks
    model: str
    timeout_seconds: float = 30.0
    temperature: float | None = 0.0
    """``None`` leaves it out of the request, for models that only accept their default."""

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("LlmConfig.model must not be empty")
        if self.timeout_seconds <= 0:
            raise ValueError("LlmConfig.timeout_seconds must be positive")


@dataclass(frozen=True)
class LlmCall:
    """One LLM request as the audit trail records it, whatever its outcome."""

    prompt_id: str
    prompt_version: int
    model: str
    latency_ms: float
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    outcome: Outcome
    error: str | None = None

    def as_audit(self) -> dict[str, Any]:
        return {
            "promptId": self.prompt_id,
            "promptVersion": self.prompt_version,
            "model": self.model,
            "latencyMs": self.latency_ms,
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "totalTokens": self.total_tokens,
            "outcome": self.outcome,
            "error": self.error,
        }


@dataclass(frozen=True)
class LlmResult(Generic[T]):
    value: T
    call: LlmCall
    content: str
    """The reply exactly as the model wrote it (e.g. to show it back to the model in a follow-up)."""


class LlmError(Exception):
    """Base of every LLM failure; ``call`` is the audit record of the failed request."""

    def __init__(self, message: str, *, call: LlmCall) -> None:
        super().__init__(message)
        self.call = call


class LlmTransientError(LlmError):
    """Rate limit, server error, timeout or connection failure: worth retrying later."""


class LlmRequestError(LlmError):
    """The endpoint rejected the request (bad model, key, parameters) or is not chat-completions."""

    def __init__(self, message: str, *, call: LlmCall, status_code: int | None = None) -> None:
        super().__init__(message, call=call)
        self.status_code = status_code


class LlmOutputError(LlmError):
    """The model answered, but not with a usable object; ``problems`` says exactly why."""

    def __init__(
        self,
        message: str,
        *,
        call: LlmCall,
        reason: OutputFailure,
        content: str | None = None,
        problems: Sequence[str] = (),
    ) -> None:
        super().__init__(message, call=call)
        self.reason: OutputFailure = reason
        self.content = content
        self.problems = tuple(problems) or (message,)


def _typed_message(message: Mapping[str, str]) -> ChatCompletionMessageParam:
    role, content = message.get("role"), message.get("content", "")
    if role == "system":
        return ChatCompletionSystemMessageParam(role="system", content=content)
    if role == "user":
        return ChatCompletionUserMessageParam(role="user", content=content)
    if role == "assistant":
        return ChatCompletionAssistantMessageParam(role="assistant", content=content)
    raise ValueError(f"unsupported message role {role!r}; use system, user or assistant")


def _body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _tokens(body: Mapping[str, Any] | None) -> tuple[int | None, int | None, int | None]:
    usage = body.get("usage") if body else None
    if not isinstance(usage, dict):
        return None, None, None

    def count(key: str) -> int | None:
        value = usage.get(key)
        return value if isinstance(value, int) else None

    return count("prompt_tokens"), count("completion_tokens"), count("total_tokens")


def _first_message(body: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    choices = body.get("choices") if body else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    return message if isinstance(message, dict) else None


def _validation_problems(exc: ValidationError) -> tuple[OutputFailure, list[str]]:
    errors = exc.errors(include_url=False)
    if any(error["type"] == "json_invalid" for error in errors):
        return "invalid_json", [f"the reply is not valid JSON: {errors[0]['msg']}"]
    problems = []
    for error in errors:
        where = ".".join(str(part) for part in error["loc"]) or "the object"
        given = error.get("input")
        shown = (
            f" (got {given!r})"
            if isinstance(given, str | int | float | bool) and error["type"] != "missing"
            else ""
        )
        problems.append(f"{where}: {error['msg']}{shown}")
    return "schema_violation", problems


STATUS_MEANINGS = {
    400: "the endpoint refused the request as malformed",
    401: "the endpoint refused the API key",
    403: "the API key may not use this model or endpoint",
    404: "no such model or path at the endpoint",
    408: "the endpoint timed out the request",
    409: "the endpoint reported a conflict",
    413: "the request was too large for the endpoint",
    422: "the endpoint could not process the request",
    429: "rate limited by the endpoint",
}
"""Fixed descriptions: the endpoint's own error body is never recorded nor shown."""


def status_meaning(status: int) -> str:
    """A fixed short description of an HTTP status from an LLM endpoint."""
    if 300 <= status < 400:
        return "the endpoint answered with a redirect, which is not followed"
    if status >= 500:
        return "the endpoint had a server error"
    return STATUS_MEANINGS.get(status, "the endpoint refused the request")


class LlmClient:
    """An OpenAI-compatible chat client that only returns schema-valid pydantic objects."""

    def __init__(
        self,
        config: LlmConfig,
        *,
        outbound: OutboundPolicy,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``outbound`` is required: there is no way to build a client that skips the policy.
        ``transport`` replaces the network below the policy check (tests)."""
        self.config = config
        http_client = httpx.AsyncClient(
            transport=PolicedTransport(outbound, transport),
            follow_redirects=False,  # a redirect is an error: the key goes to the configured host only
            timeout=config.timeout_seconds,
        )
        self._client = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            timeout=config.timeout_seconds,
            max_retries=0,  # the node's RetryPolicy retries, on LlmTransientError
            http_client=http_client,
        )

    @property
    def model(self) -> str:
        return self.config.model

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    async def __aenter__(self) -> LlmClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def structured(
        self,
        prompt: RenderedPrompt,
        output: type[T],
        *,
        extra_messages: Sequence[Mapping[str, str]] = (),
    ) -> LlmResult[T]:
        """Ask for one ``output`` object; raises an ``LlmError`` subclass carrying the call record."""
        messages = [_typed_message(m) for m in (*prompt.messages, *extra_messages)]
        started = time.perf_counter()
        tokens: tuple[int | None, int | None, int | None] = (None, None, None)

        def record(outcome: Outcome, error: str | None = None) -> LlmCall:
            return LlmCall(
                prompt_id=prompt.id,
                prompt_version=prompt.version,
                model=self.config.model,
                latency_ms=round((time.perf_counter() - started) * 1000, 1),
                prompt_tokens=tokens[0],
                completion_tokens=tokens[1],
                total_tokens=tokens[2],
                outcome=outcome,
                error=error[:500] if error else None,
            )

        def output_error(reason: OutputFailure, message: str, **kw: Any) -> LlmOutputError:
            return LlmOutputError(message, call=record(reason, message), reason=reason, **kw)

        temperature = self.config.temperature
        try:
            raw = await self._client.chat.completions.with_raw_response.parse(
                model=self.config.model,
                messages=messages,
                response_format=output,
                temperature=openai.omit if temperature is None else temperature,
            )
        except openai.APIStatusError as exc:
            status = exc.status_code
            message = f"LLM endpoint answered HTTP {status}: {status_meaning(status)}"
            if status in TRANSIENT_STATUS or status >= 500:
                raise LlmTransientError(message, call=record("transient", message)) from None
            raise LlmRequestError(
                message, call=record("request_error", message), status_code=status
            ) from None
        except openai.APIConnectionError as exc:  # includes APITimeoutError
            if isinstance(exc.__cause__, OutboundRefused):
                message = f"refused by the outbound policy: {exc.__cause__}"
                raise LlmRequestError(message, call=record("request_error", message)) from None
            kind = "timed out" if isinstance(exc, openai.APITimeoutError) else "could not be reached"
            message = f"LLM endpoint {kind}: {exc.__cause__ or exc}"  # local network errors, no reply
            raise LlmTransientError(message, call=record("transient", message)) from None

        body = _body(raw.http_response)
        tokens = _tokens(body)
        reply = _first_message(body)
        if reply is None:
            message = "LLM endpoint did not answer with a chat completion (the reply is not shown)"
            raise LlmRequestError(message, call=record("request_error", message), status_code=raw.status_code)
        content = reply.get("content") if isinstance(reply.get("content"), str) else None

        try:
            completion = raw.parse()
        except openai.LengthFinishReasonError as exc:
            raise output_error("length", "the reply was cut off at the token limit", content=content) from exc
        except openai.ContentFilterFinishReasonError as exc:
            raise output_error("content_filter", "the provider's content filter blocked the reply") from exc
        except ValidationError as exc:
            reason, problems = _validation_problems(exc)
            message = "; ".join(problems)
            raise output_error(reason, message, content=content, problems=problems) from exc

        parsed = completion.choices[0].message
        if parsed.refusal:
            raise output_error("refusal", f"the model refused: {parsed.refusal}")
        if parsed.parsed is None or content is None:
            raise output_error("invalid_json", "the reply had no content")
        return LlmResult(value=parsed.parsed, call=record("ok"), content=content)
