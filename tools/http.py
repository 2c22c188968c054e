"""Live tool calls over HTTP: requests to the one endpoint a pack declares, nothing else.

Before anything is sent: the shared preflight (allow-list, arguments), an endpoint, the secret, the
tool's circuit breaker and the outbound policy (no private, loopback or metadata addresses). Each of
these refuses with ``attempts=0`` and does not count against the breaker.

Then up to ``1 + max_retries`` attempts. Redirects are never followed (a tool cannot bounce exops to
another host). A 4xx other than 408/429 means the request was wrong, not the tool: no retry, no
breaker failure. 408, 429, 5xx, timeouts, transport errors and replies that break ``outputSchema``
are breaker failures; the transient ones are retried only when sending again is safe, i.e. the tool
is read-only or idempotent, or the error proves the first request was never processed.

Secrets come from the caller's lookup (``tools.secrets``), which the app scoped to the tenant the
executor serves, by the name the pack gives; they are scrubbed from everything recorded, even when
a server echoes them back. Error texts are exops's own (the status line's reason phrase is the
standard one, not the server's), while the reply body is kept in the audit trail for the tenant:
it is what the tenant's own declared system answered.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import httpx

from tools.breaker import BreakerBoard, CircuitBreaker
from tools.executor import BreakerState, RegisteredTool, ToolCall, ToolOutcome, ToolStatus
from tools.outbound import OutboundPolicy, OutboundRefused
from tools.preflight import refusal
from tools.redaction import redact, scrub
from tools.requests import (
    auth_header,
    base_headers,
    describe_request,
    output_errors,
    reply_body,
    retry_after,
    sends_body,
)
from tools.secrets import SecretLookup, SecretMissing

Verdict = Literal["success", "failure", "none"]
"""What an attempt says about the tool's health, for its breaker ("none": nothing)."""

UNPROCESSED_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Errors raised before the request reached the tool: always safe to send again."""
UNPROCESSED_STATUSES = frozenset({429, 503})
TRANSIENT_CLIENT_STATUSES = frozenset({408, 429})
TRIAL_LEASE_MARGIN_SECONDS = 5.0
"""How long past the tool's timeout another process waits before sending a trial of its own."""


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff: retry ``n`` waits ``jitter * min(max, base * 2**(n-1))``."""

    base_seconds: float = 0.5
    max_seconds: float = 8.0

    def delay(self, retry: int, jitter: float, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based); a server's Retry-After wins."""
        if retry_after is not None:
            return min(self.max_seconds, retry_after)
        return jitter * min(self.max_seconds, self.base_seconds * 2.0 ** (retry - 1))


@dataclass(frozen=True)
class _Attempt:
    outcome: str  # success | http_error | timeout | transport_error | redirect_refused | invalid_output
    verdict: Verdict
    status: int | None = None
    error: str | None = None
    reply: dict[str, Any] | None = None
    retryable: bool = False  # transient, and safe to send again
    retry_after: float | None = None


def _repeatable(tool: RegisteredTool) -> bool:
    return not tool.definition.mutating or tool.definition.idempotent


def _unsent(exc: httpx.HTTPError, tool: RegisteredTool) -> _Attempt:
    outcome = "timeout" if isinstance(exc, httpx.TimeoutException) else "transport_error"
    safe = isinstance(exc, UNPROCESSED_ERRORS) or _repeatable(tool)
    return _Attempt(outcome, "failure", error=f"{type(exc).__name__}: {exc}", retryable=safe)


def _classify(response: httpx.Response, tool: RegisteredTool) -> _Attempt:
    code = response.status_code
    reply = {"status": code, "body": reply_body(response)}
    if 200 <= code < 300:
        errors = output_errors(tool.definition, reply["body"])
        if errors:
            error = "reply does not match outputSchema: " + "; ".join(errors)
            return _Attempt("invalid_output", "failure", code, error, reply)
        return _Attempt("success", "success", code, None, reply)
    if 300 <= code < 400:
        location = response.headers.get("location", "(no Location header)")
        return _Attempt("redirect_refused", "none", code, f"redirect to {location} refused", reply)
    error = f"HTTP {code} {httpx.codes.get_reason_phrase(code)}".rstrip()  # not the server's own words
    if 400 <= code < 500 and code not in TRANSIENT_CLIENT_STATUSES:
        return _Attempt("http_error", "success", code, error, reply)  # the tool answered: it is healthy
    unprocessed = code in UNPROCESSED_STATUSES
    wait = retry_after(response) if unprocessed else None
    return _Attempt("http_error", "failure", code, error, reply, unprocessed or _repeatable(tool), wait)


def _settle(breaker: CircuitBreaker, verdict: Verdict, trial: bool) -> None:
    if verdict == "success":
        breaker.record_success()
    elif verdict == "failure":
        breaker.record_failure()
    elif trial:
        breaker.release()


@cache
def _default_tls() -> ssl.SSLContext:
    """One TLS context for every executor: building one reads the whole CA bundle (tens of ms)."""
    return httpx.create_ssl_context()


