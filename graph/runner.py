"""Running cases through the graph: start, resume with a person's answer, batches, recovery.

The thread id is derived from tenant and exception id, so a case's checkpoints are found again
from any process. Answers are validated before the graph is resumed (a bad answer is refused and
the case keeps waiting); an error that escapes the graph still ends the case in ESCALATED.

A finished case's checkpoints are compacted (``graph.checkpoint.compact_thread``): by the runner
itself when it is given ``compaction`` (``exops run``: the checkpoint file is the only record, so its
last checkpoint stays), or by whoever keeps the record, once the record is written (the server deletes
the thread after projecting the case into its tables: ``compact``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Durability, StateSnapshot
from pydantic import ValidationError

from graph.checkpoint import Compaction, compact_thread
from graph.context import RunContext
from graph.events import CaseKey, event_keys
from graph.inputs import ApprovalAnswer, ManualStepAnswer, RawException, Recalculate, with_exception_id
from graph.records import decision_update, evidence
from graph.results import CaseOutcome, case_outcome, pending_request, run_reading

Graph = CompiledStateGraph[Any, RunContext, Any, Any]


class NothingPending(LookupError):
    """The case is not waiting for the kind of answer given (already decided, or never asked)."""


class InvalidAnswer(ValueError):
    """The answer does not fit what the case is waiting for; the case keeps waiting."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def cut_off(snapshot: StateSnapshot) -> bool:
    """Whether a run stopped part-way (its process died): tasks are left to run and none waits for a
    person. ``next`` alone does not say so: killed right after its first checkpoint, a run's only
    task (``__start__``, its writes saved) is not in ``next``, yet the graph has not run at all."""
    return bool(snapshot.next or snapshot.tasks) and not snapshot.interrupts


def thread_id(tenant_id: str, exception_id: str) -> str:
    return f"{tenant_id}:{exception_id}"


def config_for(tenant_id: str, exception_id: str, run_id: str) -> RunnableConfig:
    return {
        "configurable": {"thread_id": thread_id(tenant_id, exception_id)},
        "run_name": "exops",
        "metadata": {"runId": run_id},
    }


