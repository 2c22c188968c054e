"""What the UI's forms do: decide an approval, answer a manual step, recalculate a playbook.

They call the same ``CaseService`` methods as the API, with the signed-in person as actor, and
turn refusals into a message for the page. An approval form and a step form carry the digest of
the plan the person saw; if the plan changed since (a recalculation swapped it), the answer is
refused and the person reviews the new plan first — approving what one did not see is not an
approval. An answer still being applied when the request stops waiting says so; the page shows the
result once its job is done.
Rejecting and skipping need a reason (the forms ask for it; the graph refuses without one too),
and an approval with no plan cannot be approved: edit in a plan, reject, or take the case over.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from app.api.problems import ProblemError
from app.db.models import Approval
from app.jobs.base import StillRunning, plan_digest
from app.ui.deps import Page, UiError
from packs.documents import parse_value
from packs.playbook import PlaybookStep
from packs.problems import PackError

Decision = Literal["approve", "reject", "edit", "comment", "takeover"]
DECISIONS: tuple[Decision, ...] = ("approve", "reject", "edit", "comment", "takeover")
NO_PLAN = (
    "there is no plan to approve: write the steps with “Edit the plan”, reject it with a reason (the case "
    "escalates), or take the case over"
)
_STEPS = TypeAdapter(list[PlaybookStep])


__all__ = ["DECISIONS", "NO_PLAN", "answer_step", "decide_approval", "plan_digest", "still_running"]


def still_running(running: StillRunning) -> str:
    """The page's message for an answer whose job is still being applied."""
    return (f"Your answer was taken and is being applied (job {running.job.job_id}, {running.job.status}); "
            "this page shows the result once it is done.")  # fmt: skip


def parse_edited_plan(text: str) -> list[dict[str, Any]]:
    """An edited plan typed as YAML or JSON: a list of playbook steps, checked like a pack's."""
    try:
        data = parse_value(text, "edited plan", fmt="yaml")  # JSON is YAML; pack limits apply
    except PackError as exc:
        found = "; ".join(f"{problem.path}: {problem.message}" for problem in exc.problems)
        raise ValueError(f"the edited plan is not valid YAML or JSON: {found}") from None
    try:
        steps = _STEPS.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise ValueError(f"edited plan{where}: {first['msg']}") from None
    if not steps:
        raise ValueError("the edited plan has no steps")
    return [step.model_dump(mode="json", exclude_none=True) for step in steps]


async def decide_approval(
    page: Page, exception_id: str, approval_id: str, decision: Decision, *, comment: str | None,
    seen_digest: str | None, edited_plan: str | None = None, reason: str | None = None,
) -> str:  # fmt: skip
    """Apply the decision; the message for the page. Raises ``ValueError`` with the reason when refused,
    and the not-found page when the approval is not one of this case's (another tenant's id is
    answered as an id nobody has)."""
    services = page.services
    async with services.db.session() as session:
        approval = await session.get(Approval, (page.tenant_id, approval_id))
    if approval is None or approval.exception_id != exception_id:
        raise UiError(404, f"no approval {approval_id} for exception {exception_id}")
    pending = await services.runner.pending(page.tenant_id, exception_id)
    if not pending or pending.get("approvalId") != approval_id:
        raise ValueError(f"approval {approval_id} is no longer waiting for a decision")
    if decision in ("approve", "edit") and seen_digest != plan_digest(pending.get("plan")):
        raise ValueError(
            "the plan changed since this page was loaded (it was recalculated): review it and decide again"
        )
    if decision == "approve" and not pending.get("plan"):
        raise ValueError(NO_PLAN)
    reason = (reason or "").strip() or None
    if decision == "reject" and reason is None:
        raise ValueError("say why you reject it: a reason is required")
    answer: dict[str, Any] = {"decision": decision, "actor": page.principal.actor, "comment": comment or None}
    if decision == "reject":
        answer["reason"] = reason
    if decision == "edit":
        answer["editedPlan"] = parse_edited_plan(edited_plan or "")
    if decision == "comment" and not comment:
        raise ValueError("write a comment first")
    seen = seen_digest if decision in ("approve", "edit") else None
    try:
        await services.cases.decide(page.tenant_id, approval_id, answer, actor=page.principal.actor,
                                    seen_digest=seen)  # fmt: skip
    except ProblemError as exc:
        raise ValueError(exc.detail) from None
    except StillRunning as running:
        return still_running(running)
    rejected = "Rejected." if pending.get("plan") else "Rejected: with no plan proposed, the case escalates."
    return {"approve": "Approved: the plan runs now.", "edit": "Approved with your edited plan.",
            "reject": rejected, "comment": "Comment added; the approval still waits.",
            "takeover": "You took the case over: it stays open and assigned to you; complete its step when "
                        "it is handled, or skip it with the reason."}[decision]  # fmt: skip


async def answer_step(page: Page, exception_id: str, order: int, action: Literal["complete", "skip"],
                      notes: str | None, reason: str | None = None, *, seen_digest: str | None) -> str:  # fmt: skip
    reason = (reason or "").strip() or None
    if action == "skip" and reason is None:
        raise ValueError("say why the step is skipped: a reason is required")
    if seen_digest is None:
        raise ValueError("the form did not say which plan it showed: reload the page and answer again")
    try:
        await page.services.cases.complete_step(
            page.tenant_id, exception_id, order, action, notes or None, actor=page.principal.actor,
            seen_digest=seen_digest, reason=reason if action == "skip" else None,
        )  # fmt: skip
    except ProblemError as exc:
        raise ValueError(exc.detail) from None
    except StillRunning as running:
        return still_running(running)
    return f"Step {order} {'completed' if action == 'complete' else 'skipped'}."
