"""The live tool executor against respx at the wire: what is sent, retried, refused and recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from packs.domain import ToolDefinition
from tests.secret_helpers import NAMESPACE, lookup
from tools.breaker import BreakerBoard
from tools.dry_run import DryRunExecutor
from tools.executor import RegisteredTool, ToolCall, ToolOutcome
from tools.http import Backoff, HttpToolExecutor
from tools.outbound import OutboundPolicy, parse_networks

HOST = "tools.acme.test"
PUBLIC_IP = "93.184.216.34"
URL = f"https://{HOST}/settlements/retry"
SECRET = "s3cr3t-T0KEN-4f9a"
SECRET_REF = "ACME_SETTLEMENT_TOKEN"
KEY = "acme-capital/settlements/retrySettlement"
IDEMPOTENCY_KEY = "EXC-1:step-1"
ARGS = {"tradeId": "T-9", "amount": 10}
PARAMETERS = {
    "type": "object",
    "required": ["tradeId"],
    "properties": {"tradeId": {"type": "string"}, "amount": {"type": "number"}},
}
ADDRESSES = {
    HOST: [PUBLIC_IP],
    "internal.acme.test": ["10.0.0.7"],
    "metadata.acme.test": ["169.254.169.254"],
    "linklocal.acme.test": ["169.254.10.1"],
    "evil.example.test": ["10.9.9.9"],
}


class Resolver:
    """A fake DNS: public for the tool host, private for the rest; remembers what it was asked."""

    def __init__(self) -> None:
        self.answers = dict(ADDRESSES)
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"unknown host {host}")
        return self.answers[host]


class Sleeps:
    """Records the backoff delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Clock:
    """A monotonic clock and a matching wall clock that move only when told to."""

    START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return self.START + timedelta(seconds=self.now - 1000.0)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_tool(
    *,
    endpoint: str | None = URL,
    method: str = "POST",
    mutating: bool = True,
    idempotent: bool = False,
    max_retries: int = 2,
    allowed: bool = True,
    auth: dict[str, Any] | None = None,
    output_schema: dict[str, Any] | None = None,
    redact_fields: frozenset[str] = frozenset(),
) -> RegisteredTool:
    definition = ToolDefinition.model_validate(
        {
            "description": "Retry a failed settlement.",
            "parameters": PARAMETERS,
            "outputSchema": output_schema,
            "endpoint": endpoint,
            "method": method,
            "auth": auth if auth is not None else {"kind": "bearer", "secretRef": SECRET_REF},
            "timeoutSeconds": 5,
            "retries": max_retries,
            "mutating": mutating,
            "idempotent": idempotent,
        }
    )
    return RegisteredTool(
        tenant_id="acme-capital",
        domain_name="settlements",
        name="retrySettlement",
        definition=definition,
        timeout_seconds=5.0,
        max_retries=max_retries,
        allowed=allowed,
        redact_fields=redact_fields,
    )


def make_call(tool: RegisteredTool, arguments: dict[str, Any] | None = None) -> ToolCall:
    return ToolCall(tool, dict(ARGS) if arguments is None else arguments, IDEMPOTENCY_KEY, "EXC-1")


class Harness:
    """An executor wired to fakes: resolver, clock, sleep and a fixed jitter of 0.5."""

    def __init__(self, *, threshold: int = 5, allowed_networks: tuple[str, ...] = ()) -> None:
        self.resolver = Resolver()
        self.sleeps = Sleeps()
        self.clock = Clock()
        self.board = BreakerBoard(
            failure_threshold=threshold, reset_seconds=30.0, clock=self.clock, wall_clock=self.clock.wall
        )
        self.secrets = {SECRET_REF: SECRET}
        self.executor = HttpToolExecutor(
            lookup(self.secrets),
            breakers=self.board,
            outbound=OutboundPolicy(parse_networks(allowed_networks), resolver=self.resolver),
            backoff=Backoff(base_seconds=0.5, max_seconds=8.0),
            sleep=self.sleeps,
            jitter=lambda: 0.5,
        )

    async def call(self, tool: RegisteredTool, arguments: dict[str, Any] | None = None) -> ToolOutcome:
        return await self.executor.call(make_call(tool, arguments))


