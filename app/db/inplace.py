"""Short SQLite write transactions without a thread hop per statement, for the per-case hot path.

Each case writes the database about ten times as it runs (one batch of audit events per graph node,
then its projection). Through the async driver every statement is a hop to the driver's thread and
back; on a 2-core machine those hops cost several times the CPU of the writing itself. Ingestion
stores each request's cases and run the same way. A
``SqliteWriter`` runs a whole transaction at once instead: in place, on the event loop, when SQLite's
write lock is free (a few inserts or updates, no fsync in WAL mode: a fraction of a millisecond),
and otherwise in a thread of its own, which waits for the lock. The in-place connection never waits
(busy timeout 0) and never checkpoints the WAL, so the event loop is never blocked by another
writer or by the disk. The writer's thread checkpoints instead, every ``CHECKPOINT_EVERY`` in-place
transactions, with this process's writes queued behind it: with most writes in place, the pool's
connections, which checkpoint as they commit, would otherwise leave the WAL to grow without end
(51 MB after 3,200 ingest requests, measured), and a checkpoint racing this process's own writes
never folds the whole log in, so SQLite never starts it again from its beginning.

Values are converted by the columns' own SQLAlchemy types (``SqliteStatement``), so the rows read
back through the ORM like any other. PostgreSQL has no such need (its driver is asynchronous
itself): callers use the engine there.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from sqlalchemy import Table
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

T = TypeVar("T")
DIALECT = SQLiteDialect_pysqlite()
CHECKPOINT_EVERY = 64
"""In-place transactions between two checkpoints of the WAL by the writer's thread. An ingest request
or a node's events touch about 15 pages, so this is about SQLite's own default (1,000 pages): the
log file stays at a few MB (it is reused from its start after each complete checkpoint)."""
WAL_KEEP_BYTES = 8 * 1024 * 1024
"""What is kept of the log file when it is reset after a complete checkpoint (SQLite keeps all of it,
however large a burst made it, unless told)."""
log = logging.getLogger("exops.db")


def _same(value: Any) -> Any:
    return value


class SqliteStatement:
    """A statement with ``?`` parameters named by ``names``, each converted as ``table``'s column
    of that name converts it (JSON to text, datetimes to SQLite's format)."""

    def __init__(self, sql: str, table: Table, names: Sequence[str]) -> None:
        self.sql = sql
        self.names = list(names)
        self.convert = [
            table.c[name].type.dialect_impl(DIALECT).bind_processor(DIALECT) or _same for name in self.names
        ]

    def params(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(convert(row.get(name)) for name, convert in zip(self.names, self.convert, strict=True))

    @classmethod
    def insert(
        cls, table: Table, names: Sequence[str], *, on_conflict: str = "DO NOTHING"
    ) -> SqliteStatement:
        columns, marks = ", ".join(names), ", ".join("?" for _ in names)
        return cls(
            f"INSERT INTO {table.name} ({columns}) VALUES ({marks}) ON CONFLICT {on_conflict}", table, names
        )

    @classmethod
    def update(cls, table: Table, names: Sequence[str], keys: Sequence[str]) -> SqliteStatement:
        sets = ", ".join(f"{name} = ?" for name in names)
        where = " AND ".join(f"{key} = ?" for key in keys)
        return cls(f"UPDATE {table.name} SET {sets} WHERE {where}", table, [*names, *keys])


class SqliteQuery:
    """A Core statement compiled once for SQLite: its SQL with ``?`` marks, its parameters converted by
    their own types (the statement's literal values included), and, for a statement ``RETURNING`` a
    table's columns, its rows converted back as the ORM would read them."""

    def __init__(self, statement: Executable, returns: Sequence[Any] = ()) -> None:
        self.statement = statement
        compiled = cast(ClauseElement, statement).compile(dialect=DIALECT)
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        self._compiled = compiled
        self.names = list(compiled.positiontup or ())
        self.convert = {
            name: compiled.binds[name].type.dialect_impl(DIALECT).bind_processor(DIALECT) or _same
            for name in self.names
        }
        self.columns = [column.name for column in returns]
        self.read = [
            column.type.dialect_impl(DIALECT).result_processor(DIALECT, None) or _same for column in returns
        ]

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        bound = self._compiled.construct_params(dict(values))
        assert bound is not None
        return tuple(self.convert[name](bound[name]) for name in self.names)

    def row(self, values: Sequence[Any]) -> dict[str, Any]:
        """A returned row by column name, each value as its column's type reads it."""
        return {name: read(value) for name, read, value in zip(self.columns, self.read, values, strict=True)}


class SqliteWriter:
    def __init__(self, path: str) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exops-sqlite-writes")
        self._waiting: sqlite3.Connection | None = None
        self._in_place: sqlite3.Connection | None = None
        self._since_checkpoint = 0
        self._checkpointing: asyncio.Future[None] | None = None

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` in one write transaction, committed (rolled back if it raises)."""
        if self._in_place is None:
            self._in_place = self._open(waits=False)
        if self._checkpointing is not None and not self._checkpointing.done():
            # behind the checkpoint, in the thread: a write in place meanwhile would leave it a log
            # never fully folded in, which SQLite then never starts again from its beginning
            return await asyncio.get_running_loop().run_in_executor(self._thread, self._run_waiting, work)
        try:
            self._in_place.execute("BEGIN IMMEDIATE")  # the write lock first: no read to upgrade later
        except sqlite3.OperationalError:  # another writer holds it: wait in the thread, not here
            return await asyncio.get_running_loop().run_in_executor(self._thread, self._run_waiting, work)
        done = self._finish(self._in_place, work)
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY and (
            self._checkpointing is None or self._checkpointing.done()
        ):
            self._since_checkpoint = 0
            self._checkpointing = asyncio.get_running_loop().run_in_executor(self._thread, self._checkpoint)
        return done

    def _checkpoint(self) -> None:
        """Fold the WAL into the database as far as readers allow, without waiting for anyone."""
        try:
            if self._waiting is None:
                self._waiting = self._open(waits=True)
            self._waiting.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:  # the next one tries again; nothing is lost meanwhile, the WAL only grows
            log.exception("checkpointing the SQLite log failed")

    async def close(self) -> None:
        if self._checkpointing is not None:
            await self._checkpointing
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close_waiting)
        self._thread.shutdown(wait=True)
        if self._in_place is not None:
            self._in_place.close()
            self._in_place = None

    def _open(self, *, waits: bool) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=30 if waits else 0, isolation_level=None, check_same_thread=False
        )
        pragmas = [
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            f"journal_size_limit={WAL_KEEP_BYTES}",
        ]
        pragmas += ["busy_timeout=30000"] if waits else ["busy_timeout=0", "wal_autocheckpoint=0"]
        for pragma in pragmas:
            connection.execute(f"PRAGMA {pragma}")
        return connection

    def _run_waiting(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._waiting is None:
            self._waiting = self._open(waits=True)
        self._waiting.execute("BEGIN IMMEDIATE")
        return self._finish(self._waiting, work)

    def _close_waiting(self) -> None:
        if self._waiting is not None:
            self._waiting.close()
            self._waiting = None

    @staticmethod
    def _finish(connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            done = work(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return done
