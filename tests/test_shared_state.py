"""Two server processes on one database see each other's changes: tool switches, circuit breakers,
active pack versions, the rate-limit budget and UI sessions, on SQLite and PostgreSQL.

Each test opens two independent stacks (``open_services`` twice: their own engine, pack store,
runtime, limiter and poller) on the same database, as two processes would. "Within a second" is the
poll (``EXOPS_SHARED_POLL_SECONDS``, 0.5 s): a test either runs one poll round of the other process
by hand (``shared.tick()``), which shows the change needs nothing more, or lets the background poller
find it, waiting for it with a generous bound that only ever fails a broken test, never a slow one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import respx
from sqlalchemy import select

from app.api.limits import RateLimiter
from app.api.main import open_services
from app.db.migrate import upgrade
from app.db.models import InstanceSecret, PackVersion
from app.db.session import Database
from app.settings import Settings
from app.shared.breakers import SharedBreakers
from app.shared.buckets import DbBuckets
from app.ui.session import COOKIE
from tests.api_helpers import POSTGRES_URL, SAMPLES, Api, postgres_database, running_api
from tests.test_api_admin_packs import POLICIES, run_versions, send
from tools.executor import ToolCall, ToolOutcome
from tools.registry import ToolRegistry

BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=[pytest.mark.postgres,
                 pytest.mark.skipif(POSTGRES_URL is None, reason="EXOPS_TEST_POSTGRES_URL not set")]),
]  # fmt: skip
TOOL = "get_trade_details"
KEY = f"globex-markets/capital-markets/{TOOL}"
SECRETS = {"platform": {"CAPMKTS_API_TOKEN": "token-for-tests"}}


@asynccontextmanager
async def two_processes(tmp_path: Path, backend: str, **overrides: Any) -> AsyncIterator[tuple[Api, Api]]:
    """Two independent stacks on one database (and one checkpoint store)."""
    async with running_api(tmp_path, backend, secrets=SECRETS, **overrides) as first:
        url = first.settings.db_url
        async with running_api(tmp_path, backend, secrets=SECRETS, database_url=url, **overrides) as second:
            yield first, second


@pytest.fixture(params=BACKENDS)
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Api, Api]]:
    async with two_processes(tmp_path, request.param) as apis:
        yield apis


@pytest.fixture
def wire() -> Iterator[respx.MockRouter]:
    """No route: any request a test's tool call sent would fail it."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        yield mock


async def eventually(check: Callable[[], bool], what: str, bound: float = 20.0) -> None:
    """Wait for the background poller; the bound only turns a hang into a failure."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while not check():
        if loop.time() > deadline:
            pytest.fail(f"never happened: {what}")
        await asyncio.sleep(0.02)


async def call_tool(api: Api, tool: str = TOOL) -> ToolOutcome:
    """One live call of ``tool`` through this process's runtime, as a run would make it."""
    context = api.services.runtime.context("globex-markets", tool_mode="live")
    registered = ToolRegistry(context.domain, context.tenant).get(tool)
    assert registered is not None
    return await context.executor.call(ToolCall(registered, {"tradeId": "T-1"}, "idem-1", "GLX-SHARED"))


async def tool_status(api: Api, tool: str = TOOL) -> dict[str, Any]:
    listing = (await api.client.get("/admin/globex-markets/tools", headers=api.as_("viewer"))).json()
    found: dict[str, Any] = next(t for t in listing["items"] if t["name"] == tool)
    return found


async def test_a_tool_switched_off_through_one_process_is_refused_by_the_other(
    pair: tuple[Api, Api], wire: respx.MockRouter
) -> None:
    one, other = pair
    off = await one.client.post(f"/admin/globex-markets/tools/{TOOL}/disable", headers=one.as_("admin"))
    assert off.status_code == 200 and off.json()["effective"] is False

    await eventually(lambda: TOOL in other.services.store.disabled_tools.get("globex-markets", set()),
                     "the other process's poller reloads its packs")  # fmt: skip
    refused = await call_tool(other)
    assert (refused.status, refused.attempts) == ("FAILED", 0)
    assert refused.error == f"tool {TOOL} is not in tenant globex-markets's toolsAllowList"
    assert (await tool_status(other))["effective"] is False

    on = await one.client.post(f"/admin/globex-markets/tools/{TOOL}/enable", headers=one.as_("admin"))
    assert on.status_code == 200
    await other.services.shared.tick()  # type: ignore[union-attr]  # one poll round is all it takes
    assert TOOL not in other.services.store.disabled_tools.get("globex-markets", set())
    assert (await tool_status(other))["effective"] is True


