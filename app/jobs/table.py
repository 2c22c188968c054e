"""The embedded job queue: jobs are rows of ``case_jobs`` in the SQLite database, run by workers in
this process (``exops serve``/``start``) or in ``exops worker`` processes sharing the file.

Why a table and not memory: a job that was committed is never lost, and a crash is recovered by the
same path as everything else. A worker *takes* a job with one conditional UPDATE that only matches
a job that is ready, not held under a live lease, and whose case has no other job running and no
earlier job waiting (so a case's jobs run one at a time, in order, across all processes). The worker
holds the job under a lease it renews while it runs. If its process dies, the lease runs out and
the next worker takes the job again with the very same UPDATE: there is no separate recovery step
that could re-run a case another process is still running.

A job that raises is tried again later (backoff doubling up to a minute) until it has had
``job_max_attempts`` tries, then it is ``failed`` (logged; the sweep re-drives lapsed claims).
Stopping gives running jobs ``grace`` seconds, then hands them back (queued, no lease) so the next
worker takes them at once instead of waiting for the lease to run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from app.db.inplace import SqliteQuery
from app.db.models import CaseJob, table_of
from app.db.session import Database
from app.db.types import utc_now
from app.jobs.base import Job, JobHandler, JobKind, RetryLater
from app.settings import Settings

log = logging.getLogger("exops.jobs")
JOBS = table_of(CaseJob)
MAX_BACKOFF_SECONDS = 60.0
UNFINISHED: list[ColumnElement[str]] = [literal_column("'queued'"), literal_column("'running'")]
"""The statuses of a job still to end, written into the SQL (no bound list: the take statement is also
compiled once for SQLite's in-place writer, which binds by position)."""


def _owner() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _job(row: Mapping[str, Any] | RowMapping) -> Job:
    return Job(
        job_id=str(row["job_id"]), kind=row["kind"], tenant_id=row["tenant_id"], exception_id=row["exception_id"],
        payload=dict(row["payload"] or {}), status=row["status"], attempts=row["attempts"],
        created_at=row["created_at"], finished_at=row["finished_at"], error=row["error"],
    )  # fmt: skip


class TableJobQueue:
    """``JobQueue`` on the ``case_jobs`` table (see the module docstring)."""

    backend = "database"
    queues_accepted_cases = True  # the case_jobs_process_on_accept trigger (migration 0008)

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.lease = timedelta(seconds=settings.job_lease_seconds)
        self.poll = settings.job_poll_seconds
        self.max_attempts = settings.job_max_attempts
        self.retention = timedelta(hours=settings.job_retention_hours)
        self.sweep_every = settings.deadline_sweep_seconds
        self.grace = settings.worker_shutdown_seconds
        self.owner = _owner()
        self._generation = 0
        self._wakeup = asyncio.Event()
        self._finished: dict[str, asyncio.Event] = {}
        self._settled = asyncio.Event()  # set whenever a job of this process ends
        self._ended_count = 0  # jobs of this process ended so far (drain counts them)
        self._workers: list[asyncio.Task[None]] = []
        self._timer: asyncio.Task[None] | None = None
        self._running: dict[asyncio.Task[bool], Job] = {}
        self._stopping = False
        # Core statements on the table, run on the session's connection: the ORM's bulk-insert path
        # costs more than the insert itself, and ingest stores a job with every case
        self._insert = insert(JOBS)
        self._insert_returning = insert(JOBS).returning(JOBS.c.job_id, sort_by_parameter_order=True)
        self._take = self._take_statement()
        self._finish = (
            update(JOBS)
            .where(
                JOBS.c.job_id == bindparam("job"),
                JOBS.c.owner == bindparam("me"),
                JOBS.c.status == "running",
            )
            .values(
                status="done", lease_until=None, finished_at=bindparam("at", type_=JOBS.c.finished_at.type)
            )
        )
        # on SQLite the same two statements run on the in-place writer (app/db/inplace.py): taking a job
        # is the one write every job makes besides its own work, and the async driver's thread hops
        # cost several times the statements themselves
        self._in_place = db.inplace
        self._finish_here = SqliteQuery(self._finish)
        self._take_here = SqliteQuery(self._take, returns=list(JOBS.c))

    async def open(self) -> None:
        """Nothing to open: the queue uses the app's own database connections."""

    # -- queueing ------------------------------------------------------------------------------
    def _row(
        self, kind: JobKind, tenant_id: str | None, exception_id: str | None, payload: dict[str, Any] | None
    ) -> dict[str, Any]:
        now = utc_now()
        return {"kind": kind, "tenant_id": tenant_id, "exception_id": exception_id, "payload": payload or {},
                "status": "queued", "run_after": now, "attempts": 0, "created_at": now}  # fmt: skip

    async def defer(
        self,
        kind: JobKind,
        tenant_id: str | None,
        exception_id: str | None,
        payload: dict[str, Any] | None = None,
        *,
        session: AsyncSession | None = None,
    ) -> str:
        row = self._row(kind, tenant_id, exception_id, payload)
        if session is not None:
            connection = await session.connection()
            return str((await connection.execute(self._insert_returning, [row])).scalar_one())
        async with self.db.session() as own:
            connection = await own.connection()
            job_id = str((await connection.execute(self._insert_returning, [row])).scalar_one())
        self.wake()
        return job_id

    async def defer_many(
        self, kind: JobKind, cases: list[tuple[str, str]], *, session: AsyncSession
    ) -> list[str]:
        if not cases:
            return []
        rows = [self._row(kind, tenant_id, exception_id, None) for tenant_id, exception_id in cases]
        connection = await session.connection()
        if len(rows) == 1:  # the usual ingest: no RETURNING needed to learn nothing
            await connection.execute(self._insert, rows[0])
            return []
        return [str(job_id) for job_id in (await connection.execute(self._insert_returning, rows)).scalars()]

    def wake(self) -> None:
        self._generation += 1
        self._wakeup.set()

    # -- reading -------------------------------------------------------------------------------
    async def status(self, job_id: str) -> Job | None:
        if not job_id.isdigit():
            return None
        async with self.db.session() as session:
            row = (await session.execute(select(*JOBS.c).where(JOBS.c.job_id == int(job_id)))).one_or_none()
        return _job(row._mapping) if row is not None else None

    async def wait(self, job_id: str, timeout: float) -> Job | None:
        deadline = time.monotonic() + timeout
        event = self._finished.setdefault(job_id, asyncio.Event())
        try:
            while True:
                job = await self.status(job_id)
                remaining = deadline - time.monotonic()
                if job is None or job.finished or remaining <= 0:
                    return job
                # finished here: the event says so at once; by another process: the next look does
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(remaining, 0.25))
        finally:
            if self._finished.get(job_id) is event and event.is_set():
                self._finished.pop(job_id, None)

    async def drain(self) -> None:
        """Wait until no job is queued or running, in any process. The jobs left are counted, then
        counted again once as many have ended here (or after a quarter second, for jobs that end in
        another process or were queued meanwhile): a count per job would cost the workers time."""
        count = select(func.count()).select_from(CaseJob).where(CaseJob.status.in_(("queued", "running")))
        while True:
            async with self.db.session() as session:
                left = (await session.execute(count)).scalar_one()
            if left == 0:
                return
            until = self._ended_count + left
            deadline = asyncio.get_running_loop().time() + 0.25
            while self._ended_count < until:
                self._settled.clear()
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._settled.wait(), remaining)

    # -- working -------------------------------------------------------------------------------
    def _take_statement(self) -> Any:
        """One conditional UPDATE that takes the next job this worker may run (see module docstring):
        a job whose lease ran out first (its worker died), else the oldest ready one. Each candidate
        is found by walking the ``(status, job_id)`` index, so finished jobs are never scanned."""
        at = bindparam("now", type_=JOBS.c.run_after.type)

        def first(status: str, due: Any) -> Any:
            job = JOBS.alias(f"j_{status}")
            other = JOBS.alias(f"o_{status}")
            blocked = exists().where(
                other.c.tenant_id == job.c.tenant_id,
                other.c.exception_id == job.c.exception_id,
                other.c.job_id != job.c.job_id,
                or_(
                    and_(other.c.status == "running", other.c.lease_until >= at),
                    and_(other.c.status.in_(UNFINISHED), other.c.job_id < job.c.job_id),
                ),
            )
            return (
                select(job.c.job_id)
                .where(job.c.status == status, due(job), ~blocked)
                .order_by(job.c.job_id)
                .limit(1)
                .scalar_subquery()
            )

        lapsed = first("running", lambda job: job.c.lease_until < at)
        ready = first("queued", lambda job: job.c.run_after <= at)
        return (
            update(JOBS)
            .where(JOBS.c.job_id == func.coalesce(lapsed, ready))
            .values(
                status="running",
                owner=bindparam("owner"),
                lease_until=bindparam("until", type_=JOBS.c.lease_until.type),
                attempts=JOBS.c.attempts + 1,
            )
            .returning(*JOBS.c)
        )

    async def _take_one(self, done: Job | None = None) -> Job | None:
        """Take the next job; first, in the same transaction, record ``done`` (the job this worker just
        finished): one write transaction per job instead of two, which a SQLite file, one writer at a
        time, feels."""
        now = utc_now()
        finish = {"job": int(done.job_id), "me": self.owner, "at": now} if done is not None else None
        take = {"now": now, "owner": self.owner, "until": now + self.lease}
        if self._in_place is not None:
            found = await self._in_place.run(self._take_and_finish_here(finish, take))
            return _job(found) if found is not None else None
        async with self.db.engine.begin() as connection:
            if finish is not None:
                await connection.execute(self._finish, finish)
            row = (await connection.execute(self._take, take)).one_or_none()
        return _job(row._mapping) if row is not None else None

    def _take_and_finish_here(
        self, finish: dict[str, Any] | None, take: dict[str, Any]
    ) -> Callable[[sqlite3.Connection], dict[str, Any] | None]:
        def work(connection: sqlite3.Connection) -> dict[str, Any] | None:
            if finish is not None:
                connection.execute(self._finish_here.sql, self._finish_here.params(finish))
            row = connection.execute(self._take_here.sql, self._take_here.params(take)).fetchone()
            return self._take_here.row(row) if row is not None else None

        return work

    def _ended(self, job: Job) -> None:
        """Wake whoever waits for ``job`` (its end is committed)."""
        self._ended_count += 1
        self._settled.set()
        event = self._finished.pop(job.job_id, None)
        if event is not None:
            event.set()

    async def _idle(self, seen: int) -> None:
        if self._generation != seen or self._stopping:
            return
        self._wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), self.poll)

    async def start(self, handler: JobHandler, concurrency: int) -> None:
        if self._workers:
            return
        self._stopping = False
        self._workers = [
            asyncio.create_task(self._work(handler), name=f"exops-worker-{i}") for i in range(concurrency)
        ]
        self._timer = asyncio.create_task(self._periodic_sweep(), name="exops-sweep-timer")

    async def _work(self, handler: JobHandler) -> None:
        finished: Job | None = None  # succeeded; recorded with the next take
        while not self._stopping:
            seen = self._generation
            try:
                job = await self._take_one(finished)
            except Exception:  # the database is busy or gone for a moment: look again later
                log.exception("taking a job failed")
                await self._idle(seen)
                continue
            if finished is not None:
                self._ended(finished)
                finished = None
            if job is None:
                await self._idle(seen)
                continue
            task = asyncio.create_task(self._run(job, handler), name=f"exops-job-{job.job_id}")
            self._running[task] = job
            try:
                if await asyncio.shield(task):
                    finished = job
            except asyncio.CancelledError:
                if not task.done():
                    raise
            except Exception:  # recording the job's end failed: its lease runs out, it is taken again
                log.exception("job %s: its end could not be recorded", job.job_id)
            finally:
                self._running.pop(task, None)
        if finished is not None:  # stopping: record the last one on its own
            try:
                async with self.db.engine.begin() as connection:
                    await connection.execute(
                        self._finish, {"job": int(finished.job_id), "me": self.owner, "at": utc_now()}
                    )
                self._ended(finished)
            except Exception:  # its lease runs out and it is taken again, and finds the work done
                log.exception("job %s: its end could not be recorded", finished.job_id)

    async def _run(self, job: Job, handler: JobHandler) -> bool:
        """Run the job; True when it succeeded (the worker records that with its next take), else its
        end (retry, failure, hand-back) is recorded here."""
        renewing = asyncio.create_task(self._renew(job, asyncio.current_task()))
        try:
            await handler(job)
        except asyncio.CancelledError:
            renewing.cancel()
            await asyncio.shield(self._give_back(job))
            self._ended(job)
            raise
        except RetryLater as later:
            renewing.cancel()
            log.info(
                "job %s (%s %s/%s) waits: %s", job.job_id, job.kind, job.tenant_id, job.exception_id, later
            )
            await self._later(job, later.seconds, str(later))
            self._ended(job)
            return False
        except Exception as exc:
            renewing.cancel()
            log.exception("job %s (%s %s/%s) failed", job.job_id, job.kind, job.tenant_id, job.exception_id)
            await self._failed(job, f"{type(exc).__name__}: {exc}")
            self._ended(job)
            return False
        renewing.cancel()
        return True

    async def _renew(self, job: Job, running: asyncio.Task[Any] | None) -> None:
        """Keep the lease while the job runs; if it was lost (this process stalled past it and another
        took the job), stop running it here."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                async with self.db.session() as session:
                    kept = await session.execute(
                        update(CaseJob)
                        .where(
                            CaseJob.job_id == int(job.job_id),
                            CaseJob.owner == self.owner,
                            CaseJob.status == "running",
                        )
                        .values(lease_until=utc_now() + self.lease)
                    )
            except Exception:
                log.exception("renewing the lease of job %s failed", job.job_id)
                continue
            if kept.rowcount == 0:  # type: ignore[attr-defined]
                log.warning("job %s lost its lease to another worker; stopping it here", job.job_id)
                if running is not None:
                    running.cancel()
                return

    def _mine(self, job: Job) -> Any:
        return update(CaseJob).where(
            CaseJob.job_id == int(job.job_id), CaseJob.owner == self.owner, CaseJob.status == "running"
        )

    async def _failed(self, job: Job, error: str) -> None:
        now = utc_now()
        if job.attempts >= self.max_attempts:
            values: dict[str, Any] = {
                "status": "failed",
                "lease_until": None,
                "finished_at": now,
                "error": error,
            }
        else:
            backoff = min(MAX_BACKOFF_SECONDS, 2.0 ** (job.attempts - 1))
            values = {"status": "queued", "owner": None, "lease_until": None, "error": error,
                      "run_after": now + timedelta(seconds=backoff)}  # fmt: skip
        async with self.db.session() as session:
            await session.execute(self._mine(job).values(**values))

    async def _later(self, job: Job, seconds: float, reason: str) -> None:
        async with self.db.session() as session:
            await session.execute(
                self._mine(job).values(
                    status="queued",
                    owner=None,
                    lease_until=None,
                    error=reason,
                    attempts=CaseJob.attempts - 1,
                    run_after=utc_now() + timedelta(seconds=seconds),
                )
            )

    async def _give_back(self, job: Job) -> None:
        """Stopped before the job finished: queue it again at once, without counting the attempt."""
        try:
            async with self.db.session() as session:
                await session.execute(
                    self._mine(job).values(
                        status="queued", owner=None, lease_until=None, attempts=CaseJob.attempts - 1
                    )
                )
        except Exception:  # the lease runs out and the job is taken again anyway
            log.exception("giving back job %s failed", job.job_id)

    async def _periodic_sweep(self) -> None:
        """Queue a sweep every ``deadline_sweep_seconds`` unless one is already queued or running."""
        table = JOBS
        while not self._stopping:
            await asyncio.sleep(self.sweep_every)
            row = self._row("sweep", None, None, None)
            waiting = exists().where(table.c.kind == "sweep", table.c.status.in_(("queued", "running")))
            statement = insert(table).from_select(
                list(row),
                select(*[literal(value, type_=table.c[name].type) for name, value in row.items()]).where(
                    ~waiting
                ),
            )
            try:
                async with self.db.session() as session:
                    await session.execute(statement)
                self.wake()
            except Exception:
                log.exception("queueing the sweep failed")

    async def housekeeping(self) -> None:
        """Delete finished jobs past their retention (run by the sweep)."""
        async with self.db.session() as session:
            await session.execute(
                delete(CaseJob).where(
                    CaseJob.status.in_(("done", "failed")), CaseJob.finished_at < utc_now() - self.retention
                )
            )

    async def stop(self, grace: float | None = None) -> None:
        if not self._workers:
            return
        self._stopping = True
        self._wakeup.set()
        if self._timer is not None:
            self._timer.cancel()
            await asyncio.gather(self._timer, return_exceptions=True)
            self._timer = None
        running = list(self._running)
        if running:
            await asyncio.wait(running, timeout=self.grace if grace is None else grace)
        for job_task in self._running:  # past the grace period: given back (see _run)
            job_task.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        # each worker loop now records the job it finished last and ends; the sweep timer is cancelled
        await asyncio.wait(self._workers, timeout=10)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        self._running = {}

    async def close(self) -> None:
        await self.stop()
