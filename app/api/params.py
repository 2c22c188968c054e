"""Query and path parameters shared by routes, each with a documented bound.

An unbounded number is a 500 waiting to happen: an ``offset`` of 2**63 overflows the database's
64-bit integer. Every numeric parameter of every route is bounded here or where it is declared
(``limit`` differs per list), so the caller gets a 422 naming the parameter instead.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, BeforeValidator

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


RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?")
"""An RFC 3339 date-time, the offset optional (then it is UTC). A bare date or a number is refused:
pydantic alone reads ``2026-01-01`` as a naive midnight and ``1700000000`` as a Unix time."""


def _rfc3339_text(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise ValueError("expected an RFC 3339 date-time such as 2026-01-31T09:30:00Z (no offset: UTC)")
    return value


def as_utc(moment: datetime | None) -> datetime | None:
    """The moment in UTC; a time without an offset is read as UTC (as an exception's timestamp is),
    never left naive. A moment whose UTC form is outside years 1-9999 is refused (``0001-01-01T00:00
    +01:00``), not left to overflow where it is compared."""
    if moment is None:
        return None
    if moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range: in UTC it falls outside years 1 to 9999") from None


UtcDatetime = Annotated[datetime, BeforeValidator(_rfc3339_text), AfterValidator(as_utc)]
"""An RFC 3339 date-time; without an offset it means UTC."""