async def test_a_breaker_opened_in_one_process_is_open_in_the_other(
    pair: tuple[Api, Api], wire: respx.MockRouter
) -> None:
    one, other = pair
    threshold = one.settings.tool_breaker_failures
    breaker = one.services.runtime.breakers.breaker(KEY)
    for _ in range(threshold):
        assert breaker.allow()
        breaker.record_failure()  # as failing calls in the first process leave it

    await eventually(lambda: other.services.runtime.breakers.snapshot(KEY).state == "open",
                     "the breaker is published by one process and read by the other")  # fmt: skip
    mine, theirs = one.services.runtime.breakers.snapshot(KEY), other.services.runtime.breakers.snapshot(KEY)
    assert theirs.consecutiveFailures == threshold and theirs.retryAt is not None
    assert abs(_seconds(theirs.openedAt) - _seconds(mine.openedAt)) < 0.01  # the same timer
    refused = await call_tool(other)  # never called there, refused all the same, without a request
    assert (refused.status, refused.attempts) == ("FAILED", 0)
    assert refused.error is not None and refused.error.startswith(f"circuit open for {KEY} until ")
    assert (await tool_status(other))["breaker"]["state"] == "open"

    reset = await other.client.post(
        f"/admin/globex-markets/tools/{TOOL}/breaker/reset", headers=other.as_("admin")
    )
    assert reset.status_code == 200 and reset.json()["breaker"]["state"] == "closed"
    await one.services.shared.tick()  # type: ignore[union-attr]  # the reset was written before the answer
    assert one.services.runtime.breakers.snapshot(KEY).state == "closed" and breaker.allow()


def _seconds(iso: str | None) -> float:
    from datetime import datetime

    assert iso is not None
    return datetime.fromisoformat(iso).timestamp()


async def test_a_pack_version_activated_in_one_process_is_used_by_the_other(pair: tuple[Api, Api]) -> None:
    one, other = pair
    newer = {**POLICIES["globex-markets"], "version": "7.0.0"}
    response = await send(one, "/admin/globex-markets/policy?activate=true", newer, role="admin")
    assert response.status_code == 201, response.text
    assert one.services.store.tenant("globex-markets").version == "7.0.0"  # type: ignore[union-attr]

    await other.services.shared.tick()  # type: ignore[union-attr]
    assert other.services.runtime.tenant("globex-markets").version == "7.0.0"
    assert (await run_versions(other, "GLX-SHARED-PACK"))["tenant"] == "globex-markets@7.0.0"

    rolled = await other.client.post("/admin/globex-markets/policy/rollback", headers=other.as_("admin"))
    assert rolled.status_code == 200, rolled.text
    await eventually(
        lambda: one.services.runtime.tenant("globex-markets").version != "7.0.0",
        "the rollback through the other process reaches the first",
    )


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_rate_limit_budget_is_one_budget_for_all_processes(tmp_path: Path, backend: str) -> None:
    async with two_processes(tmp_path, backend, rate=6) as (one, other):
        now = [1_000_000.0]
        one.services.limiter.clock = other.services.limiter.clock = lambda: now[0]

        async def get(api: Api) -> int:
            response = await api.client.get("/exceptions/globex-markets", headers=api.as_("viewer"))
            return response.status_code

        codes = [await get(one if turn % 2 == 0 else other) for turn in range(10)]
        assert codes == [200] * 6 + [429] * 4  # six for both together, not six each
        limited = await other.client.get("/exceptions/globex-markets", headers=other.as_("viewer"))
        assert limited.headers["Retry-After"] == "10"  # 6 a minute: the next token in 10 s
        now[0] += 10
        assert [await get(other), await get(one)] == [200, 429]
        assert await get(other) == 429 and await get(one) == 429


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'exops.db'}"
        await asyncio.to_thread(upgrade, url)
        yield url
        return
    async with postgres_database() as url:
        await asyncio.to_thread(upgrade, url)
        yield url


async def test_leases_never_spend_more_than_the_shared_budget(database: str) -> None:
    """600 a minute: each process takes leases of 10 tokens; whatever the mix, 600 requests pass in
    all, and a lease left unspent is given back when it expires, not lost."""
    dbs = [Database(database), Database(database)]
    try:
        now = [5000.0]
        one, other = (RateLimiter(600, DbBuckets(db), clock=lambda: now[0]) for db in dbs)
        assert one.lease_size == 10
        assert await one.take("t") == 0  # leases 10, spends 1
        passed = 1 + sum([await other.take("t") == 0 for _ in range(700)])
        assert passed == 591  # the other process got everything but the first one's lease
        passed += sum([await one.take("t") == 0 for _ in range(20)])
        assert passed == 600
        assert await other.take("t") == pytest.approx(0.1)  # 10 a second: a token in 0.1 s

        now[0] += 2.0  # 20 tokens refilled; the first process's lease has expired, nothing left in it
        assert sum([await other.take("t") == 0 for _ in range(50)]) == 20
        now[0] += 0.5
        assert await one.take("t") == 0  # 5 refilled: a lease of 5, 4 left unspent
        now[0] += 1.5  # the lease expires; 15 more refilled
        passed = 1 + sum([await one.take("t") == 0 for _ in range(1)])  # gives 4 back, leases 10
        passed += sum([await other.take("t") == 0 for _ in range(50)])
        passed += sum([await one.take("t") == 0 for _ in range(50)])
        assert passed == 20  # 2 s at 10 a second: every token spent once, none lost with the lease
    finally:
        for db in dbs:
            await db.close()


