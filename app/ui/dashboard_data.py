"""The dashboard's figures that ``app.metrics.service.tenant_metrics`` does not compute: volume and
escalations over time, the mean time to resolve per severity, finished cases by outcome, and the age of
the approval queue.

Counting happens in the database (grouped per hour, then folded into days here), so the cost follows
the number of hours shown, not the number of cases. The hour of a timestamp is written differently
per dialect: SQLite formats its stored text with ``strftime``, PostgreSQL truncates the UTC time with
``to_char``; both give ``YYYY-MM-DD HH``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Approval, ExceptionCase
from app.metrics.service import FINISHED, UNKNOWN, WAITING, duration_seconds

WINDOW_DAYS = 14
HOURLY_BELOW = timedelta(days=2)
"""When everything in the window happened within less than this, volume is shown per hour."""
MIN_HOURS = 24
SEVERITY_ORDER = ("CRITICAL", "HIGH", "MEDIUM", "LOW", UNKNOWN)
AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("under 1 h", 3600), ("1-4 h", 4 * 3600), ("4-24 h", 86400), ("1-3 d", 3 * 86400),
    ("over 3 d", float("inf")),
)  # fmt: skip
"""Approval ages shown by the queue-age chart: a name and the upper bound in seconds."""


def severity_key(name: str) -> tuple[int, str]:
    """Most severe first, unknown and unexpected names last."""
    return (SEVERITY_ORDER.index(name), name) if name in SEVERITY_ORDER else (len(SEVERITY_ORDER), name)


def hour_of(column: Any, dialect: str) -> ColumnElement[str]:
    """``YYYY-MM-DD HH`` (UTC) of a timestamp column, in the dialect's own words."""
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%d %H", column)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")


