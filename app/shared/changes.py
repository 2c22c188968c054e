"""Generations: how a process learns, with one small query, that shared state changed elsewhere.

Every transaction that changes state other processes keep a copy of calls ``announce(session,
topic)`` before its other writes. That raises the topic's generation in ``shared_generations`` in
the same transaction, so a reader never sees the new generation without the change. Taking that
row first also serializes the writers of one topic across processes: on PostgreSQL the upsert holds
the row's lock until commit, on SQLite it is the transaction's first write and takes the database's
write lock. Two processes syncing the same packs folder at start-up therefore never both insert the
same version.

``SharedState`` is one background task per process: every ``poll_seconds`` (or at once when a local
breaker change is waiting) it publishes local breaker changes, reads the generations, and calls the
refresh of each watcher whose generation moved. Staleness bound: ``poll_seconds`` plus the refresh
(see ``app/shared/__init__.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import SharedGeneration
from app.db.session import Database
from app.db.types import utc_now

log = logging.getLogger("exops.shared")

Topic = Literal["packs", "breakers"]


def dialect_insert(session: AsyncSession, model: type[Any]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT in the session's dialect, so that ``on_conflict_do_*`` is available."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


async def announce(session: AsyncSession, topic: Topic) -> None:
    """Raise ``topic``'s generation in this transaction (call it before the change's other writes)."""
    now = utc_now()
    statement = dialect_insert(session, SharedGeneration).values(topic=topic, generation=1, changed_at=now)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[SharedGeneration.topic],
            set_={"generation": SharedGeneration.generation + 1, "changed_at": now},
        )
    )


async def generation(session: AsyncSession, topic: Topic) -> int:
    """The topic's generation now (0 before its first change)."""
    found = await session.scalar(select(SharedGeneration.generation).where(SharedGeneration.topic == topic))
    return int(found or 0)


@dataclass
class Watcher:
    """A local copy of one topic: the generation it was built from, and how to rebuild it."""

    topic: Topic
    current: Callable[[], int | None]
    refresh: Callable[[], Awaitable[None]]


class SharedState:
    """The poller of one process. ``tick`` does one round; ``running`` keeps doing it in a task."""

    def __init__(
        self,
        db: Database,
        *,
        poll_seconds: float,
        watchers: list[Watcher],
        publish: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self.watchers = watchers
        self._publish = publish
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Do the next round now (a local change is waiting to be published); safe from any thread."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def publish(self) -> None:
        """Write the local changes waiting (an admin's breaker reset answers only once it is written)."""
        if self._publish is not None:
            await self._publish()

    async def tick(self) -> None:
        """Publish what is waiting, then refresh every copy whose generation moved."""
        await self.publish()
        async with self.db.engine.connect() as connection:  # no ORM session: this runs twice a second
            rows = await connection.execute(select(SharedGeneration.topic, SharedGeneration.generation))
            seen = {topic: int(value) for topic, value in rows.all()}
        for watcher in self.watchers:
            if seen.get(watcher.topic, 0) != watcher.current():
                await watcher.refresh()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be away for a moment: keep the copies, try again
                log.exception("refreshing shared state failed; retrying in %.1f s", self.poll_seconds)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SharedState]:
        """Poll in the background while inside; on the way out, publish what is still waiting."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        task = asyncio.create_task(self._run(), name="exops-shared-state")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._wake = None
            try:
                await self.publish()
            except Exception:
                log.exception("publishing the last breaker changes failed")
