"""People's answers as claims with a lease.

An answer (approve, reject, edit, comment, take over, recalculate; complete or skip a step) first
*claims* what it answers with one conditional UPDATE: the approval row (PENDING → CLAIMED) or the
case's playbook row for the step the graph waits on. The claim records who, when, the plan digest
the person saw, the answer itself, a token and a lease expiry; the job that applies it is queued in
the same transaction. Of two answers to the same thing one UPDATE matches and the other is a 409
naming who answered and when. The job resumes the graph with the stored answer and then settles the
claim: *applied* (the approval is decided, the step is done) or *released* (the graph kept waiting:
a comment, a refused edit), with the outcome the request, or whoever follows its job link, reads.

A claim is never taken over by a later answer, even once its lease has run out: only its job (or the
sweep re-driving a lapsed claim through the same job) settles it, so an answer is applied exactly
once, or, when the graph never took it before the lease ran out, not at all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.problems import ProblemError
from app.db.models import Approval, PlaybookState
from app.db.types import utc_now
from app.jobs.base import plan_digest

Target = Literal["approval", "step"]
VERBS = {"approve": "approved", "edit": "approved with an edited plan", "reject": "rejected",
         "comment": "commented on", "takeover": "taken over", "expire": "expired",
         "recalculate": "recalculated", "complete": "completed", "skip": "skipped"}  # fmt: skip
CHANGED = "the plan changed since it was shown (it was recalculated or edited): review it and answer again"


@dataclass(frozen=True)
class Claim:
    """A claim as its job reads it."""

    target: Target
    tenant_id: str
    exception_id: str
    key: str  # the approval id, or the step order
    token: str
    answer: dict[str, Any]
    claimed_by: str
    claimed_at: datetime
    lease_until: datetime
    interrupt: str | None
    live: bool  # this token's claim, not settled yet (applied or released)

    @property
    def expired(self) -> bool:
        return self.lease_until < utc_now()

    def ref(self) -> dict[str, Any]:
        """What the job's payload names: enough to find the claim again, and to know it is this one."""
        return {"target": self.target, "key": self.key, "token": self.token}


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "an unknown time"


def _who(answer: dict[str, Any] | None) -> str:
    return VERBS.get(str((answer or {}).get("decision") or (answer or {}).get("action")), "answered")


def _claim_values(actor: str, answer: dict[str, Any], digest: str | None, lease: timedelta) -> dict[str, Any]:
    now = utc_now()
    return {"claim_token": uuid.uuid4().hex, "claimed_by": actor, "claimed_at": now, "claim_digest": digest,
            "claim_lease_until": now + lease, "claim_answer": answer, "claim_job": None,
            "claim_interrupt": None, "claim_outcome": None}  # fmt: skip


# -- approvals ---------------------------------------------------------------------------------
async def claim_approval(
    session: AsyncSession, tenant_id: str, approval_id: str, *, actor: str, answer: dict[str, Any],
    seen_digest: str | None, lease: timedelta,
) -> Claim:  # fmt: skip
    """Claim a pending approval for ``answer``; a 409 naming who has it when it is not pending, or
    when ``seen_digest`` is not the digest of the plan it holds now (the caller's transaction is
    rolled back with the error, so a refused claim leaves nothing behind)."""
    values = _claim_values(actor, answer, seen_digest, lease)
    claimed = (
        await session.execute(
            update(Approval)
            .where(
                Approval.tenant_id == tenant_id,
                Approval.approval_id == approval_id,
                Approval.status == "PENDING",
            )
            .values(status="CLAIMED", **values)
            .returning(Approval.exception_id, Approval.payload)
        )
    ).one_or_none()
    if claimed is None:
        raise ProblemError(409, await approval_refusal(session, tenant_id, approval_id))
    if seen_digest is not None and seen_digest != plan_digest(claimed.payload.get("plan")):
        raise ProblemError(409, f"approval {approval_id}: {CHANGED}")
    return Claim("approval", tenant_id, claimed.exception_id, approval_id, values["claim_token"], answer, actor,
                 values["claimed_at"], values["claim_lease_until"], None, True)  # fmt: skip


async def approval_refusal(session: AsyncSession, tenant_id: str, approval_id: str) -> str:
    """Why an approval cannot be claimed now, naming who answered it and when."""
    row = await session.get(Approval, (tenant_id, approval_id), populate_existing=True)
    if row is None:
        raise ProblemError(404, f"no approval {approval_id}")
    if row.status == "CLAIMED":
        return (f"approval {approval_id} is being {_who(row.claim_answer)} by {row.claimed_by} "
                f"(since {_when(row.claimed_at)})")  # fmt: skip
    if row.status == "PENDING":  # pending again by now: the other answer was a comment or refused
        return f"approval {approval_id} was answered at the same moment by {row.claimed_by}: read it again"
    return f"approval {approval_id} is already {row.status.lower()} (by {row.decided_by} at {_when(row.decided_at)})"


