"""Reading cases and timelines back, always within one tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.cases.schemas import CaseSummary, Event
from app.db.models import ExceptionCase, ExceptionEvent


def summary(case: ExceptionCase) -> CaseSummary:
    return CaseSummary(
        exceptionId=case.exception_id, tenantId=case.tenant_id, sourceSystem=case.source_system,
        exceptionType=case.exception_type or case.reported_type, severity=case.severity,
        resolutionStatus=case.status, actionability=case.actionability, playbookId=case.playbook_id,
        assignedGroup=case.assigned_group, owner=(case.record or {}).get("owner"), confidence=case.confidence,
        summary=case.summary,
        processing=case.processing, receivedAt=case.received_at, updatedAt=case.updated_at,
    )  # fmt: skip


def filtered(
    tenant_id: str,
    *,
    status: str | None = None,
    severity: str | None = None,
    exception_type: str | None = None,
    text: str | None = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
) -> Select[ExceptionCase]:
    query = select(ExceptionCase).where(ExceptionCase.tenant_id == tenant_id)
    if status:
        query = query.where(ExceptionCase.status.in_(status.split(",")))
    if severity:
        query = query.where(ExceptionCase.severity.in_(severity.split(",")))
    if exception_type:
        query = query.where(ExceptionCase.exception_type == exception_type)
    if text:
        # The text is matched as typed: autoescape makes ``%``, ``_`` and the escape character itself
        # literal (LIKE ... ESCAPE '/', the same on SQLite and PostgreSQL), not wildcards.
        needle = text.lower()
        query = query.where(
            or_(
                func.lower(ExceptionCase.exception_id).contains(needle, autoescape=True),
                func.lower(func.coalesce(ExceptionCase.summary, "")).contains(needle, autoescape=True),
                func.lower(func.coalesce(ExceptionCase.exception_type, "")).contains(needle, autoescape=True),
                func.lower(ExceptionCase.source_system).contains(needle, autoescape=True),
            )
        )
    if received_from:
        query = query.where(ExceptionCase.received_at >= received_from)
    if received_to:
        query = query.where(ExceptionCase.received_at < received_to)
    return query


SEVERITY_RANK = case({"LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}, value=ExceptionCase.severity, else_=0)
"""Severity sorts by how severe it is (ascending: LOW first), not alphabetically."""

SORTS: dict[str, ColumnElement[Any] | InstrumentedAttribute[Any]] = {
    "receivedAt": ExceptionCase.received_at,
    "updatedAt": ExceptionCase.updated_at,
    "severity": SEVERITY_RANK,
    "status": ExceptionCase.status,
    "exceptionType": ExceptionCase.exception_type,
}


async def page(
    session: AsyncSession, query: Select[ExceptionCase], *, sort: str, limit: int, offset: int
) -> tuple[list[ExceptionCase], int, dict[str, int]]:
    descending = sort.startswith("-")
    column = SORTS[sort.lstrip("-")]
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    # Cases without a value (no type yet) come last either way, on SQLite as on PostgreSQL.
    direction = column.desc() if descending else column.asc()
    ordered = query.order_by(direction.nulls_last(), ExceptionCase.exception_id)
    rows = list((await session.execute(ordered.limit(limit).offset(offset))).scalars().all())
    sub = query.subquery()
    counts = await session.execute(select(sub.c.status, func.count()).group_by(sub.c.status))
    return rows, total, {status: count for status, count in counts.all()}


def event_view(row: ExceptionEvent) -> Event:
    return Event(seq=row.seq, type=row.type, stage=row.stage, actor={"type": row.actor_type, "id": row.actor_id},
                 at=row.at, packVersions=row.pack_versions, data=row.data)  # fmt: skip


async def events(
    session: AsyncSession, tenant_id: str, exception_id: str, *, types: list[str] | None = None,
    stage: str | None = None, actor_type: str | None = None, limit: int = 100, offset: int = 0,
) -> tuple[list[ExceptionEvent], int]:  # fmt: skip
    query = select(ExceptionEvent).where(
        ExceptionEvent.tenant_id == tenant_id, ExceptionEvent.exception_id == exception_id
    )
    if types:
        query = query.where(ExceptionEvent.type.in_(types))
    if stage:
        query = query.where(ExceptionEvent.stage == stage)
    if actor_type:
        query = query.where(ExceptionEvent.actor_type == actor_type)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (
        (await session.execute(query.order_by(ExceptionEvent.seq).limit(limit).offset(offset)))
        .scalars()
        .all()
    )
    return list(rows), total


def audit_trail(rows: list[ExceptionEvent]) -> list[dict[str, Any]]:
    return [event_view(row).model_dump(mode="json") for row in rows]
