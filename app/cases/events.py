"""The app's event sink: a case's audit events go straight into ``exception_events``, once each.

The graph hands over one node's events as the node finishes (``graph.events``), before LangGraph
checkpoints the node's update. They are written here in one transaction with the rows they imply:
a tool call or a rollback is also a ``tool_executions`` row, an approval request is the
``approvals`` row people answer, an approval decision closes that row. Each event's key
(``stage:visit:n``) is unique within its case (``uq_exception_events_key``). A node's batch is
stored whole or not at all, so a batch whose first key is already stored was stored before: a node
that runs again on resume (cut off after its events were stored, before its checkpoint) writes
nothing twice, side rows included, and its first run's record stands. The insert itself is
``ON CONFLICT DO NOTHING`` as well. New events are numbered on from the case's last ``seq``; a
case's runs are serialized, so nobody else numbers its events meanwhile.

Cost: a case stores about nine batches, one per node, so each is one transaction in one go: on
PostgreSQL a pooled connection per batch (concurrent runs do not queue), on SQLite the database's
in-place writer (``app.db.inplace``: through the async driver every statement was a hop to its
thread and back, and those hops cost ten times the CPU of the writing itself).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update

from app.db.inplace import SqliteStatement
from app.db.models import Approval, ExceptionEvent, ToolExecution, table_of
from app.db.session import Database
from app.db.types import utc_now
from graph.events import CaseKey, KeyedEvent

DECISION_STATUS = {"approve": "APPROVED", "edit": "EDITED", "reject": "REJECTED", "expire": "EXPIRED",
                   "takeover": "TAKEN_OVER"}  # fmt: skip
"""The approval row's status once the graph recorded a decision on it."""

Row = dict[str, Any]


def when(value: str | None) -> datetime:
    return datetime.fromisoformat(value) if value else utc_now()


class DatabaseEventSink:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._events = db.insert_new_only(ExceptionEvent)
        self._approvals = db.insert_new_only(Approval)
        self._tools = db.insert_new_only(ToolExecution)

    async def write(self, case_key: CaseKey, events: Sequence[KeyedEvent]) -> None:
        if not events:
            return
        batch = Batch(case_key, events)
        if self.db.inplace is not None:
            await self.db.inplace.run(SQLITE.store(batch))
            return
        async with self.db.engine.begin() as connection:
            last, seen = (
                await connection.execute(
                    select(
                        func.coalesce(func.max(ExceptionEvent.seq), 0),
                        func.count(case((ExceptionEvent.event_key == batch.first_key, 1))),
                    ).where(
                        ExceptionEvent.tenant_id == case_key.tenant_id,
                        ExceptionEvent.exception_id == case_key.exception_id,
                    )
                )
            ).one()
            if seen:
                return
            await connection.execute(self._events, batch.event_rows(last))
            for kind, row in batch.side_rows():
                if kind == "approval":
                    await connection.execute(self._approvals, row)
                elif kind == "tool":
                    await connection.execute(self._tools, row)
                else:
                    await connection.execute(
                        update(Approval)
                        .where(
                            Approval.tenant_id == row["tenant_id"], Approval.approval_id == row["approval_id"]
                        )
                        .values({k: v for k, v in row.items() if k not in ("tenant_id", "approval_id")})
                    )


