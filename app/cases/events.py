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

Cost: a case stores about nine batches, one per node, so each is one transaction in one go. On
PostgreSQL that is a pooled connection per batch (concurrent runs do not queue). On SQLite, where
the database serializes writers anyway, going through the async driver made every statement a hop
to its thread and back, and those hops (about eight per batch) cost ten times the CPU of the writing
itself. So the sink writes a batch at once, in place, when SQLite's write lock is free (a few
inserts, no fsync in WAL mode: a fraction of a millisecond), and otherwise hands the whole
transaction to a thread of its own, which waits for the lock; it never blocks the event loop on
another writer. Values are converted by the columns' own SQLAlchemy types, so the rows read back as
any other.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy import Table, case, func, select, update
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import make_url

from app.db.models import Approval, ExceptionEvent, ToolExecution
from app.db.session import Database, is_sqlite
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
        self._sqlite = _SqliteWriter(str(make_url(db.url).database)) if is_sqlite(db.url) else None
        self._events = db.insert_new_only(ExceptionEvent)
        self._approvals = db.insert_new_only(Approval)
        self._tools = db.insert_new_only(ToolExecution)

    async def close(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()

    async def write(self, case_key: CaseKey, events: Sequence[KeyedEvent]) -> None:
        if not events:
            return
        batch = Batch(case_key, events)
        if self._sqlite is not None:
            await self._sqlite.write(batch)
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


class _SqliteStatement:
    """A statement on the sink's own SQLite connection, its values converted by the columns' types."""

    def __init__(self, sql: str, table: Table, names: Sequence[str]) -> None:
        dialect = SQLiteDialect_pysqlite()
        self.sql = sql
        self.names = list(names)
        identity: Callable[[Any], Any] = lambda value: value  # noqa: E731
        self.convert = [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) or identity
            for name in self.names
        ]

    def params(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(convert(row.get(name)) for name, convert in zip(self.names, self.convert, strict=True))


def _insert(table: Table, names: Sequence[str]) -> _SqliteStatement:
    columns = ", ".join(names)
    marks = ", ".join("?" for _ in names)
    return _SqliteStatement(
        f"INSERT INTO {table.name} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING", table, names
    )


EVENT_COLUMNS = ("tenant_id", "exception_id", "seq", "event_key", "type", "stage", "actor_type", "actor_id", "at",
                 "pack_versions", "data")  # fmt: skip
APPROVAL_COLUMNS = ("approval_id", "tenant_id", "exception_id", "status", "severity", "payload", "created_at",
                    "deadline")  # fmt: skip
DECIDED_COLUMNS = (
    "status",
    "decision",
    "decided_by",
    "decided_at",
    "comment",
    "reason",
    "tenant_id",
    "approval_id",
)
TOOL_COLUMNS = ("tenant_id", "exception_id", "tool", "status", "mode", "attempts", "latency_ms", "arguments",
                "request", "response", "error", "at", "breaker", "attempt_log")  # fmt: skip


class _SqliteWriter:
    """Two SQLite connections: one used in place, which never waits for the write lock (it gives up
    at once, and checkpoints no WAL), and one in a thread of its own, which does wait."""

    LAST_SEQ = (
        "SELECT COALESCE(MAX(seq), 0), COUNT(CASE WHEN event_key = ? THEN 1 END) FROM exception_events "
        "WHERE tenant_id = ? AND exception_id = ?"
    )

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exops-events")
        self._connection: sqlite3.Connection | None = None
        self._in_place: sqlite3.Connection | None = None
        events, approvals, tools = (model.__table__ for model in (ExceptionEvent, Approval, ToolExecution))
        assert isinstance(events, Table) and isinstance(approvals, Table) and isinstance(tools, Table)
        self._events = _insert(events, EVENT_COLUMNS)
        self._approvals = _insert(approvals, APPROVAL_COLUMNS)
        self._tools = _insert(tools, TOOL_COLUMNS)
        sets = ", ".join(f"{name} = ?" for name in DECIDED_COLUMNS[:-2])
        self._decided = _SqliteStatement(
            f"UPDATE approvals SET {sets} WHERE tenant_id = ? AND approval_id = ?", approvals, DECIDED_COLUMNS
        )

    async def write(self, batch: Batch) -> None:
        if self._in_place is None:
            self._in_place = self._open(waits=False)
        try:
            self._in_place.execute("BEGIN IMMEDIATE")  # the write lock first: no read to upgrade later
        except sqlite3.OperationalError:  # another writer holds it: wait in the thread, not here
            await asyncio.get_running_loop().run_in_executor(self._thread, self._write, batch)
            return
        self._store(self._in_place, batch)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)
        if self._in_place is not None:
            self._in_place.close()
            self._in_place = None

    def _open(self, *, waits: bool) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=30 if waits else 0, isolation_level=None, check_same_thread=False
        )
        pragmas = ["journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"]
        pragmas += ["busy_timeout=30000"] if waits else ["busy_timeout=0", "wal_autocheckpoint=0"]
        for pragma in pragmas:
            connection.execute(f"PRAGMA {pragma}")
        return connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _write(self, batch: Batch) -> None:
        if self._connection is None:
            self._connection = self._open(waits=True)
        self._connection.execute("BEGIN IMMEDIATE")
        self._store(self._connection, batch)

    def _store(self, connection: sqlite3.Connection, batch: Batch) -> None:
        """Write the batch in the transaction ``connection`` just began, and commit it."""
        try:
            key = batch.case
            last, seen = connection.execute(
                self.LAST_SEQ, (batch.first_key, key.tenant_id, key.exception_id)
            ).fetchone()
            if not seen:
                statement = self._events
                connection.executemany(
                    statement.sql, [statement.params(row) for row in batch.event_rows(last)]
                )
                for kind, row in batch.side_rows():
                    statement = {"approval": self._approvals, "decided": self._decided, "tool": self._tools}[
                        kind
                    ]
                    connection.execute(statement.sql, statement.params(row))
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
