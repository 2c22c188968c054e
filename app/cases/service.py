"""Accepting exceptions, running them through the graph, and applying people's answers, as jobs.

Everything accepted is stored with its ``process`` job in one transaction before ``202`` is
answered, so nothing is lost and nothing needs recovering at start-up: a job whose process died is
simply taken again (app/jobs). Jobs of one case run one at a time across every process, so a case's
graph never runs twice at once. A person's answer is a claim (app/jobs/claims.py) plus an
``answer`` job queued with it; the request waits a few seconds for the job, then answers with what
came of it, or 202 with the job's link (``StillRunning``).

Every job is safe to run twice: ``process`` carries on a run that was cut off and only reports a
case that already ran; ``answer`` resumes the graph only if it still waits on the interrupt the
answer was for, otherwise it records what the graph already did (see ``apply_answer``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from langgraph.types import StateSnapshot
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.problems import FieldProblem, ProblemError
from app.cases import accepting
from app.cases.projection import project
from app.db.inplace import SqliteQuery
from app.db.models import Approval, ExceptionCase, PlaybookState, Run, table_of
from app.db.session import Database
from app.db.types import utc_now
from app.jobs import claims
from app.jobs.base import FINISHED, Job, JobQueue, RetryLater, StillRunning
from app.jobs.claims import Claim
from app.runtime import ConfigurationError, Runtime
from app.settings import Settings
from graph.inputs import RawException, with_exception_id
from graph.results import CaseOutcome, pending_request
from graph.runner import CaseRunner, InvalidAnswer, NothingPending, config_for, cut_off
from packs.common import FINISHED_STATUSES

log = logging.getLogger("exops.cases")

WAYS_ON = (
    "The ways on: reject it with a reason (with no plan proposed the case escalates), approve with an "
    "editedPlan of at least one step, or take the case over (it stays open, assigned to you, and nothing "
    "runs or resolves on its own)"
)
"""What a person can do with an approval that proposes no plan, said where approving it is refused."""
BLOCKED_RETRY_SECONDS = 60.0
"""How soon a case whose tenant has no usable packs is tried again."""
SWEEPER = "deadline-sweeper"

CASES = table_of(ExceptionCase)
MARK_RUNNING = SqliteQuery(
    update(CASES)
    .where(
        CASES.c.tenant_id == bindparam("tenant"),
        CASES.c.exception_id == bindparam("exception"),
        CASES.c.processing == bindparam("before"),
    )
    .values(processing="running", updated_at=bindparam("now", type_=CASES.c.updated_at.type))
    .returning(CASES.c.raw, CASES.c.run_id),
    returns=[CASES.c.raw, CASES.c.run_id],
)
"""Marking a case running, the first write of its ``process`` job (see ``_mark_running``)."""

Recalculator = Callable[["CaseService", Claim], Awaitable[None]]


def _problem(status: int, detail: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"status": status, "detail": detail} | ({"errors": errors} if errors else {})


def waits_on(pending: dict[str, Any] | None, claim: Claim) -> bool:
    """Whether the graph's pending interrupt is the one ``claim`` answers."""
    if not pending:
        return False
    if claim.target == "approval":
        return pending.get("kind") == "approval" and pending.get("approvalId") == claim.key
    return pending.get("kind") == "manual_step" and str(pending.get("order")) == claim.key


