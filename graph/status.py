"""Which resolution-status changes are allowed, so a playbook step cannot reopen a closed case.

``CLOSED_WITHOUT_ACTION`` is reached only from ``IN_PROGRESS`` (a plan was under way and people
skipped what was left), and like the other closing statuses it is final.
"""

from __future__ import annotations

from packs.common import ResolutionStatus

ALLOWED_TRANSITIONS: dict[ResolutionStatus, frozenset[ResolutionStatus]] = {
    "OPEN": frozenset({"IN_PROGRESS", "PENDING_APPROVAL", "ESCALATED", "REJECTED", "RESOLVED"}),
    "IN_PROGRESS": frozenset(
        {"PENDING_APPROVAL", "RESOLVED", "ESCALATED", "REJECTED", "CLOSED_WITHOUT_ACTION"}
    ),
    "PENDING_APPROVAL": frozenset({"IN_PROGRESS", "RESOLVED", "ESCALATED", "REJECTED"}),
    "ESCALATED": frozenset({"IN_PROGRESS", "RESOLVED", "REJECTED"}),
    "RESOLVED": frozenset(),
    "REJECTED": frozenset(),
    "CLOSED_WITHOUT_ACTION": frozenset(),
}


def can_transition(current: ResolutionStatus, target: ResolutionStatus) -> bool:
    return target == current or target in ALLOWED_TRANSITIONS[current]
