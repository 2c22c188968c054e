"""Writing what the graph decided into the system of record.

The audit trail is not projected: the graph's event sink (``app.cases.events``) wrote each event,
and the rows it implies (tool executions, approvals), as the nodes finished. After every run or
resume, ``project`` writes the rest from the graph's state: the case row (status, canonical record,
the result without what the events already hold) and the playbook row (the plan, the playbook as
operators see it, the policy's selection). Projecting twice writes the same values.

Once a finished case is projected, the tables are its whole record (``app.cases.record``) and its
checkpoints can go (``CaseService.record_result``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases.record import playbook_info, selection_of, stored_result
from app.db.models import ExceptionCase, PlaybookState
from app.db.types import utc_now
from packs.common import FINISHED_STATUSES


async def project(
    session: AsyncSession, case: ExceptionCase, result: dict[str, Any], values: dict[str, Any]
) -> None:
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
    case.result = stored_result(result)
    case.processing = "waiting" if result.get("pending") else "done"
    if case.status in FINISHED_STATUSES and case.resolved_at is None:
        case.resolved_at = utc_now()
    await _playbook_state(session, case, values)


async def _playbook_state(session: AsyncSession, case: ExceptionCase, values: dict[str, Any]) -> None:
    """Create or update the case's playbook row once the policy decided (a case that never got that
    far has none): one upsert, no read."""
    policy = values.get("policy")
    if policy is None:
        return
    plan = values.get("plan") or []
    cursor = values.get("cursor", 0)
    row = {
        "playbook_id": (values.get("playbook") or {}).get("id"),
        "playbook": playbook_info(values),
        "steps": plan,
        "current_step": plan[cursor]["order"] if cursor < len(plan) else None,
        "selection": selection_of(policy),
        "updated_at": utc_now(),
    }
    connection = await session.connection()
    construct = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    statement = construct(PlaybookState).values(
        tenant_id=case.tenant_id, exception_id=case.exception_id, **row
    )
    await connection.execute(
        statement.on_conflict_do_update(index_elements=["tenant_id", "exception_id"], set_=row)
    )
