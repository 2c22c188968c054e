"""Storing accepted exceptions and their ingest run in one transaction, on SQLite's in-place writer.

An ingest request's one write. Through the async driver and a session it cost about as much CPU as
the rest of the request (two statements, each a hop to the driver's thread and back, plus the
session's own bookkeeping); on the in-place writer (``app/db/inplace.py``) it is one short
transaction on the event loop, or in the writer's thread when another process holds SQLite's write
lock. Same statements, same outcome as the engine's path in ``CaseService.ingest`` (used on
PostgreSQL): an ``Idempotency-Key`` is claimed by inserting the run row first, an exception already
stored is skipped by ``ON CONFLICT DO NOTHING``, and the ``process`` job of each new case is written by
the trigger of migration 0008 in the statement that inserts it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.db.inplace import SqliteStatement
from app.db.models import ExceptionCase, Run, table_of

CASE_COLUMNS = ("tenant_id", "exception_id", "source_system", "reported_type", "severity", "raw", "processing",
                "idempotency_key", "run_id", "status", "events_synced", "received_at", "updated_at")  # fmt: skip
RUN_COLUMNS = ("run_id", "tenant_id", "kind", "exception_count", "idempotency_key", "exception_ids", "created_by",
               "created_at")  # fmt: skip
EARLIER_RUN = "SELECT exception_ids FROM runs WHERE tenant_id = ? AND idempotency_key = ?"


@dataclass(frozen=True)
class Stored:
    """What the transaction did: the ids to answer (an earlier run's, when its key was taken) and
    which exceptions were new (stored now, their jobs queued)."""

    ids: list[str]
    new: list[str]


class SqliteAccepting:
    def __init__(self) -> None:
        self.case = SqliteStatement.insert(table_of(ExceptionCase), CASE_COLUMNS)
        self.run = SqliteStatement.insert(table_of(Run), RUN_COLUMNS)

    def store(
        self, rows: list[dict[str, Any]], run: dict[str, Any]
    ) -> Callable[[sqlite3.Connection], Stored]:
        """The work for ``SqliteWriter.run``: the run row (first when it claims a key), then each case."""
        keyed = run["idempotency_key"] is not None

        def work(connection: sqlite3.Connection) -> Stored:
            if keyed and connection.execute(self.run.sql, self.run.params(run)).rowcount != 1:
                # taken by an earlier request (a concurrent one waited for SQLite's write lock)
                (earlier,) = connection.execute(
                    EARLIER_RUN, (run["tenant_id"], run["idempotency_key"])
                ).fetchone()
                return Stored(list(json.loads(earlier)), [])
            new = [
                row["exception_id"]
                for row in rows
                if connection.execute(self.case.sql, self.case.params(row)).rowcount == 1
            ]
            if not keyed:
                connection.execute(self.run.sql, self.run.params(run))
            return Stored(list(run["exception_ids"]), new)

        return work


SQLITE = SqliteAccepting()