class CaseService:
    def __init__(
        self, db: Database, runner: CaseRunner, runtime: Runtime, jobs: JobQueue, settings: Settings
    ) -> None:
        self.db = db
        self.runner = runner
        self.runtime = runtime
        self.jobs = jobs
        self.concurrency = settings.worker_concurrency
        self.answer_wait = settings.answer_wait_seconds
        self.claim_lease = timedelta(seconds=settings.claim_lease_seconds)
        self.recalculator: Recalculator | None = None  # set by app/playbooks/service.py's wiring
        new_case = db.insert_new_only(ExceptionCase)
        self._store_case = new_case.execution_options(preserve_rowcount=True)
        self._store_cases = new_case.returning(ExceptionCase.exception_id)
        self._store_run = insert(Run)
        self._claim_run = db.insert_new_only(Run).execution_options(preserve_rowcount=True)

    # -- ingestion -----------------------------------------------------------------------------
    async def ingest(
        self, tenant_id: str, items: Sequence[RawException], *, idempotency_key: str | None, actor: str
    ) -> tuple[list[str], bool]:
        """Store the exceptions with their jobs; returns their ids and whether anything new was accepted.

        An ``Idempotency-Key`` is claimed in the database, by inserting this run's row before the
        cases: of requests racing with the same key, one inserts it and the others find it taken
        (``ON CONFLICT DO NOTHING``; PostgreSQL makes them wait for the winner's commit, SQLite's
        write lock does the same), then answer the winner's ids, having stored nothing themselves.
        The ``process`` jobs are written in the same transaction as the cases they process (on SQLite
        by a trigger, in the very statement that stores the cases).
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
        if self.db.inplace is not None and self.jobs.queues_accepted_cases:  # SQLite: app/cases/accepting.py
            accepted = await self.db.inplace.run(accepting.SQLITE.store(list(rows.values()), run))
            if accepted.new:
                self.jobs.wake()
            return accepted.ids, bool(accepted.new)
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
            if not self.jobs.queues_accepted_cases:  # else the database queued them with the rows
                await self.jobs.defer_many("process", [(tenant_id, e) for e in new], session=session)
        if new:
            self.jobs.wake()
        return ids, bool(new)

    # -- workers -------------------------------------------------------------------------------
    async def start_workers(self, concurrency: int | None = None) -> None:
        await self.jobs.start(self.handle, concurrency or self.concurrency)

    async def stop_workers(self, grace: float | None = None) -> None:
        await self.jobs.stop(grace)

    async def drain(self) -> None:
        """Wait until every queued job has run (tests, benchmarks)."""
        await self.jobs.drain()

    async def handle(self, job: Job) -> None:
        """Run one job (called by the queue's workers; see app/jobs)."""
        if job.kind == "process":
            assert job.tenant_id is not None and job.exception_id is not None
            await self.process(job.tenant_id, job.exception_id)
        elif job.kind == "answer":
            await self.apply_answer(job)
        elif job.kind == "sweep":
            await self.sweep()
        else:  # pragma: no cover - kinds are a Literal; an unknown one is a row written by hand
            raise ValueError(f"unknown job kind {job.kind!r}")

    # -- processing ----------------------------------------------------------------------------
    async def process(self, tenant_id: str, exception_id: str) -> dict[str, Any]:
        """Run a new case through the graph (or carry on a run that was cut off) and record it. A case
        already processed (its job taken again after a crash) only reports what the tables hold: a
        finished case's checkpoints may be gone."""
        found, fresh = await self._mark_running(tenant_id, exception_id)
        if found is None:
            return await self._processed_already(tenant_id, exception_id)
        raw = RawException.model_validate(found["raw"])
        try:
            ctx = self.runtime.context(tenant_id, run_id=found["run_id"] or "api")
        except ConfigurationError as exc:  # the tenant's packs went away: say so on the case, try later
            await self._mark_blocked(tenant_id, exception_id, str(exc))
            raise RetryLater(BLOCKED_RETRY_SECONDS, str(exc)) from None
        outcome = await self.runner.run(ctx, raw, fresh=fresh)
        return await self.record_result(tenant_id, exception_id, outcome)

    async def _mark_running(self, tenant_id: str, exception_id: str) -> tuple[dict[str, Any] | None, bool]:
        """Mark the case running; its raw exception and run id (None when it is not to be run), and
        whether it is fresh. A case still ``accepted`` never reached the graph (it is marked running,
        committed, before its first checkpoint), so its run needs no look for an earlier one; one
        already ``running`` was cut off by a death and is carried on. Two conditional UPDATEs, the
        second only on that rare path: SQLite's RETURNING gives the new values, not the old."""
        for before, fresh in (("accepted", True), ("running", False)):
            found = await self.db.write_returning(
                MARK_RUNNING,
                {"tenant": tenant_id, "exception": exception_id, "before": before, "now": utc_now()},
            )
            if found is not None:
                return found, fresh
        return None, False

    async def _processed_already(self, tenant_id: str, exception_id: str) -> dict[str, Any]:
        """What the tables say of a case whose job was taken again after it was processed; a finished
        one is compacted again, in case its process died between its projection and its compaction."""
        async with self.db.session() as session:
            case = await session.get(ExceptionCase, (tenant_id, exception_id))
            if case is None:
                raise LookupError(f"no case {tenant_id}/{exception_id}")
            finished = case.status in FINISHED_STATUSES and case.processing == "done"
            result = dict(case.result or {})
        if finished:
            await self.runner.compact(tenant_id, exception_id, "delete")
        return result

    async def record_result(self, tenant_id: str, exception_id: str, outcome: CaseOutcome) -> dict[str, Any]:
        """Write what the graph decided for a case into the system of record (see projection), then
        compact it (``_compact``)."""
        await project(
            self.db, tenant_id, exception_id, outcome.result, outcome.values, remember=self.remembers
        )
        await self._compact(tenant_id, exception_id, outcome)
        return outcome.result

    @property
    def remembers(self) -> bool:
        """Whether finished cases are queued for similar-case memory (``app/memory``)."""
        return self.runtime.memory is not None

    async def _compact(self, tenant_id: str, exception_id: str, outcome: CaseOutcome) -> None:
        """Once a finished case is recorded (and any claim on it settled), the tables are its record:
        its checkpoints are deleted. A death just before leaves them, unread: every read path reads the
        tables, and a job taken again finds the case finished."""
        if outcome.finished:
            await self.runner.compact(tenant_id, exception_id, "delete")
            if self.runtime.memory is not None:  # remembered by the indexer, off this job's path
                self.runtime.memory.nudge()

    async def _mark_blocked(self, tenant_id: str, exception_id: str, reason: str) -> None:
        async with self.db.session() as session:
            case = await session.get(ExceptionCase, (tenant_id, exception_id))
            if case is not None:
                case.processing = "accepted"  # its job is tried again later, once packs are back
                case.summary = f"not processed yet: {reason}"

    async def snapshot(self, tenant_id: str, exception_id: str) -> StateSnapshot:
        return await self.runner.graph.aget_state(config_for(tenant_id, exception_id, "read"))

    # -- people's answers: the request side ----------------------------------------------------
    async def decide(
        self, tenant_id: str, approval_id: str, answer: dict[str, Any], *, actor: str,
        seen_digest: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Claim the approval for ``answer`` and wait (a little) for its job; what came of it.

        409 when it is not pending (naming who answered and when) or its plan is not the one seen;
        ``StillRunning`` when the job is not done within ``answer_wait_seconds``."""
        async with self.db.session() as session:
            claim = await claims.claim_approval(session, tenant_id, approval_id, actor=actor, answer=answer,
                                                seen_digest=seen_digest, lease=self.claim_lease)  # fmt: skip
            job_id = await self._defer_answer(session, claim)
        self.jobs.wake()
        return await self.answered(claim, job_id)

    async def complete_step(
        self, tenant_id: str, exception_id: str, order: int, action: Literal["complete", "skip"],
        notes: str | None, *, actor: str, seen_digest: str, reason: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Claim the step the case waits on (named by its order, with the digest of the plan the person
        saw) and wait (a little) for its job; a skip needs ``reason`` (the graph refuses one without)."""
        answer = {"action": action, "actor": actor, "notes": notes, "reason": reason}
        async with self.db.session() as session:
            claim = await claims.claim_step(session, tenant_id, exception_id, order, actor=actor, answer=answer,
                                            seen_digest=seen_digest, lease=self.claim_lease)  # fmt: skip
            job_id = await self._defer_answer(session, claim)
        self.jobs.wake()
        return await self.answered(claim, job_id)

    async def claim_for_recalculation(
        self, tenant_id: str, approval_id: str, *, actor: str
    ) -> dict[str, Any]:
        """Hold the approval (as a decision would) while its job swaps the plan; what came of it."""
        answer = {"decision": "recalculate", "actor": actor}
        async with self.db.session() as session:
            try:
                claim = await claims.claim_approval(session, tenant_id, approval_id, actor=actor, answer=answer,
                                                    seen_digest=None, lease=self.claim_lease)  # fmt: skip
            except ProblemError as exc:
                raise ProblemError(409, f"{exc.detail}; the playbook cannot change now") from None
            job_id = await self._defer_answer(session, claim)
        self.jobs.wake()
        return await self.answered(claim, job_id)

    async def _defer_answer(self, session: AsyncSession, claim: Claim) -> str:
        job_id = await self.jobs.defer(
            "answer", claim.tenant_id, claim.exception_id, claim.ref(), session=session
        )
        await claims.note_job(session, claim, job_id)
        return job_id

    async def answered(self, claim: Claim, job_id: str) -> dict[str, Any]:
        """Wait for the answer's job; its outcome (a refusal is raised as the problem it is)."""
        job = await self.jobs.wait(job_id, self.answer_wait)
        if job is None or job.status != "done":
            raise StillRunning(job or Job(job_id, "answer", claim.tenant_id, claim.exception_id, claim.ref()))
        outcome = await self.claim_outcome(claim.tenant_id, claim.exception_id, claim.ref()) or {}
        status = int(outcome.get("status", 200))
        if status >= 400:
            errors = [FieldProblem(path=e["path"], message=e["message"]) for e in outcome.get("errors") or []]
            raise ProblemError(status, str(outcome.get("detail", "refused")), errors=errors)
        return outcome

    async def claim_outcome(
        self, tenant_id: str, exception_id: str, ref: dict[str, Any]
    ) -> dict[str, Any] | None:
        """What came of the answer ``ref`` names (None while it is being applied)."""
        async with self.db.session() as session:
            if ref["target"] == "approval":
                row: Any = await session.get(Approval, (tenant_id, ref["key"]))
            else:
                row = await session.get(PlaybookState, (tenant_id, exception_id))
        if row is None or row.claim_token != ref["token"]:
            return {"status": 200, "detail": "applied; the claim has been answered again since"}
        return dict(row.claim_outcome) if row.claim_outcome is not None else None

    # -- people's answers: the job side --------------------------------------------------------
    async def apply_answer(self, job: Job) -> None:
        """Apply a claimed answer exactly once, or not at all; safe to run again after a crash.

        * The graph still waits on the interrupt the answer is for: resume it with the answer, unless
          the claim's lease ran out (then the answer is returned: not applied at all).
        * The graph is mid-run (a resume that was cut off): carry the run on.
        * The graph has gone past the interrupt (an earlier try resumed it): nothing to run.
        Then record what the graph holds and settle the claim, in one transaction.
        """
        assert job.tenant_id is not None and job.exception_id is not None
        async with self.db.session() as session:
            claim = await claims.load(session, job.tenant_id, job.exception_id, job.payload)
        if claim is None or not claim.live:  # settled by an earlier try of this job, or by a re-drive;
            await self._processed_already(job.tenant_id, job.exception_id)  # which may have died after
            return
        if claim.answer.get("decision") == "recalculate":
            assert self.recalculator is not None, "wire app.playbooks.service.install(cases) first"
            await self.recalculator(self, claim)
            return
        await self.drive(claim)

    async def drive(self, claim: Claim) -> None:
        """Resume-or-continue the graph for ``claim``, then record the run and settle the claim."""
        tenant_id, exception_id = claim.tenant_id, claim.exception_id
        expect: Literal["approval", "manual_step"] = (
            "approval" if claim.target == "approval" else "manual_step"
        )
        try:
            ctx = self.runtime.context(tenant_id)
        except ConfigurationError as exc:
            await self.release(claim, _problem(409, str(exc)))
            return
        for _look in range(2):  # a second look only after carrying on a run this claim did not start
            snapshot = await self.snapshot(tenant_id, exception_id)
            if not snapshot.values:  # not run yet, or finished and compacted (the tables hold it)
                await self._settle_without_graph(claim)
                return
            pending = pending_request(snapshot)
            if waits_on(pending, claim) and claim.interrupt in (None, (pending or {}).get("interruptId")):
                if claim.expired:  # the graph never took it and the claim lapsed: not applied at all
                    lapsed = claim.lease_until.isoformat(timespec="seconds")
                    await self.release(
                        claim, _problem(409, f"not applied: the answer's claim lapsed at {lapsed}")
                    )
                    return
                if claim.interrupt is None:
                    async with self.db.session() as session:
                        await claims.note_interrupt(session, claim, str((pending or {}).get("interruptId")))
                try:
                    outcome = await self.runner.answer(ctx, exception_id, claim.answer, expect=expect)
                except NothingPending as exc:
                    await self.release(claim, _problem(409, str(exc)))
                    return
                except InvalidAnswer as exc:
                    errors = [{"path": "".join(["body", *(f".{p}" for p in e["loc"])]), "message": e["msg"]}
                              for e in exc.errors]  # fmt: skip
                    await self.release(claim, _problem(422, str(exc), errors))
                    return
                break
            if cut_off(snapshot):  # a run cut off mid-way: carry it on
                ran = await self.runner.invoke(None, config_for(tenant_id, exception_id, ctx.run_id), ctx)
                if claim.interrupt is None:  # not this answer's run: look again for its interrupt
                    continue
                outcome = ran or await self.runner.outcome(tenant_id, exception_id)
                break
            if claim.interrupt is None:  # never resumed with this answer, and nothing waits for it
                what = f"approval {claim.key}" if claim.target == "approval" else f"step {claim.key}"
                refusal = _problem(409, f"case {exception_id} is not waiting for {what}")
                outcome = await self.runner.outcome(tenant_id, exception_id)
                await self.record_and_settle(claim, outcome, applied=False, result=refusal)
                return
            outcome = await self.runner.outcome(tenant_id, exception_id)  # an earlier try resumed it
            break
        else:  # carried on twice and still not waiting for this answer: leave it unapplied
            outcome = await self.runner.outcome(tenant_id, exception_id)
            refusal = _problem(409, f"case {exception_id} is still running: answer again once it waits")
            await self.record_and_settle(claim, outcome, applied=False, result=refusal)
            return
        applied, result = self._judge(claim, outcome)
        await self.record_and_settle(claim, outcome, applied=applied, result=result)

    async def _settle_without_graph(self, claim: Claim) -> None:
        """Settle a claim on a case with no checkpoint. A finished case's checkpoints are deleted only
        after the claim that finished it is settled, so a live claim over a finished case either was
        resumed into it (its interrupt noted: applied) or never was (refused, naming the status)."""
        async with self.db.session() as session:
            case = await session.get(ExceptionCase, (claim.tenant_id, claim.exception_id))
            status = case.status if case is not None and case.processing == "done" else None
            if status in FINISHED_STATUSES and claim.interrupt is not None:
                await claims.settle(
                    session, claim, applied=True, outcome={"status": 200, "detail": "applied"}
                )
                return
        detail = (f"case {claim.exception_id} is {status}: nothing waits for an answer" if status in FINISHED_STATUSES
                  else f"case {claim.exception_id} has not run yet")  # fmt: skip
        await self.release(claim, _problem(409, detail))

    def _judge(self, claim: Claim, outcome: CaseOutcome) -> tuple[bool, dict[str, Any]]:
        """Whether the graph took the answer for good, and the outcome to report."""
        pending = outcome.result.get("pending") or {}
        if not waits_on(pending, claim):
            return True, {"status": 200, "detail": "applied"}
        refusals = pending.get("refusals") or []
        decision = claim.answer.get("decision")
        if decision == "edit" and refusals:
            return False, _problem(422, refusals[-1])
        if decision == "approve" and refusals:  # the approval's plan is empty
            return False, _problem(409, f"{refusals[-1]}. {WAYS_ON}")
        if claim.target == "step":
            why = f": {refusals[-1]}" if refusals else ""
            return False, _problem(409, f"step {claim.key} was not accepted{why}")
        return False, {"status": 200, "detail": "recorded; the approval still waits for a decision"}

    async def record_and_settle(
        self, claim: Claim, outcome: CaseOutcome, *, applied: bool, result: dict[str, Any],
        payload: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """Project the run, settle the claim, then compact a finished case. A death between the first
        two leaves the claim live over a projected run: its job (taken again, or re-driven once the
        lease lapses) finds the graph past the answer's interrupt and settles it as applied; the
        checkpoints go only after that, so that job can still see the graph."""
        await project(self.db, claim.tenant_id, claim.exception_id, outcome.result, outcome.values,
                      remember=self.remembers)  # fmt: skip
        async with self.db.session() as session:
            await claims.settle(session, claim, applied=applied, outcome=result, payload=payload)
        await self._compact(claim.tenant_id, claim.exception_id, outcome)

    async def release(self, claim: Claim, result: dict[str, Any]) -> None:
        """Give the claim back with ``result``: the graph did not take the answer."""
        async with self.db.session() as session:
            await claims.settle(session, claim, applied=False, outcome=result)

    # -- the sweep -----------------------------------------------------------------------------
    async def sweep(self, now: datetime | None = None) -> list[str]:
        """The periodic job: expire overdue approvals, re-drive lapsed claims, prune old jobs, remember
        finished cases still queued for memory (those a crash left behind)."""
        expired = await self.sweep_deadlines(now)
        if expired:
            log.info("expiring approvals: %s", ", ".join(expired))
        await self.redrive_lapsed_claims(now)
        await self.jobs.housekeeping()
        if self.runtime.memory is not None:
            await self.runtime.memory.remember_pending()
        return expired

    async def sweep_deadlines(self, now: datetime | None = None) -> list[str]:
        """Claim every pending approval past its deadline for the sweeper and queue its job (the case
        escalates on its own once the job runs); the approvals claimed."""
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
            answer = {"decision": "expire", "actor": SWEEPER, "actorType": "system"}
            try:
                async with self.db.session() as session:
                    claim = await claims.claim_approval(session, tenant_id, approval_id, actor=SWEEPER,
                                                        answer=answer, seen_digest=None, lease=self.claim_lease)  # fmt: skip
                    await self._defer_answer(session, claim)
                expired.append(approval_id)
            except ProblemError as exc:  # answered by a person meanwhile
                log.info("approval %s not expired: %s", approval_id, exc.detail)
        if expired:
            self.jobs.wake()
        return expired

    async def redrive_lapsed_claims(self, now: datetime | None = None) -> int:
        """Queue the job again for every claim whose lease ran out while its job is not queued or
        running (it failed for good, or its row was pruned): the job then settles the claim."""
        now = now or utc_now()
        async with self.db.session() as session:
            approvals = await session.execute(
                select(
                    Approval.tenant_id,
                    Approval.exception_id,
                    Approval.approval_id,
                    Approval.claim_token,
                    Approval.claim_job,
                ).where(Approval.claim_lease_until < now)  # settling a claim ends its lease
            )
            steps = await session.execute(
                select(
                    PlaybookState.tenant_id,
                    PlaybookState.exception_id,
                    PlaybookState.claim_step,
                    PlaybookState.claim_token,
                    PlaybookState.claim_job,
                ).where(PlaybookState.claim_state == "claimed", PlaybookState.claim_lease_until < now)
            )
            lapsed = [("approval", *row) for row in approvals.all()] + [("step", *row) for row in steps.all()]
        count = 0
        for target, tenant_id, exception_id, key, token, job_id in lapsed:
            if (
                job_id is not None
                and (job := await self.jobs.status(job_id)) is not None
                and job.status not in FINISHED
            ):
                continue  # its job is still to run: it settles the claim itself
            ref = {"target": target, "key": str(key), "token": token}
            async with self.db.session() as session:
                claim = await claims.load(session, tenant_id, exception_id, ref)
                if claim is None or not claim.live:
                    continue
                await self._defer_answer(session, claim)
            count += 1
        if count:
            log.info("re-driving %d lapsed claim(s)", count)
            self.jobs.wake()
        return count