class CaseRunner:
    def __init__(
        self, graph: Graph, *, durability: Durability = "sync", compaction: Compaction | None = None
    ) -> None:
        self.graph = graph
        self.durability: Durability = durability
        self.compaction: Compaction | None = compaction
        """What to keep of a case's checkpoints once it finishes; None leaves that to the caller."""

    async def start(self, ctx: RunContext, raw: RawException) -> dict[str, Any]:
        """Run a new exception through the graph; its result."""
        return (await self.run(ctx, raw)).result

    async def run(self, ctx: RunContext, raw: RawException, *, fresh: bool = False) -> CaseOutcome:
        """Run a new exception through the graph; its result and final state. ``fresh``: the caller
        knows the case never ran (the server's case row says so), which saves a checkpoint read."""
        raw = with_exception_id(raw)
        assert raw.exceptionId is not None
        config = config_for(ctx.tenant.tenantId, raw.exceptionId, ctx.run_id)
        if not fresh:
            existing = await self.graph.aget_state(config)
            if existing.values:
                if cut_off(existing):  # a crash stopped the run: carry it on
                    ran = await self.invoke(None, config, ctx)
                    return await self._settled(ctx.tenant.tenantId, raw.exceptionId, ran)
                return case_outcome(existing)  # the same exception again: report it, never process it twice
        state = {"tenantId": ctx.tenant.tenantId, "raw": raw.model_dump(mode="json", exclude_none=True)}
        ran = await self.invoke(state, config, ctx)
        return await self._settled(ctx.tenant.tenantId, raw.exceptionId, ran)

    async def _settled(self, tenant_id: str, exception_id: str, ran: CaseOutcome | None) -> CaseOutcome:
        """The outcome of a run or resume just ended (``ran``, what the run handed back, else read from
        its checkpoint), the case compacted if it finished and the runner keeps the record
        (``compaction``)."""
        outcome = ran or await self.outcome(tenant_id, exception_id)
        if outcome.finished and self.compaction is not None:
            await self.compact(tenant_id, exception_id, self.compaction)
        return outcome

    async def compact(self, tenant_id: str, exception_id: str, strategy: Compaction) -> None:
        """Compact a finished case's checkpoints (``graph.checkpoint.compact_thread``)."""
        saver = self.graph.checkpointer
        if isinstance(saver, BaseCheckpointSaver):
            await compact_thread(saver, thread_id(tenant_id, exception_id), strategy)

    async def result(self, tenant_id: str, exception_id: str) -> dict[str, Any]:
        return (await self.outcome(tenant_id, exception_id)).result

    async def outcome(self, tenant_id: str, exception_id: str) -> CaseOutcome:
        """A case's result and state, from one read of its latest checkpoint."""
        snapshot = await self.graph.aget_state(config_for(tenant_id, exception_id, "read"))
        if not snapshot.values:
            raise LookupError(f"no case {exception_id} for tenant {tenant_id}")
        return case_outcome(snapshot)

    async def values(self, tenant_id: str, exception_id: str) -> dict[str, Any]:
        """The state of a case; empty once a finished case's checkpoints were deleted."""
        snapshot = await self.graph.aget_state(config_for(tenant_id, exception_id, "read"))
        return dict(snapshot.values)

    async def pending(self, tenant_id: str, exception_id: str) -> dict[str, Any] | None:
        snapshot = await self.graph.aget_state(config_for(tenant_id, exception_id, "read"))
        return pending_request(snapshot) if snapshot.values else None

    async def resume(
        self,
        ctx: RunContext,
        exception_id: str,
        answer: dict[str, Any],
        *,
        expect: Literal["approval", "manual_step"],
    ) -> dict[str, Any]:
        """Validate ``answer`` against what the case waits for, resume the graph; its result."""
        return (await self.answer(ctx, exception_id, answer, expect=expect)).result

    async def answer(
        self,
        ctx: RunContext,
        exception_id: str,
        answer: dict[str, Any],
        *,
        expect: Literal["approval", "manual_step"],
    ) -> CaseOutcome:
        """Validate ``answer`` against what the case waits for, resume the graph with it."""
        waiting = await self.pending(ctx.tenant.tenantId, exception_id)
        if waiting is None or waiting.get("kind") != expect:
            raise NothingPending(f"case {exception_id} is not waiting for {expect.replace('_', ' ')}")
        model = ApprovalAnswer if expect == "approval" else ManualStepAnswer
        try:
            model.model_validate(answer)
        except ValidationError as exc:
            raise InvalidAnswer(
                f"invalid {expect} answer", [dict(e) for e in exc.errors(include_url=False)]
            ) from None
        config = config_for(ctx.tenant.tenantId, exception_id, ctx.run_id)
        ran = await self.invoke(Command(resume=answer), config, ctx)
        return await self._settled(ctx.tenant.tenantId, exception_id, ran)

    async def recalculate(self, ctx: RunContext, exception_id: str, who: str) -> CaseOutcome:
        """Have the case match playbooks again under ``ctx``'s packs (``graph.recalculation``): a
        command the waiting approval node takes; the case waits for its approval afterwards."""
        waiting = await self.pending(ctx.tenant.tenantId, exception_id)
        if waiting is None or waiting.get("kind") != "approval":
            raise NothingPending(f"case {exception_id} is not waiting for its approval")
        command = Recalculate(command="recalculate", actor=who).model_dump()
        config = config_for(ctx.tenant.tenantId, exception_id, ctx.run_id)
        ran = await self.invoke(Command(resume=command), config, ctx)
        return await self._settled(ctx.tenant.tenantId, exception_id, ran)

    async def invoke(self, payload: Any, config: RunnableConfig, ctx: RunContext) -> CaseOutcome | None:
        """Run (or resume) the graph; an error that escapes every node still escalates the case. The
        outcome the run ended with, from its own output (every state channel, and its interrupts: what
        its last checkpoint holds), or None when that is not known (nothing ran, or the case was
        escalated after a failure): then read the checkpoint."""
        try:
            output = await self.graph.ainvoke(
                payload, config, context=ctx, durability=self.durability,
                output_keys=self.graph.stream_channels_asis, version="v2",
            )  # fmt: skip
        except ValidationError:
            raise
        except Exception as exc:  # a failure outside any node's error handler: still escalate the case
            await self._escalate_after_crash(config, ctx, exc)
            return None
        reading = run_reading(output)
        return case_outcome(reading) if reading is not None else None

    async def _escalate_after_crash(self, config: RunnableConfig, ctx: RunContext, exc: Exception) -> None:
        """Record the failure as the escalate stage would (its events through the sink, keyed by that
        stage's next visit) and run the case on from there."""
        message = f"{type(exc).__name__}: {exc}"
        reason = f"the graph failed: {message}"
        recorded = decision_update(ctx, "escalate", "FAILED", 0.0, [evidence("error", reason)], "escalate")
        values = (await self.graph.aget_state(config)).values
        visit = values.get("visits", {}).get("escalate", 0) + 1
        case = CaseKey(ctx.tenant.tenantId, str(values.get("raw", {}).get("exceptionId")))
        await ctx.events.write(case, event_keys("escalate", visit, recorded.pop("audit"), failed=True))
        update = {
            **recorded,
            "visits": {"escalate": 1},
            "error": {"stage": "graph", "message": message},
            "escalation": {"reason": reason, "queue": ctx.tenant.escalationQueue, "at": ctx.now_iso()},
            "status": "ESCALATED",
        }
        await self.graph.aupdate_state(config, update, as_node="escalate")
        await self.graph.ainvoke(None, config, context=ctx, durability=self.durability)

    async def run_batch(
        self,
        contexts: Callable[[RawException], RunContext],
        raws: Sequence[RawException],
        *,
        concurrency: int = 4,
        on_done: Callable[[dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Run many cases with bounded concurrency; results in input order, one bad case stops nothing."""
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(raw: RawException) -> dict[str, Any]:
            async with gate:
                try:
                    result = await self.start(contexts(raw), raw)
                except Exception as exc:  # reported in the result, never raised to the batch
                    result = {"exceptionId": raw.exceptionId, "resolutionStatus": "ESCALATED",
                              "error": f"{type(exc).__name__}: {exc}"}  # fmt: skip
            if on_done is not None:
                on_done(result)
            return result

        return list(await asyncio.gather(*(one(with_exception_id(raw)) for raw in raws)))
