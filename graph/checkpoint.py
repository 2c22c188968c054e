"""Checkpointers: a SQLite file by default, in memory for tests (Postgres arrives with the database)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

CheckpointKind = Literal["memory", "sqlite"]


@asynccontextmanager
async def open_checkpointer(
    kind: CheckpointKind, path: Path | None = None
) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """Yield a ready checkpointer; the SQLite file (and its folder) is created on first use."""
    if kind == "memory":
        yield InMemorySaver()
        return
    if path is None:
        raise ValueError("a SQLite checkpointer needs a file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.setup()
        yield saver
