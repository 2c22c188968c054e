"""What a finished case costs on disk: its checkpoints plus its rows in the system of record.

Measured on the pipeline pair's own SQLite files after the rounds, for the cases that finished
(status RESOLVED, ESCALATED, REJECTED or CLOSED_WITHOUT_ACTION, processing done): the bench's mix.
A case waiting for a person is still working state and is not counted.

Each table's share is what SQLite really spends on it, pages of the table and of its indexes
(``dbstat``), times the part of the table's stored bytes that belong to finished cases (``length`` of
every value as a blob, summed over their rows). The tables counted:

* the checkpointer's ``checkpoints`` and ``writes`` rows of the case's thread (``tenant:exception``);
* every table of the database that holds ``tenant_id`` and ``exception_id`` (the case, its events,
  approvals, playbook state, tool executions), and the ingest ``runs`` row that brought the case.

Free pages (left by deleted checkpoints, reused by the next cases) belong to no case. ``logical`` is
the same sum without page and index overhead: the bytes of the values alone.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from packs.common import FINISHED_STATUSES

CHECKPOINT_TABLES = ("checkpoints", "writes")


@dataclass(frozen=True)
class CaseStorage:
    finished_cases: int
    checkpoint_bytes: float
    """Per finished case: its checkpoints and writes, with their share of pages and indexes."""
    table_bytes: float
    """Per finished case: its rows in the system of record, with their share of pages and indexes."""
    logical_bytes: float
    """Per finished case: the stored values alone, checkpoints and rows."""
    bytes_by_table: dict[str, float]

    @property
    def bytes_per_case(self) -> float:
        return self.checkpoint_bytes + self.table_bytes


def _columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]


def _row_bytes(columns: list[str], alias: str) -> str:
    """SQL summing the stored length of every column of a row."""
    return " + ".join(f'COALESCE(LENGTH(CAST({alias}."{c}" AS BLOB)), 0)' for c in columns)


def _pages(connection: sqlite3.Connection) -> dict[str, int]:
    """Bytes of pages per table, its indexes included."""
    owner = dict(
        connection.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')")
    )
    pages: dict[str, int] = {}
    for name, size in connection.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
        table = owner.get(name, name)
        pages[table] = pages.get(table, 0) + int(size)
    return pages


def _share(connection: sqlite3.Connection, table: str, where: str) -> tuple[float, int]:
    """(physical bytes, logical bytes) of the rows of ``table`` matching ``where`` (alias ``t``)."""
    columns = _columns(connection, table)
    every = _row_bytes(columns, "t")
    mine, total = connection.execute(
        f'SELECT SUM(CASE WHEN {where} THEN {every} ELSE 0 END), SUM({every}) FROM "{table}" t'
    ).fetchone()
    if not mine:
        return 0.0, 0
    return _pages(connection).get(table, 0) * mine / total, int(mine)


def measure_case_storage(db_path: Path, checkpoint_path: Path) -> CaseStorage:
    """Bytes per finished case (see the module docstring); zeros when no case finished."""
    statuses = ", ".join(f"'{status}'" for status in sorted(FINISHED_STATUSES))
    physical: dict[str, float] = {}
    logical = 0
    with sqlite3.connect(db_path) as db:
        db.execute(
            "CREATE TEMP TABLE finished_cases AS SELECT tenant_id, exception_id, run_id FROM exceptions "
            f"WHERE status IN ({statuses}) AND processing = 'done'"
        )
        count = db.execute("SELECT COUNT(*) FROM finished_cases").fetchone()[0]
        threads = [(f"{t}:{e}",) for t, e in db.execute("SELECT tenant_id, exception_id FROM finished_cases")]
        tables = [
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            columns = _columns(db, table)
            if "tenant_id" in columns and "exception_id" in columns:
                where = (
                    "EXISTS (SELECT 1 FROM finished_cases f WHERE f.tenant_id = t.tenant_id AND "
                    "f.exception_id = t.exception_id)"
                )
            elif table == "runs":
                where = "t.run_id IN (SELECT run_id FROM finished_cases)"
            else:
                continue
            share, values = _share(db, table, where)
            if values:
                physical[table], logical = share, logical + values
    checkpoints = 0.0
    if checkpoint_path.exists():
        with sqlite3.connect(checkpoint_path) as saver:
            saver.execute("CREATE TEMP TABLE finished_threads (thread_id TEXT PRIMARY KEY)")
            saver.executemany("INSERT OR IGNORE INTO finished_threads VALUES (?)", threads)
            present = {
                name for (name,) in saver.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            for table in CHECKPOINT_TABLES:
                if table in present:
                    share, values = _share(
                        saver, table, "t.thread_id IN (SELECT thread_id FROM finished_threads)"
                    )
                    checkpoints, logical = checkpoints + share, logical + values
                    if values:
                        physical[f"checkpoint {table}"] = share
    per = 1 / count if count else 0.0
    return CaseStorage(
        finished_cases=count,
        checkpoint_bytes=checkpoints * per,
        table_bytes=sum(v for k, v in physical.items() if not k.startswith("checkpoint ")) * per,
        logical_bytes=logical * per,
        bytes_by_table={table: value * per for table, value in sorted(physical.items())},
    )