class Batch:
    """One node's events for one case, as rows of the tables they land in."""

    def __init__(self, case_key: CaseKey, events: Sequence[KeyedEvent]) -> None:
        self.case = case_key
        self.events = events

    @property
    def first_key(self) -> str:
        return self.events[0].key

    def event_rows(self, last_seq: int) -> list[Row]:
        rows = []
        for number, (key, event) in enumerate(self.events, 1):
            actor = event["actor"]
            rows.append(
                {
                    "tenant_id": self.case.tenant_id, "exception_id": self.case.exception_id,
                    "seq": last_seq + number, "event_key": key, "type": event["type"], "stage": event["stage"],
                    "actor_type": actor["type"], "actor_id": actor["id"], "at": when(event["at"]),
                    "pack_versions": event["packVersions"], "data": event["data"],
                }
            )  # fmt: skip
        return rows

    def side_rows(self) -> list[tuple[str, Row]]:
        """("approval", a new approval row), ("decided", the decided approval's new values) and
        ("tool", a tool execution row), in event order."""
        tenant_id, exception_id = self.case.tenant_id, self.case.exception_id
        found: list[tuple[str, Row]] = []
        for _, event in self.events:
            data, kind = event["data"], event["type"]
            if kind == "approval_requested":
                found.append(("approval", {
                    "approval_id": data["approvalId"], "tenant_id": tenant_id, "exception_id": exception_id,
                    "status": "PENDING", "severity": data.get("severity"), "payload": data,
                    "created_at": when(data.get("requestedAt")), "deadline": when(data.get("deadline")),
                }))  # fmt: skip
            elif kind == "approval_decided":
                found.append(("decided", {
                    "tenant_id": tenant_id, "approval_id": data["approvalId"],
                    "status": DECISION_STATUS.get(data.get("decision", ""), "DECIDED"),
                    "decision": data.get("decision"), "decided_by": (data.get("actor") or {}).get("id"),
                    "decided_at": when(data.get("decidedAt")), "comment": data.get("comment"),
                    "reason": data.get("reason"),
                }))  # fmt: skip
            elif kind in ("tool_call", "rollback"):
                found.append(("tool", {
                    "tenant_id": tenant_id, "exception_id": exception_id, "tool": data.get("tool", "?"),
                    "status": data.get("status", "?"), "mode": data.get("mode") or "dry-run",
                    "attempts": int(data.get("attempts") or 0), "latency_ms": float(data.get("latencyMs") or 0.0),
                    "arguments": data.get("arguments") or {}, "request": data.get("request") or {},
                    "response": data.get("response"), "error": data.get("error"), "at": when(event["at"]),
                    "breaker": data.get("breaker"), "attempt_log": data.get("attemptLog"),
                }))  # fmt: skip
        return found


EVENT_COLUMNS = ("tenant_id", "exception_id", "seq", "event_key", "type", "stage", "actor_type", "actor_id", "at",
                 "pack_versions", "data")  # fmt: skip
APPROVAL_COLUMNS = ("approval_id", "tenant_id", "exception_id", "status", "severity", "payload", "created_at",
                    "deadline")  # fmt: skip
DECIDED_COLUMNS = ("status", "decision", "decided_by", "decided_at", "comment", "reason")
TOOL_COLUMNS = ("tenant_id", "exception_id", "tool", "status", "mode", "attempts", "latency_ms", "arguments",
                "request", "response", "error", "at", "breaker", "attempt_log")  # fmt: skip


class _SqliteBatches:
    """The sink's statements on SQLite's in-place writer."""

    LAST_SEQ = (
        "SELECT COALESCE(MAX(seq), 0), COUNT(CASE WHEN event_key = ? THEN 1 END) FROM exception_events "
        "WHERE tenant_id = ? AND exception_id = ?"
    )

    def __init__(self) -> None:
        self.events = SqliteStatement.insert(table_of(ExceptionEvent), EVENT_COLUMNS)
        self.side = {
            "approval": SqliteStatement.insert(table_of(Approval), APPROVAL_COLUMNS),
            "decided": SqliteStatement.update(
                table_of(Approval), DECIDED_COLUMNS, ("tenant_id", "approval_id")
            ),
            "tool": SqliteStatement.insert(table_of(ToolExecution), TOOL_COLUMNS),
        }

    def store(self, batch: Batch) -> Callable[[sqlite3.Connection], None]:
        def work(connection: sqlite3.Connection) -> None:
            key = batch.case
            last, seen = connection.execute(
                self.LAST_SEQ, (batch.first_key, key.tenant_id, key.exception_id)
            ).fetchone()
            if seen:
                return
            rows = [self.events.params(row) for row in batch.event_rows(last)]
            connection.executemany(self.events.sql, rows)
            for kind, row in batch.side_rows():
                statement = self.side[kind]
                connection.execute(statement.sql, statement.params(row))

        return work


SQLITE = _SqliteBatches()
