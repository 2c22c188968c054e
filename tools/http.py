"""Live tool calls over HTTP: one request to the endpoint the pack declares, nothing else.

The request goes only to the tool's declared URL; redirects are not followed (a redirect is a
failure, so a tool cannot be bounced to another host); secrets come from the caller's lookup by the
name the pack gives, never from the pack, and never appear in what is recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import httpx

from tools.executor import ToolCall, ToolOutcome
from tools.requests import argument_errors, describe_request

SecretLookup = Callable[[str], str | None]


class HttpToolExecutor:
    mode: Literal["dry-run", "live"] = "live"

    def __init__(self, secrets: SecretLookup, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._secrets = secrets
        self._transport = transport

    def _auth_headers(self, call: ToolCall) -> dict[str, str]:
        auth = call.tool.auth
        if auth.kind == "none":
            return {}
        secret = self._secrets(auth.secretRef or "")
        if secret is None:
            raise LookupError(f"secret {auth.secretRef!r} for tool {call.tool_name} is not configured")
        if auth.kind == "api_key":
            return {auth.header: secret}
        if auth.kind == "bearer":
            return {"Authorization": f"Bearer {secret}"}
        return {"Authorization": f"Basic {secret}"}

    async def call(self, call: ToolCall) -> ToolOutcome:
        request = describe_request(call.tool, call.arguments, call.idempotency_key)
        errors = argument_errors(call.tool, call.arguments)
        if errors:
            return ToolOutcome("FAILED", request, error="; ".join(errors), attempts=0)
        if call.tool.endpoint is None:
            return ToolOutcome("FAILED", request, error=f"tool {call.tool_name} has no endpoint", attempts=0)
        try:
            headers = {**request["headers"], **self._auth_headers(call)}
        except LookupError as exc:
            return ToolOutcome("FAILED", request, error=str(exc), attempts=0)
        started = time.perf_counter()
        try:
            async with httpx.AsyncClient(
                timeout=call.tool.timeoutSeconds, follow_redirects=False, transport=self._transport
            ) as client:
                response = await client.request(
                    call.tool.method, call.tool.endpoint, headers=headers,
                    params=request.get("params"), json=request.get("json"),
                )  # fmt: skip
        except httpx.HTTPError as exc:
            latency = (time.perf_counter() - started) * 1000
            return ToolOutcome("FAILED", request, error=f"{type(exc).__name__}: {exc}", latency_ms=latency)
        latency = (time.perf_counter() - started) * 1000
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = response.text[:2000]
        reply = {"status": response.status_code, "body": body}
        if response.is_redirect:
            return ToolOutcome("FAILED", request, reply, error="redirects are refused", latency_ms=latency)
        if response.is_error:
            return ToolOutcome(
                "FAILED", request, reply, error=f"HTTP {response.status_code}", latency_ms=latency
            )
        return ToolOutcome("SUCCESS", request, reply, latency_ms=latency)