# -- steps -------------------------------------------------------------------------------------
async def claim_step(
    session: AsyncSession, tenant_id: str, exception_id: str, order: int, *, actor: str,
    answer: dict[str, Any], seen_digest: str, lease: timedelta,
) -> Claim:  # fmt: skip
    """Claim the manual step the case waits on, by its order; a 409 for any other step, for a step
    someone else answered or is answering (naming them and when), or for a plan that changed."""
    values = _claim_values(actor, answer, seen_digest, lease)
    claimed = (
        await session.execute(
            update(PlaybookState)
            .where(
                PlaybookState.tenant_id == tenant_id,
                PlaybookState.exception_id == exception_id,
                PlaybookState.waiting_step == order,
                or_(PlaybookState.claim_state.is_(None), PlaybookState.claim_state != "claimed"),
            )
            .values(claim_step=order, claim_state="claimed", **values)
            .returning(PlaybookState.steps)
        )
    ).one_or_none()
    if claimed is None:
        raise ProblemError(409, await step_refusal(session, tenant_id, exception_id, order))
    if seen_digest != plan_digest(claimed.steps):
        raise ProblemError(409, f"step {order}: {CHANGED}")
    return Claim("step", tenant_id, exception_id, str(order), values["claim_token"], answer, actor,
                 values["claimed_at"], values["claim_lease_until"], None, True)  # fmt: skip


async def step_refusal(session: AsyncSession, tenant_id: str, exception_id: str, order: int) -> str:
    """Why a step cannot be claimed now, naming who answered it and when where someone did."""
    row = await session.get(PlaybookState, (tenant_id, exception_id), populate_existing=True)
    if row is None:
        return f"case {exception_id} is not waiting for a manual step"
    if row.claim_step == order and row.claim_state in ("claimed", "applied"):
        tense = "is being" if row.claim_state == "claimed" else "was already"
        return (
            f"step {order} {tense} {_who(row.claim_answer)} by {row.claimed_by} (at {_when(row.claimed_at)})"
        )
    done = next(
        (s for s in row.steps or [] if s.get("order") == order and s.get("status") != "PENDING"), None
    )
    if done is not None:
        by = f" by {done['completedBy']}" if done.get("completedBy") else ""
        after = f"; step {row.waiting_step} is the next expected step" if row.waiting_step else ""
        return f"step {order} is already {str(done.get('status')).lower()}{by}{after}"
    if row.claim_state == "claimed":
        return (f"step {row.claim_step} is being {_who(row.claim_answer)} by {row.claimed_by} "
                f"(since {_when(row.claimed_at)}); step {order} is not the next expected step")  # fmt: skip
    if row.waiting_step is None:
        return f"case {exception_id} is not waiting for a manual step"
    return f"step {order} is not the next expected step; step {row.waiting_step} is"


# -- the job's side ----------------------------------------------------------------------------
async def load(session: AsyncSession, tenant_id: str, exception_id: str, ref: dict[str, Any]) -> Claim | None:
    """The claim ``ref`` names, as it stands (None if the row is gone)."""
    if ref["target"] == "approval":
        row: Any = await session.get(Approval, (tenant_id, ref["key"]), populate_existing=True)
        # not settled yet (settling ends the lease): the status may already say what the graph
        # decided (the event sink writes it as the graph records it); the claim is live until settled
        live = row is not None and row.claim_lease_until is not None
    else:
        row = await session.get(PlaybookState, (tenant_id, exception_id), populate_existing=True)
        live = row is not None and row.claim_state == "claimed" and str(row.claim_step) == ref["key"]
    if row is None or row.claim_token is None:
        return None
    live = live and row.claim_token == ref["token"]
    return Claim(ref["target"], tenant_id, exception_id, ref["key"], row.claim_token, row.claim_answer or {},
                 row.claimed_by or "?", row.claimed_at or utc_now(), row.claim_lease_until or utc_now(),
                 row.claim_interrupt, live)  # fmt: skip


def _where(claim: Claim) -> Any:
    if claim.target == "approval":
        return update(Approval).where(
            Approval.tenant_id == claim.tenant_id, Approval.approval_id == claim.key,
            Approval.claim_token == claim.token, Approval.claim_lease_until.is_not(None),
        )  # fmt: skip
    return update(PlaybookState).where(
        PlaybookState.tenant_id == claim.tenant_id, PlaybookState.exception_id == claim.exception_id,
        PlaybookState.claim_token == claim.token, PlaybookState.claim_state == "claimed",
    )  # fmt: skip


async def note_job(session: AsyncSession, claim: Claim, job_id: str) -> None:
    await session.execute(_where(claim).values(claim_job=job_id))


async def note_interrupt(session: AsyncSession, claim: Claim, interrupt_id: str) -> None:
    """Remember which interrupt the answer is for, before resuming: a retried job tells from it
    whether the graph already took the answer (the interrupt is gone) or not (it is still there)."""
    await session.execute(_where(claim).values(claim_interrupt=interrupt_id))


async def settle(
    session: AsyncSession, claim: Claim, *, applied: bool, outcome: dict[str, Any],
    payload: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Settle a claim in the transaction that projected its run.

    Applied: the claim stays as the record of who answered; the approval's status is the one the
    projection just wrote (APPROVED, REJECTED, ...), or WITHDRAWN when the case went on without
    deciding it (a run that failed and escalated). Released: the approval is PENDING again (with
    ``payload`` when its plan changed), the step waits for an answer again."""
    values: dict[str, Any] = {"claim_outcome": outcome, "claim_lease_until": None}
    if claim.target == "step":
        await session.execute(
            _where(claim).values(claim_state="applied" if applied else "released", **values)
        )
        return
    if payload is not None:
        values["payload"] = payload
    mine = (Approval.tenant_id == claim.tenant_id, Approval.approval_id == claim.key,
            Approval.claim_token == claim.token)  # fmt: skip
    await session.execute(update(Approval).where(*mine).values(**values))
    status = "WITHDRAWN" if applied else "PENDING"
    await session.execute(update(Approval).where(*mine, Approval.status == "CLAIMED").values(status=status))
