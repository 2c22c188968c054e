"""Rate-limit buckets shared by every API process, through the ``rate_buckets`` table.

A process does not ask the database for each request: it takes a *lease* of tokens from the tenant's
bucket with one conditional UPDATE (refill by the time elapsed, cap at the capacity, grant up to the
lease size, RETURNING what was granted) and spends it locally (``app/api/limits.py``). The bucket
itself refills in the database, so the budget is one budget whatever the number of processes.
"""

from __future__ import annotations

from sqlalchemy import case, literal, update

from app.db.models import RateBucket
from app.db.session import Database
from app.shared.changes import dialect_insert


class DbBuckets:
    """``BucketStore`` over the database (see ``app/api/limits.py`` for the protocol)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def lease(
        self, key: str, *, want: float, returned: float, capacity: float, rate: float, now: float
    ) -> tuple[float, float]:
        elapsed = case(
            (literal(now) > RateBucket.updated_at, literal(now) - RateBucket.updated_at), else_=0.0
        )
        refilled = RateBucket.tokens + elapsed * rate + returned
        available = case((refilled > capacity, literal(capacity)), else_=refilled)
        granted = case((available >= want, literal(want)), (available >= 1, available), else_=0.0)
        statement = (
            update(RateBucket)
            .where(RateBucket.key == key)
            .values(
                granted=granted,
                tokens=available - granted,
                updated_at=case(
                    (literal(now) > RateBucket.updated_at, literal(now)), else_=RateBucket.updated_at
                ),
            )
            .returning(RateBucket.granted, RateBucket.tokens)
        )
        async with self.db.session() as session:
            row = (await session.execute(statement)).first()
            if row is None:  # the tenant's first request: a full bucket
                await session.execute(
                    dialect_insert(session, RateBucket)
                    .values(key=key, tokens=capacity, updated_at=now, granted=0.0)
                    .on_conflict_do_nothing()
                )
                row = (await session.execute(statement)).first()
            assert row is not None
        return float(row.granted), float(row.tokens)
