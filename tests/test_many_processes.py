"""exops on many processes: 2 API processes (``exops serve --no-workers``) and 2 workers (``exops
worker``) on one PostgreSQL database (issue 14).

* 500 cases ingested across both APIs are each processed exactly once (one intake decision each, no
  event twice), although one worker is killed with SIGKILL in the middle of runs and started again;
* 40 approvals each answered twice at once, through both APIs (approve on one, reject on the other):
  each is decided exactly once, the other answer is a 409 naming who decided; one API process is
  killed with SIGKILL while the answers are in flight and started again;
* afterwards no claim is stuck, no case is unprocessed, nothing was applied twice, and the tables
  agree with the graph.

And, with tools called live against an endpoint that refuses connections: a tool switched off
through one API is refused by the workers a second later, and a breaker opened by a failing call in
one worker is open in the other, which refuses the tool without calling it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from app.admin.accounts import ensure_tenant, issue_key
from app.db.migrate import upgrade
from app.db.session import Database
from tests.api_helpers import POSTGRES_URL, SAMPLES, postgres_database
from tests.test_crash_recovery import free_port, killed, ready

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(POSTGRES_URL is None, reason="no PostgreSQL")]
ROOT = Path(__file__).parent.parent
TENANT = "globex-markets"
LIMIT = 600.0  # a safety net for a hung test, not a measurement
REGULATORY = json.loads((ROOT / "docs" / "examples" / "globex-markets-exceptions.json").read_text())[
    "exceptions"
][2]


class Cluster:
    def __init__(self, url: str, data_dir: Path, packs: Path = SAMPLES, **env: str) -> None:
        self.url = url
        self.data_dir = data_dir
        self.packs = packs
        self.env = env
        self.workers_seen: set[int] = set()
        self.workers_awaited = 0
        self.conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    @contextmanager
    def process(
        self, command: str, kill_at: str = "", kill_after: int = 1
    ) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
        port = free_port()
        env = {
            **os.environ, "EXOPS_DATABASE_URL": self.url, "EXOPS_DATA_DIR": str(self.data_dir),
            "EXOPS_PACKS_DIR": str(self.packs), "EXOPS_MEMORY_ENABLED": "false", "EXOPS_JOB_LEASE_SECONDS": "2", "EXOPS_DEADLINE_SWEEP_SECONDS": "1",
            "EXOPS_WORKER_CONCURRENCY": "4", "EXOPS_RATE_LIMIT_PER_MINUTE": "1000000", "EXOPS_JOB_POLL_SECONDS": "0.5",
            "EXOPS_TEST_KILL_AT": kill_at, "EXOPS_TEST_KILL_AFTER": str(kill_after), "PYTHONPATH": str(ROOT),
            **self.env,
        }  # fmt: skip
        args = (
            ["serve", "--no-workers", "--host", "127.0.0.1", "--port", str(port)]
            if command == "api"
            else ["worker"]
        )
        log = (self.data_dir / f"{command}-{port}.log").open("wb")
        process = subprocess.Popen([sys.executable, "-m", "tests.crash_server", *args], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            yield process, f"http://127.0.0.1:{port}"
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            log.close()

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.conninfo) as connection:
            return list(connection.execute(sql, args).fetchall())

    async def registered(self, process: subprocess.Popen[bytes]) -> None:
        """Wait until as many workers have registered as have been waited for, this one (``process``)
        included. Counted by the ids seen, not by the newest id: two workers started together may
        register before the first look, and a newest id would then count them once."""
        self.workers_awaited += 1
        deadline = time.monotonic() + 120
        while True:
            self.workers_seen |= {row[0] for row in self.rows("SELECT id FROM procrastinate_workers")}
            if len(self.workers_seen) >= self.workers_awaited:
                return
            assert process.poll() is None and time.monotonic() < deadline, "a worker did not start"
            await asyncio.sleep(0.2)

    def busy(self) -> int:
        return int(self.rows("SELECT COUNT(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing') "
                             "AND task_name <> 'exops.sweep'")[0][0])  # fmt: skip

    async def settled(self) -> None:
        deadline = time.monotonic() + LIMIT
        while self.busy() > 0:
            assert time.monotonic() < deadline, self.rows("SELECT id, task_name, status FROM procrastinate_jobs "
                                                          "WHERE status IN ('todo', 'doing')")  # fmt: skip
            await asyncio.sleep(0.5)

    def assert_consistent(self) -> None:
        assert (
            self.rows("SELECT exception_id FROM exceptions WHERE processing IN ('accepted', 'running')") == []
        )
        assert self.rows("SELECT approval_id FROM approvals WHERE status = 'CLAIMED'") == []
        intake = self.rows("SELECT e.exception_id, COUNT(x.id) FROM exceptions e LEFT JOIN exception_events x "
                           "ON x.tenant_id = e.tenant_id AND x.exception_id = e.exception_id AND "
                           "x.type = 'stage_decision' AND x.stage = 'intake' GROUP BY e.exception_id")  # fmt: skip
        assert len(intake) == 500 and {count for _, count in intake} == {1}
        assert self.rows("SELECT exception_id, seq FROM exception_events GROUP BY exception_id, seq "
                         "HAVING COUNT(*) > 1") == []  # fmt: skip
        assert self.rows("SELECT exception_id FROM exception_events WHERE type = 'approval_decided' "
                         "GROUP BY exception_id HAVING COUNT(*) > 1") == []  # fmt: skip
        for approval_id, status, case_status, processing in self.rows(
            "SELECT a.approval_id, a.status, e.status, e.processing FROM approvals a JOIN exceptions e "
            "ON e.tenant_id = a.tenant_id AND e.exception_id = a.exception_id"
        ):
            if status == "PENDING":
                assert (case_status, processing) == ("PENDING_APPROVAL", "waiting"), approval_id
            else:
                assert status in ("APPROVED", "REJECTED") and case_status != "PENDING_APPROVAL", approval_id


async def prepare(url: str, role: str = "operator") -> str:
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        async with db.session() as session:
            await ensure_tenant(session, TENANT, "Globex Markets")
            return (await issue_key(session, tenant_id=TENANT, role=role, name="cluster")).plaintext
    finally:
        await db.close()


def items() -> list[dict[str, Any]]:
    plain = [{"exceptionId": f"M-{i:03d}", "exceptionType": "SETTLEMENT_DELAY_NOTICE", "rawPayload": {}}
             for i in range(460)]  # fmt: skip
    asking = [{**REGULATORY, "exceptionId": f"MA-{i:03d}"} for i in range(40)]
    mixed: list[dict[str, Any]] = []
    for i in range(0, 460, 23):
        mixed += plain[i : i + 23] + asking[i // 23 * 2 : i // 23 * 2 + 2]
    return mixed


async def test_two_apis_and_two_workers_on_postgres(tmp_path: Path) -> None:
    async with postgres_database() as url:
        key = await prepare(url)
        headers = {"X-API-KEY": key}
        cluster = Cluster(url, tmp_path)
        async with httpx.AsyncClient(timeout=60) as client:
            with ExitStack() as stack:
                # started one after the other: processes starting at the same moment race to record the
                # packs folder in the database (the pack store's start-up, outside this test's subject)
                api1, base1 = stack.enter_context(cluster.process("api"))
                await ready(client, base1, api1)
                api2_cm = cluster.process("api")
                api2, base2 = api2_cm.__enter__()
                await ready(client, base2, api2)
                worker1_cm = cluster.process("worker", kill_at="mid-run", kill_after=60)
                worker1, _ = worker1_cm.__enter__()
                await cluster.registered(worker1)
                worker2, _ = stack.enter_context(cluster.process("worker"))
                await cluster.registered(worker2)

                # 500 cases, in batches of 25 alternating between the two APIs
                batches = items()
                posted = await asyncio.gather(*(
                    client.post(f"{(base1, base2)[n % 2]}/exceptions/{TENANT}", json=batches[i : i + 25],
                                headers=headers)
                    for n, i in enumerate(range(0, 500, 25))
                ))  # fmt: skip
                assert {r.status_code for r in posted} == {202}
                killed(worker1)  # it died in the middle of runs
                worker1_cm.__exit__(None, None, None)
                restarted, _ = stack.enter_context(cluster.process("worker"))  # and is started again
                await cluster.registered(restarted)
                await cluster.settled()
                assert cluster.rows("SELECT COUNT(*) FROM approvals WHERE status = 'PENDING'")[0][0] == 40

                # each approval answered twice at once, on both APIs; API 2 is killed mid-way
                approvals = [
                    a for (a,) in cluster.rows("SELECT approval_id FROM approvals ORDER BY approval_id")
                ]

                async def answer(base: str, approval_id: str, verdict: str) -> int | None:
                    body = {"comment": "ok"} if verdict == "approve" else {"reason": "no"}
                    try:
                        response = await client.post(f"{base}/approvals/{TENANT}/{approval_id}/{verdict}", json=body,
                                                     headers=headers)  # fmt: skip
                    except httpx.TransportError:
                        return None
                    return response.status_code

                tasks = [asyncio.create_task(answer(base, a, verdict)) for a in approvals
                         for base, verdict in ((base1, "approve"), (base2, "reject"))]  # fmt: skip
                while sum(t.done() for t in tasks) < 10:
                    await asyncio.sleep(0.01)
                api2.kill()
                codes = await asyncio.gather(*tasks)
                killed(api2)
                api2_cm.__exit__(None, None, None)
                api2, base2 = stack.enter_context(cluster.process("api"))
                await ready(client, base2, api2)
                await cluster.settled()
                assert api1.poll() is None and worker2.poll() is None and restarted.poll() is None

                by_approval = {a: codes[2 * n : 2 * n + 2] for n, a in enumerate(approvals)}
                for approval_id, pair in by_approval.items():
                    assert pair.count(200) + pair.count(202) <= 1, (approval_id, pair)  # never both
                    if None not in pair:
                        assert sorted(c for c in pair) in ([200, 409], [202, 409]), (approval_id, pair)
                cluster.assert_consistent()
                decided = cluster.rows(
                    "SELECT COUNT(*) FROM approvals WHERE status IN ('APPROVED', 'REJECTED')"
                )
                assert decided[0][0] >= sum(1 for pair in by_approval.values() if 200 in pair or 202 in pair)
                # a second answer, after all that, names who decided and when
                first = next(a for a, pair in by_approval.items() if None not in pair)
                late = await client.post(
                    f"{base2}/approvals/{TENANT}/{first}/approve", json={}, headers=headers
                )
                assert late.status_code == 409 and "(by key:" in late.json()["detail"]


SETTLEMENT_FAIL = json.loads((ROOT / "docs" / "examples" / "globex-markets-exceptions.json").read_text())[
    "exceptions"
][0]
"""Resolved by playbook settlement-fail-resubmit, whose first step calls get_settlement_status."""
STATUS_TOOL = "get_settlement_status"


def packs_calling(folder: Path, port: int) -> Path:
    """The sample packs with the settlement platform's tools at 127.0.0.1:``port``, where nothing listens."""
    shutil.copytree(SAMPLES, folder)
    domain = folder / "domains" / "capital-markets.yaml"
    domain.write_text(
        domain.read_text().replace("https://settlements.example.internal", f"http://127.0.0.1:{port}")
    )
    return folder


