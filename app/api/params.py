"""Query and path parameters shared by routes, each with a documented bound.

An unbounded number is a 500 waiting to happen: an ``offset`` of 2**63 overflows the database's
64-bit integer. Every numeric parameter of every route is bounded here or where it is declared
(``limit`` differs per list), so the caller gets a 422 naming the parameter instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator

MAX_OFFSET = 1_000_000
"""The furthest a list pages by offset; narrow it with filters (a date range) to go further."""
MAX_STEP_ORDER = 1000
"""The highest step number a route accepts; no playbook comes near it."""

Offset = Annotated[
    int, Query(ge=0, le=MAX_OFFSET, description=f"Items to skip, from 0 to {MAX_OFFSET:,}".replace(",", " "))
]
StepOrder = Annotated[
    int,
    Path(ge=1, le=MAX_STEP_ORDER, description=f"The step's order in the plan, from 1 to {MAX_STEP_ORDER}"),
]


def as_utc(moment: datetime | None) -> datetime | None:
    """A time without an offset is read as UTC (as an exception's timestamp is), never left naive."""
    if moment is not None and moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
"""An ISO 8601 time; without an offset it means UTC."""
