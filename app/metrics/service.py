"""Case metrics computed with SQL over the exceptions and approvals tables, one tenant at a time.

Aggregates run in the database (counts grouped by a column, a mean of durations) so the cost does not
grow with what the API process holds in memory. The duration arithmetic differs by dialect: SQLite has
no interval type (``julianday`` difference times 86400), PostgreSQL extracts the epoch of an interval.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Float, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db.models import Approval, ExceptionCase

FINISHED = ("RESOLVED", "REJECTED", "ESCALATED", "CLOSED_WITHOUT_ACTION")
WAITING = ("PENDING", "CLAIMED")
UNKNOWN = "UNKNOWN"


def duration_seconds(dialect: str) -> ColumnElement[Any]:
    """``resolved_at - received_at`` in seconds, in the dialect's own date arithmetic."""
    start, end = ExceptionCase.received_at, ExceptionCase.resolved_at
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract("epoch", end - start)


async def _grouped(
    session: AsyncSession, tenant_id: str, column: ColumnElement[Any] | InstrumentedAttribute[Any]
) -> dict[str, int]:
    label = func.coalesce(column, UNKNOWN)
    rows = await session.execute(
        select(label, func.count())
        .select_from(ExceptionCase)
        .where(ExceptionCase.tenant_id == tenant_id)
        .group_by(label)
    )
    return {str(key): int(count) for key, count in rows.all()}


async def tenant_metrics(session: AsyncSession, tenant_id: str, *, dialect: str) -> dict[str, Any]:
    """Every figure of the metrics response for one tenant (no other tenant's rows are read)."""
    mine = ExceptionCase.tenant_id == tenant_id
    by_status = await _grouped(session, tenant_id, ExceptionCase.status)
    by_actionability = await _grouped(session, tenant_id, ExceptionCase.actionability)
    outcome = ExceptionCase.result[("outcome", "outcome")].as_string()
    auto = (
        await session.execute(
            select(func.count()).where(mine, ExceptionCase.status.in_(FINISHED), outcome == "auto_resolved")
        )
    ).scalar_one()
    mttr = (
        await session.execute(
            select(func.avg(cast(duration_seconds(dialect), Float))).where(
                mine, ExceptionCase.status == "RESOLVED", ExceptionCase.resolved_at.is_not(None)
            )
        )
    ).scalar_one()
    pending = (
        await session.execute(
            select(func.count()).where(Approval.tenant_id == tenant_id, Approval.status.in_(WAITING))
        )
    ).scalar_one()
    recurring = ExceptionCase.result[("recurrenceOf", 0)].as_string()  # its first id, if it has one
    recurrences = (
        await session.execute(select(func.count()).where(mine, recurring.is_not(None)))
    ).scalar_one()
    finished = sum(by_status.get(status, 0) for status in FINISHED)
    return {
        "exceptionCount": sum(by_status.values()),
        "autoResolutionRate": round(auto / finished, 4) if finished else None,
        "mttrSeconds": round(float(mttr), 3) if mttr is not None else None,
        "actionableApprovedCount": by_actionability.get("ACTIONABLE_APPROVED_PROCESS", 0),
        "actionableNonApprovedCount": by_actionability.get("ACTIONABLE_NON_APPROVED_PROCESS", 0),
        "nonActionableCount": by_actionability.get("NON_ACTIONABLE_INFO_ONLY", 0),
        "pendingApprovals": int(pending),
        "escalations": by_status.get("ESCALATED", 0),
        "recurrences": int(recurrences),
        "closedWithoutAction": by_status.get("CLOSED_WITHOUT_ACTION", 0),
        "byStatus": by_status,
        "bySeverity": await _grouped(session, tenant_id, ExceptionCase.severity),
        "byType": await _grouped(
            session, tenant_id, func.coalesce(ExceptionCase.exception_type, ExceptionCase.reported_type)
        ),
    }
