"""Circuit breakers shared by every process, through the ``tool_breakers`` table.

Each process keeps its ``BreakerBoard`` (``tools/breaker.py``) as the view every tool call reads, so
a call costs no database round trip. This module is the board's peers:

* each local change (a failure, a success that closed a breaker, a released trial, an admin's
  reset) is queued and written by the process's ``SharedState`` task, which is woken at once; the
  write is one conditional statement per change that applies the same rules as the local breaker
  (failures add up across processes; the threshold, or a failed half-open trial, opens it);
  a closed breaker has no row, so a healthy tool costs nothing;
* the same task reads the table back whenever the ``breakers`` generation moved, and the board
  takes that view (keys with local changes still queued keep theirs until they are written);
* a half-open trial is claimed with one conditional UPDATE (``trial_until``/``trial_owner``), so
  one trial call goes out across all processes; if the database cannot be asked, this process's
  own breaker decides alone.

Staleness: a breaker opened (or reset) in one process is in force in the others at their next poll,
within ``EXOPS_SHARED_POLL_SECONDS`` (0.5 s) plus the write, so within a second. Times are seconds
since the epoch: processes on several machines need clocks kept in step (NTP), as for the rate limits.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ToolBreaker
from app.db.session import Database
from app.shared.changes import announce, dialect_insert, generation
from tools.breaker import BreakerBoard, BreakerEvent, SharedBreaker

log = logging.getLogger("exops.shared")


def process_id() -> str:
    """Who holds a trial: host, pid and a random tail (pids are reused after a restart)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class SharedBreakers:
    """The database peers of one process's breakers; ``board`` is the board runs use."""

    def __init__(
        self,
        db: Database,
        *,
        failure_threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.owner = process_id()
        self.threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.clock = clock
        self.board = BreakerBoard(
            failure_threshold=failure_threshold, reset_seconds=reset_seconds, peers=self
        )
        self.generation: int | None = None
        """The ``breakers`` generation of the latest view taken from the database."""
        self.on_publish: Callable[[], None] | None = None
        """Called after each queued change (the ``SharedState`` task's wake-up)."""
        self._pending: list[tuple[str, BreakerEvent, float]] = []
        self._lock = threading.Lock()

    # -- BreakerPeers ---------------------------------------------------------------------------

    def publish(self, key: str, event: BreakerEvent, at: datetime) -> None:
        with self._lock:
            self._pending.append((key, event, at.timestamp()))
        if self.on_publish is not None:
            self.on_publish()

    async def claim_trial(self, key: str, lease_seconds: float) -> bool:
        now = self.clock()
        try:
            async with self.db.session() as session:
                claimed = await session.execute(
                    update(ToolBreaker)
                    .where(
                        ToolBreaker.key == key,
                        ToolBreaker.opened_at.is_not(None),
                        ToolBreaker.opened_at <= now - self.reset_seconds,
                        or_(ToolBreaker.trial_until.is_(None), ToolBreaker.trial_until <= now),
                    )
                    .values(trial_until=now + lease_seconds, trial_owner=self.owner)
                )
                if claimed.rowcount == 1:  # type: ignore[attr-defined]
                    return True
                opened = await session.scalar(select(ToolBreaker.opened_at).where(ToolBreaker.key == key))
        except Exception:
            log.warning("could not claim the half-open trial of %s; deciding locally", key, exc_info=True)
            return True
        # No row: closed everywhere (reset elsewhere, or our failures not written yet): let it go.
        # A row: still open (another trial failed) or another process holds the trial.
        return opened is None

    # -- the SharedState task -------------------------------------------------------------------

    def pending_keys(self) -> set[str]:
        with self._lock:
            return {key for key, _, _ in self._pending}

    async def flush(self) -> None:
        """Write the queued changes in one transaction (put back if it fails, for the next round)."""
        with self._lock:
            events, self._pending = self._pending, []
        if not events:
            return
        try:
            async with self.db.session() as session:
                await announce(session, "breakers")
                for key, event, at in events:
                    await self._write(session, key, event, at)
        except BaseException:
            with self._lock:
                self._pending[:0] = events
            raise

    async def pull(self) -> None:
        """Take the database's view of every breaker into the board."""
        async with self.db.session() as session:
            seen = await generation(session, "breakers")
            rows = (
                await session.execute(select(ToolBreaker.key, ToolBreaker.failures, ToolBreaker.opened_at))
            ).all()
        shared = {
            key: SharedBreaker(failures, None if opened is None else datetime.fromtimestamp(opened, UTC))
            for key, failures, opened in rows
        }
        self.board.apply(shared, skip=self.pending_keys())
        self.generation = seen

    async def _write(self, session: AsyncSession, key: str, event: BreakerEvent, at: float) -> None:
        if event in ("success", "reset"):
            await session.execute(delete(ToolBreaker).where(ToolBreaker.key == key))
            return
        if event == "release":
            await session.execute(
                update(ToolBreaker)
                .where(ToolBreaker.key == key, ToolBreaker.trial_owner == self.owner)
                .values(trial_until=None, trial_owner=None)
            )
            return
        # A failure: count it; open at the threshold, or again (fresh timer) when half-open.
        opens = or_(
            and_(ToolBreaker.opened_at.is_(None), ToolBreaker.failures + 1 >= self.threshold),
            ToolBreaker.opened_at <= at - self.reset_seconds,
        )
        first = dialect_insert(session, ToolBreaker).values(
            key=key, failures=1, opened_at=at if self.threshold <= 1 else None, updated_at=at
        )
        await session.execute(
            first.on_conflict_do_update(
                index_elements=[ToolBreaker.key],
                set_={
                    "failures": ToolBreaker.failures + 1,
                    "opened_at": case((opens, at), else_=ToolBreaker.opened_at),
                    "trial_until": case((opens, None), else_=ToolBreaker.trial_until),
                    "trial_owner": case((opens, None), else_=ToolBreaker.trial_owner),
                    "updated_at": at,
                },
            )
        )
