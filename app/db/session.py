"""Engines and sessions. One URL configures both: ``sqlite:///...`` or ``postgresql://...``.

The app uses the async drivers (aiosqlite, psycopg 3); migrations use the sync ones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Insert, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.db.inplace import WAL_KEEP_BYTES, SqliteQuery, SqliteWriter


def async_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def sync_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        return str(parsed.set(drivername="sqlite"))
    if parsed.drivername.startswith(("postgresql", "postgres")):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def is_sqlite(url: str) -> bool:
    return make_url(url).drivername.startswith("sqlite")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(async_url(url), connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(async_url(url), pool_size=10, max_overflow=10, pool_pre_ping=True)


class Database:
    """The engine and a session factory; ``session()`` commits on success and rolls back on error."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.inplace = SqliteWriter(str(make_url(url).database)) if is_sqlite(url) else None
        """SQLite only: short write transactions on the hot path of a case (``app.db.inplace``)."""

    async def write_returning(self, query: SqliteQuery, params: dict[str, Any]) -> dict[str, Any] | None:
        """One statement that writes and returns at most one row, in a transaction of its own: on
        SQLite through the in-place writer (no thread hops, no ORM), elsewhere on the engine."""
        if self.inplace is not None:
            inplace = self.inplace

            def work(connection: sqlite3.Connection) -> dict[str, Any] | None:
                found = connection.execute(query.sql, query.params(params)).fetchone()
                return query.row(found) if found is not None else None

            return await inplace.run(work)
        async with self.engine.begin() as connection:
            row = (await connection.execute(query.statement, params)).one_or_none()
        return dict(row._mapping) if row is not None else None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    def insert_new_only(self, model: type[Any]) -> Insert:
        """``INSERT ... ON CONFLICT DO NOTHING`` in this database's dialect: rows whose key is already
        stored are skipped, not an error (add ``.returning(...)`` to learn which were inserted)."""
        construct = sqlite_insert if is_sqlite(self.url) else postgresql_insert
        return construct(model).on_conflict_do_nothing()

    async def close(self) -> None:
        if self.inplace is not None:
            await self.inplace.close()
        await self.engine.dispose()