async def test_one_half_open_trial_goes_out_across_processes(database: str) -> None:
    dbs = [Database(database), Database(database)]
    try:
        one, other = (SharedBreakers(db, failure_threshold=2, reset_seconds=0.05) for db in dbs)
        for _ in range(2):
            assert one.board.breaker(KEY).allow()
            one.board.breaker(KEY).record_failure()
        await one.flush()
        await other.pull()
        assert other.board.snapshot(KEY).consecutiveFailures == 2
        await eventually(lambda: other.board.snapshot(KEY).state == "half_open", "the pause ends")
        await eventually(lambda: one.board.snapshot(KEY).state == "half_open", "the pause ends")

        assert one.board.breaker(KEY).allow() and await one.board.claim_trial(KEY, 60)
        assert other.board.breaker(KEY).allow()  # free as far as this process alone knows...
        assert not await other.board.claim_trial(KEY, 60)  # ...but the first one holds the trial
        other.board.breaker(KEY).release(publish=False)

        one.board.breaker(KEY).record_failure()  # the trial failed: open again, a fresh pause
        await one.flush()
        await other.pull()
        assert other.board.snapshot(KEY).consecutiveFailures == 3
        await eventually(lambda: other.board.snapshot(KEY).state == "half_open", "the pause ends")
        assert other.board.breaker(KEY).allow() and await other.board.claim_trial(KEY, 0.01)
        await asyncio.sleep(0.05)  # the holder went silent past its lease: the trial is free again
        assert one.board.breaker(KEY).allow() and await one.board.claim_trial(KEY, 60)
        one.board.breaker(KEY).record_success()
        await one.flush()
        await other.pull()
        assert (
            other.board.snapshot(KEY).state == "closed" and other.board.snapshot(KEY).consecutiveFailures == 0
        )
    finally:
        for db in dbs:
            await db.close()


async def test_a_ui_session_made_through_one_process_is_accepted_by_the_other(pair: tuple[Api, Api]) -> None:
    one, other = pair
    assert one.services.ui_secret == other.services.ui_secret
    signed_in = await one.client.post("/ui/login", data={"credential": one.as_("operator")["X-API-KEY"],
                                                         "next": "/ui/t/globex-markets/exceptions"})  # fmt: skip
    assert signed_in.status_code == 303
    cookie = one.client.cookies.get(COOKIE)
    assert cookie
    page = await other.client.get("/ui/t/globex-markets/exceptions", headers={"Cookie": f"{COOKIE}={cookie}"})
    assert page.status_code == 200 and "globex-markets" in page.text
    async with other.services.db.session() as session:
        stored = await session.get(InstanceSecret, "ui-session")
    assert stored is not None and stored.value.encode() == other.services.ui_secret


async def test_a_configured_ui_secret_is_used_and_none_is_stored(tmp_path: Path) -> None:
    async with running_api(tmp_path, "sqlite", ui_session_secret="s" * 40) as api:
        assert api.services.ui_secret == b"s" * 40
        async with api.services.db.session() as session:
            assert await session.get(InstanceSecret, "ui-session") is None


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_processes_starting_together_on_a_fresh_database_both_start(
    tmp_path: Path, backend: str
) -> None:
    """Both migrate (one does, under the lock), both record the packs folder (they take turns: the
    second finds every version recorded), and both run the same versions."""
    async with AsyncExitStack() as stack:
        url = f"sqlite:///{tmp_path / 'exops.db'}"
        if backend == "postgres":
            url = await stack.enter_async_context(postgres_database())
        settings = [Settings(data_dir=tmp_path / name, database_url=url, packs_dir=SAMPLES,
                             deadline_sweep_seconds=3600) for name in ("one", "two")]  # fmt: skip
        one, two = await asyncio.gather(*(stack.enter_async_context(open_services(s)) for s in settings))
        assert one.store.generation is not None and two.store.generation is not None
        assert {t: p.version for t, p in one.store.tenants.items()} == {
            t: p.version for t, p in two.store.tenants.items()
        }
        async with one.db.session() as session:
            versions = (await session.execute(select(PackVersion.kind, PackVersion.name))).all()
        assert len(versions) == len(set(versions)) == len(one.store.domains) + len(one.store.tenants)
