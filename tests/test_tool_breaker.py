"""Circuit breakers per tool key: opening on failures, refusing while open, recovering via half-open."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
import respx

from tests.secret_helpers import lookup
from tests.test_tools_live import KEY, URL, Clock, Harness, log_without_latency, make_call, make_tool
from tools.breaker import BreakerBoard, BreakerEvent, BreakerSnapshot, SharedBreaker
from tools.http import HttpToolExecutor
from tools.outbound import OutboundPolicy

OPENED_AT = "2025-03-01T09:00:00+00:00"
RETRY_AT = "2025-03-01T09:00:30+00:00"


@pytest.fixture
def wire() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        yield mock


async def open_breaker(h: Harness, wire: respx.MockRouter) -> respx.Route:
    """Three failing calls of a non-idempotent tool (no retries) open a threshold-3 breaker."""
    route = wire.post(URL).mock(return_value=httpx.Response(500))
    for _ in range(3):
        outcome = await h.call(make_tool(max_retries=0))
        assert outcome.status == "FAILED" and outcome.attempts == 1
    return route


async def test_the_breaker_opens_after_repeated_failures_and_refuses_without_a_request(
    wire: respx.MockRouter,
) -> None:
    h = Harness(threshold=3)
    route = await open_breaker(h, wire)
    assert h.board.snapshot(KEY) == BreakerSnapshot(KEY, "open", 3, OPENED_AT, RETRY_AT)
    asked = len(h.resolver.asked)

    h.clock.advance(29.9)
    refused = await h.call(make_tool(max_retries=0))
    assert (refused.status, refused.attempts) == ("FAILED", 0)
    assert refused.error == f"circuit open for {KEY} until {RETRY_AT}"
    assert refused.details == {"tool": KEY, "mode": "live", "breaker": "open", "attemptLog": []}
    assert route.call_count == 3 and len(h.resolver.asked) == asked  # no request, not even a lookup
    assert h.board.snapshot(KEY).consecutiveFailures == 3  # a refusal is not a failure


async def test_retries_stop_when_the_breaker_opens_mid_call(wire: respx.MockRouter) -> None:
    h = Harness(threshold=3)
    route = wire.get(URL).mock(return_value=httpx.Response(500))
    outcome = await h.call(make_tool(method="GET", mutating=False, max_retries=5))

    assert outcome.status == "FAILED" and outcome.attempts == 3 and route.call_count == 3
    assert (
        outcome.error
        == f"HTTP 500 Internal Server Error; not retried: circuit open for {KEY} until {RETRY_AT}"
    )
    assert h.sleeps.delays == [0.25, 0.5]
    assert [e["retryInSeconds"] for e in outcome.details["attemptLog"]] == [0.25, 0.5, None]
    assert [e["breaker"] for e in outcome.details["attemptLog"]] == ["closed", "closed", "closed"]
    assert outcome.details["breaker"] == "open"


async def test_half_open_trial_success_closes_the_breaker(wire: respx.MockRouter) -> None:
    h = Harness(threshold=3)
    route = await open_breaker(h, wire)
    h.clock.advance(30)
    assert h.board.snapshot(KEY).state == "half_open"

    route.mock(return_value=httpx.Response(200, json={"ok": True}))
    outcome = await h.call(make_tool(max_retries=0))
    assert outcome.status == "SUCCESS" and route.call_count == 4
    assert log_without_latency(outcome)[0]["breaker"] == "half_open"
    assert outcome.details["breaker"] == "closed"
    assert h.board.snapshot(KEY) == BreakerSnapshot(KEY, "closed", 0, None, None)


async def test_half_open_trial_failure_reopens_with_a_fresh_timer(wire: respx.MockRouter) -> None:
    h = Harness(threshold=3)
    route = await open_breaker(h, wire)
    h.clock.advance(45)

    outcome = await h.call(make_tool(method="POST", idempotent=True, max_retries=2))
    assert outcome.status == "FAILED" and outcome.attempts == 1 and route.call_count == 4
    assert outcome.error == (
        f"HTTP 500 Internal Server Error; not retried: circuit open for {KEY} until 2025-03-01T09:01:15+00:00"
    )
    assert h.board.snapshot(KEY) == BreakerSnapshot(
        KEY, "open", 4, "2025-03-01T09:00:45+00:00", "2025-03-01T09:01:15+00:00"
    )
    h.clock.advance(29)
    assert (await h.call(make_tool(max_retries=0))).attempts == 0
    h.clock.advance(1)
    assert h.board.snapshot(KEY).state == "half_open"


async def test_concurrent_callers_are_refused_while_the_half_open_trial_runs(wire: respx.MockRouter) -> None:
    h = Harness(threshold=3)
    route = await open_breaker(h, wire)
    h.clock.advance(30)
    arrived, answer = asyncio.Event(), asyncio.Event()
    sent: list[httpx.Request] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        arrived.set()
        await answer.wait()
        return httpx.Response(200, json={})

    route.mock(side_effect=slow)
    trial = asyncio.create_task(h.call(make_tool(max_retries=0)))
    await asyncio.wait_for(arrived.wait(), timeout=5)

    others = await asyncio.gather(*(h.call(make_tool(max_retries=0)) for _ in range(3)))
    assert [(o.status, o.attempts) for o in others] == [("FAILED", 0)] * 3
    assert {o.error for o in others} == {f"circuit half-open for {KEY}: a trial call is already in flight"}
    assert len(sent) == 1  # only the trial reached the wire

    answer.set()
    assert (await trial).status == "SUCCESS"
    after = await h.call(make_tool(max_retries=0))
    assert after.status == "SUCCESS" and after.attempts == 1 and route.call_count == 5


async def test_a_cancelled_trial_frees_the_half_open_slot(wire: respx.MockRouter) -> None:
    h = Harness(threshold=3)
    route = await open_breaker(h, wire)
    h.clock.advance(30)

    arrived = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    route.mock(side_effect=hang)
    trial = asyncio.create_task(h.call(make_tool(max_retries=0)))
    await asyncio.wait_for(arrived.wait(), timeout=5)
    assert h.board.breaker(KEY).trial_running is True
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert h.board.breaker(KEY).trial_running is False and h.board.snapshot(KEY).state == "half_open"

    route.mock(return_value=httpx.Response(200, json={}))
    assert (await h.call(make_tool(max_retries=0))).status == "SUCCESS"


async def test_a_refused_half_open_trial_does_not_hold_the_slot(wire: respx.MockRouter) -> None:
    h = Harness(threshold=3)
    route = await open_breaker(h, wire)
    h.clock.advance(30)
    h.resolver.answers["tools.acme.test"] = ["10.0.0.8"]

    refused = await h.call(make_tool(max_retries=0))
    assert (
        refused.attempts == 0
        and refused.error is not None
        and "10.0.0.8 is a private address" in refused.error
    )
    breaker = h.board.breaker(KEY)
    assert breaker.state == "half_open" and breaker.trial_running is False and route.call_count == 3


async def test_an_unexpected_error_before_sending_frees_the_half_open_slot(wire: respx.MockRouter) -> None:
    h = Harness(threshold=3)
    await open_breaker(h, wire)
    h.clock.advance(30)

    async def broken(host: str, port: int) -> list[str]:
        raise RuntimeError("resolver crashed")

    executor = HttpToolExecutor(
        lookup(h.secrets), breakers=h.board, outbound=OutboundPolicy(resolver=broken), sleep=h.sleeps
    )
    with pytest.raises(RuntimeError, match="resolver crashed"):
        await executor.call(make_call(make_tool(max_retries=0)))
    assert h.board.breaker(KEY).trial_running is False and h.board.snapshot(KEY).state == "half_open"


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        (httpx.Response(422), "http_error"),
        (httpx.Response(404), "http_error"),
        (httpx.Response(301, headers={"Location": "https://tools.acme.test/v2"}), "redirect_refused"),
    ],
    ids=["422", "404", "301"],
)
async def test_answers_that_are_not_the_tools_fault_do_not_open_it(
    wire: respx.MockRouter, response: httpx.Response, outcome: str
) -> None:
    h = Harness(threshold=1)
    wire.post(URL).mock(return_value=response)
    for _ in range(3):
        result = await h.call(make_tool(max_retries=0))
        assert result.status == "FAILED" and result.attempts == 1
        assert result.details["attemptLog"][0]["outcome"] == outcome
    assert h.board.snapshot(KEY) == BreakerSnapshot(KEY, "closed", 0, None, None)


def test_breaker_state_machine() -> None:
    clock = Clock()
    board = BreakerBoard(failure_threshold=2, reset_seconds=10, clock=clock, wall_clock=clock.wall)
    breaker = board.breaker("t/d/x")
    assert board.breaker("t/d/x") is breaker

    breaker.record_failure()
    breaker.record_success()  # a success in between: failures are consecutive only
    breaker.record_failure()
    assert breaker.state == "closed" and breaker.allow() is True
    breaker.record_failure()
    assert breaker.state == "open" and breaker.allow() is False

    clock.advance(10)
    assert breaker.state == "half_open"
    assert breaker.allow() is True  # the one trial
    assert breaker.allow() is False and breaker.allow() is False
    breaker.release()  # the trial ended without a verdict
    assert breaker.allow() is True
    breaker.record_failure()
    assert breaker.state == "open" and breaker.snapshot().openedAt == "2025-03-01T09:00:10+00:00"
    clock.advance(10)
    assert breaker.allow() is True
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow() is True and breaker.allow() is True


def test_snapshots_and_reset() -> None:
    clock = Clock()
    board = BreakerBoard(failure_threshold=1, reset_seconds=60, clock=clock, wall_clock=clock.wall)
    for key in ("acme-capital/settlements/b", "acme-capital/settlements/a", "globex/payments/x"):
        board.breaker(key)
    board.breaker("acme-capital/settlements/b").record_failure()

    assert [s.key for s in board.snapshots("acme-capital/")] == [
        "acme-capital/settlements/a",
        "acme-capital/settlements/b",
    ]
    assert len(board.snapshots()) == 3
    assert board.snapshot("acme-capital/settlements/b").as_dict() == {
        "key": "acme-capital/settlements/b",
        "state": "open",
        "consecutiveFailures": 1,
        "openedAt": OPENED_AT,
        "retryAt": "2025-03-01T09:01:00+00:00",
    }
    assert board.snapshot("never/used/tool") == BreakerSnapshot("never/used/tool", "closed", 0, None, None)
    assert [s.key for s in board.snapshots()] == [
        "acme-capital/settlements/a",
        "acme-capital/settlements/b",
        "globex/payments/x",
    ]

    board.reset("acme-capital/settlements/b")
    board.reset("never/used/tool")
    assert board.snapshot("acme-capital/settlements/b").as_dict() == {
        "key": "acme-capital/settlements/b",
        "state": "closed",
        "consecutiveFailures": 0,
        "openedAt": None,
        "retryAt": None,
    }
    assert board.breaker("acme-capital/settlements/b").allow() is True


def test_breakers_are_separate_per_tenant() -> None:
    board = BreakerBoard(failure_threshold=1)
    board.breaker("acme-capital/settlements/retrySettlement").record_failure()
    assert board.snapshot("acme-capital/settlements/retrySettlement").state == "open"
    assert board.snapshot("globex/settlements/retrySettlement").state == "closed"
    assert board.breaker("globex/settlements/retrySettlement").allow() is True


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        BreakerBoard(failure_threshold=0)


class Peers:
    """Other processes sharing the breakers, as a board sees them: what it told them, and whether
    they grant the half-open trial."""

    def __init__(self, grant: bool = True) -> None:
        self.told: list[tuple[str, str]] = []
        self.grant = grant
        self.claims: list[tuple[str, float]] = []

    def publish(self, key: str, event: BreakerEvent, at: datetime) -> None:
        self.told.append((key, event))

    async def claim_trial(self, key: str, lease_seconds: float) -> bool:
        self.claims.append((key, lease_seconds))
        return self.grant


def shared_harness(peers: Peers) -> Harness:
    h = Harness(threshold=3)
    h.board = BreakerBoard(
        failure_threshold=3, reset_seconds=30.0, clock=h.clock, wall_clock=h.clock.wall, peers=peers
    )
    h.executor = HttpToolExecutor(
        lookup(h.secrets), breakers=h.board, outbound=OutboundPolicy(resolver=h.resolver),
        sleep=h.sleeps, jitter=lambda: 0.5,
    )  # fmt: skip
    return h


async def test_peers_hear_of_failures_and_closings_but_not_of_a_healthy_tool(wire: respx.MockRouter) -> None:
    peers = Peers()
    h = shared_harness(peers)
    route = wire.post(URL).mock(return_value=httpx.Response(200, json={}))
    assert (await h.call(make_tool(max_retries=0))).status == "SUCCESS"
    assert peers.told == []  # nothing changed: a healthy tool costs the peers nothing

    route.mock(return_value=httpx.Response(500))
    await h.call(make_tool(max_retries=0))
    route.mock(return_value=httpx.Response(200, json={}))
    await h.call(make_tool(max_retries=0))
    h.board.reset(KEY)
    assert peers.told == [(KEY, "failure"), (KEY, "success"), (KEY, "reset")]


async def test_a_half_open_trial_another_process_holds_is_refused_without_a_request(
    wire: respx.MockRouter,
) -> None:
    peers = Peers(grant=False)
    h = shared_harness(peers)
    route = await open_breaker(h, wire)
    h.clock.advance(30)

    refused = await h.call(make_tool(max_retries=0))
    assert (refused.status, refused.attempts) == ("FAILED", 0)
    assert refused.error == f"circuit half-open for {KEY}: a trial call is already in flight"
    assert route.call_count == 3 and peers.claims == [(KEY, 5.0 + 5.0)]  # the tool's timeout + margin
    assert h.board.breaker(KEY).trial_running is False  # the local reservation was given back...
    assert (KEY, "release") not in peers.told  # ...without releasing the other process's trial

    peers.grant = True
    route.mock(return_value=httpx.Response(200, json={}))
    assert (await h.call(make_tool(max_retries=0))).status == "SUCCESS"
    assert h.board.snapshot(KEY).state == "closed" and peers.told[-1] == (KEY, "success")


def test_a_board_takes_the_peers_view_except_where_it_has_news_of_its_own() -> None:
    clock = Clock()
    board = BreakerBoard(failure_threshold=3, reset_seconds=30.0, clock=clock, wall_clock=clock.wall)
    other = "acme-capital/settlements/getStatus"
    opened = clock.wall() - timedelta(seconds=10)
    board.apply({KEY: SharedBreaker(3, opened)})  # opened elsewhere 10 s ago, never called here
    assert board.snapshot(KEY) == BreakerSnapshot(
        KEY, "open", 3, opened.isoformat(), (opened + timedelta(seconds=30)).isoformat()
    )
    assert board.breaker(KEY).allow() is False
    clock.advance(20)
    assert board.snapshot(KEY).state == "half_open"  # the timer runs from when it opened there

    board.breaker(other).record_failure()
    board.apply({}, skip={other})  # closed everywhere; `other` has a failure not yet published
    assert board.snapshot(KEY) == BreakerSnapshot(KEY, "closed", 0, None, None)
    assert board.snapshot(other).consecutiveFailures == 1
    board.apply({other: SharedBreaker(2, None)})  # failures add up across processes
    assert board.snapshot(other).consecutiveFailures == 2 and board.snapshot(other).state == "closed"
