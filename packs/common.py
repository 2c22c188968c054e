"""Vocabulary shared by every pack model: severities, statuses, the strict base model.

Pack files are camelCase on disk (like the exception record on the wire); the models use the same
names so that error paths point at exactly what the author typed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
SEVERITIES: tuple[Severity, ...] = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}

ResolutionStatus = Literal["OPEN", "IN_PROGRESS", "PENDING_APPROVAL", "RESOLVED", "ESCALATED", "REJECTED"]
RESOLUTION_STATUSES: tuple[ResolutionStatus, ...] = (
    "OPEN",
    "IN_PROGRESS",
    "PENDING_APPROVAL",
    "RESOLVED",
    "ESCALATED",
    "REJECTED",
)

Actionability = Literal[
    "ACTIONABLE_APPROVED_PROCESS",
    "ACTIONABLE_NON_APPROVED_PROCESS",
    "NON_ACTIONABLE_INFO_ONLY",
]

PackKind = Literal["domain", "tenant"]


class PackModel(BaseModel):
    """Base of every pack model: unknown fields are errors, values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


def more_severe(a: Severity, b: Severity) -> Severity:
    """The more severe of two severities."""
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b
