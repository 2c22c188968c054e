"""What-if: replay real cases through a candidate pack version and list every decision that changes.

Each stored case (``app.evals.stored``) carries its raw input, what actually happened (``expected``)
and the answers people gave; it runs through the whole graph under the candidate packs exactly as an
eval case does (in-memory checkpointer, dry-run tools, recorded notifications, events in memory,
nothing written to the database), with the same answers, and the decisions that matter to an admin
are compared with the stored ones: type, severity, actionability, playbook, approval, final status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from evals.dataset import EvalCase
from evals.targets import GraphTarget

WHATIF_FIELDS = (
    "exceptionType",
    "severity",
    "actionability",
    "playbookId",
    "humanApprovalRequired",
    "resolutionStatus",
)


class Change(BaseModel):
    caseId: str
    field: str
    actual: Any
    candidate: Any


class WhatIfReport(BaseModel):
    tenantId: str
    candidate: str
    """What was tried: ``domain <name>@<version>`` or ``tenant <id>@<version>``."""
    cases: int
    changedCases: int
    changes: list[Change] = Field(default_factory=list)
    errors: dict[str, str] = Field(default_factory=dict)
    """Per case id: why it could not be replayed (it is left out of the comparison)."""


async def what_if(
    tenant_id: str, candidate: str, domain: str, cases: Sequence[EvalCase], target: GraphTarget
) -> WhatIfReport:
    changes: list[Change] = []
    errors: dict[str, str] = {}
    for case in cases:
        obs = await target.run(case, domain)
        if obs.error:
            errors[case.id] = obs.error
            continue
        actual = case.expected.decisions()
        for name in WHATIF_FIELDS:
            if name in actual and obs.decisions.get(name) != actual[name]:
                changes.append(
                    Change(caseId=case.id, field=name, actual=actual[name], candidate=obs.decisions.get(name))
                )
    changed = len({c.caseId for c in changes})
    return WhatIfReport(
        tenantId=tenant_id,
        candidate=candidate,
        cases=len(cases),
        changedCases=changed,
        changes=changes,
        errors=errors,
    )
