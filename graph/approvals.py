"""The approval a person sees, put together from the state's references.

The state's ``ApprovalRequest`` names its evidence by reference (the case's first
``evidenceDecisions`` stage decisions) and shares the plan and the draft with the state, so nothing is
copied into it and checkpointed twice. People, the approvals table and the audit trail need it whole:
``approval_view`` assembles it, with the same fields the request always had.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from graph.state import AgentDecision, ApprovalRequest

REQUEST_ONLY = ("evidenceDecisions",)
ANSWERS = ("comments", "refusals")


def evidence_of(decisions: Sequence[AgentDecision], count: int) -> list[str]:
    """The evidence the request refers to: that of the first ``count`` stage decisions, in order."""
    return [fact["detail"] for decision in decisions[:count] for fact in decision["evidence"]]


def approval_view(
    request: ApprovalRequest, values: Mapping[str, Any], *, with_answers: bool = True
) -> dict[str, Any]:
    """``request`` with its plan, draft and evidence filled in from ``values`` (the state). A request
    checkpointed before requests referred to their evidence keeps the copy it carries.

    ``with_answers`` False leaves out the comments and refused answers gathered while it waits: the
    request as it was asked (the ``approval_requested`` event, the approvals table's payload)."""
    view: dict[str, Any] = {
        key: value
        for key, value in request.items()
        if key not in REQUEST_ONLY and (with_answers or key not in ANSWERS)
    }
    view["draft"] = values.get("draft")
    view["plan"] = list(values.get("plan") or [])
    count = request.get("evidenceDecisions")
    if count is not None:
        view["evidence"] = evidence_of(values.get("decisions") or [], count)
    return view
