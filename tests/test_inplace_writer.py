"""SQLite's in-place writer (app/db/inplace.py): compiled statements bind and read like the ORM, and
the log file stays bounded although the writer's own connection never checkpoints it."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, update

from app.db.inplace import CHECKPOINT_EVERY, WAL_KEEP_BYTES, SqliteQuery, SqliteWriter
from app.db.models import CaseJob, table_of

JOBS = table_of(CaseJob)


async def test_the_log_is_checkpointed_and_kept_small_under_in_place_writes_alone(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    writer = SqliteWriter(str(path))
    body = "x" * 20_000  # five pages a transaction
    transactions = CHECKPOINT_EVERY * 20
    wal = path.with_name(path.name + "-wal")
    try:
        for _ in range(transactions):
            await writer.run(lambda c: c.execute("INSERT INTO t (body) VALUES (?)", (body,)))
            await asyncio.sleep(0)  # let the writer's thread checkpoint as it would between requests
        await asyncio.sleep(0.2)
        size = wal.stat().st_size  # before closing: the last connection to close removes the log
    finally:
        await writer.close()
    assert transactions * len(body) > 3 * WAL_KEEP_BYTES  # without checkpoints the log would hold it all
    assert size <= WAL_KEEP_BYTES + 2 * CHECKPOINT_EVERY * 6 * 4096
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT COUNT(*) FROM t").fetchone() == (transactions,)


async def test_a_compiled_statement_binds_its_literals_and_reads_rows_as_the_orm_does(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with sqlite3.connect(path) as setup:
        setup.execute(
            "CREATE TABLE case_jobs (job_id INTEGER PRIMARY KEY, kind TEXT, tenant_id TEXT, exception_id TEXT,"
            " payload TEXT, status TEXT, owner TEXT, lease_until TEXT, run_after TEXT, attempts INTEGER,"
            " created_at TEXT, finished_at TEXT, error TEXT)"
        )
        setup.execute(
            "INSERT INTO case_jobs VALUES (1, 'answer', 't', 'A', '{\"n\": 1}', 'queued', NULL, NULL,"
            " '2026-01-01 00:00:00.000000', 0, '2026-01-01 00:00:00.000000', NULL, NULL)"
        )
    take = SqliteQuery(
        update(JOBS)
        .where(JOBS.c.job_id == bindparam("job"), JOBS.c.status == "queued")
        .values(status="running", lease_until=bindparam("until", type_=JOBS.c.lease_until.type))
        .returning(*JOBS.c),
        returns=list(JOBS.c),
    )
    until = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    writer = SqliteWriter(str(path))
    try:
        row: Any = await writer.run(
            lambda c: c.execute(take.sql, take.params({"job": 1, "until": until})).fetchone()
        )
        again = await writer.run(
            lambda c: c.execute(take.sql, take.params({"job": 1, "until": until})).fetchone()
        )
    finally:
        await writer.close()
    job = take.row(row)
    assert job["status"] == "running" and job["payload"] == {"n": 1}  # "queued" was bound from the statement
    assert job["lease_until"] == until and job["created_at"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert again is None  # no longer queued