def _parse_hour(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H").replace(tzinfo=UTC)


async def hourly_counts(
    session: AsyncSession, tenant_id: str, *, dialect: str, since: datetime, column: Any,
    by: Any = None, where: Sequence[ColumnElement[bool]] = (),
) -> dict[tuple[datetime, str], int]:  # fmt: skip
    """Cases per (hour, ``by`` value) whose ``column`` time is at or after ``since``."""
    hour = hour_of(column, dialect)
    group = func.coalesce(by, UNKNOWN) if by is not None else None
    columns: list[Any] = [hour, func.count()] + ([group] if group is not None else [])
    query = (
        select(*columns)
        .where(ExceptionCase.tenant_id == tenant_id, column.is_not(None), column >= since, *where)
        .group_by(hour, *([group] if group is not None else []))
    )
    counts: dict[tuple[datetime, str], int] = {}
    for row in (await session.execute(query)).all():
        key = str(row[2]) if group is not None else ""
        counts[(_parse_hour(str(row[0])), key)] = int(row[1])
    return counts


@dataclass(frozen=True)
class Timeline:
    """Buckets over time (``hour`` or ``day``) and, per series, one count per bucket."""

    unit: str
    starts: list[datetime]
    series: dict[str, list[int]]

    @property
    def labels(self) -> list[str]:
        fmt = "%H:00" if self.unit == "hour" else "%d %b"
        return [start.strftime(fmt) for start in self.starts]

    @property
    def full_labels(self) -> list[str]:
        fmt = "%Y-%m-%d %H:00 UTC" if self.unit == "hour" else "%Y-%m-%d"
        return [start.strftime(fmt) for start in self.starts]

    def totals(self) -> list[int]:
        return [sum(values[i] for values in self.series.values()) for i in range(len(self.starts))]


def choose_buckets(hours: Sequence[datetime], now: datetime) -> tuple[str, list[datetime]]:
    """Per day for the last 14 days, or per hour over the data when it spans less than two days
    (at least 24 hours, ending with the last hour that has data)."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=WINDOW_DAYS - 1 - i) for i in range(WINDOW_DAYS)]
    if not hours:
        return "day", days
    first, last = min(hours), max(hours)
    if last - first >= HOURLY_BELOW:
        return "day", days
    start = min(first, last - timedelta(hours=MIN_HOURS - 1))
    count = int((last - start) / timedelta(hours=1)) + 1
    return "hour", [start + timedelta(hours=i) for i in range(count)]


def fold(
    counts: dict[tuple[datetime, str], int], unit: str, starts: list[datetime], names: Sequence[str]
) -> dict[str, list[int]]:
    """Hourly counts summed into the chosen buckets, one list per series name."""
    index = {start: i for i, start in enumerate(starts)}
    series = {name: [0] * len(starts) for name in names}
    for (hour, name), count in counts.items():
        start = hour if unit == "hour" else hour.replace(hour=0)
        if start in index and name in series:
            series[name][index[start]] += count
    return series


@dataclass(frozen=True)
class Activity:
    """Exceptions received per bucket (by severity) and escalations per bucket, on the same buckets."""

    received: Timeline
    escalated: list[int]


async def activity(session: AsyncSession, tenant_id: str, *, dialect: str, now: datetime) -> Activity:
    since = (now - timedelta(days=WINDOW_DAYS)).replace(minute=0, second=0, microsecond=0)
    received = await hourly_counts(session, tenant_id, dialect=dialect, since=since,
                                   column=ExceptionCase.received_at, by=ExceptionCase.severity)  # fmt: skip
    escalated = await hourly_counts(session, tenant_id, dialect=dialect, since=since,
                                    column=ExceptionCase.resolved_at,
                                    where=[ExceptionCase.status == "ESCALATED"])  # fmt: skip
    unit, starts = choose_buckets([hour for hour, _ in (*received, *escalated)], now)
    names = sorted({name for _, name in received}, key=severity_key)
    timeline = Timeline(unit, starts, fold(received, unit, starts, names))
    return Activity(timeline, fold(escalated, unit, starts, [""])[""])


async def mttr_by_severity(session: AsyncSession, tenant_id: str, *, dialect: str) -> dict[str, float]:
    """Mean seconds from received to resolved over RESOLVED cases, per severity (the metrics' MTTR)."""
    severity = func.coalesce(ExceptionCase.severity, UNKNOWN)
    rows = await session.execute(
        select(severity, func.avg(cast(duration_seconds(dialect), Float)))
        .where(ExceptionCase.tenant_id == tenant_id, ExceptionCase.status == "RESOLVED",
               ExceptionCase.resolved_at.is_not(None))
        .group_by(severity)
    )  # fmt: skip
    means = {str(name): float(mean) for name, mean in rows.all() if mean is not None}
    return dict(sorted(means.items(), key=lambda item: severity_key(item[0])))


async def finished_outcomes(session: AsyncSession, tenant_id: str) -> dict[str, int]:
    """Finished cases split as the auto-resolution rate splits them: auto-resolved, then the others
    by status (resolved with people, rejected, escalated, closed without action)."""
    outcome = ExceptionCase.result[("outcome", "outcome")].as_string()
    auto = func.sum(cast(case((outcome == "auto_resolved", 1), else_=0), Integer))
    rows = await session.execute(
        select(ExceptionCase.status, func.count(), auto)
        .where(ExceptionCase.tenant_id == tenant_id, ExceptionCase.status.in_(FINISHED))
        .group_by(ExceptionCase.status)
    )
    split = {"Auto-resolved": 0, "Resolved with people": 0, "Rejected": 0, "Escalated": 0,
             "Closed without action": 0}  # fmt: skip
    names = {"RESOLVED": "Resolved with people", "REJECTED": "Rejected", "ESCALATED": "Escalated",
             "CLOSED_WITHOUT_ACTION": "Closed without action"}  # fmt: skip
    for status, count, automatic in rows.all():
        split["Auto-resolved"] += int(automatic or 0)
        split[names[str(status)]] += int(count) - int(automatic or 0)
    return split


@dataclass(frozen=True)
class QueueAge:
    """How long the waiting approvals have waited, and how many are past their deadline."""

    pending: int
    oldest_seconds: float | None
    median_seconds: float | None
    overdue: int
    buckets: list[tuple[str, int]] = field(default_factory=list)


async def queue_age(session: AsyncSession, tenant_id: str, *, now: datetime) -> QueueAge:
    rows = (
        await session.execute(
            select(Approval.created_at, Approval.deadline).where(
                Approval.tenant_id == tenant_id, Approval.status.in_(WAITING)
            )
        )
    ).all()
    ages = sorted(max((now - created).total_seconds(), 0.0) for created, _ in rows)
    buckets = []
    lower = 0.0
    for name, upper in AGE_BUCKETS:
        buckets.append((name, sum(1 for age in ages if lower <= age < upper)))
        lower = upper
    return QueueAge(
        pending=len(ages),
        oldest_seconds=ages[-1] if ages else None,
        median_seconds=statistics.median(ages) if ages else None,
        overdue=sum(1 for _, deadline in rows if deadline < now),
        buckets=buckets,
    )
