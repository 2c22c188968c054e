"""The one job interface every backend offers, and the few types it speaks in.

A job is a unit of case work: ``process`` a new case, apply a person's ``answer`` (an approval
decision, a completed or skipped step, a recalculation), or ``sweep`` deadlines and lapsed claims.
Jobs of one case run one at a time, in the order they were queued, in whichever process takes them;
a job whose process died is taken again, so every handler is written to be run twice safely.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

JobKind = Literal["process", "answer", "sweep"]
JOB_KINDS: tuple[JobKind, ...] = ("process", "answer", "sweep")
JobStatus = Literal["queued", "running", "done", "failed"]
FINISHED: frozenset[str] = frozenset({"done", "failed"})


def case_lock(tenant_id: str, exception_id: str) -> str:
    """The name that serializes a case's jobs across every process (procrastinate's ``lock``)."""
    return f"case:{tenant_id}:{exception_id}"


def plan_digest(plan: list[dict[str, Any]] | None) -> str:
    """A short fingerprint of a plan's steps as shown to a person (an approver, or whoever completes a
    step): an answer names the digest it was given, and is refused if the plan changed since."""
    steps = [item.get("step", item) for item in plan or []]
    return hashlib.sha256(json.dumps(steps, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Job:
    """A job as a handler or a status page sees it."""

    job_id: str
    kind: JobKind
    tenant_id: str | None
    exception_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    status: JobStatus = "queued"
    attempts: int = 0
    created_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


JobHandler = Callable[[Job], Awaitable[None]]


class RetryLater(Exception):
    """Raised by a handler that cannot do its work yet (e.g. the tenant's packs are missing): the
    job is tried again after ``seconds``, without counting against its attempts."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds


class StillRunning(Exception):
    """A request waited as long as it may for its job; the job goes on (follow ``job``'s link)."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.job_id} is {job.status}")
        self.job = job


class JobQueue(Protocol):
    """Durable jobs: queued in the database, run by workers in this process or any other."""

    backend: str
    queues_accepted_cases: bool
    """True when the database itself queues a ``process`` job with every case stored as accepted
    (SQLite: a trigger, see migration 0008), so storing a case costs no extra round trip."""

    async def open(self) -> None:
        """Connect (before anything is queued)."""
        ...

    async def defer(
        self,
        kind: JobKind,
        tenant_id: str | None,
        exception_id: str | None,
        payload: dict[str, Any] | None = None,
        *,
        session: AsyncSession | None = None,
    ) -> str:
        """Queue a job; its id. With ``session`` the job is written in that session's transaction, so
        it exists exactly when what it works on was committed (a case, a claim); call ``wake`` once the
        transaction is committed so this process's idle workers look at once."""
        ...

    async def defer_many(
        self, kind: JobKind, cases: list[tuple[str, str]], *, session: AsyncSession
    ) -> list[str]:
        """Queue one job of ``kind`` per (tenant, exception), in ``session``'s transaction."""
        ...

    def wake(self) -> None:
        """Tell this process's idle workers that jobs were just committed."""
        ...

    async def status(self, job_id: str) -> Job | None:
        """The job as it stands (None: no such job, or long finished and deleted)."""
        ...

    async def wait(self, job_id: str, timeout: float) -> Job | None:
        """Wait at most ``timeout`` seconds for the job to finish; the job as it stands then."""
        ...

    async def start(self, handler: JobHandler, concurrency: int) -> None:
        """Run workers in this process until ``stop``."""
        ...

    async def stop(self, grace: float | None = None) -> None:
        """Stop the workers: running jobs get ``grace`` seconds to finish, then are given back (taken
        again by the next worker, as after a crash). Idempotent."""
        ...

    async def drain(self) -> None:
        """Wait until no job is queued or running (tests, benchmarks)."""
        ...

    async def housekeeping(self) -> None:
        """Periodic upkeep the sweep runs: delete old finished jobs; on PostgreSQL, retry the jobs of
        workers that stopped sending heartbeats."""
        ...

    async def close(self) -> None:
        """Release connections (after ``stop``)."""
        ...
