"""The job queue on PostgreSQL: procrastinate, for N API processes and M ``exops worker`` processes.

What procrastinate gives and how it is used here:

* **One lock per case.** Every ``process`` and ``answer`` job is deferred with
  ``lock=case:{tenant}:{exception}``: procrastinate never runs two jobs with the same lock at once, in
  any process, and takes them in the order they were queued.
* **Queued with what it works on.** ``defer(..., session=...)`` inserts the job on the SQLAlchemy
  session's own psycopg connection (procrastinate's ``connection=``), so the job is committed in the
  same transaction as the case or the claim: both or neither.
* **LISTEN/NOTIFY** wakes idle workers at once; they also poll every ``job_poll_seconds``.
* **Retries.** A job that raises is retried with backoff (1, 2, 4... s, at most a minute) until it has
  had ``job_max_attempts`` tries; ``RetryLater`` picks its own delay; a job cut off by a worker's
  shutdown is retried at once.
* **Stalled jobs.** Workers send heartbeats every ``job_lease_seconds / 3``; the periodic sweep
  retries the jobs of workers silent for ``job_lease_seconds`` (a worker killed with ``kill -9``).
* **Periodic sweep.** One ``exops.sweep`` per period across all workers (procrastinate's periodic
  tasks record each deferral, so several workers do not sweep twice).
* **Graceful stop.** ``stop`` lets running jobs finish for ``worker_shutdown_seconds``, then cancels
  them: they go back to the queue (the retry above) and another worker takes them.

The schema is part of the Alembic migrations (0008), applied by ``exops db upgrade`` under its lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from typing import Any

import procrastinate
from procrastinate import jobs as procrastinate_jobs
from procrastinate.exceptions import JobAborted
from procrastinate.job_context import JobContext
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from procrastinate.worker import Worker
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.jobs.base import Job, JobHandler, JobKind, RetryLater, case_lock
from app.settings import Settings

log = logging.getLogger("exops.jobs")
QUEUE = "exops"
TASKS: dict[JobKind, str] = {"process": "exops.process", "answer": "exops.answer", "sweep": "exops.sweep"}
KINDS: dict[str, JobKind] = {name: kind for kind, name in TASKS.items()}
STATUS = {"todo": "queued", "doing": "running", "succeeded": "done", "failed": "failed",
          "cancelled": "failed", "aborted": "failed", "aborting": "running"}  # fmt: skip
MAX_BACKOFF_SECONDS = 60


class CaseRetry(BaseRetryStrategy):
    """Backoff 1, 2, 4... s (a minute at most) for ``max_attempts`` tries; a job asked to wait
    (``RetryLater``) or cut off by a shutdown is retried whatever its count."""

    def __init__(self, max_attempts: int) -> None:
        self.max_attempts = max_attempts

    def get_retry_decision(
        self, *, exception: BaseException, job: procrastinate_jobs.Job
    ) -> RetryDecision | None:
        if isinstance(exception, RetryLater):
            return RetryDecision(retry_in={"seconds": int(max(1.0, exception.seconds))})
        if isinstance(exception, asyncio.CancelledError | JobAborted):
            return RetryDecision(retry_in={"seconds": 0})
        if job.attempts + 1 >= self.max_attempts:
            return None
        return RetryDecision(retry_in={"seconds": min(MAX_BACKOFF_SECONDS, 2**job.attempts)})


def sweep_cron(seconds: float) -> str:
    """A cron line (with procrastinate's sixth, seconds column) for "every ``seconds``"."""
    every = max(1, round(seconds))
    if every < 60:
        return f"*/{every} * * * * *"
    minutes = max(1, min(59, round(every / 60)))
    return f"*/{minutes} * * * *"


def conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class ProcrastinateJobQueue:
    """``JobQueue`` on procrastinate (see the module docstring)."""

    backend = "procrastinate"
    queues_accepted_cases = False

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.lease = settings.job_lease_seconds
        self.grace = settings.worker_shutdown_seconds
        connector = procrastinate.PsycopgConnector(
            conninfo=conninfo(settings.db_url), min_size=1, max_size=settings.worker_concurrency + 4
        )
        self.app = procrastinate.App(connector=connector)
        self._handler: JobHandler | None = None
        self._worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._opened = False
        self._register()

    def _register(self) -> None:
        retry = CaseRetry(self.settings.job_max_attempts)

        def task(kind: JobKind) -> Any:
            async def run(
                context: JobContext, tenant_id: str, exception_id: str, payload: dict[str, Any]
            ) -> None:
                assert context.job.id is not None
                job = Job(str(context.job.id), kind, tenant_id, exception_id, payload, "running",
                          context.job.attempts + 1)  # fmt: skip
                await self._run(job)

            run.__name__ = run.__qualname__ = f"exops_{kind}"
            return self.app.task(name=TASKS[kind], queue=QUEUE, retry=retry, pass_context=True)(run)

        self.tasks = {kind: task(kind) for kind in ("process", "answer")}

        async def sweep(context: JobContext, timestamp: int) -> None:
            assert context.job.id is not None
            await self._run(
                Job(str(context.job.id), "sweep", None, None, {"timestamp": timestamp}, "running")
            )

        sweep.__name__ = sweep.__qualname__ = "exops_sweep"
        registered = self.app.task(name=TASKS["sweep"], queue=QUEUE, retry=retry, pass_context=True,
                                   queueing_lock="exops-sweep")(sweep)  # fmt: skip
        self.tasks["sweep"] = self.app.periodic(
            cron=sweep_cron(self.settings.deadline_sweep_seconds), periodic_id="deadline-sweep"
        )(registered)

    async def _run(self, job: Job) -> None:
        if self._handler is None:  # a job picked up before start() finished: try again shortly
            raise RetryLater(1.0, "this worker has no handler yet")
        await self._handler(job)

    async def open(self) -> None:
        if not self._opened:
            await self.app.open_async()
            self._opened = True

    async def close(self) -> None:
        await self.stop()
        if self._opened:
            await self.app.close_async()
            self._opened = False

    # -- queueing ------------------------------------------------------------------------------
    @staticmethod
    async def _driver(session: AsyncSession) -> Any:
        """The psycopg connection under the session, in its transaction."""
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        return raw.driver_connection

    def _job(self, kind: JobKind, tenant_id: str | None, exception_id: str | None,
             payload: dict[str, Any] | None) -> procrastinate_jobs.Job:  # fmt: skip
        kwargs: dict[str, Any] = (
            {"timestamp": int(time.time())}
            if kind == "sweep"
            else {"tenant_id": tenant_id, "exception_id": exception_id, "payload": payload or {}}
        )
        lock = case_lock(tenant_id, exception_id) if tenant_id and exception_id else None
        return procrastinate_jobs.Job(
            id=None, queue=QUEUE, task_name=TASKS[kind], lock=lock, queueing_lock=None, task_kwargs=kwargs,
            priority=0 if kind != "answer" else 1,  # a person's answer goes before new cases
        )  # fmt: skip

    async def defer(
        self,
        kind: JobKind,
        tenant_id: str | None,
        exception_id: str | None,
        payload: dict[str, Any] | None = None,
        *,
        session: AsyncSession | None = None,
    ) -> str:
        job = self._job(kind, tenant_id, exception_id, payload)
        connection = await self._driver(session) if session is not None else None
        [deferred] = await self.app.job_manager.batch_defer_jobs_async([job], connection=connection)
        return str(deferred.id)

    async def defer_many(
        self, kind: JobKind, cases: list[tuple[str, str]], *, session: AsyncSession
    ) -> list[str]:
        if not cases:
            return []
        jobs = [self._job(kind, tenant_id, exception_id, None) for tenant_id, exception_id in cases]
        deferred = await self.app.job_manager.batch_defer_jobs_async(
            jobs, connection=await self._driver(session)
        )
        return [str(job.id) for job in deferred]

    def wake(self) -> None:
        """Nothing to do: the insert trigger NOTIFYs every listening worker on commit."""

    # -- reading -------------------------------------------------------------------------------
    async def status(self, job_id: str) -> Job | None:
        if not job_id.isdigit() or int(job_id) >= 2**63:
            return None
        async with self.db.session() as session:
            row = (
                await session.execute(
                    text(
                        "SELECT j.id, j.task_name, j.args, j.status, j.attempts, "
                        "(SELECT min(e.at) FROM procrastinate_events e WHERE e.job_id = j.id) AS created_at, "
                        "(SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = j.id AND e.type IN "
                        "('succeeded', 'failed', 'cancelled', 'aborted')) AS finished_at "
                        "FROM procrastinate_jobs j WHERE j.id = :id AND j.queue_name = :queue"
                    ),
                    {"id": int(job_id), "queue": QUEUE},
                )
            ).one_or_none()
        if row is None or row.task_name not in KINDS:
            return None
        args: dict[str, Any] = dict(row.args or {})
        status = STATUS.get(str(row.status), "failed")
        finished: datetime | None = row.finished_at if status in ("done", "failed") else None
        return Job(
            job_id=str(row.id), kind=KINDS[row.task_name], tenant_id=args.get("tenant_id"),
            exception_id=args.get("exception_id"), payload=dict(args.get("payload") or {}),
            status=status,  # type: ignore[arg-type]
            attempts=int(row.attempts) + (1 if status in ("running", "done", "failed") else 0),
            created_at=row.created_at, finished_at=finished,
        )  # fmt: skip

    async def wait(self, job_id: str, timeout: float) -> Job | None:
        deadline = time.monotonic() + timeout
        pause = 0.02
        while True:
            job = await self.status(job_id)
            remaining = deadline - time.monotonic()
            if job is None or job.finished or remaining <= 0:
                return job
            await asyncio.sleep(min(pause, remaining))
            pause = min(0.25, pause * 1.5)

    async def drain(self) -> None:
        busy = text(
            "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = :queue AND task_name <> :sweep "
            "AND status IN ('todo', 'doing')"
        )
        while True:
            async with self.db.session() as session:
                if (await session.execute(busy, {"queue": QUEUE, "sweep": TASKS["sweep"]})).scalar_one() == 0:
                    return
            await asyncio.sleep(0.05)

    # -- working -------------------------------------------------------------------------------
    async def start(self, handler: JobHandler, concurrency: int) -> None:
        if self._worker_task is not None:
            return
        self._handler = handler
        self._worker = Worker(
            app=self.app, queues=[QUEUE], name=f"exops-{concurrency}", concurrency=concurrency, wait=True,
            fetch_job_polling_interval=self.settings.job_poll_seconds, listen_notify=True,
            shutdown_graceful_timeout=self.grace, install_signal_handlers=False,
            update_heartbeat_interval=max(1.0, self.lease / 3), stalled_worker_timeout=self.lease,
            delete_jobs="never",
        )  # fmt: skip
        self._worker_task = asyncio.create_task(
            self._worker.run(),  # type: ignore[no-untyped-call]
            name="exops-procrastinate-worker",
        )

    async def stop(self, grace: float | None = None) -> None:
        if self._worker is None or self._worker_task is None:
            return
        if grace is not None:
            self._worker.shutdown_graceful_timeout = grace
        self._worker.stop()  # type: ignore[no-untyped-call]
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker_task
        self._worker = None
        self._worker_task = None

    async def housekeeping(self) -> None:
        """Retry the jobs of workers that stopped sending heartbeats; delete old finished jobs."""
        manager = self.app.job_manager
        for job in await manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=self.lease):
            log.warning("retrying job %s of a stalled worker (%s)", job.id, job.task_name)
            await manager.retry_job(job)
        hours = int(self.settings.job_retention_hours)
        if hours > 0:
            await manager.delete_old_jobs(nb_hours=hours, queue=QUEUE, include_failed=True)
