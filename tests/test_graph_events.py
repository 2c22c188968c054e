"""Audit events go to the run's event sink once each, under keys that are the same when a node runs
again; the state keeps no audit trail; recalculation is a command; finished threads compact."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from graph.builder import build_graph
from graph.checkpoint import compact_thread, open_checkpointer
from graph.events import CaseKey, KeyedEvent, MemoryEventSink
from graph.runner import CaseRunner, NothingPending, config_for, thread_id
from tests.graph_helpers import context, mini_packs, raw


class ProcessStopped(BaseException):
    """The process went away (not an error any node or LangGraph handles: nothing runs after it)."""


class CuttingSink(MemoryEventSink):
    """Stores each batch, then (once) cuts the run off right after the ``cut_after``-th batch: the
    node's events are stored, its update never reaches the checkpoint, as when the process stops."""

    def __init__(self, cut_after: int | None = None) -> None:
        super().__init__()
        self.cut_after = cut_after
        self.batches: list[list[str]] = []

    async def write(self, case: CaseKey, events: Sequence[KeyedEvent]) -> None:
        await super().write(case, events)
        self.batches.append([key for key, _ in events])
        if self.cut_after is not None and len(self.batches) == self.cut_after:
            self.cut_after = None
            raise ProcessStopped("cut off after the node's events were stored")


@pytest.fixture(params=["memory", "sqlite"])
async def runner(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CaseRunner]:
    async with open_checkpointer(request.param, tmp_path / "checkpoints.sqlite") as saver:
        yield CaseRunner(build_graph(checkpointer=saver))


def keys_in_order(sink: MemoryEventSink, exception_id: str) -> list[str]:
    return sink.keys("mini-bank", exception_id)


async def reference(runner: CaseRunner, exception_id: str, **payload: object) -> list[str]:
    sink = MemoryEventSink()
    await runner.start(context(events=sink), raw(exception_id, "SETTLEMENT_FAIL", **payload))
    return keys_in_order(sink, exception_id)


async def test_the_state_carries_no_audit_trail_and_each_decision_once(runner: CaseRunner) -> None:
    sink = MemoryEventSink()
    await runner.start(context(events=sink), raw("E-1", "SETTLEMENT_FAIL", tradeId="T-1", amount=10))
    values = await runner.values("mini-bank", "E-1")
    assert "audit" not in values
    trail = sink.trail("mini-bank", "E-1")
    decisions = [e["data"] for e in trail if e["type"] == "stage_decision"]
    assert decisions == values["decisions"]  # the same decisions, the state's and the trail's
    assert keys_in_order(sink, "E-1")[:3] == ["intake:1:0", "triage:1:0", "policy:1:0"]
    assert values["visits"] == {"intake": 1, "triage": 1, "policy": 1, "supervisor": 2, "resolution": 1,
                                "execute": 1, "feedback": 1}  # fmt: skip


@pytest.mark.parametrize("cut_after", range(1, 9))
async def test_a_node_cut_off_after_storing_its_events_records_nothing_twice(
    runner: CaseRunner, cut_after: int
) -> None:
    expected = await reference(runner, "E-REF", tradeId="T-1", amount=10)
    assert len(expected) == len(set(expected)) > 8
    sink = CuttingSink(cut_after)
    ctx = context(events=sink)
    case = raw("E-CUT", "SETTLEMENT_FAIL", tradeId="T-1", amount=10)
    with pytest.raises(ProcessStopped):
        await runner.start(ctx, case)
    cut = sink.batches[-1]
    cut_off = await runner.graph.aget_state(config_for("mini-bank", "E-CUT", "t"))
    assert cut_off.next and not cut_off.interrupts  # the node's update never reached the checkpoint

    result = await runner.start(ctx, case)  # the same exception again: the run carries on

    assert result["resolutionStatus"] == "RESOLVED"
    assert keys_in_order(sink, "E-CUT") == expected  # every event once, in order
    assert sink.batches.count(cut) == 2  # the node did run twice: its second batch was the same keys
    stored = sink.trail("mini-bank", "E-CUT")
    assert len(stored) == len(expected)
    assert [d["stage"] for d in (await runner.values("mini-bank", "E-CUT"))["decisions"]] == [
        e["data"]["stage"] for e in stored if e["type"] == "stage_decision"
    ]


async def test_the_approval_node_run_again_after_an_answer_records_its_decision_once(
    runner: CaseRunner,
) -> None:
    sink = CuttingSink()
    ctx = context(events=sink)
    await runner.start(ctx, raw("E-APR", "SETTLEMENT_FAIL", tradeId="T-2", amount=60_000_000))
    sink.cut_after = len(sink.batches) + 1  # the approval node's batch, once answered
    with pytest.raises(ProcessStopped):
        await runner.resume(ctx, "E-APR", {"decision": "approve", "actor": "alice"}, expect="approval")
    assert sink.batches[-1] == ["approval:1:0", "approval:1:1"]  # approval_decided, stage_decision

    config = config_for("mini-bank", "E-APR", ctx.run_id)
    await runner.invoke(None, config, ctx)  # carry on: the node runs again with the stored answer

    result = await runner.result("mini-bank", "E-APR")
    assert result["pending"]["kind"] == "manual_step"
    decided = [e for e in sink.trail("mini-bank", "E-APR") if e["type"] == "approval_decided"]
    assert len(decided) == 1 and decided[0]["data"]["actor"]["id"] == "alice"
    assert sink.batches.count(["approval:1:0", "approval:1:1"]) == 2
    keys = keys_in_order(sink, "E-APR")
    assert len(keys) == len(set(keys))


