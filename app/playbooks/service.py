"""Recalculating a case's playbook choice against the packs active now.

Everything is read from the system of record (``app.cases.record``): the playbook row holds the plan
with who did each step, the playbook as operators see it and the policy's selection with its
reasoning and candidates; a finished case has nothing else left. Recalculation is the policy rules
alone (``graph.recalculation``, no LLM) on the triaged record, so running it twice gives the same
answer and the second run records nothing. It may change a case only before anything ran, while the
case waits for its approval: then it is a command the graph itself handles (the waiting approval
node swaps in the new plan and asks again, ``CaseRunner.recalculate``), so the app never writes the
graph's state. It never removes the approval gate: a person who was going to decide still decides.

A recalculation that changes the choice is an answer like any other: it claims the approval (so a
decision arriving meanwhile is a 409 instead of approving a plan that is changing under it) and its
job has the graph swap the plan (``apply_recalculation``); the request waits for the job like a
decision does.
"""

from __future__ import annotations

from typing import Any, cast

from app.api.problems import ProblemError
from app.cases.record import CaseRecord, load_record, selection_of
from app.cases.service import CaseService
from app.jobs.claims import Claim
from app.runtime import ConfigurationError, Runtime
from graph.approvals import approval_view
from graph.context import RunContext
from graph.recalculation import choice, decide_now
from graph.runner import CaseRunner, NothingPending
from graph.state import ApprovalRequest, ExceptionRecord

NOT_STARTED = "the playbook can only change before execution starts"


class Refused(Exception):
    """A recalculation that cannot go on: the 409 to answer with."""


def _started(record: CaseRecord) -> bool:
    steps = record.playbook.steps if record.playbook else []
    return any(step.get("status") != "PENDING" for step in steps)


async def _decide_again(
    cases: CaseService, runtime: Runtime, tenant_id: str, exception_id: str
) -> tuple[CaseRecord, RunContext, dict[str, Any], bool]:
    """The case's record, the context of the packs active now, the previous and current selections,
    and whether the choice changed. Raises ``Refused`` when there is nothing to recalculate."""
    async with cases.db.session() as session:
        record = await load_record(session, tenant_id, exception_id)
    policy = record.playbook.selection if record is not None and record.playbook else None
    if record is None or not policy or not record.case.record:
        raise Refused(f"case {exception_id} has no policy decision to recalculate")
    try:
        ctx = runtime.context(tenant_id, run_id="recalculate")
    except (ConfigurationError, LookupError) as exc:
        raise Refused(str(exc)) from None
    new = decide_now(ctx, cast(ExceptionRecord, record.case.record), record.case.confidence or 0.0)
    out = {"previous": selection_of(policy), "current": selection_of(new), "packVersions": ctx.pack_versions}
    return record, ctx, out, choice(new) != choice(policy)


def _waiting_approval(record: CaseRecord, exception_id: str) -> str:
    """The approval the case waits on, which a changed choice may replan; ``Refused`` otherwise."""
    if _started(record):
        raise Refused(f"{NOT_STARTED}: steps of case {exception_id} already ran")
    pending = record.pending
    if pending is None or pending.get("kind") != "approval":
        raise Refused(f"{NOT_STARTED}: case {exception_id} is not waiting for its approval")
    return str(pending["approvalId"])


async def recalculate(
    cases: CaseService, runner: CaseRunner, runtime: Runtime, tenant_id: str, exception_id: str, *, who: str
) -> dict[str, Any]:
    """Re-run playbook matching; replace the plan only while the case waits for its approval.

    The checks are made here first (nothing changes: answered at once, nothing recorded), then again
    by the job under the case's serialization, which is what decides. Raises ``StillRunning`` when
    the job takes longer than the request may wait."""
    try:
        record, _ctx, out, changed = await _decide_again(cases, runtime, tenant_id, exception_id)
        if not changed:
            return {"changed": False, **out}
        approval_id = _waiting_approval(record, exception_id)
    except Refused as exc:
        raise ProblemError(409, str(exc)) from None
    outcome = await cases.claim_for_recalculation(tenant_id, approval_id, actor=who)
    return dict(outcome["recalculation"])


async def apply_recalculation(cases: CaseService, claim: Claim) -> None:
    """The job's side of a recalculation: decide again under the packs active now and, if the choice
    changed and nothing ran yet, have the graph swap the plan and ask again; then record it and give
    the approval back (PENDING, with the new plan). Run twice (a crash between the graph's swap and
    the projection), the graph finds the choice unchanged and records nothing new."""
    runner, tenant_id, exception_id = cases.runner, claim.tenant_id, claim.exception_id
    try:
        record, ctx, out, changed = await _decide_again(cases, cases.runtime, tenant_id, exception_id)
        if not changed:  # nothing to change (the packs went back meanwhile, or an earlier try recorded it)
            await cases.release(claim, {"status": 200, "recalculation": {"changed": False, **out}})
            return
        if _waiting_approval(record, exception_id) != claim.key:
            raise Refused(f"{NOT_STARTED}: case {exception_id} is not waiting for approval {claim.key}")
        outcome = await runner.recalculate(ctx, exception_id, claim.claimed_by)
    except (Refused, NothingPending) as exc:
        await cases.release(claim, {"status": 409, "detail": str(exc)})
        return
    request = outcome.values.get("approvalRequest")
    payload = (
        approval_view(cast(ApprovalRequest, request), outcome.values, with_answers=False) if request else None
    )
    await cases.record_and_settle(claim, outcome, applied=False, payload=payload,
                                  result={"status": 200, "recalculation": {"changed": True, **out}})  # fmt: skip


def install(cases: CaseService) -> None:
    """Let the case service's answer jobs apply recalculations (kept here, with the rest of them)."""
    cases.recalculator = apply_recalculation
