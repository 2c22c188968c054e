"""Whole runs for every branch, on the in-memory and the SQLite checkpointer, and resuming from a
fresh process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import Command
from pydantic import ValidationError

from graph.builder import build_graph
from graph.checkpoint import open_checkpointer
from graph.inputs import RawException
from graph.memory import Recall
from graph.runner import CaseRunner, InvalidAnswer, NothingPending, config_for
from tests.conftest import FIXTURES
from tests.graph_helpers import context, raw


@pytest.fixture(params=["memory", "sqlite"])
async def runner(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CaseRunner]:
    async with open_checkpointer(request.param, tmp_path / "checkpoints.sqlite") as saver:
        yield CaseRunner(build_graph(checkpointer=saver))


def stages(result: dict[str, Any]) -> list[str]:
    return [s["stage"] for s in result["stages"]]


async def test_approved_playbook_runs_unattended(runner: CaseRunner) -> None:
    result = await runner.start(context(), raw("E-AUTO", "SETTLEMENT_FAIL", tradeId="T-1", amount=10))
    assert result["resolutionStatus"] == "RESOLVED"
    assert result["selectedPlaybookId"] == "PB_RETRY" and result["humanApprovalRequired"] is False
    assert stages(result) == [
        "intake",
        "triage",
        "policy",
        "supervisor",
        "resolution",
        "supervisor",
        "execute",
        "feedback",
    ]
    assert result["outcome"]["outcome"] == "auto_resolved" and result["pending"] is None


async def test_approval_then_approve_then_manual_step(runner: CaseRunner) -> None:
    ctx = context()
    first = await runner.start(ctx, raw("E-BIG", "SETTLEMENT_FAIL", tradeId="T-2", amount=60_000_000))
    assert first["resolutionStatus"] == "PENDING_APPROVAL" and first["approvalId"] == "APR-E-BIG-1"
    assert first["pending"]["kind"] == "approval" and first["severity"] == "CRITICAL"
    second = await runner.resume(
        ctx, "E-BIG", {"decision": "approve", "actor": "alice", "comment": "go"}, expect="approval"
    )
    assert second["pending"]["kind"] == "manual_step" and second["pending"]["order"] == 2
    assert [s["status"] for s in second["plan"]] == [
        "SKIPPED",
        "PENDING",
    ]  # mini-bank routes desk-leads nowhere
    third = await runner.resume(
        ctx, "E-BIG", {"action": "complete", "actor": "bob", "notes": "desk agreed"}, expect="manual_step"
    )
    assert third["resolutionStatus"] == "RESOLVED" and third["pending"] is None
    assert third["outcome"]["outcome"] == "resolved_after_approval"
    assert stages(third)[-4:] == ["execute", "human_step", "execute", "feedback"]


async def test_approval_then_reject(runner: CaseRunner) -> None:
    ctx = context()
    await runner.start(ctx, raw("E-REJ", "SETTLEMENT_FAIL", tradeId="T", amount=60_000_000))
    result = await runner.resume(
        ctx, "E-REJ", {"decision": "reject", "actor": "alice", "reason": "not ours"}, expect="approval"
    )
    assert result["resolutionStatus"] == "REJECTED" and result["outcome"]["outcome"] == "rejected"
    assert all(step["status"] == "PENDING" for step in result["plan"])


async def test_approval_then_edit_runs_the_edited_plan(runner: CaseRunner) -> None:
    ctx = context()
    await runner.start(ctx, raw("E-EDIT", "SETTLEMENT_FAIL", tradeId="T-3", amount=60_000_000))
    edited = [
        {
            "type": "call_tool",
            "name": "Retry once",
            "tool": "retrySettlement",
            "arguments": {"tradeId": "{{ exception.rawPayload.tradeId }}"},
        },
        {"type": "set_status", "name": "Close", "status": "RESOLVED"},
    ]
    result = await runner.resume(
        ctx, "E-EDIT", {"decision": "edit", "actor": "alice", "editedPlan": edited}, expect="approval"
    )
    assert result["resolutionStatus"] == "RESOLVED"
    assert [(s["name"], s["status"]) for s in result["plan"]] == [
        ("Retry once", "SUCCESS"),
        ("Close", "SUCCESS"),
    ]


async def test_comment_and_refused_edit_keep_the_approval_pending(runner: CaseRunner) -> None:
    ctx = context()
    await runner.start(ctx, raw("E-CMT", "SETTLEMENT_FAIL", tradeId="T", amount=60_000_000))
    waiting = await runner.resume(
        ctx, "E-CMT", {"decision": "comment", "actor": "carol", "comment": "checking"}, expect="approval"
    )
    assert waiting["resolutionStatus"] == "PENDING_APPROVAL"
    assert waiting["pending"]["comments"] == [
        {"actor": "carol", "comment": "checking", "at": "2026-11-20T09:00:00+00:00"}
    ]
    bad_edit = [{"type": "call_tool", "name": "Wire", "tool": "getTrade", "arguments": {}}]
    domain, tenant = ctx.domain, ctx.tenant.model_copy(update={"toolsAllowList": ["retrySettlement"]})
    narrow = context(domain, tenant)
    waiting = await runner.resume(
        narrow, "E-CMT", {"decision": "edit", "actor": "carol", "editedPlan": bad_edit}, expect="approval"
    )
    assert waiting["resolutionStatus"] == "PENDING_APPROVAL"
    assert waiting["pending"]["refusals"] == [
        "edit by carol refused: step 1 calls tool 'getTrade', which tenant mini-bank does not allow"
    ]
    done = await runner.resume(ctx, "E-CMT", {"decision": "reject", "actor": "carol", "reason": "no"},
                               expect="approval")  # fmt: skip
    assert done["resolutionStatus"] == "REJECTED"


async def test_invalid_answers_are_refused_and_nothing_is_lost(runner: CaseRunner) -> None:
    ctx = context()
    await runner.start(ctx, raw("E-BAD", "SETTLEMENT_FAIL", tradeId="T", amount=60_000_000))
    with pytest.raises(InvalidAnswer) as caught:
        await runner.resume(ctx, "E-BAD", {"decision": "maybe", "actor": "x"}, expect="approval")
    assert caught.value.errors[0]["loc"] == ("decision",)
    with pytest.raises(NothingPending):
        await runner.resume(ctx, "E-BAD", {"action": "complete", "actor": "x"}, expect="manual_step")
    # straight to the graph, bypassing the runner's check: interrupt() validates too
    config = config_for("mini-bank", "E-BAD", "t")
    with pytest.raises(ValidationError):
        await runner.graph.ainvoke(Command(resume={"decision": "edit", "actor": "x"}), config, context=ctx)
    still = await runner.result("mini-bank", "E-BAD")
    assert still["resolutionStatus"] == "PENDING_APPROVAL" and still["approvalId"] == "APR-E-BAD-1"
    done = await runner.resume(ctx, "E-BAD", {"decision": "approve", "actor": "x"}, expect="approval")
    assert done["pending"]["kind"] == "manual_step"


async def test_an_empty_plan_is_never_approved_into_resolved(runner: CaseRunner) -> None:
    ctx = context()
    first = await runner.start(ctx, raw("E-NONE", "SEC_MASTER_MISMATCH", impact="ECONOMIC"))
    assert first["resolutionStatus"] == "PENDING_APPROVAL" and first["plan"] == []
    assert first["pending"]["allowedDecisions"] == ["reject", "edit", "comment", "takeover"]
    refused = await runner.resume(ctx, "E-NONE", {"decision": "approve", "actor": "alice"}, expect="approval")
    assert refused["resolutionStatus"] == "PENDING_APPROVAL" and refused["approvalId"] == "APR-E-NONE-1"
    assert refused["pending"]["refusals"] == [
        "approve by alice refused: no plan is proposed, so there is nothing to approve"
    ]
    # an approval written straight into the state, past the approval node, still resolves nothing
    config = config_for("mini-bank", "E-NONE", "t")
    decided = {
        "approvalId": "APR-E-NONE-1",
        "decision": "approve",
        "actor": {"type": "human", "id": "mallory"},
    }
    await runner.graph.aupdate_state(config, {"approval": decided, "approvalRequest": None, "status": "IN_PROGRESS"},
                                     as_node="approval")  # fmt: skip
    await runner.invoke(None, config, ctx)
    result = await runner.result("mini-bank", "E-NONE")
    assert result["resolutionStatus"] == "ESCALATED"
    assert result["escalation"]["reason"].startswith("there is no plan to carry out")


async def test_rejecting_an_empty_plan_escalates(runner: CaseRunner) -> None:
    ctx = context()
    await runner.start(ctx, raw("E-NONE2", "SEC_MASTER_MISMATCH", impact="ECONOMIC"))
    result = await runner.resume(ctx, "E-NONE2", {"decision": "reject", "actor": "alice", "reason": "not ours"},
                                 expect="approval")  # fmt: skip
    assert result["resolutionStatus"] == "ESCALATED" and stages(result)[-3:] == [
        "approval",
        "escalate",
        "feedback",
    ]
    assert result["escalation"]["reason"] == (
        "approval APR-E-NONE2-1 rejected by alice with no plan proposed: not ours"
    )


async def test_reject_and_skip_need_a_reason(runner: CaseRunner) -> None:
    ctx = context()
    await runner.start(ctx, raw("E-WHY", "SETTLEMENT_FAIL", tradeId="T", amount=60_000_000))
    for answer in (
        {"decision": "reject", "actor": "a"},
        {"decision": "reject", "actor": "a", "reason": "  "},
    ):
        with pytest.raises(InvalidAnswer):
            await runner.resume(ctx, "E-WHY", answer, expect="approval")
    await runner.resume(ctx, "E-WHY", {"decision": "approve", "actor": "a"}, expect="approval")
    for answer in ({"action": "skip", "actor": "b"}, {"action": "skip", "actor": "b", "reason": "\t"}):
        with pytest.raises(InvalidAnswer):
            await runner.resume(ctx, "E-WHY", answer, expect="manual_step")
    assert (await runner.result("mini-bank", "E-WHY"))["pending"]["kind"] == "manual_step"


async def test_skipping_every_step_left_closes_without_action(runner: CaseRunner) -> None:
    ctx = context()
    await runner.start(ctx, raw("E-SKIP", "SETTLEMENT_FAIL", tradeId="T", amount=60_000_000))
    await runner.resume(ctx, "E-SKIP", {"decision": "approve", "actor": "alice"}, expect="approval")
    result = await runner.resume(ctx, "E-SKIP", {"action": "skip", "actor": "bob", "reason": "duplicate"},
                                 expect="manual_step")  # fmt: skip
    assert result["resolutionStatus"] == "CLOSED_WITHOUT_ACTION"
    assert result["outcome"]["outcome"] == "closed_without_action"
    assert result["outcome"]["skipped"] == [
        {"order": 2, "name": "Desk review", "by": "bob", "reason": "duplicate"}
    ]
    feedback = result["stages"][-1]
    assert feedback["decision"] == "OUTCOME_CLOSED_WITHOUT_ACTION"
    assert {"kind": "human", "detail": "step 2 Desk review skipped by bob: duplicate"} in feedback["evidence"]


async def test_expired_approval_escalates(runner: CaseRunner) -> None:
    ctx = context()
    await runner.start(ctx, raw("E-EXP", "SETTLEMENT_FAIL", tradeId="T", amount=60_000_000))
    result = await runner.resume(
        ctx,
        "E-EXP",
        {"decision": "expire", "actor": "deadline-sweeper", "actorType": "system"},
        expect="approval",
    )
    assert result["resolutionStatus"] == "ESCALATED"
    assert result["escalation"]["reason"].startswith(
        "approval APR-E-EXP-1 passed its deadline 2026-11-20T13:00:00"
    )


async def test_non_actionable_skips_resolution(runner: CaseRunner) -> None:
    result = await runner.start(context(), raw("E-INFO", "SETTLEMENT_NOTICE"))
    assert result["actionability"] == "NON_ACTIONABLE_INFO_ONLY" and result["resolutionStatus"] == "RESOLVED"
    assert "resolution" not in stages(result) and result["humanApprovalRequired"] is False


async def test_not_approved_playbook_waits_for_a_person(runner: CaseRunner) -> None:
    result = await runner.start(context(), raw("E-NA", "POSITION_BREAK"))
    assert (
        result["actionability"] == "ACTIONABLE_NON_APPROVED_PROCESS" and result["selectedPlaybookId"] is None
    )
    assert result["recommendedPlaybookId"] == "PB_BREAK" and result["resolutionStatus"] == "PENDING_APPROVAL"
    assert result["pending"]["playbookId"] == "PB_BREAK" and result["draft"] is None


async def test_unknown_type_is_escalated_with_evidence(runner: CaseRunner) -> None:
    result = await runner.start(context(), raw("E-UNK", "MARGIN_CALL"))
    assert result["resolutionStatus"] == "ESCALATED" and stages(result) == ["intake", "escalate", "feedback"]
    assert "not in the mini-markets taxonomy" in result["escalation"]["reason"]


class ExplodingMemory:
    async def recall(
        self, exception: Mapping[str, Any], *, k: int, recurrence_since: datetime | None
    ) -> Recall:
        raise RuntimeError("vector store unreachable")


async def test_node_failure_ends_escalated_never_lost(runner: CaseRunner) -> None:
    result = await runner.start(
        context(memory=ExplodingMemory()), raw("E-ERR", "SETTLEMENT_FAIL", tradeId="T", amount=10)
    )
    assert result["resolutionStatus"] == "ESCALATED"
    assert stages(result) == ["intake", "triage", "escalate", "feedback"]
    failed = result["stages"][1]
    assert failed["decision"] == "FAILED"
    assert failed["evidence"] == [
        {"kind": "error", "detail": "stage triage failed: RuntimeError: vector store unreachable"}
    ]


async def test_batch_keeps_input_order_and_bounds_concurrency(runner: CaseRunner) -> None:
    ctx = context()
    raws = [
        raw(f"E-{i}", "SETTLEMENT_FAIL" if i % 2 else "SETTLEMENT_NOTICE", tradeId=f"T{i}", amount=10)
        for i in range(6)
    ]
    results = await runner.run_batch(lambda _r: ctx, raws, concurrency=2)
    assert [r["exceptionId"] for r in results] == [f"E-{i}" for i in range(6)]
    assert {r["resolutionStatus"] for r in results} == {"RESOLVED"}


async def test_generated_exception_id_when_none_given(runner: CaseRunner) -> None:
    result = await runner.start(context(), RawException(exceptionType="SETTLEMENT_NOTICE"))
    assert result["exceptionId"].startswith("EX-") and result["resolutionStatus"] == "RESOLVED"


def test_resume_from_a_fresh_process(tmp_path: Path) -> None:
    """Interrupted in one process, approved in another (`exops resume`) on the same SQLite file."""
    packs_dir = tmp_path / "packs"
    packs_dir.mkdir()
    shutil.copy(FIXTURES / "mini-domain.yaml", packs_dir)
    shutil.copy(FIXTURES / "mini-tenant.yaml", packs_dir)
    checkpoints = tmp_path / "cp.sqlite"
    items = tmp_path / "in.json"
    items.write_text(
        json.dumps(
            [
                {
                    "exceptionId": "E-PROC",
                    "exceptionType": "SETTLEMENT_FAIL",
                    "rawPayload": {"tradeId": "T", "amount": 60_000_000},
                }
            ]
        )
    )

    def exops(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "app.cli.main", *args, "--packs", str(packs_dir), "--checkpoints", str(checkpoints)],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        parsed: dict[str, Any] = json.loads(done.stdout)
        return parsed

    run = exops("run", str(items), "--tenant", "mini-bank", "--json")
    assert run["results"][0]["resolutionStatus"] == "PENDING_APPROVAL"
    approved = exops("resume", "E-PROC", "--tenant", "mini-bank", "--actor", "alice", "--decision", "approve")
    assert approved["pending"]["kind"] == "manual_step"
    done = exops(
        "resume",
        "E-PROC",
        "--tenant",
        "mini-bank",
        "--actor",
        "bob",
        "--decision",
        "complete",
        "--comment",
        "ok",
    )
    assert done["resolutionStatus"] == "RESOLVED"


async def test_a_runs_own_outcome_is_what_its_checkpoint_holds(runner: CaseRunner) -> None:
    """The runner reports a run's outcome from the run's output instead of reading the checkpoint
    again: at every stop (an approval, a manual step, the end) the two must be the same."""
    ctx = context()

    async def same(outcome: Any, exception_id: str) -> None:
        stored = await runner.outcome("mini-bank", exception_id)
        assert outcome.result == stored.result
        assert outcome.values == stored.values

    started = await runner.run(ctx, raw("E-SAME", "SETTLEMENT_FAIL", tradeId="T-9", amount=60_000_000))
    assert started.result["pending"]["kind"] == "approval"
    await same(started, "E-SAME")
    approved = await runner.answer(
        ctx, "E-SAME", {"decision": "approve", "actor": "alice"}, expect="approval"
    )
    assert approved.result["pending"]["kind"] == "manual_step"
    await same(approved, "E-SAME")
    done = await runner.answer(ctx, "E-SAME", {"action": "complete", "actor": "bob"}, expect="manual_step")
    assert done.finished
    await same(done, "E-SAME")
    fresh = await runner.run(ctx, raw("E-FRESH", "SETTLEMENT_FAIL", tradeId="T-8", amount=10), fresh=True)
    assert fresh.finished
    await same(fresh, "E-FRESH")