async def test_an_approval_request_refers_to_its_evidence(runner: CaseRunner) -> None:
    sink = MemoryEventSink()
    ctx = context(events=sink)
    result = await runner.start(ctx, raw("E-REFS", "SETTLEMENT_FAIL", tradeId="T-2", amount=60_000_000))
    values = await runner.values("mini-bank", "E-REFS")
    request = values["approvalRequest"]
    assert "evidence" not in request and "plan" not in request and "draft" not in request
    assert request["evidenceDecisions"] == len(values["decisions"]) - 1  # those before the supervisor's
    shown = result["pending"]  # what people see: the evidence, plan and draft filled in
    expected = [
        f["detail"] for d in values["decisions"][: request["evidenceDecisions"]] for f in d["evidence"]
    ]
    assert (
        shown["evidence"] == expected and shown["plan"] == values["plan"] and "evidenceDecisions" not in shown
    )
    [asked] = [e["data"] for e in sink.trail("mini-bank", "E-REFS") if e["type"] == "approval_requested"]
    assert asked["evidence"] == expected and asked["plan"] == values["plan"]  # the record of what was asked


async def test_recalculation_is_a_command_the_waiting_approval_takes(runner: CaseRunner) -> None:
    def withdraw_approval(tenant: dict[str, object]) -> None:  # the big-fail playbook is no longer approved
        tenant["approvedBusinessProcesses"] = ["PB_RETRY"]

    sink = MemoryEventSink()
    ctx = context(events=sink)
    first = await runner.start(ctx, raw("E-RE", "SETTLEMENT_FAIL", tradeId="T-2", amount=60_000_000))
    assert first["pending"]["kind"] == "approval"

    same = await runner.recalculate(ctx, "E-RE", "alice")  # nothing changed: nothing recorded
    assert same.result["pending"]["approvalId"] == first["approvalId"]
    assert not [e for e in sink.trail("mini-bank", "E-RE") if e["type"] == "playbook_recalculated"]

    domain, tenant = mini_packs(tenant_edit=withdraw_approval)
    now = dataclasses.replace(ctx, domain=domain, tenant=tenant)
    changed = await runner.recalculate(now, "E-RE", "alice")
    pending = changed.result["pending"]
    assert (
        first["selectedPlaybookId"] == "PB_ESCALATE_BIG"
        and changed.result["selectedPlaybookId"] == "PB_RETRY"
    )
    assert (
        changed.values["playbook"]["id"] == "PB_RETRY"
        and changed.result["resolutionStatus"] == "PENDING_APPROVAL"
    )
    assert (
        pending["approvalId"] == first["approvalId"] and pending["deadline"] == first["pending"]["deadline"]
    )
    assert pending["plan"] == changed.values["plan"] and pending["why"][-1].startswith(
        "playbook recalculated by alice"
    )
    [event] = [e for e in sink.trail("mini-bank", "E-RE") if e["type"] == "playbook_recalculated"]
    assert event["actor"] == {"type": "human", "id": "alice"} and event["stage"] == "policy"
    again = await runner.recalculate(now, "E-RE", "alice")  # idempotent
    assert len([e for e in sink.trail("mini-bank", "E-RE") if e["type"] == "playbook_recalculated"]) == 1
    assert again.result["pending"]["plan"] == pending["plan"]

    await runner.resume(
        now, "E-RE", {"decision": "reject", "actor": "bob", "reason": "no"}, expect="approval"
    )
    with pytest.raises(NothingPending):
        await runner.recalculate(now, "E-RE", "alice")


def rows(path: Path, thread: str) -> tuple[int, int]:
    with sqlite3.connect(path) as connection:
        checkpoints = connection.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = ?", (thread,))
        writes = connection.execute("SELECT COUNT(*) FROM writes WHERE thread_id = ?", (thread,))
        return checkpoints.fetchone()[0], writes.fetchone()[0]


async def test_a_finished_thread_keeps_its_last_checkpoint_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.sqlite"
    async with open_checkpointer("sqlite", path) as saver:
        runner = CaseRunner(build_graph(checkpointer=saver), compaction="keep_latest")
        ctx = context()
        done = await runner.start(ctx, raw("E-DONE", "SETTLEMENT_FAIL", tradeId="T-1", amount=10))
        waiting = await runner.start(ctx, raw("E-WAIT", "SETTLEMENT_FAIL", tradeId="T-2", amount=60_000_000))
        assert done["resolutionStatus"] == "RESOLVED" and waiting["pending"] is not None
        assert rows(path, thread_id("mini-bank", "E-DONE"))[0] == 1  # compacted to its last checkpoint
        assert rows(path, thread_id("mini-bank", "E-WAIT"))[0] > 1  # still working state: left alone
        again = await runner.start(ctx, raw("E-DONE", "SETTLEMENT_FAIL", tradeId="T-1", amount=10))
        assert again == done  # reported from what is left, never run twice

        await compact_thread(saver, thread_id("mini-bank", "E-DONE"), "delete")
        assert rows(path, thread_id("mini-bank", "E-DONE")) == (0, 0)
        assert await runner.values("mini-bank", "E-DONE") == {}
