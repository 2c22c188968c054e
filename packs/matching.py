"""Playbook matching: which playbooks apply to a triaged exception, which one wins, and why."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from packs.common import Severity
from packs.conditions import ConditionFacts
from packs.playbook import Playbook


@dataclass(frozen=True)
class MatchContext:
    exception_type: str
    severity: Severity
    sla_minutes_remaining: float | None
    policy_tags: frozenset[str]
    data: Mapping[str, Any]

    @cached_property
    def facts(self) -> ConditionFacts:
        """``data`` converted for conditions once, shared by every playbook checked against it."""
        return ConditionFacts(self.data)


@dataclass(frozen=True)
class Candidate:
    playbook: Playbook
    approved: bool
    origin: str  # "domain" or "tenant"
    specificity: int
    order: int

    @property
    def rank(self) -> tuple[int, int, int, int]:
        """Sort key: approved first, then priority, then the more specific match, then pack order."""
        return (-int(self.approved), -self.playbook.priority, -self.specificity, self.order)


@dataclass(frozen=True)
class PlaybookSelection:
    best: Candidate | None
    candidates: tuple[Candidate, ...]
    rejected: tuple[tuple[str, str], ...]  # (playbook id, why it does not apply)
    reasoning: str

    @property
    def approved_playbook(self) -> Playbook | None:
        return self.best.playbook if self.best is not None and self.best.approved else None


def why_not(playbook: Playbook, ctx: MatchContext) -> str | None:
    """None when the playbook applies; otherwise the first criterion that fails."""
    if ctx.exception_type not in playbook.appliesTo:
        return f"applies to {', '.join(playbook.appliesTo)}, not {ctx.exception_type}"
    match = playbook.match
    if match.severity_in is not None and ctx.severity not in match.severity_in:
        return f"severity {ctx.severity} not in {', '.join(match.severity_in)}"
    if match.sla_minutes_remaining_lt is not None and (
        ctx.sla_minutes_remaining is None or not ctx.sla_minutes_remaining < match.sla_minutes_remaining_lt
    ):
        remaining = "unknown" if ctx.sla_minutes_remaining is None else f"{ctx.sla_minutes_remaining:g}"
        return f"SLA minutes remaining {remaining} not below {match.sla_minutes_remaining_lt:g}"
    if match.policy_tags is not None:
        missing = sorted(set(match.policy_tags) - ctx.policy_tags)
        if missing:
            return f"tenant lacks policy tags {', '.join(missing)}"
    if match.condition is not None and not ctx.facts.matches(match.condition):
        return f"condition {match.condition!r} does not hold"
    return None


def _specificity(playbook: Playbook) -> int:
    match = playbook.match
    criteria = (match.severity_in, match.sla_minutes_remaining_lt, match.policy_tags, match.condition)
    return sum(value is not None for value in criteria)


def select_playbook(
    domain_playbooks: Sequence[Playbook],
    tenant_playbooks: Sequence[Playbook],
    approved_ids: Collection[str],
    ctx: MatchContext,
) -> PlaybookSelection:
    """Match every playbook, rank the ones that apply and explain the choice."""
    candidates: list[Candidate] = []
    rejected: list[tuple[str, str]] = []
    pool = [(p, "domain") for p in domain_playbooks] + [(p, "tenant") for p in tenant_playbooks]
    for order, (playbook, origin) in enumerate(pool):
        reason = why_not(playbook, ctx)
        if reason is None:
            candidates.append(
                Candidate(playbook, playbook.id in approved_ids, origin, _specificity(playbook), order)
            )
        elif ctx.exception_type in playbook.appliesTo:
            rejected.append((playbook.id, reason))
    candidates.sort(key=lambda c: c.rank)
    best = candidates[0] if candidates else None
    return PlaybookSelection(
        best, tuple(candidates), tuple(rejected), _explain(best, candidates, rejected, ctx)
    )


def _explain(
    best: Candidate | None, candidates: list[Candidate], rejected: list[tuple[str, str]], ctx: MatchContext
) -> str:
    if best is None:
        text = f"no playbook applies to {ctx.exception_type} at {ctx.severity}"
        if rejected:
            text += "; " + "; ".join(f"{pid}: {why}" for pid, why in rejected)
        return text
    status = "approved by the tenant" if best.approved else "not in the tenant's approved processes"
    text = f"{best.playbook.id} ({best.origin} playbook, priority {best.playbook.priority}) {status}"
    others = candidates[1:]
    if others:
        text += "; ranked above " + ", ".join(
            f"{c.playbook.id} ({'approved' if c.approved else 'not approved'}, priority {c.playbook.priority})"
            for c in others
        )
    if rejected:
        text += "; not applicable: " + "; ".join(f"{pid}: {why}" for pid, why in rejected)
    return text
