"""Checkpointers: a SQLite file by default, PostgreSQL beside a PostgreSQL database, memory in tests."""

from __future__ import annotations

import asyncio
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
        if url is None:
            raise ValueError("a PostgreSQL checkpointer needs a connection URL")
        async with _postgres_saver(url) as postgres:
            yield postgres
        return
    if path is None:
        raise ValueError("a SQLite checkpointer needs a file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.setup()
        yield saver


POSTGRES_CONNECTIONS = 10
"""Connections of one process's PostgreSQL checkpointer, and so how many of its reads and writes run
at once (a worker runs several cases at a time, each writing a checkpoint per step)."""


@asynccontextmanager
async def _postgres_saver(url: str) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """LangGraph's ``AsyncPostgresSaver`` on a pool of connections, its operations running at once.

    ``AsyncPostgresSaver.from_conn_string`` gives the saver one connection, and the saver puts every
    operation behind one ``asyncio.Lock`` (needed there: one connection, one statement at a time), so
    a worker's concurrent cases wait for each other's checkpoint writes one round trip at a time. It
    keeps that lock when given a pool, where each operation has a connection of its own (upstream:
    langchain-ai/langgraph#7259, fix proposed in #7269); until that lands, the lock is replaced by a
    semaphore the size of the pool, the workaround given in that issue. The pool's connections are
    set up as ``from_conn_string`` sets up its own (autocommit, no prepared statements, rows as dicts).
    """
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    async with AsyncConnectionPool(
        url, min_size=1, max_size=POSTGRES_CONNECTIONS, kwargs=kwargs, open=False
    ) as pool:
        saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]  # psycopg's pool generics
        saver.lock = asyncio.Semaphore(POSTGRES_CONNECTIONS)  # type: ignore[assignment]
        await saver.setup()
        yield saver


Compaction = Literal["keep_latest", "delete"]
"""What is left of a finished case's checkpoints: its last one, or nothing.

The server deletes the thread. A finished case's graph does nothing more, so nothing needs a
checkpoint to continue it, and everything people and the API read is in the tables once the case is
projected (``app.cases.record``); the last checkpoint would only repeat it (4 to 11 KB per case for
the sample exceptions, against a goal of 15 KB for the whole case). The one thing a checkpoint still
did for a finished case, telling a second run of the same exception that it already ran, the case
row does in the server (``CaseService.process`` runs only a case not yet processed).

``exops run`` keeps the last checkpoint: it has no tables, the checkpoint file is its only record of
a result, and a second run of the same file must report the case, not run it again."""


async def compact_thread(saver: BaseCheckpointSaver[str], thread_id: str, strategy: Compaction) -> None:
    """Compact one finished thread with the checkpointer's own deletion or pruning.

    ``delete`` is LangGraph's ``adelete_thread`` (every saver has it). ``keep_latest`` is LangGraph's
    ``aprune`` where the saver has it (PostgreSQL); the SQLite saver has none, so its rows are pruned
    here the way ``aprune`` defines it: the thread's latest checkpoint (which holds every channel's
    value, so it reads back alone) and its writes stay, every earlier checkpoint and write goes.
    The in-memory saver lives only as long as its process and is left as it is."""
    if strategy == "delete":
        await saver.adelete_thread(thread_id)
        return
    if isinstance(saver, AsyncSqliteSaver):
        await saver.setup()
        async with saver.lock, saver.conn.cursor() as cursor:
            await cursor.execute(
                "SELECT checkpoint_ns, MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ? "
                "GROUP BY checkpoint_ns",
                (thread_id,),
            )
            for namespace, latest in await cursor.fetchall():
                for table in ("writes", "checkpoints"):
                    await cursor.execute(
                        f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id <> ?",
                        (thread_id, namespace, latest),
                    )
            await saver.conn.commit()
        return
    if isinstance(saver, InMemorySaver):
        return
    await saver.aprune([thread_id], strategy="keep_latest")