class HttpToolExecutor:
    """Sends one tenant's tool calls with that tenant's secrets; the ``BreakerBoard`` (and so the
    breakers) is shared by every executor of the process."""

    mode: Literal["dry-run", "live"] = "live"

    def __init__(
        self,
        secrets: SecretLookup,
        *,
        breakers: BreakerBoard,
        outbound: OutboundPolicy,
        backoff: Backoff = Backoff(),
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._secrets = secrets
        self._breakers = breakers
        self._outbound = outbound
        self._backoff = backoff
        self._transport = transport
        self._sleep = sleep
        self._jitter = jitter

    def _verify(self) -> ssl.SSLContext | bool:
        return True if self._transport is not None else _default_tls()  # a transport brings its own

    def _refused(self, tool: RegisteredTool, request: dict[str, Any], reason: str) -> ToolOutcome:
        details = {
            "tool": tool.key,
            "mode": self.mode,
            "breaker": self._breakers.snapshot(tool.key).state,
            "attemptLog": [],
        }
        return ToolOutcome("FAILED", request, error=reason, attempts=0, details=details)

    def _prepare(self, call: ToolCall) -> tuple[str | None, dict[str, str], list[str]]:
        """Why the call may not be made, or its headers (credential included) and the secrets to scrub."""
        tool, auth = call.tool, call.tool.definition.auth
        reason = refusal(call)
        if reason is None and tool.definition.endpoint is None:
            reason = f"tool {tool.key} has no endpoint: it can only run as a dry run"
        if reason is not None:
            return reason, {}, []
        headers = base_headers(tool, call.idempotency_key)
        if auth.kind == "none":
            return None, headers, []
        if not auth.secretRef:
            return f"tool {tool.key} uses {auth.kind} auth but names no secretRef", {}, []
        try:
            secret = self._secrets(auth.secretRef)
        except SecretMissing as exc:
            return f"tool {tool.key}: {exc}", {}, []
        if not (secret.isascii() and secret.isprintable()):
            return f"secret {auth.secretRef!r} for tool {tool.key} is not a valid header value", {}, []
        if (header := auth_header(auth, secret)) is not None:
            headers[header[0]] = header[1]
        return None, headers, [secret]

    async def call(self, call: ToolCall) -> ToolOutcome:
        tool, endpoint = call.tool, call.tool.definition.endpoint
        request = describe_request(tool, call.arguments, call.idempotency_key)
        reason, headers, secrets = self._prepare(call)
        if reason is not None or endpoint is None:
            return self._refused(tool, request, reason or "no endpoint")

        breaker = self._breakers.breaker(tool.key)
        before = breaker.state
        admitted, trial = await self._admit(breaker, tool, before)
        if not admitted:
            return self._refused(tool, request, breaker.refusal())
        log: list[dict[str, Any]] = []
        total_ms, stopped = 0.0, ""
        try:
            try:
                addresses = await self._outbound.check(endpoint)
            except OutboundRefused as exc:
                return self._refused(tool, request, str(exc))
            while True:
                result, latency = await self._send(call, endpoint, headers)
                _settle(breaker, result.verdict, trial)
                trial = False
                total_ms += latency
                entry: dict[str, Any] = {
                    "attempt": len(log) + 1,
                    "outcome": result.outcome,
                    "httpStatus": result.status,
                    "error": result.error,
                    "latencyMs": round(latency, 2),
                    "breaker": before,
                    "retryInSeconds": None,
                }
                log.append(entry)
                if not result.retryable or len(log) > tool.max_retries:
                    break
                if breaker.state == "open":
                    stopped = f"; not retried: {breaker.refusal()}"
                    break
                jitter = self._jitter() if result.retry_after is None else 0.0
                entry["retryInSeconds"] = delay = self._backoff.delay(len(log), jitter, result.retry_after)
                await self._sleep(delay)
                before = breaker.state
                admitted, trial = await self._admit(breaker, tool, before)
                if not admitted:
                    stopped = f"; not retried: {breaker.refusal()}"
                    break
        finally:
            if trial:  # refused, cancelled or crashed holding the half-open trial: let the next caller try
                breaker.release()

        status: ToolStatus = "SUCCESS" if result.outcome == "success" else "FAILED"
        error = result.error + stopped if result.error is not None else None
        reply = redact(result.reply, tool.redact_fields) if result.reply is not None else None
        details = {
            "tool": tool.key,
            "mode": self.mode,
            "breaker": breaker.state,
            "addresses": addresses,
            "attemptLog": log,
        }
        return ToolOutcome(
            status,
            scrub(request, secrets),
            scrub(reply, secrets),
            scrub(error, secrets),
            attempts=len(log),
            latency_ms=total_ms,
            details=scrub(details, secrets),
        )

    async def _admit(
        self, breaker: CircuitBreaker, tool: RegisteredTool, before: BreakerState
    ) -> tuple[bool, bool]:
        """Whether the breaker lets a call go now, and whether that call is the half-open trial.
        A trial reserved here is also claimed from the other processes sharing the breaker, so one
        trial goes out in all (held for the tool's timeout plus a margin, in case this one dies)."""
        if not breaker.allow():
            return False, False
        if before != "half_open":
            return True, False
        if await self._breakers.claim_trial(tool.key, tool.timeout_seconds + TRIAL_LEASE_MARGIN_SECONDS):
            return True, True
        breaker.release(publish=False)
        return False, False

    async def _send(self, call: ToolCall, endpoint: str, headers: dict[str, str]) -> tuple[_Attempt, float]:
        tool = call.tool
        body = sends_body(tool.definition)
        started = time.perf_counter()
        try:
            async with httpx.AsyncClient(
                timeout=tool.timeout_seconds,
                follow_redirects=False,
                transport=self._transport,
                verify=self._verify(),
            ) as client:
                response = await client.request(
                    tool.definition.method,
                    endpoint,
                    headers=headers,
                    json=call.arguments if body else None,
                    params=None if body else call.arguments,
                )
            result = _classify(response, tool)
        except httpx.HTTPError as exc:
            result = _unsent(exc, tool)
        return result, (time.perf_counter() - started) * 1000
