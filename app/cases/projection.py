"""Writing what the graph decided into the system of record.

The audit trail is not projected: the graph's event sink (``app.cases.events``) wrote each event,
and the rows it implies (tool executions, approvals), as the nodes finished. After every run or
resume, ``project`` writes the rest from the graph's state, in one transaction: the case row (status,
canonical record, the result without what other rows already hold) and the playbook row (the plan,
the playbook as operators see it, the policy's selection). Projecting twice writes the same values.
Both are plain statements, an update and an upsert, with no read first: on SQLite through the
database's in-place writer (``app.db.inplace``), like the events.

Once a finished case is projected, the tables are its whole record (``app.cases.record``) and its
checkpoints can go (``CaseService.record_result``). With ``remember``, a finished case is also
queued for similar-case memory (``memory_queue``) in the same transaction: the indexer
(``app/memory``) takes it from there, and nothing is lost if the process dies before it does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert

from app.cases.record import playbook_info, selection_of, stored_result
from app.db.inplace import SqliteStatement
from app.db.models import ExceptionCase, MemoryQueue, PlaybookState, table_of
from app.db.session import Database
from app.db.types import utc_now
from packs.common import FINISHED_STATUSES

CASE_COLUMNS = ("exception_type", "severity", "status", "actionability", "playbook_id", "assigned_group", "confidence",
                "summary", "record", "result", "processing", "updated_at")  # fmt: skip
PLAYBOOK_COLUMNS = (
    "playbook_id",
    "playbook",
    "steps",
    "current_step",
    "waiting_step",
    "selection",
    "updated_at",
)


def case_row(result: dict[str, Any], values: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "exception_type": result.get("exceptionType"),
        "severity": result.get("severity"),
        "status": result.get("resolutionStatus") or "OPEN",
        "actionability": result.get("actionability"),
        "playbook_id": result.get("selectedPlaybookId") or result.get("recommendedPlaybookId"),
        "assigned_group": result.get("assignedGroup"),
        "confidence": result.get("confidence"),
        "summary": result.get("summary"),
        "record": values.get("exception") or None,
        "result": stored_result(result),
        "processing": "waiting" if result.get("pending") else "done",
        "updated_at": now,
    }


def playbook_row(result: dict[str, Any], values: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """The case's playbook row once the policy decided (a case that never got that far has none).
    ``waiting_step`` is the manual step the graph waits on: the only step a person can claim
    (``app.jobs.claims``)."""
    policy = values.get("policy")
    if policy is None:
        return None
    plan = values.get("plan") or []
    cursor = values.get("cursor", 0)
    pending = result.get("pending") or {}
    return {
        "playbook_id": (values.get("playbook") or {}).get("id"),
        "playbook": playbook_info(values),
        "steps": plan,
        "current_step": plan[cursor]["order"] if cursor < len(plan) else None,
        "waiting_step": pending.get("order") if pending.get("kind") == "manual_step" else None,
        "selection": selection_of(policy),
        "updated_at": now,
    }


async def project(
    db: Database, tenant_id: str, exception_id: str, result: dict[str, Any], values: dict[str, Any],
    *, remember: bool = False,
) -> None:  # fmt: skip
    """``remember``: queue the case for similar-case memory once it is finished."""
    now = utc_now()
    row = case_row(result, values, now)
    finished = row["status"] in FINISHED_STATUSES
    playbook = playbook_row(result, values, now)
    queue = finished and remember
    if db.inplace is not None:
        await db.inplace.run(SQLITE.project(tenant_id, exception_id, row, finished, playbook, queue))
        return
    async with db.engine.begin() as connection:
        resolved = {"resolved_at": func.coalesce(ExceptionCase.resolved_at, now)} if finished else {}
        updated = await connection.execute(
            update(ExceptionCase)
            .where(ExceptionCase.tenant_id == tenant_id, ExceptionCase.exception_id == exception_id)
            .values(**row, **resolved)
        )
        if updated.rowcount != 1:
            raise LookupError(f"no case {tenant_id}/{exception_id}")
        if playbook is not None:
            keys = {"tenant_id": tenant_id, "exception_id": exception_id}
            statement = postgresql_insert(PlaybookState).values(**keys, **playbook)
            await connection.execute(
                statement.on_conflict_do_update(index_elements=list(keys), set_=playbook)
            )
        if queue:
            entry = {"tenant_id": tenant_id, "exception_id": exception_id, "queued_at": now, "attempts": 0}
            await connection.execute(
                postgresql_insert(MemoryQueue)
                .values(**entry)
                .on_conflict_do_update(index_elements=["tenant_id", "exception_id"], set_={"queued_at": now})
            )


class _SqliteProjection:
    def __init__(self) -> None:
        cases, playbooks = table_of(ExceptionCase), table_of(PlaybookState)
        keys = ("tenant_id", "exception_id")
        self.open_case = SqliteStatement.update(cases, CASE_COLUMNS, keys)
        sets = ", ".join(f"{name} = ?" for name in CASE_COLUMNS)
        self.finished_case = SqliteStatement(
            f"UPDATE exceptions SET {sets}, resolved_at = COALESCE(resolved_at, ?) "
            "WHERE tenant_id = ? AND exception_id = ?",
            cases,
            [*CASE_COLUMNS, "resolved_at", *keys],
        )
        updates = ", ".join(f"{name} = excluded.{name}" for name in PLAYBOOK_COLUMNS)
        self.playbook = SqliteStatement.insert(
            playbooks,
            [*keys, *PLAYBOOK_COLUMNS],
            on_conflict=f"(tenant_id, exception_id) DO UPDATE SET {updates}",
        )
        self.queue = SqliteStatement.insert(
            table_of(MemoryQueue),
            [*keys, "queued_at", "attempts"],
            on_conflict="(tenant_id, exception_id) DO UPDATE SET queued_at = excluded.queued_at",
        )

    def project(
        self,
        tenant_id: str,
        exception_id: str,
        row: dict[str, Any],
        finished: bool,
        playbook: dict[str, Any] | None,
        queue: bool = False,
    ) -> Callable[[sqlite3.Connection], None]:
        keys = {"tenant_id": tenant_id, "exception_id": exception_id}

        def work(connection: sqlite3.Connection) -> None:
            statement = self.finished_case if finished else self.open_case
            updated = connection.execute(
                statement.sql, statement.params({**row, **keys, "resolved_at": row["updated_at"]})
            )
            if updated.rowcount != 1:
                raise LookupError(f"no case {tenant_id}/{exception_id}")
            if playbook is not None:
                connection.execute(self.playbook.sql, self.playbook.params({**keys, **playbook}))
            if queue:
                entry = {**keys, "queued_at": row["updated_at"], "attempts": 0}
                connection.execute(self.queue.sql, self.queue.params(entry))

        return work


SQLITE = _SqliteProjection()
