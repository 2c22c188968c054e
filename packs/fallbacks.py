"""What decides when the packs themselves say nothing: exops's choices, or the earlier system's on request.

Without a matching severity rule exops takes the source's severity, else the domain's
``defaultSeverity``, else MEDIUM, each with less confidence than a rule; a type that no playbook covers
gets a plan drafted for a person to approve. The earlier system instead guessed a severity from words
in the type name ("FAIL" → HIGH) and declared a type without a playbook NON_ACTIONABLE. A domain pack
that wants those answers says so in ``fallbacks`` (``exops packs import --legacy-behaviour`` writes it);
nothing changes silently, and every decision taken this way names the field in its evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from packs.common import PackModel, Severity
from packs.problems import Problem


class TypeNameKeyword(PackModel):
    contains: list[str] = Field(
        min_length=1, description="Words looked for in the exception type's name, ignoring case."
    )
    severity: Severity

    @field_validator("contains")
    @classmethod
    def _words(cls, value: list[str]) -> list[str]:
        if any(not word.strip() for word in value):
            raise ValueError("a word to look for cannot be empty")
        return value


EARLIER_SYSTEM_KEYWORDS: tuple[TypeNameKeyword, ...] = (
    TypeNameKeyword(contains=["CRITICAL", "BREAK"], severity="CRITICAL"),
    TypeNameKeyword(contains=["HIGH", "FAIL"], severity="HIGH"),
    TypeNameKeyword(contains=["LOW", "MISMATCH"], severity="LOW"),
)
"""The earlier system's table (its triage agent), tried in this order; no word found means MEDIUM there."""

TypeWithoutPlaybook = Literal["DRAFT_FOR_APPROVAL", "NON_ACTIONABLE"]


class Fallbacks(PackModel):
    severityFromTypeName: bool = Field(
        default=False,
        description="When no severity rule matches and the source gives no severity, take the severity "
        "of the first typeNameKeywords entry with a word in the type name (before defaultSeverity).",
    )
    typeNameKeywords: list[TypeNameKeyword] | None = Field(
        default=None,
        description="The words and severities severityFromTypeName uses, in order; by default the earlier "
        "system's: CRITICAL/BREAK → CRITICAL, HIGH/FAIL → HIGH, LOW/MISMATCH → LOW.",
    )
    typeWithoutPlaybook: TypeWithoutPlaybook = Field(
        default="DRAFT_FOR_APPROVAL",
        description="A type no playbook lists in appliesTo: DRAFT_FOR_APPROVAL (a plan drafted for a person "
        "to approve) or NON_ACTIONABLE (information only, as the earlier system decided).",
    )

    @model_validator(mode="after")
    def _keywords_need_the_switch(self) -> Fallbacks:
        if self.typeNameKeywords is not None and not self.severityFromTypeName:
            raise ValueError("typeNameKeywords is only read with severityFromTypeName: true")
        return self

    def keywords(self) -> tuple[TypeNameKeyword, ...]:
        return tuple(self.typeNameKeywords) if self.typeNameKeywords is not None else EARLIER_SYSTEM_KEYWORDS


@dataclass(frozen=True)
class NameGuess:
    severity: Severity
    word: str


def severity_from_type_name(fallbacks: Fallbacks, exception_type: str) -> NameGuess | None:
    """The severity the type's name suggests, when the pack asks for it; None otherwise."""
    if not fallbacks.severityFromTypeName:
        return None
    name = exception_type.upper()
    for entry in fallbacks.keywords():
        for word in entry.contains:
            if word.strip().upper() in name:
                return NameGuess(entry.severity, word)
    return None


EARLIER_SYSTEM_FALLBACKS: dict[str, Any] = {
    "severityFromTypeName": True,
    "typeWithoutPlaybook": "NON_ACTIONABLE",
}


def with_earlier_fallbacks(document: dict[str, Any], file: str) -> tuple[dict[str, Any], Problem]:
    """A domain pack document set to decide as the earlier system did, and the notice saying so."""
    return {**document, "fallbacks": dict(EARLIER_SYSTEM_FALLBACKS)}, Problem(
        file,
        "$.fallbacks",
        "set to the earlier system's behaviour (--legacy-behaviour): when no severity rule matches, the "
        "severity is guessed from words in the type name (FAIL → HIGH, MISMATCH → LOW...); a type no "
        "playbook covers is information only (NON_ACTIONABLE) instead of a plan drafted for a person",
    )
