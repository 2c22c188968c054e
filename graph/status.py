"""Which resolution-status changes are allowed, so a playbook step cannot reopen a closed case."""

from __future__ import annotations

from packs.common import ResolutionStatus

ALLOWED_TRANSITIONS: dict[ResolutionStatus, frozenset[ResolutionStatus]] = {
    "OPEN": frozenset({"IN_PROGRESS", "PENDING_APPROVAL", "ESCALATED", "REJECTED", "RESOLVED"}),
    "IN_PROGRESS": frozenset({"PENDING_APPROVAL", "RESOLVED", "ESCALATED", "REJECTED"}),
    "PENDING_APPROVAL": frozenset({"IN_PROGRESS", "RESOLVED", "ESCALATED", "REJECTED"}),
    "ESCALATED": frozenset({"IN_PROGRESS", "RESOLVED", "REJECTED"}),
    "RESOLVED": frozenset(),
    "REJECTED": frozenset(),
}


def can_transition(current: ResolutionStatus, target: ResolutionStatus) -> bool:
    return target == current or target in ALLOWED_TRANSITIONS[current]
