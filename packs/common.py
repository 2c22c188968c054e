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

SettableStatus = Literal["OPEN", "IN_PROGRESS", "PENDING_APPROVAL", "RESOLVED", "ESCALATED", "REJECTED"]
"""The statuses a playbook's ``set_status`` step may set."""
ResolutionStatus = Literal[
    "OPEN", "IN_PROGRESS", "PENDING_APPROVAL", "RESOLVED", "ESCALATED", "REJECTED", "CLOSED_WITHOUT_ACTION"
]
"""Every status a case can have. ``CLOSED_WITHOUT_ACTION``: people skipped the steps left and nothing
was done; only the graph's feedback stage sets it (a step that sets it would itself be an action)."""
RESOLUTION_STATUSES: tuple[ResolutionStatus, ...] = (
    "OPEN",
    "IN_PROGRESS",
    "PENDING_APPROVAL",
    "RESOLVED",
    "ESCALATED",
    "REJECTED",
    "CLOSED_WITHOUT_ACTION",
)
SETTABLE_STATUSES: tuple[SettableStatus, ...] = (
    "OPEN",
    "IN_PROGRESS",
    "PENDING_APPROVAL",
    "RESOLVED",
    "ESCALATED",
    "REJECTED",
)
FINISHED_STATUSES: frozenset[ResolutionStatus] = frozenset(
    {"RESOLVED", "REJECTED", "ESCALATED", "CLOSED_WITHOUT_ACTION"}
)
"""Statuses after which the graph does nothing more with a case."""

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
