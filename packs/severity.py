"""The severity decision: pack rules, then the source's own severity, then defaults; the tenant wins last."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from packs.common import SEVERITY_RANK, Severity
from packs.conditions import ConditionFacts
from packs.domain import DomainPack, SeverityRule
from packs.fallbacks import severity_from_type_name
from packs.tenant import TenantPolicyPack

SeveritySource = Literal["rule", "source", "type_name", "default", "fallback"]

CONFIDENCE_BY_SOURCE: dict[SeveritySource, float] = {
    "rule": 0.9,  # a pack rule looked at the payload and matched
    "source": 0.8,  # the upstream system said so and no rule disagreed
    "type_name": 0.75,  # the pack asked for a guess from its type's name (fallbacks.severityFromTypeName)
    "default": 0.75,  # the pack's default for the domain
    "fallback": 0.6,  # nothing to go on: MEDIUM
}


@dataclass(frozen=True)
class SeverityDecision:
    severity: Severity
    source: SeveritySource
    matched_rules: tuple[SeverityRule, ...]
    override: Severity | None
    reason: str

    @property
    def confidence(self) -> float:
        """An explicit tenant override is a declaration, as sure as a matching rule."""
        base = CONFIDENCE_BY_SOURCE[self.source]
        return max(base, CONFIDENCE_BY_SOURCE["rule"]) if self.override is not None else base

    @property
    def winning_rule(self) -> SeverityRule | None:
        return self.matched_rules[0] if self.source == "rule" else None


def matching_rules(domain: DomainPack, data: Mapping[str, Any]) -> tuple[SeverityRule, ...]:
    """Rules whose condition holds, most severe first, ties by priorityScore then pack order."""
    facts = ConditionFacts(data)
    matched = [(i, rule) for i, rule in enumerate(domain.severityRules) if facts.matches(rule.condition)]
    matched.sort(key=lambda item: (-SEVERITY_RANK[item[1].severity], -item[1].priorityScore, item[0]))
    return tuple(rule for _, rule in matched)


def decide_severity(
    domain: DomainPack,
    tenant: TenantPolicyPack | None,
    data: Mapping[str, Any],
    *,
    source_severity: Severity | None = None,
) -> SeverityDecision:
    """Most severe matching rule, else the source's severity, else (when the pack's fallbacks ask for
    it) a word of the type's name, else defaultSeverity, else MEDIUM; then the tenant's override for
    the exception type replaces whatever was found."""
    rules = matching_rules(domain, data)
    severity: Severity
    source: SeveritySource
    guess = (
        severity_from_type_name(domain.fallbacks, str(data["exceptionType"]))
        if not rules and source_severity is None and data.get("exceptionType")
        else None
    )
    if rules:
        severity, source = rules[0].severity, "rule"
        reason = f"rule {rules[0].id} ({rules[0].severity}, priorityScore {rules[0].priorityScore})"
        if len(rules) > 1:
            reason += f" won over {', '.join(r.id for r in rules[1:])}"
    elif source_severity is not None:
        severity, source, reason = (
            source_severity,
            "source",
            f"no rule matched; source system said {source_severity}",
        )
    elif guess is not None:
        severity, source = guess.severity, "type_name"
        reason = (
            f"no rule matched; fallbacks.severityFromTypeName: the type name contains {guess.word!r}"
            f" → {guess.severity}"
        )
    elif domain.defaultSeverity is not None:
        severity, source = domain.defaultSeverity, "default"
        reason = f"no rule matched; domain default {domain.defaultSeverity}"
    else:
        severity, source, reason = (
            "MEDIUM",
            "fallback",
            "no rule matched and the domain has no default: MEDIUM",
        )
    override = tenant.severityOverrides.get(str(data.get("exceptionType"))) if tenant is not None else None
    if override is not None and override != severity:
        reason += f"; tenant {tenant.tenantId if tenant else ''} overrides {data.get('exceptionType')} to {override}"
        severity = override
    return SeverityDecision(severity, source, rules, override, reason)
