"""Checkpointers: a SQLite file by default, PostgreSQL beside a PostgreSQL database, memory in tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

CheckpointKind = Literal["memory", "sqlite", "postgres"]


@asynccontextmanager
async def open_checkpointer(
    kind: CheckpointKind, path: Path | None = None, *, url: str | None = None
) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """Yield a ready checkpointer. The SQLite file (and its folder) is created on first use; for
    PostgreSQL, ``url`` is a plain ``postgresql://`` connection string."""
    if kind == "memory":
        yield InMemorySaver()
        return
    if kind == "postgres":
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        if url is None:
            raise ValueError("a PostgreSQL checkpointer needs a connection URL")
        async with AsyncPostgresSaver.from_conn_string(url) as postgres:
            await postgres.setup()
            yield postgres
        return
    if path is None:
        raise ValueError("a SQLite checkpointer needs a file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.setup()
        yield saver
