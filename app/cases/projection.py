"""Writing what the graph decided into the system of record.

The graph's checkpoint holds the working state; the tables hold what operators and reports query.
After every run or resume, ``project`` copies the new part of the audit trail into
``exception_events`` (append-only, numbered), updates the case row, the approval rows, the playbook
state and the tool executions. Events are copied from where the last projection stopped, so
projecting twice adds nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Approval, ExceptionCase, ExceptionEvent, PlaybookState, ToolExecution
from app.db.types import utc_now
from packs.common import FINISHED_STATUSES

DECISION_STATUS = {"approve": "APPROVED", "edit": "EDITED", "reject": "REJECTED", "expire": "EXPIRED",
                   "takeover": "TAKEN_OVER"}  # fmt: skip


def _when(value: str | None) -> datetime:
    return datetime.fromisoformat(value) if value else utc_now()


async def project(
    session: AsyncSession, case: ExceptionCase, result: dict[str, Any], values: dict[str, Any]
) -> None:
    audit: list[dict[str, Any]] = values.get("audit", [])
    first_projection = case.events_synced == 0
    fresh = audit[case.events_synced :]
    rows = []
    for offset, event in enumerate(fresh):
        actor = event.get("actor", {})
        rows.append(
            {
                "tenant_id": case.tenant_id, "exception_id": case.exception_id,
                "seq": case.events_synced + offset + 1, "type": event["type"], "stage": event["stage"],
                "actor_type": actor.get("type", "agent"), "actor_id": actor.get("id", "exops"),
                "at": _when(event.get("at")), "pack_versions": event.get("packVersions", {}),
                "data": event.get("data", {}),
            }
        )  # fmt: skip
        await _side_tables(session, case, event)
    if rows:  # one multi-row INSERT: a case adds about a dozen events per run
        await session.execute(insert(ExceptionEvent), rows)
    case.events_synced = len(audit)
    exception = values.get("exception") or {}
    case.exception_type = result.get("exceptionType")
    case.severity = result.get("severity")
    case.status = result.get("resolutionStatus") or case.status
    case.actionability = result.get("actionability")
    case.playbook_id = result.get("selectedPlaybookId") or result.get("recommendedPlaybookId")
    case.assigned_group = result.get("assignedGroup")
    case.confidence = result.get("confidence")
    case.summary = result.get("summary")
    case.record = exception or None
    case.result = result
    case.processing = "waiting" if result.get("pending") else "done"
    if case.status in FINISHED_STATUSES and case.resolved_at is None:
        case.resolved_at = utc_now()
    await _playbook_state(session, case, values, exists=not first_projection)


async def _side_tables(session: AsyncSession, case: ExceptionCase, event: dict[str, Any]) -> None:
    data = event.get("data", {})
    kind = event["type"]
    if kind == "approval_requested":
        session.add(
            Approval(
                approval_id=data["approvalId"], tenant_id=case.tenant_id, exception_id=case.exception_id,
                status="PENDING", severity=data.get("severity"), payload=data,
                created_at=_when(data.get("requestedAt")), deadline=_when(data.get("deadline")),
            )
        )  # fmt: skip
        await session.flush()
    elif kind == "approval_decided":
        approval = await session.get(Approval, (case.tenant_id, data["approvalId"]))
        if approval is not None:
            approval.status = DECISION_STATUS.get(data.get("decision", ""), "DECIDED")
            approval.decision = data.get("decision")
            approval.decided_by = (data.get("actor") or {}).get("id")
            approval.decided_at = _when(data.get("decidedAt"))
            approval.comment = data.get("comment")
            approval.reason = data.get("reason")
    elif kind in ("tool_call", "rollback"):
        session.add(
            ToolExecution(
                tenant_id=case.tenant_id, exception_id=case.exception_id, tool=data.get("tool", "?"),
                status=data.get("status", "?"), mode=data.get("mode") or "dry-run",
                attempts=int(data.get("attempts") or 0), latency_ms=float(data.get("latencyMs") or 0.0),
                arguments=data.get("arguments") or {}, request=data.get("request") or {},
                response=data.get("response"), error=data.get("error"), at=_when(event.get("at")),
                breaker=data.get("breaker"), attempt_log=data.get("attemptLog"),
            )
        )  # fmt: skip


async def _playbook_state(
    session: AsyncSession, case: ExceptionCase, values: dict[str, Any], *, exists: bool
) -> None:
    """Create or update the case's playbook row (``exists`` is False at the first projection: there is
    nothing to look up yet)."""
    plan = values.get("plan")
    if plan is None:
        return
    state = await session.get(PlaybookState, (case.tenant_id, case.exception_id)) if exists else None
    if state is None:
        state = PlaybookState(tenant_id=case.tenant_id, exception_id=case.exception_id, steps=[])
        session.add(state)
    playbook = values.get("playbook") or {}
    cursor = values.get("cursor", 0)
    state.playbook_id = playbook.get("id")
    state.playbook = playbook or None
    state.steps = plan
    state.current_step = plan[cursor]["order"] if cursor < len(plan) else None


async def pending_approval(session: AsyncSession, tenant_id: str, exception_id: str) -> Approval | None:
    rows = await session.execute(
        select(Approval).where(
            Approval.tenant_id == tenant_id,
            Approval.exception_id == exception_id,
            Approval.status == "PENDING",
        )
    )
    return rows.scalars().first()