async def test_a_tool_switch_and_a_breaker_hold_across_worker_processes(tmp_path: Path) -> None:
    async with postgres_database() as url:
        key = await prepare(url, role="admin")
        headers = {"X-API-KEY": key}
        cluster = Cluster(
            url, tmp_path, packs_calling(tmp_path / "packs", free_port()), EXOPS_TOOL_MODE="live",
            EXOPS_OUTBOUND_ALLOWED_NETWORKS='["127.0.0.1/32"]', EXOPS_TOOL_BREAKER_FAILURES="1",
            EXOPS_TOOL_BREAKER_RESET_SECONDS="600", EXOPS_SECRETS='{"platform": {"CAPMKTS_API_TOKEN": "t"}}',
        )  # fmt: skip
        batch = 0

        async def run_cases(client: httpx.AsyncClient, base: str, count: int) -> list[str]:
            nonlocal batch
            batch += 1
            ids = [f"SW-{batch}-{i}" for i in range(count)]
            posted = await client.post(f"{base}/exceptions/{TENANT}", headers=headers,
                                       json=[{**SETTLEMENT_FAIL, "exceptionId": i} for i in ids])  # fmt: skip
            assert posted.status_code == 202, posted.text
            await cluster.settled()
            return ids

        def calls(ids: list[str]) -> list[tuple[str, int, str | None, int | None]]:
            """(case, attempts, error, the worker that ran the case's job) of each call of the tool."""
            return [tuple(row) for row in cluster.rows(  # type: ignore[misc]
                "SELECT t.exception_id, t.attempts, t.error, (SELECT j.worker_id FROM procrastinate_jobs j "
                "WHERE j.task_name = 'exops.process' AND j.args->>'exception_id' = t.exception_id) "
                "FROM tool_executions t WHERE t.tool = %s AND t.exception_id = ANY(%s)", STATUS_TOOL, ids,
            )]  # fmt: skip

        async with httpx.AsyncClient(timeout=60) as client:
            with ExitStack() as stack:
                api1, base1 = stack.enter_context(cluster.process("api"))
                await ready(client, base1, api1)
                api2, base2 = stack.enter_context(cluster.process("api"))
                await ready(client, base2, api2)
                workers = [stack.enter_context(cluster.process("worker"))[0] for _ in range(2)]
                for worker in workers:
                    await cluster.registered(worker)

                # switched off through API 1; a second later, API 2's cases are run by the workers
                off = await client.post(
                    f"{base1}/admin/{TENANT}/tools/{STATUS_TOOL}/disable", headers=headers
                )
                assert off.status_code == 200, off.text
                await asyncio.sleep(1.0)
                switched = await run_cases(client, base2, 8)
                assert calls(switched) == []  # never called: the plans made it a step for a person
                for (steps,) in cluster.rows(
                    "SELECT steps FROM playbook_states WHERE exception_id = ANY(%s)", switched
                ):
                    [first] = [step for step in steps if step.get("step", {}).get("tool") == STATUS_TOOL]
                    assert first["disposition"] == "manual", first
                    assert f"tool {STATUS_TOOL} is not in the tenant's toolsAllowList" in first["reason"], (
                        first
                    )
                assert (
                    len(cluster.rows("SELECT 1 FROM playbook_states WHERE exception_id = ANY(%s)", switched))
                    == 8
                )
                on = await client.post(f"{base2}/admin/{TENANT}/tools/{STATUS_TOOL}/enable", headers=headers)
                assert on.status_code == 200, on.text
                await asyncio.sleep(1.0)

                # one case: its call fails (the connection is refused) and opens the breaker
                [(_, attempts, error, opener)] = calls(await run_cases(client, base1, 1))
                assert attempts > 0 and error is not None and not error.startswith("circuit open"), error
                await asyncio.sleep(1.0)
                # then cases until the other worker has run some: it refuses without calling
                others: list[tuple[str, int, str | None, int | None]] = []
                for _round in range(10):
                    later = calls(await run_cases(client, (base1, base2)[_round % 2], 8))
                    assert {attempts for _, attempts, _, _ in later} == {0}, later
                    assert all((error or "").startswith("circuit open for ") for _, _, error, _ in later), (
                        later
                    )
                    others += [call for call in later if call[3] != opener]
                    if others:
                        break
                assert others, "the other worker never ran a case"
                assert all(p.poll() is None for p in (api1, api2, *workers))
