"""Accepting exceptions, running them through the graph, and applying people's answers.

Everything accepted is stored before ``202`` is answered, so nothing is lost: a case whose run had
not finished when the process stopped is picked up again at start-up (``recover``). One case is
never run twice at once (a lock per case), and a decided approval cannot be decided again: the
approval row moves from PENDING in one conditional UPDATE, which only one request can win.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, select, update

from app.api.problems import FieldProblem, ProblemError
from app.cases.projection import project
from app.db.models import Approval, ExceptionCase, Run
from app.db.session import Database
from app.db.types import utc_now
from app.runtime import ConfigurationError, Runtime
from graph.inputs import RawException, with_exception_id
from graph.results import CaseOutcome
from graph.runner import CaseRunner, InvalidAnswer, NothingPending

log = logging.getLogger("exops.cases")

WAYS_ON = (
    "The ways on: reject it with a reason (with no plan proposed the case escalates), approve with an "
    "editedPlan of at least one step, or take the case over (it stays open, assigned to you, and nothing "
    "runs or resolves on its own)"
)
"""What a person can do with an approval that proposes no plan, said where approving it is refused."""


class CaseService:
    def __init__(self, db: Database, runner: CaseRunner, runtime: Runtime, *, concurrency: int = 4) -> None:
        self.db = db
        self.runner = runner
        self.runtime = runtime
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.concurrency = concurrency
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._workers: list[asyncio.Task[None]] = []
        new_case = db.insert_new_only(ExceptionCase)
        self._store_case = new_case.execution_options(preserve_rowcount=True)
        self._store_cases = new_case.returning(ExceptionCase.exception_id)
        self._store_run = insert(Run)
        self._claim_run = db.insert_new_only(Run).execution_options(preserve_rowcount=True)
        self.idle = asyncio.Event()
        self.idle.set()
        self._busy = 0

    def lock(self, tenant_id: str, exception_id: str) -> asyncio.Lock:
        """The one lock of a case: held while its graph runs, so two resumes never run at once.
        Kept only while someone holds a reference, so the map does not grow with every case ever seen."""
        key = (tenant_id, exception_id)
        found = self._locks.get(key)
        if found is None:
            found = asyncio.Lock()
            self._locks[key] = found
        return found

    # -- ingestion -----------------------------------------------------------------------------
    async def ingest(
        self, tenant_id: str, items: Sequence[RawException], *, idempotency_key: str | None, actor: str
    ) -> tuple[list[str], bool]:
        """Store the exceptions and queue them; returns their ids and whether anything new was accepted.

        An ``Idempotency-Key`` is claimed in the database, by inserting this run's row before the
        cases: of requests racing with the same key, one inserts it and the others find it taken
        (``ON CONFLICT DO NOTHING``; PostgreSQL makes them wait for the winner's commit, SQLite's
        write lock does the same), then answer the winner's ids, having stored nothing themselves.
        """
        if idempotency_key is not None and not idempotency_key.strip():
            raise ValueError("an idempotency key is never empty")  # the route answers 400 first
        ids: list[str] = []
        rows: dict[str, dict[str, Any]] = {}
        run_id = f"RUN-{uuid.uuid4().hex[:12].upper()}"
        now = utc_now()
        for item in items:
            item = with_exception_id(item)
            assert item.exceptionId is not None
            ids.append(item.exceptionId)
            rows.setdefault(item.exceptionId, {
                "tenant_id": tenant_id, "exception_id": item.exceptionId, "source_system": item.sourceSystem,
                "reported_type": item.reported_type()[0], "severity": item.severity,
                "raw": item.model_dump(mode="json", exclude_none=True), "processing": "accepted",
                "idempotency_key": idempotency_key, "run_id": run_id, "status": "OPEN", "events_synced": 0,
                "received_at": now, "updated_at": now,
            })  # fmt: skip
        run = {"run_id": run_id, "tenant_id": tenant_id, "kind": "ingest", "exception_count": len(ids),
               "idempotency_key": idempotency_key, "exception_ids": ids, "created_by": actor, "created_at": now}  # fmt: skip
        async with self.db.session() as session:
            connection = await session.connection()
            if idempotency_key is not None:
                claimed = await connection.execute(self._claim_run, run)
                if claimed.rowcount != 1:  # taken, by an earlier request or a concurrent one now committed
                    earlier = await connection.execute(
                        select(Run.exception_ids).where(
                            Run.tenant_id == tenant_id, Run.idempotency_key == idempotency_key
                        )
                    )
                    return list(earlier.scalar_one()), False
            # Core statements built once (compiled once): an exception already stored (sent again) is
            # skipped by the database, and RETURNING says which are new: accepted once, processed once.
            if len(rows) == 1:  # the usual request: the row count says whether it was new
                stored = await connection.execute(self._store_case, next(iter(rows.values())))
                new = list(rows) if stored.rowcount == 1 else []
            else:
                stored = await connection.execute(self._store_cases, list(rows.values()))
                fresh = set(stored.scalars())
                new = [exception_id for exception_id in rows if exception_id in fresh]
            if idempotency_key is None:
                await connection.execute(self._store_run, run)
        for exception_id in new:
            self.enqueue(tenant_id, exception_id)
        return ids, bool(new)

    def enqueue(self, tenant_id: str, exception_id: str) -> None:
        self.idle.clear()
        self.queue.put_nowait((tenant_id, exception_id))

    # -- processing ----------------------------------------------------------------------------
    def start_workers(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"exops-worker-{i}") for i in range(self.concurrency)
        ]

    async def stop_workers(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def _work(self) -> None:
        while True:
            tenant_id, exception_id = await self.queue.get()
            self._busy += 1
            try:
                await self.process(tenant_id, exception_id)
            except Exception:  # logged; the case stays accepted/running and recovery retries it
                log.exception("processing %s/%s failed", tenant_id, exception_id)
            finally:
                self._busy -= 1
                self.queue.task_done()
                if self.queue.empty() and self._busy == 0:
                    self.idle.set()

    async def drain(self) -> None:
        """Wait until every queued case has been processed (tests, benchmarks, shutdown)."""
        await self.queue.join()

    async def process(self, tenant_id: str, exception_id: str) -> dict[str, Any]:
        async with self.lock(tenant_id, exception_id):
            async with self.db.session() as session:
                found = (
                    await session.execute(
                        update(ExceptionCase)
                        .where(
                            ExceptionCase.tenant_id == tenant_id,
                            ExceptionCase.exception_id == exception_id,
                            ExceptionCase.processing.in_(("accepted", "running")),
                        )
                        .values(processing="running")
                        .returning(ExceptionCase.raw, ExceptionCase.run_id)
                    )
                ).one_or_none()
                if found is None:  # processed already: its record is in the tables (its checkpoints
                    case = await session.get(ExceptionCase, (tenant_id, exception_id))  # may be gone)
                    if case is None:
                        raise LookupError(f"no case {tenant_id}/{exception_id}")
                    return dict(case.result or {})
                raw = RawException.model_validate(found.raw)
            try:
                ctx = self.runtime.context(tenant_id, run_id=found.run_id or "api")
            except ConfigurationError as exc:  # the tenant's packs went away: say so on the case, keep it
                await self._mark_blocked(tenant_id, exception_id, str(exc))
                raise
            outcome = await self.runner.run(ctx, raw)
            return await self.record_result(tenant_id, exception_id, outcome)

    async def record_result(self, tenant_id: str, exception_id: str, outcome: CaseOutcome) -> dict[str, Any]:
        """Write what the graph decided for a case into the system of record (see projection). Once a
        finished case is recorded, the tables are its record: its checkpoints are deleted (a crash in
        between leaves them, unread: every read path reads the tables)."""
        await project(self.db, tenant_id, exception_id, outcome.result, outcome.values)
        if outcome.finished:
            await self.runner.compact(tenant_id, exception_id, "delete")
        return outcome.result

    async def _mark_blocked(self, tenant_id: str, exception_id: str, reason: str) -> None:
        async with self.db.session() as session:
            case = await session.get(ExceptionCase, (tenant_id, exception_id))
            if case is not None:
                case.processing = "accepted"  # picked up again at the next start, once packs are back
                case.summary = f"not processed yet: {reason}"

    async def recover(self) -> int:
        """Queue every accepted case whose run had not finished (after a crash or restart)."""
        async with self.db.session() as session:
            rows = await session.execute(
                select(ExceptionCase.tenant_id, ExceptionCase.exception_id)
                .where(ExceptionCase.processing.in_(("accepted", "running")))
                .order_by(ExceptionCase.received_at)
            )
            pending = list(rows.all())
        for tenant_id, exception_id in pending:
            self.enqueue(tenant_id, exception_id)
        return len(pending)

    # -- people's answers ----------------------------------------------------------------------
    async def decide(
        self, tenant_id: str, approval_id: str, answer: dict[str, Any], *, actor: str
    ) -> dict[str, Any]:
        """Apply an approval decision; a second decision on a decided approval is a 409."""
        async with self.db.session() as session:
            approval = await session.get(Approval, (tenant_id, approval_id))
            if approval is None or approval.tenant_id != tenant_id:
                raise ProblemError(404, f"no approval {approval_id}")
            status = approval.status
            exception_id = approval.exception_id
        if not await self.claim_approval(tenant_id, approval_id):
            raise ProblemError(409, f"approval {approval_id} is already {status.lower()}")
        try:
            result = await self._resume(tenant_id, exception_id, answer, "approval")
        except BaseException:
            await self.release_approval(tenant_id, approval_id)
            raise
        pending = result.get("pending") or {}
        if pending.get("approvalId") == approval_id:  # answered but not decided (refused, or a comment)
            await self.release_approval(tenant_id, approval_id)
            refusals = pending.get("refusals") or []
            if answer.get("decision") == "edit" and refusals:
                raise ProblemError(422, refusals[-1])
            if answer.get("decision") == "approve" and refusals:  # the approval's plan is empty
                raise ProblemError(409, f"{refusals[-1]}. {WAYS_ON}")
        return result

    async def claim_approval(self, tenant_id: str, approval_id: str) -> bool:
        """Move a pending approval to DECIDING in one conditional UPDATE; only one caller can win."""
        async with self.db.session() as session:
            claimed = await session.execute(
                update(Approval)
                .where(
                    Approval.tenant_id == tenant_id,
                    Approval.approval_id == approval_id,
                    Approval.status == "PENDING",
                )
                .values(status="DECIDING")
            )
        return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]

    async def release_approval(
        self, tenant_id: str, approval_id: str, *, payload: dict[str, Any] | None = None
    ) -> None:
        """Give a claimed approval back (nothing was decided), with a new payload when the plan changed."""
        values: dict[str, Any] = {"status": "PENDING"} | ({"payload": payload} if payload is not None else {})
        async with self.db.session() as session:
            await session.execute(
                update(Approval)
                .where(
                    Approval.tenant_id == tenant_id,
                    Approval.approval_id == approval_id,
                    Approval.status == "DECIDING",
                )
                .values(**values)
            )

    async def complete_step(
        self,
        tenant_id: str,
        exception_id: str,
        order: int,
        action: Literal["complete", "skip"],
        notes: str | None,
        *,
        actor: str,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Complete or skip the step the case waits on; a skip needs ``reason`` (the graph refuses one
        without it, so every caller is held to it)."""
        waiting = await self.runner.pending(tenant_id, exception_id)
        if waiting is None or waiting.get("kind") != "manual_step":
            raise ProblemError(409, f"case {exception_id} is not waiting for a manual step")
        if waiting["order"] != order:
            raise ProblemError(409, f"step {order} is not the next expected step; step {waiting['order']} is")
        answer = {"action": action, "actor": actor, "notes": notes, "reason": reason}
        return await self._resume(tenant_id, exception_id, answer, "manual_step")

    async def _resume(
        self,
        tenant_id: str,
        exception_id: str,
        answer: dict[str, Any],
        expect: Literal["approval", "manual_step"],
    ) -> dict[str, Any]:
        async with self.lock(tenant_id, exception_id):
            try:
                ctx = self.runtime.context(tenant_id)
                outcome = await self.runner.answer(ctx, exception_id, answer, expect=expect)
            except NothingPending as exc:
                raise ProblemError(409, str(exc)) from None
            except InvalidAnswer as exc:
                errors = [
                    FieldProblem(path="".join(["body", *(f".{p}" for p in e["loc"])]), message=e["msg"])
                    for e in exc.errors
                ]
                raise ProblemError(422, str(exc), errors=errors) from None
            except ConfigurationError as exc:
                raise ProblemError(409, str(exc)) from None
            return await self.record_result(tenant_id, exception_id, outcome)

    async def sweep_deadlines(self, now: datetime | None = None) -> list[str]:
        """Expire approvals past their deadline: the case escalates on its own."""
        now = now or utc_now()
        async with self.db.session() as session:
            rows = await session.execute(
                select(Approval.tenant_id, Approval.approval_id).where(
                    Approval.status == "PENDING", Approval.deadline < now
                )
            )
            overdue = list(rows.all())
        expired = []
        for tenant_id, approval_id in overdue:
            answer = {"decision": "expire", "actor": "deadline-sweeper", "actorType": "system"}
            try:
                await self.decide(tenant_id, approval_id, answer, actor="deadline-sweeper")
                expired.append(approval_id)
            except ProblemError as exc:
                log.info("approval %s not expired: %s", approval_id, exc.detail)
        return expired
