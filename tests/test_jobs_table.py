"""The embedded job queue (app/jobs/table.py) on its own: two queues on one SQLite file stand for two
processes. Jobs of one case run one at a time and in order, whichever queue takes them; a job whose
owner died is taken again once its lease runs out; a failing job is retried, then failed; a job
asked to wait is not counted as a try; stopping hands running jobs back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from app.db.migrate import upgrade
from app.db.models import CaseJob
from app.db.session import Database
from app.db.types import utc_now
from app.jobs.base import Job, RetryLater
from app.jobs.table import TableJobQueue
from app.settings import Settings


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    await database.close()


def queue(db: Database, tmp_path: Path, **settings: Any) -> TableJobQueue:
    values = {"data_dir": tmp_path, "database_url": db.url, "job_poll_seconds": 0.05,
              "deadline_sweep_seconds": 3600} | settings  # fmt: skip
    return TableJobQueue(db, Settings(**values))


async def rows(db: Database) -> list[CaseJob]:
    async with db.session() as session:
        return list((await session.execute(select(CaseJob).order_by(CaseJob.job_id))).scalars())


async def test_jobs_of_a_case_run_one_at_a_time_and_in_order_across_processes(
    db: Database, tmp_path: Path
) -> None:
    first, second = queue(db, tmp_path), queue(db, tmp_path)
    running: dict[str, int] = {}
    most: dict[str, int] = {}
    order: dict[str, list[int]] = {}

    async def handler(job: Job) -> None:
        case = str(job.exception_id)
        running[case] = running.get(case, 0) + 1
        most[case] = max(most.get(case, 0), running[case])
        order.setdefault(case, []).append(job.payload["n"])
        await asyncio.sleep(0.01)
        running[case] -= 1

    cases = "ABCDEF"  # more cases than one process runs at once: the second must take some
    for n in range(6):
        for case in cases:
            await first.defer("answer", "t", case, {"n": n})
    await first.start(handler, 3)
    await second.start(handler, 3)
    await first.drain()
    await first.stop()
    await second.stop()
    assert most == dict.fromkeys(cases, 1)  # never two jobs of a case at once
    assert order == {case: list(range(6)) for case in cases}  # in the order they were queued
    assert {row.status for row in await rows(db)} == {"done"}
    assert {row.owner for row in await rows(db)} == {first.owner, second.owner}  # both took some


async def test_a_job_whose_owner_died_is_taken_again_after_its_lease(db: Database, tmp_path: Path) -> None:
    dead = queue(db, tmp_path)
    job_id = await dead.defer("process", "t", "A")
    taken = await dead._take_one()  # the process took it, then died (nothing else happens)
    assert taken is not None and taken.job_id == job_id
    alive = queue(db, tmp_path, job_lease_seconds=1)
    seen: list[Job] = []

    async def handler(job: Job) -> None:
        seen.append(job)

    assert await alive._take_one() is None  # its lease still holds
    async with db.session() as session:
        await session.execute(update(CaseJob).values(lease_until=utc_now() - timedelta(seconds=1)))
    await alive.start(handler, 1)
    finished = await alive.wait(job_id, 30)
    await alive.stop()
    assert finished is not None and finished.status == "done" and finished.attempts == 2
    assert [job.job_id for job in seen] == [job_id]


async def test_failures_are_retried_then_failed_and_waiting_is_not_a_try(
    db: Database, tmp_path: Path
) -> None:
    jobs = queue(db, tmp_path, job_max_attempts=2)
    tries: dict[str, int] = {}

    async def handler(job: Job) -> None:
        tries[str(job.exception_id)] = tries.get(str(job.exception_id), 0) + 1
        if job.exception_id == "WAIT" and tries["WAIT"] == 1:
            raise RetryLater(0, "not yet")
        if job.exception_id == "FAIL":
            raise RuntimeError("boom")

    wait_id = await jobs.defer("process", "t", "WAIT")
    fail_id = await jobs.defer("process", "t", "FAIL")
    await jobs.start(handler, 2)
    waited, failed = await jobs.wait(wait_id, 30), await jobs.wait(fail_id, 30)
    await jobs.stop()
    assert waited is not None and waited.status == "done" and waited.attempts == 1 and tries["WAIT"] == 2
    assert failed is not None and failed.status == "failed" and tries["FAIL"] == 2
    assert failed.error == "RuntimeError: boom"


async def test_stopping_hands_running_jobs_back(db: Database, tmp_path: Path) -> None:
    jobs = queue(db, tmp_path)
    started = asyncio.Event()

    async def slow(job: Job) -> None:
        started.set()
        await asyncio.sleep(3600)

    job_id = await jobs.defer("process", "t", "A")
    await jobs.start(slow, 1)
    await started.wait()
    await jobs.stop(grace=0)
    [row] = await rows(db)
    assert (row.status, row.owner, row.lease_until, row.attempts) == ("queued", None, None, 0)
    done: list[str] = []

    async def quick(job: Job) -> None:
        done.append(job.job_id)

    other = queue(db, tmp_path)
    await other.start(quick, 1)
    await other.drain()
    await other.stop()
    assert done == [job_id]
