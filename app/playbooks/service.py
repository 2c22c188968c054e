"""A case's playbook as operators see it, and recalculating the choice against the packs active now.

Everything is read from the system of record (``app.cases.record``): the playbook row holds the plan
with who did each step, the playbook as operators see it and the policy's selection with its
reasoning and candidates; a finished case has nothing else left. Recalculation is the policy rules
alone (``graph.recalculation``, no LLM) on the triaged record, so running it twice gives the same
answer and the second run records nothing. It may change a case only before anything ran, while the
case waits for its approval: then it is a command the graph itself handles (the waiting approval
node swaps in the new plan and asks again, ``CaseRunner.recalculate``), so the app never writes the
graph's state. It never removes the approval gate: a person who was going to decide still decides.
"""

from __future__ import annotations

from typing import Any, cast

from app.api.problems import ProblemError
from app.cases.record import CaseRecord, load_record, selection_of
from app.cases.service import CaseService
from app.runtime import ConfigurationError, Runtime
from graph.approvals import approval_view
from graph.recalculation import choice, decide_now
from graph.runner import CaseRunner, NothingPending
from graph.state import ApprovalRequest, ExceptionRecord

NOT_STARTED = "the playbook can only change before execution starts"


def _started(record: CaseRecord) -> bool:
    steps = record.playbook.steps if record.playbook else []
    return any(step.get("status") != "PENDING" for step in steps)


async def recalculate(
    cases: CaseService, runner: CaseRunner, runtime: Runtime, tenant_id: str, exception_id: str, *, who: str
) -> dict[str, Any]:
    """Re-run playbook matching; replace the plan only while the case waits for its approval.

    Runs under the case's lock, and holds the approval (PENDING → DECIDING, as a decision does) while
    the graph swaps the plan, so a decision arriving meanwhile gets a 409 instead of approving a plan
    that is changing under it.
    """
    async with cases.lock(tenant_id, exception_id):
        async with cases.db.session() as session:
            record = await load_record(session, tenant_id, exception_id)
        policy = record.playbook.selection if record is not None and record.playbook else None
        if record is None or not policy or not record.case.record:
            raise ProblemError(409, f"case {exception_id} has no policy decision to recalculate")
        try:
            ctx = runtime.context(tenant_id, run_id="recalculate")
        except (ConfigurationError, LookupError) as exc:
            raise ProblemError(409, str(exc)) from None
        exception = cast(ExceptionRecord, record.case.record)
        new = decide_now(ctx, exception, record.case.confidence or 0.0)
        out = {
            "previous": selection_of(policy),
            "current": selection_of(new),
            "packVersions": ctx.pack_versions,
        }
        if choice(new) == choice(policy):
            return {"changed": False, **out}
        if _started(record):
            raise ProblemError(409, f"{NOT_STARTED}: steps of case {exception_id} already ran")
        pending = record.pending
        if pending is None or pending.get("kind") != "approval":
            raise ProblemError(409, f"{NOT_STARTED}: case {exception_id} is not waiting for its approval")
        approval_id = str(pending["approvalId"])
        if not await cases.claim_approval(tenant_id, approval_id):
            raise ProblemError(
                409, f"approval {approval_id} is being decided; the playbook cannot change now"
            )
        payload: dict[str, Any] | None = None
        try:
            try:
                outcome = await runner.recalculate(ctx, exception_id, who)
            except NothingPending as exc:
                raise ProblemError(409, f"{NOT_STARTED}: {exc}") from None
            await cases.record_result(tenant_id, exception_id, outcome)
            request = outcome.values.get("approvalRequest")
            if request is not None:
                payload = approval_view(cast(ApprovalRequest, request), outcome.values, with_answers=False)
        finally:
            await cases.release_approval(tenant_id, approval_id, payload=payload)
        return {"changed": True, **out}
