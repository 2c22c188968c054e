"""``kill -9`` of a real exops process on the embedded SQLite default, then a restart (issue 14).

Each test starts ``exops serve`` as a subprocess (tests/crash_server.py: the real CLI, with a point at
which it sends itself SIGKILL), works it over HTTP until it dies, starts it again on the same files,
and waits until no job is left. Then: nothing stuck (no job queued or running, no approval or step
claimed, no case accepted or running), nothing twice (one intake decision per case, one decision per
approval), and the tables agree with the graph (an approved case is not left PENDING_APPROVAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.admin.accounts import ensure_tenant, issue_key
from app.db.migrate import upgrade
from app.db.session import Database
from tests.api_helpers import SAMPLES

ROOT = Path(__file__).parent.parent
TENANT = "globex-markets"
SETTLE_LIMIT = 180.0  # a safety net for a hung test, not a measurement
REGULATORY = json.loads((ROOT / "docs" / "examples" / "globex-markets-exceptions.json").read_text())[
    "exceptions"
][2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def prepare(data_dir: Path) -> str:
    """The database with the tenant and an operator key (plaintext returned)."""
    url = f"sqlite:///{data_dir / 'exops.db'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        async with db.session() as session:
            await ensure_tenant(session, TENANT, "Globex Markets")
            return (await issue_key(session, tenant_id=TENANT, role="operator", name="crash")).plaintext
    finally:
        await db.close()


@contextmanager
def exops(data_dir: Path, kill_at: str = "", **env: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A running ``exops serve`` (killed at ``kill_at``, if given); its process and base URL."""
    port = free_port()
    environment = {
        **os.environ, "EXOPS_DATA_DIR": str(data_dir), "EXOPS_PACKS_DIR": str(SAMPLES), "EXOPS_MEMORY_ENABLED": "false",
        "EXOPS_JOB_LEASE_SECONDS": "2", "EXOPS_WORKER_CONCURRENCY": "4", "EXOPS_RATE_LIMIT_PER_MINUTE": "100000",
        "EXOPS_TEST_KILL_AT": kill_at, "PYTHONPATH": str(ROOT), **env,
    }  # fmt: skip
    log = (data_dir / f"server-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.crash_server", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


async def ready(client: httpx.AsyncClient, base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "exops exited before it served"
        try:
            if (await client.get(f"{base}/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("exops did not start")


def killed(process: subprocess.Popen[bytes]) -> None:
    """Wait for the process to die of its SIGKILL (or send it one: the test's own kill -9)."""
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL


def rows(data_dir: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "exops.db") as connection:
        return list(connection.execute(sql, args).fetchall())


async def settled(data_dir: Path, process: subprocess.Popen[bytes]) -> None:
    """Wait until the restarted process has run every job (leases of the dead process run out first)."""
    deadline = time.monotonic() + SETTLE_LIMIT
    while time.monotonic() < deadline:
        assert process.poll() is None, "the restarted exops died"
        busy = rows(data_dir, "SELECT COUNT(*) FROM case_jobs WHERE status IN ('queued', 'running')")[0][0]
        if busy == 0:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(
        f"jobs still pending: {rows(data_dir, 'SELECT * FROM case_jobs WHERE status != ?', 'done')}"
    )


def assert_nothing_stuck_nothing_twice(data_dir: Path) -> None:
    assert rows(data_dir, "SELECT exception_id, processing FROM exceptions WHERE processing IN "
                          "('accepted', 'running')") == []  # fmt: skip
    assert rows(data_dir, "SELECT approval_id FROM approvals WHERE status = 'CLAIMED'") == []
    assert rows(data_dir, "SELECT exception_id FROM playbook_states WHERE claim_state = 'claimed'") == []
    assert rows(data_dir, "SELECT job_id, kind, error FROM case_jobs WHERE status != 'done'") == []
    intake = rows(data_dir, "SELECT e.exception_id, COUNT(x.id) FROM exceptions e LEFT JOIN exception_events x "
                            "ON x.tenant_id = e.tenant_id AND x.exception_id = e.exception_id AND "
                            "x.type = 'stage_decision' AND x.stage = 'intake' GROUP BY e.exception_id")  # fmt: skip
    assert intake and all(count == 1 for _, count in intake), intake
    decided = rows(data_dir, "SELECT exception_id, COUNT(*) FROM exception_events WHERE type = 'approval_decided' "
                             "GROUP BY exception_id HAVING COUNT(*) > 1")  # fmt: skip
    assert decided == []
    seqs = rows(data_dir, "SELECT exception_id, seq, COUNT(*) FROM exception_events GROUP BY exception_id, seq "
                          "HAVING COUNT(*) > 1")  # fmt: skip
    assert seqs == []


def cases(count: int, prefix: str) -> list[dict[str, Any]]:
    return [{**REGULATORY, "exceptionId": f"{prefix}-{i:03d}"} for i in range(count)]


async def post_cases(client: httpx.AsyncClient, base: str, key: str, items: list[dict[str, Any]]) -> None:
    response = await client.post(f"{base}/exceptions/{TENANT}", json=items, headers={"X-API-KEY": key})
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("kill_at", ["first-checkpoint", "mid-run"])
async def test_a_kill_while_cases_are_processed(tmp_path: Path, kill_at: str) -> None:
    key = await prepare(tmp_path)
    items = [{"exceptionId": f"K-{i:03d}", "exceptionType": "SETTLEMENT_DELAY_NOTICE", "rawPayload": {}}
             for i in range(12)] + cases(4, "KA")  # fmt: skip
    async with httpx.AsyncClient(timeout=30) as client:
        with exops(tmp_path, kill_at) as (process, base):
            await ready(client, base, process)
            with contextlib.suppress(httpx.TransportError):  # it may die before it answers (all was stored)
                await post_cases(client, base, key, items)
            killed(process)
        accepted = rows(tmp_path, "SELECT COUNT(*) FROM exceptions")[0][0]
        unfinished = rows(
            tmp_path, "SELECT COUNT(*) FROM exceptions WHERE processing IN ('accepted', 'running')"
        )
        assert accepted == len(items) and unfinished[0][0] > 0  # the kill cut work off
        with exops(tmp_path) as (process, base):
            await ready(client, base, process)
            await settled(tmp_path, process)
            assert_nothing_stuck_nothing_twice(tmp_path)
            statuses = dict(rows(tmp_path, "SELECT exception_id, status FROM exceptions"))
            assert all(statuses[f"K-{i:03d}"] == "RESOLVED" for i in range(12)), statuses
            assert all(statuses[f"KA-{i:03d}"] == "PENDING_APPROVAL" for i in range(4)), statuses


@pytest.mark.parametrize("kill_at", ["mid-resume", "after-resume", "by-the-test"])
async def test_a_kill_during_decisions(tmp_path: Path, kill_at: str) -> None:
    key = await prepare(tmp_path)
    items = cases(16, "D")
    headers = {"X-API-KEY": key}
    async with httpx.AsyncClient(timeout=30) as client:
        with exops(tmp_path, "" if kill_at == "by-the-test" else kill_at) as (process, base):
            await ready(client, base, process)
            await post_cases(client, base, key, items)
            deadline = time.monotonic() + SETTLE_LIMIT
            while rows(tmp_path, "SELECT COUNT(*) FROM approvals WHERE status = 'PENDING'")[0][0] < len(
                items
            ):
                assert time.monotonic() < deadline, "the cases did not reach their approvals"
                await asyncio.sleep(0.2)

            async def approve(item: dict[str, Any]) -> int | None:
                url = f"{base}/approvals/{TENANT}/APR-{item['exceptionId']}-1/approve"
                try:
                    return (await client.post(url, json={"comment": "ok"}, headers=headers)).status_code
                except httpx.TransportError:
                    return None

            decisions = [asyncio.create_task(approve(item)) for item in items]
            if kill_at == "by-the-test":  # kill -9 from outside once some answers are back
                while sum(task.done() for task in decisions) < 3 and process.poll() is None:
                    await asyncio.sleep(0.01)
                process.kill()
            answered = await asyncio.gather(*decisions)
            killed(process)
        claimed = rows(tmp_path, "SELECT COUNT(*) FROM approvals WHERE status = 'CLAIMED'")[0][0]
        assert claimed > 0 or kill_at == "by-the-test"  # the kill left answers half-applied
        with exops(tmp_path) as (process, base):
            await ready(client, base, process)
            await settled(tmp_path, process)
            assert_nothing_stuck_nothing_twice(tmp_path)
            # every claimed answer was applied exactly once; the rest are still pending, never half-way
            for approval_id, status, case_status, processing in rows(
                tmp_path, "SELECT a.approval_id, a.status, e.status, e.processing FROM approvals a JOIN exceptions e "
                          "ON e.tenant_id = a.tenant_id AND e.exception_id = a.exception_id"
            ):  # fmt: skip
                if status == "PENDING":
                    assert (case_status, processing) == ("PENDING_APPROVAL", "waiting"), approval_id
                else:
                    assert status == "APPROVED" and case_status != "PENDING_APPROVAL", (approval_id, status)
            decided = rows(tmp_path, "SELECT COUNT(*) FROM approvals WHERE status = 'APPROVED'")[0][0]
            assert decided >= sum(1 for code in answered if code == 200)
            again = await client.post(f"{base}/approvals/{TENANT}/APR-D-000-1/reject", json={"reason": "late"},
                                      headers=headers)  # fmt: skip
            status = rows(tmp_path, "SELECT status FROM approvals WHERE approval_id = 'APR-D-000-1'")[0][0]
            assert again.status_code == (409 if status == "APPROVED" else 200), again.text
