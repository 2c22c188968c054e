"""Real decided cases as eval cases: the stored raw input, and what people finally decided.

A finished case's row holds its raw input (``exceptions.raw``) and the decisions that stood
(type, severity, playbook, status); its ``approval_decided`` event holds what a person answered
(approve, reject with the reason, an edited plan, a takeover), and its step events how manual steps
ended. Those answers go into the case's ``answers``, so replaying it through the graph asks the same
person the same question and gets the same reply; the decisions become ``expected``.

Only finished cases are exported (a waiting case has no final decision yet). The exception id is
kept as the case id, so a what-if names the cases an operator knows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ExceptionCase, ExceptionEvent
from evals.dataset import Answers, Dataset, EvalCase, Expected
from graph.inputs import ApprovalAnswer, ManualStepAnswer, RawException
from packs.common import FINISHED_STATUSES


async def _events(session: AsyncSession, tenant_id: str, ids: list[str]) -> dict[str, list[ExceptionEvent]]:
    found: dict[str, list[ExceptionEvent]] = {}
    if not ids:
        return found
    rows = await session.execute(
        select(ExceptionEvent)
        .where(
            ExceptionEvent.tenant_id == tenant_id,
            ExceptionEvent.exception_id.in_(ids),
            ExceptionEvent.type.in_(("approval_decided", "playbook_step_completed", "playbook_step_skipped")),
        )
        .order_by(ExceptionEvent.exception_id, ExceptionEvent.seq)
    )
    for event in rows.scalars():
        found.setdefault(event.exception_id, []).append(event)
    return found


def answers_from(events: list[ExceptionEvent]) -> Answers:
    """The last approval decision and how manual steps ended, as answers the graph accepts."""
    approval: ApprovalAnswer | None = None
    manual: ManualStepAnswer | None = None
    for event in events:
        data = event.data or {}
        if event.type == "approval_decided" and data.get("decision") in (
            "approve",
            "reject",
            "edit",
            "takeover",
        ):
            approval = ApprovalAnswer.model_validate({
                "decision": data["decision"],
                "actor": event.actor_id or "unknown",
                "comment": data.get("comment"),
                "reason": data.get("reason") or ("rejected" if data["decision"] == "reject" else None),
                "editedPlan": data.get("editedPlan") if data["decision"] == "edit" else None,
            })  # fmt: skip
        elif event.type == "playbook_step_completed" and event.actor_type == "human":
            manual = ManualStepAnswer(action="complete", actor=event.actor_id or "unknown")
        elif event.type == "playbook_step_skipped" and event.actor_type == "human" and manual is None:
            reason = str(data.get("reason") or "skipped")
            manual = ManualStepAnswer(action="skip", actor=event.actor_id or "unknown", reason=reason)
    return Answers(approval=approval, manualSteps=manual)


def expected_from(row: ExceptionCase) -> Expected:
    result: dict[str, Any] = row.result or {}
    return Expected.model_validate({
        "exceptionType": row.exception_type,
        "severity": row.severity,
        "actionability": row.actionability,
        "playbookId": result.get("selectedPlaybookId"),
        "humanApprovalRequired": result.get("humanApprovalRequired"),
        "resolutionStatus": row.status,
    })  # fmt: skip


async def decided_cases(
    session: AsyncSession, tenant_id: str, *, since: datetime | None = None, last: int | None = None
) -> list[EvalCase]:
    """The tenant's finished cases, newest first (``last`` of them), as eval cases."""
    query = select(ExceptionCase).where(
        ExceptionCase.tenant_id == tenant_id, ExceptionCase.status.in_(sorted(FINISHED_STATUSES))
    )
    if since is not None:
        query = query.where(ExceptionCase.received_at >= since)
    query = query.order_by(ExceptionCase.received_at.desc(), ExceptionCase.exception_id.desc())
    if last is not None:
        query = query.limit(last)
    rows = list((await session.execute(query)).scalars())
    events = await _events(session, tenant_id, [row.exception_id for row in rows])
    cases = []
    for row in rows:
        raw = RawException.model_validate({**row.raw, "exceptionId": row.exception_id})
        answers = answers_from(events.get(row.exception_id, []))
        decision = answers.approval.decision if answers.approval else "none"
        outcome = (row.result or {}).get("outcome") or {}
        cases.append(
            EvalCase(
                id=row.exception_id,
                description=f"decided case received {row.received_at.isoformat()}; outcome {outcome.get('outcome', '?')}",
                tags=["decided-case", f"decision:{decision}"],
                tenant=tenant_id,
                input=raw,
                expected=expected_from(row),
                answers=answers,
            )
        )
    return cases


def decided_dataset(tenant_id: str, domain: str, cases: list[EvalCase]) -> Dataset:
    name = f"{tenant_id.lower().replace('_', '-')}-decided"
    return Dataset(dataset=name, domain=domain, source="decided-cases", cases=cases,
                   description=f"Finished cases of {tenant_id} with what people decided.")  # fmt: skip