def log_without_latency(outcome: ToolOutcome) -> list[dict[str, Any]]:
    entries = outcome.details["attemptLog"]
    assert all(isinstance(e["latencyMs"], float) and e["latencyMs"] >= 0 for e in entries)
    return [{k: v for k, v in e.items() if k != "latencyMs"} for e in entries]


def entry(
    attempt: int, outcome: str, status: int | None, error: str | None, retry: float | None = None
) -> dict[str, Any]:
    """An attemptLog entry without its latency; the breaker was closed before the attempt."""
    return {
        "attempt": attempt,
        "outcome": outcome,
        "httpStatus": status,
        "error": error,
        "breaker": "closed",
        "retryInSeconds": retry,
    }


@pytest.fixture
def wire() -> Iterator[respx.MockRouter]:
    """respx at the transport level: the real httpx client runs, nothing leaves the process, and a
    request to any URL without a route fails the test."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        yield mock


@pytest.fixture
def h() -> Harness:
    return Harness()


BEARER_REQUEST = {
    "method": "POST",
    "url": URL,
    "headers": {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Idempotency-Key": IDEMPOTENCY_KEY,
        "Authorization": f"Bearer <secret {SECRET_REF}>",
    },
    "json": ARGS,
}


async def test_success_sends_exactly_the_declared_request(wire: respx.MockRouter, h: Harness) -> None:
    route = wire.post(URL).mock(return_value=httpx.Response(200, json={"settlementId": "S-1"}))
    outcome = await h.call(make_tool())

    assert outcome.status == "SUCCESS" and outcome.error is None and outcome.attempts == 1
    assert outcome.response == {"status": 200, "body": {"settlementId": "S-1"}}
    assert outcome.request == BEARER_REQUEST
    sent = route.calls.last.request
    assert sent.method == "POST" and str(sent.url) == URL
    assert json.loads(sent.content) == ARGS
    assert sent.headers["Idempotency-Key"] == IDEMPOTENCY_KEY
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"
    assert sent.headers["Content-Type"] == "application/json"
    assert route.call_count == 1
    assert {k: v for k, v in outcome.details.items() if k != "attemptLog"} == {
        "tool": KEY,
        "mode": "live",
        "breaker": "closed",
        "addresses": [PUBLIC_IP],
    }
    assert log_without_latency(outcome) == [entry(1, "success", 200, None)]
    assert outcome.latency_ms == pytest.approx(outcome.details["attemptLog"][0]["latencyMs"], abs=0.01)
    assert h.resolver.asked == [HOST] and h.sleeps.delays == []


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        ({"kind": "api_key", "secretRef": SECRET_REF, "header": "X-Acme-Key"}, "X-Acme-Key", SECRET),
        ({"kind": "basic", "secretRef": SECRET_REF}, "Authorization", f"Basic {SECRET}"),
    ],
)
async def test_auth_kinds_put_the_secret_in_the_right_header(
    wire: respx.MockRouter, h: Harness, auth: dict[str, Any], header: str, value: str
) -> None:
    route = wire.post(URL).mock(return_value=httpx.Response(204))
    outcome = await h.call(make_tool(auth=auth))

    assert outcome.status == "SUCCESS" and outcome.response == {"status": 204, "body": ""}
    assert route.calls.last.request.headers[header] == value
    assert outcome.request["headers"][header] == value.replace(SECRET, f"<secret {SECRET_REF}>")


async def test_read_only_get_sends_query_parameters_without_idempotency_key(
    wire: respx.MockRouter, h: Harness
) -> None:
    route = wire.get(URL).mock(return_value=httpx.Response(200, json={"ok": True}))
    outcome = await h.call(make_tool(method="GET", mutating=False, auth={"kind": "none"}))

    assert outcome.status == "SUCCESS"
    sent = route.calls.last.request
    assert str(sent.url) == f"{URL}?tradeId=T-9&amount=10" and sent.content == b""
    assert "Idempotency-Key" not in sent.headers and "Authorization" not in sent.headers
    assert outcome.request == {
        "method": "GET",
        "url": URL,
        "headers": {"Accept": "application/json"},
        "params": ARGS,
    }


async def test_5xx_then_success_retries_an_idempotent_mutating_tool(
    wire: respx.MockRouter, h: Harness
) -> None:
    route = wire.post(URL).mock(
        side_effect=[httpx.Response(500), httpx.Response(502), httpx.Response(200, json={"ok": True})]
    )
    outcome = await h.call(make_tool(idempotent=True, max_retries=2))

    assert outcome.status == "SUCCESS" and outcome.attempts == 3 and route.call_count == 3
    assert h.sleeps.delays == [0.25, 0.5]  # 0.5 jitter * 0.5s, then 0.5 jitter * 1s
    assert log_without_latency(outcome) == [
        entry(1, "http_error", 500, "HTTP 500 Internal Server Error", 0.25),
        entry(2, "http_error", 502, "HTTP 502 Bad Gateway", 0.5),
        entry(3, "success", 200, None),
    ]
    assert {c.request.headers["Idempotency-Key"] for c in route.calls} == {IDEMPOTENCY_KEY}
    assert outcome.latency_ms == pytest.approx(
        sum(e["latencyMs"] for e in outcome.details["attemptLog"]), abs=0.1
    )
    assert h.board.snapshot(KEY).consecutiveFailures == 0


@pytest.mark.parametrize(
    ("first", "retried", "error"),
    [
        (httpx.Response(503), True, "HTTP 503 Service Unavailable"),
        (httpx.Response(429), True, "HTTP 429 Too Many Requests"),
        (httpx.ConnectError, True, "ConnectError: Mock Error"),
        (httpx.ConnectTimeout, True, "ConnectTimeout: Mock Error"),
        (httpx.PoolTimeout, True, "PoolTimeout: Mock Error"),
        (httpx.Response(500), False, "HTTP 500 Internal Server Error"),
        (httpx.Response(502), False, "HTTP 502 Bad Gateway"),
        (httpx.Response(408), False, "HTTP 408 Request Timeout"),
        (httpx.ReadTimeout, False, "ReadTimeout: Mock Error"),
        (httpx.RemoteProtocolError, False, "RemoteProtocolError: Mock Error"),
    ],
    ids=[
        "503",
        "429",
        "connect-error",
        "connect-timeout",
        "pool-timeout",
        "500",
        "502",
        "408",
        "read-timeout",
        "protocol-error",
    ],
)
async def test_non_idempotent_mutating_tool_is_retried_only_when_the_request_was_not_processed(
    wire: respx.MockRouter, h: Harness, first: Any, retried: bool, error: str
) -> None:
    route = wire.post(URL).mock(side_effect=[first, httpx.Response(200, json={"ok": True})])
    outcome = await h.call(make_tool(idempotent=False, max_retries=3))

    if retried:
        assert outcome.status == "SUCCESS" and outcome.attempts == 2 and route.call_count == 2
        assert h.sleeps.delays == [0.25]
        assert [e["error"] for e in outcome.details["attemptLog"]] == [error, None]
    else:
        assert outcome.status == "FAILED" and outcome.attempts == 1 and route.call_count == 1
        assert outcome.error == error and h.sleeps.delays == []
    assert h.board.snapshot(KEY).consecutiveFailures == (0 if retried else 1)


async def test_timeouts_are_retried_for_a_read_only_tool_up_to_max_retries(
    wire: respx.MockRouter, h: Harness
) -> None:
    route = wire.get(URL).mock(side_effect=httpx.ReadTimeout)
    outcome = await h.call(make_tool(method="GET", mutating=False, max_retries=3))

    assert outcome.status == "FAILED" and outcome.attempts == 4 and route.call_count == 4
    assert outcome.error == "ReadTimeout: Mock Error" and outcome.response is None
    assert h.sleeps.delays == [0.25, 0.5, 1.0]
    assert log_without_latency(outcome) == [
        entry(1, "timeout", None, "ReadTimeout: Mock Error", 0.25),
        entry(2, "timeout", None, "ReadTimeout: Mock Error", 0.5),
        entry(3, "timeout", None, "ReadTimeout: Mock Error", 1.0),
        entry(4, "timeout", None, "ReadTimeout: Mock Error"),
    ]
    assert h.board.snapshot(KEY).consecutiveFailures == 4


def test_backoff_doubles_per_retry_and_is_capped() -> None:
    backoff = Backoff(base_seconds=0.5, max_seconds=8.0)
    assert [backoff.delay(n, 1.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff.delay(3, 0.25) == 0.5 and backoff.delay(1, 0.0) == 0.0
    assert backoff.delay(1, 0.9, retry_after=3.0) == 3.0 and backoff.delay(1, 0.9, retry_after=60) == 8.0


@pytest.mark.parametrize(
    ("status", "retry_after", "delay"),
    [(429, "3", 3.0), (503, "1.5", 1.5), (503, "120", 8.0), (429, "Wed, 21 Oct 2015 07:28:00 GMT", 0.25)],
)
async def test_retry_after_is_honoured_and_capped(
    wire: respx.MockRouter, h: Harness, status: int, retry_after: str, delay: float
) -> None:
    wire.post(URL).mock(
        side_effect=[
            httpx.Response(status, headers={"Retry-After": retry_after}),
            httpx.Response(200, json={}),
        ]
    )
    outcome = await h.call(make_tool())

    assert outcome.status == "SUCCESS" and outcome.attempts == 2
    assert h.sleeps.delays == [delay]
    assert outcome.details["attemptLog"][0]["retryInSeconds"] == delay


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"amount": 10}, "arguments: 'tradeId' is a required property"),
        (
            {"tradeId": 9, "amount": "ten"},
            "arguments.amount: 'ten' is not of type 'number'; arguments.tradeId: 9 is not of type 'string'",
        ),
    ],
)
async def test_invalid_arguments_are_refused_before_any_request(
    wire: respx.MockRouter, h: Harness, arguments: dict[str, Any], error: str
) -> None:
    route = wire.post(URL).mock(return_value=httpx.Response(200))
    live = await h.call(make_tool(), arguments)
    dry = await DryRunExecutor().call(make_call(make_tool(), arguments))

    assert route.called is False and h.resolver.asked == []
    for outcome in (live, dry):
        assert outcome.status == "FAILED" and outcome.attempts == 0 and outcome.error == error
    assert live.details["attemptLog"] == [] and h.board.snapshots() == []


async def test_a_tool_outside_the_allow_list_is_never_called(wire: respx.MockRouter, h: Harness) -> None:
    route = wire.post(URL).mock(return_value=httpx.Response(200))
    tool = make_tool(allowed=False)
    live = await h.call(tool)
    dry = await DryRunExecutor().call(make_call(tool))

    reason = "tool retrySettlement is not in tenant acme-capital's toolsAllowList"
    assert (live.status, live.error, live.attempts) == ("FAILED", reason, 0)
    assert (dry.status, dry.error, dry.attempts) == ("FAILED", reason, 0)
    assert dry.details == {"tool": KEY, "mode": "dry-run"}
    assert route.called is False and h.resolver.asked == []


async def test_dry_run_records_the_same_request_as_live(wire: respx.MockRouter, h: Harness) -> None:
    wire.post(URL).mock(return_value=httpx.Response(200, json={}))
    tool = make_tool(redact_fields=frozenset({"amount"}))
    live = await h.call(tool)
    dry = await DryRunExecutor().call(make_call(tool))
    no_endpoint = await DryRunExecutor().call(make_call(make_tool(endpoint=None)))

    assert dry.status == "DRY_RUN" and dry.request == live.request
    assert dry.request["json"] == {"tradeId": "T-9", "amount": "***"}
    assert dry.details == {"tool": KEY, "mode": "dry-run"}
    assert no_endpoint.status == "DRY_RUN" and no_endpoint.details == {
        "tool": KEY,
        "mode": "dry-run",
        "note": "tool has no endpoint yet: it can only run as a dry run",
    }


async def test_missing_secret_or_endpoint_is_refused_without_a_request(
    wire: respx.MockRouter, h: Harness
) -> None:
    route = wire.post(URL).mock(return_value=httpx.Response(200))
    h.secrets.clear()
    no_secret = await h.call(make_tool())
    no_endpoint = await h.call(make_tool(endpoint=None, auth={"kind": "none"}))

    assert (no_secret.status, no_secret.attempts) == ("FAILED", 0)
    assert no_secret.error == f"tool {KEY}: secret '{SECRET_REF}' is not set in {NAMESPACE}"
    assert (no_endpoint.status, no_endpoint.attempts) == ("FAILED", 0)
    assert no_endpoint.error == f"tool {KEY} has no endpoint: it can only run as a dry run"
    assert route.called is False and h.resolver.asked == []


async def test_a_secret_that_would_inject_headers_is_refused(wire: respx.MockRouter, h: Harness) -> None:
    route = wire.post(URL).mock(return_value=httpx.Response(200))
    h.secrets[SECRET_REF] = "abcd\r\nX-Injected: 1"
    outcome = await h.call(make_tool())

    assert (outcome.status, outcome.attempts) == ("FAILED", 0)
    assert outcome.error == f"secret '{SECRET_REF}' for tool {KEY} is not a valid header value"
    assert route.called is False and "X-Injected" not in json.dumps(outcome.as_audit())


async def test_redirects_are_refused_and_never_followed(wire: respx.MockRouter, h: Harness) -> None:
    elsewhere = "https://evil.example.test/collect"
    route = wire.get(URL).mock(return_value=httpx.Response(302, headers={"Location": elsewhere}))
    evil = wire.get(elsewhere).mock(return_value=httpx.Response(200))
    outcome = await h.call(make_tool(method="GET", mutating=False, max_retries=3))

    assert outcome.status == "FAILED" and outcome.attempts == 1
    assert outcome.error == f"redirect to {elsewhere} refused"
    assert route.call_count == 1 and evil.called is False
    assert log_without_latency(outcome) == [entry(1, "redirect_refused", 302, outcome.error)]
    assert h.board.snapshot(KEY).consecutiveFailures == 0 and h.sleeps.delays == []


async def test_a_client_error_is_not_retried_and_not_a_breaker_failure(
    wire: respx.MockRouter, h: Harness
) -> None:
    route = wire.get(URL).mock(return_value=httpx.Response(422, json={"detail": "unknown trade"}))
    outcome = await h.call(make_tool(method="GET", mutating=False, max_retries=3))

    assert (outcome.status, outcome.attempts, outcome.error) == ("FAILED", 1, "HTTP 422 Unprocessable Entity")
    assert outcome.response == {"status": 422, "body": {"detail": "unknown trade"}}
    assert route.call_count == 1 and h.board.snapshot(KEY).consecutiveFailures == 0


NOTE = "(allow its network in EXOPS_OUTBOUND_ALLOWED_NETWORKS if this is intended)"


@pytest.mark.parametrize(
    ("host", "address", "why"),
    [
        ("internal.acme.test", "10.0.0.7", "a private address"),
        ("metadata.acme.test", "169.254.169.254", "a cloud metadata service address"),
        ("linklocal.acme.test", "169.254.10.1", "a link-local address"),
    ],
)
async def test_private_addresses_are_refused(
    wire: respx.MockRouter, h: Harness, host: str, address: str, why: str
) -> None:
    url = f"http://{host}/hook"
    route = wire.post(url).mock(return_value=httpx.Response(200))
    outcome = await h.call(make_tool(endpoint=url))

    assert (outcome.status, outcome.attempts) == ("FAILED", 0)
    assert outcome.error == f"{host} resolves to {address}, refused: {address} is {why} {NOTE}"
    assert route.called is False and h.resolver.asked == [host]
    assert h.board.snapshot(KEY).consecutiveFailures == 0


async def test_loopback_literal_is_refused_by_default_and_allowed_by_policy(wire: respx.MockRouter) -> None:
    url = "http://127.0.0.1:8080/hook"
    route = wire.post(url).mock(return_value=httpx.Response(200, json={"ok": True}))
    refused = await Harness().call(make_tool(endpoint=url))
    assert (refused.status, refused.attempts) == ("FAILED", 0) and route.called is False
    assert (
        refused.error == f"127.0.0.1 resolves to 127.0.0.1, refused: 127.0.0.1 is a loopback address {NOTE}"
    )

    local = Harness(allowed_networks=("127.0.0.0/8",))
    allowed = await local.call(make_tool(endpoint=url))
    assert allowed.status == "SUCCESS" and route.call_count == 1
    assert allowed.details["addresses"] == ["127.0.0.1"] and local.resolver.asked == []


async def test_secrets_never_reach_the_audit_trail(wire: respx.MockRouter, h: Harness) -> None:
    echo = {"received": f"Bearer {SECRET}", f"key-{SECRET}": [SECRET], "note": "ok"}
    route = wire.post(URL).mock(
        side_effect=[
            httpx.Response(503, text=f"upstream rejected token {SECRET}"),
            httpx.ConnectError(f"reset while sending {SECRET}"),
            httpx.Response(200, json=echo),
        ]
    )
    outcome = await h.call(make_tool(idempotent=True, max_retries=2))

    assert outcome.status == "SUCCESS" and route.call_count == 3
    assert all(c.request.headers["Authorization"] == f"Bearer {SECRET}" for c in route.calls)
    audit = json.dumps(outcome.as_audit())
    assert SECRET not in audit
    assert outcome.response == {
        "status": 200,
        "body": {"received": "Bearer ***", "key-***": ["***"], "note": "ok"},
    }
    assert [e["error"] for e in outcome.details["attemptLog"]] == [
        "HTTP 503 Service Unavailable",
        "ConnectError: reset while sending ***",
        None,
    ]


async def test_secrets_are_scrubbed_from_errors_and_redirect_targets(
    wire: respx.MockRouter, h: Harness
) -> None:
    wire.post(URL).mock(side_effect=httpx.ConnectError(f"proxy said {SECRET}"))
    failed = await h.call(make_tool(max_retries=0))
    wire.get(URL).mock(
        return_value=httpx.Response(302, headers={"Location": f"https://evil.example.test/?t={SECRET}"})
    )
    redirected = await h.call(make_tool(method="GET", mutating=False))

    assert failed.error == "ConnectError: proxy said ***"
    assert redirected.error == "redirect to https://evil.example.test/?t=*** refused"
    for outcome in (failed, redirected):
        assert SECRET not in json.dumps(outcome.as_audit())


async def test_tenant_and_built_in_fields_are_redacted_in_request_and_reply(
    wire: respx.MockRouter, h: Harness
) -> None:
    arguments = {"tradeId": "T-9", "accountNumber": "DE89370400440532013000", "extra": {"api_key": "k-123"}}
    reply = {
        "account_number": "DE89370400440532013000",
        "items": [{"Password": "hunter2", "ssn": "078-05-1120", "ok": True}],
        "settlementId": "S-1",
    }
    route = wire.post(URL).mock(return_value=httpx.Response(200, json=reply))
    tool = make_tool(redact_fields=frozenset({"accountnumber"}))
    outcome = await h.call(tool, arguments)

    assert json.loads(route.calls.last.request.content) == arguments  # the tool gets the real values
    assert outcome.request["json"] == {"tradeId": "T-9", "accountNumber": "***", "extra": {"api_key": "***"}}
    assert outcome.response == {
        "status": 200,
        "body": {
            "account_number": "***",
            "items": [{"Password": "***", "ssn": "***", "ok": True}],
            "settlementId": "S-1",
        },
    }


async def test_a_reply_breaking_the_output_schema_fails_without_retry(
    wire: respx.MockRouter, h: Harness
) -> None:
    schema = {
        "type": "object",
        "required": ["settlementId"],
        "properties": {"settlementId": {"type": "string"}},
    }
    route = wire.get(URL).mock(return_value=httpx.Response(200, json={"settlementId": 7}))
    outcome = await h.call(make_tool(method="GET", mutating=False, max_retries=3, output_schema=schema))

    error = "reply does not match outputSchema: reply.settlementId: 7 is not of type 'string'"
    assert (outcome.status, outcome.attempts, outcome.error) == ("FAILED", 1, error)
    assert outcome.response == {"status": 200, "body": {"settlementId": 7}}
    assert route.call_count == 1 and h.sleeps.delays == []
    assert log_without_latency(outcome) == [entry(1, "invalid_output", 200, error)]
    assert h.board.snapshot(KEY).consecutiveFailures == 1


async def test_a_reply_matching_the_output_schema_succeeds(wire: respx.MockRouter, h: Harness) -> None:
    schema = {"type": "object", "required": ["settlementId"]}
    wire.post(URL).mock(return_value=httpx.Response(201, json={"settlementId": "S-1"}))
    outcome = await h.call(make_tool(output_schema=schema))
    assert outcome.status == "SUCCESS" and outcome.response == {
        "status": 201,
        "body": {"settlementId": "S-1"},
    }
