"""Vocabulary shared by every pack model: severities, statuses, the strict base model.

Pack files are camelCase on disk (like the exception record on the wire); the models use the same
names so that error paths point at exactly what the author typed.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
SEVERITIES: tuple[Severity, ...] = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}

SettableStatus = Literal["OPEN", "IN_PROGRESS", "PENDING_APPROVAL", "RESOLVED", "ESCALATED", "REJECTED"]
"""The statuses a playbook's ``set_status`` step may set."""
ResolutionStatus = Literal[SettableStatus, "CLOSED_WITHOUT_ACTION"]
"""Every status a case can have. ``CLOSED_WITHOUT_ACTION``: people skipped the steps left and nothing
was done; only the graph's feedback stage sets it (a step that sets it would itself be an action)."""
SETTABLE_STATUSES: tuple[SettableStatus, ...] = get_args(SettableStatus)
RESOLUTION_STATUSES: tuple[ResolutionStatus, ...] = (*SETTABLE_STATUSES, "CLOSED_WITHOUT_ACTION")
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

TENANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""The one rule for tenant ids, used by packs, the API paths, the UI, the CLI and keys.

Ids are kept exactly as written (``TENANT_FINANCE_001`` as much as ``acme-capital``): never lower-cased
or renamed. Two tenants whose ids differ only in case are refused where tenants are created (the
database, a packs folder), so that ``ACME`` and ``acme`` can never be two tenants."""

TENANT_ID_RULE = (
    "1 to 64 characters: letters, digits, '_', '-' or '.', starting with a letter or a digit "
    "(kept exactly as written; case matters)"
)

TenantId = Annotated[str, Field(pattern=TENANT_ID_PATTERN, description=f"Tenant id: {TENANT_ID_RULE}.")]


def valid_tenant_id(value: str) -> bool:
    return re.fullmatch(TENANT_ID_PATTERN, value) is not None


class PackModel(BaseModel):
    """Base of every pack model: unknown fields are errors, values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


def more_severe(a: Severity, b: Severity) -> Severity:
    """The more severe of two severities."""
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b
