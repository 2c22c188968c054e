"""The shapes LLM answers must take, as pydantic models sent as OpenAI strict Structured Outputs.

Strict mode accepts only closed objects whose every property is required, so: ``extra="forbid"``,
no defaults, optional values as ``X | None`` (the model answers ``null``), no free-form dicts (tool
arguments are a list of name/value pairs), and no numeric or length constraints in the schema
(OpenAI-compatible servers differ in what they enforce; range checks run here, as validators).

Playbook drafts are FLAT: one step shape with nullable fields, because models fill one flat object
far more reliably than a discriminated union. ``draft_to_playbook`` turns that into typed pack steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from packs.common import ResolutionStatus
from packs.playbook import (
    AddCommentStep,
    AssignOwnerStep,
    CallToolStep,
    ManualStep,
    NotifyStep,
    Playbook,
    PlaybookStep,
    SetStatusStep,
    StepType,
    SuggestedToolCall,
)

UNKNOWN_TYPE = "UNKNOWN"


class LlmOutput(BaseModel):
    """Base of every structured answer: closed objects, as strict mode requires."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TriageSummary(LlmOutput):
    summary: str = Field(description="Two to four sentences an operator reads first.")
    likelyCauses: list[str] = Field(description="Most likely causes, most likely first.")


class SupervisorOpinion(LlmOutput):
    recommendation: Literal["continue", "require_approval", "escalate"] = Field(
        description="continue keeps the plan; require_approval and escalate only ever tighten it."
    )
    concerns: list[str] = Field(description="Specific problems with the decisions so far; empty if none.")
    rationale: str


class TypeClassification(LlmOutput):
    """The fields every classification answer has; ``classification_model`` narrows the type."""

    exceptionType: str
    confidence: float = Field(description="0 to 1: how sure the classification is.")
    rationale: str

    @field_validator("confidence")
    @classmethod
    def _unit_interval(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError("confidence must be between 0 and 1")
        return value


@lru_cache(maxsize=64)
def _classification_model(types: tuple[str, ...]) -> type[TypeClassification]:
    allowed: Any = Literal.__getitem__(types)  # a Literal built at run time from the domain's taxonomy
    return create_model(
        "TypeClassification",
        __base__=TypeClassification,
        __doc__="Classify an exception into the domain taxonomy, or UNKNOWN.",
        exceptionType=(allowed, Field(description=f"One of the taxonomy's types, or {UNKNOWN_TYPE}.")),
    )


def classification_model(types: Sequence[str]) -> type[TypeClassification]:
    """A classification answer whose ``exceptionType`` is an enum of ``types`` plus UNKNOWN."""
    if isinstance(types, str):
        raise TypeError("types must be a sequence of type names, not one string")
    names = tuple(dict.fromkeys([*types, UNKNOWN_TYPE]))  # de-duplicated, order kept
    return _classification_model(names)


class JudgeVerdict(LlmOutput):
    """The eval judge's answer; ``pass`` is explicit so a verdict is never read off a score threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    reasoning: str = Field(description="Criterion by criterion, before the verdict.")
    passed: bool = Field(alias="pass", description="true only when every criterion is met.")
    score: float = Field(description="0 to 1: the share of criteria met.")

    @field_validator("score")
    @classmethod
    def _unit_interval(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError("score must be between 0 and 1")
        return value


class DraftArgument(LlmOutput):
    name: str
    value: str = Field(description="A literal, or a placeholder such as {{ exception.rawPayload.tradeId }}.")


class DraftStep(LlmOutput):
    type: StepType
    name: str = Field(description="Short label shown to operators.")
    text: str | None = Field(
        description="notify: the message; add_comment: the comment; manual: the instructions. Else null."
    )
    tool: str | None = Field(description="call_tool: the tool to call; manual: a tool that helps, or null.")
    arguments: list[DraftArgument] | None = Field(description="Arguments for the tool, or null.")
    status: ResolutionStatus | None = Field(description="set_status: the new status. Else null.")
    group: str | None = Field(description="notify / assign_owner: the group; null for the routed group.")


class PlaybookDraft(LlmOutput):
    name: str
    description: str
    steps: list[DraftStep]
    successCriteria: list[str]
    rationale: str = Field(description="Why these steps resolve this exception.")


class DraftError(ValueError):
    """A draft that cannot become a playbook; ``problems`` holds one sentence per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


def _arguments(step: DraftStep, label: str, problems: list[str]) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for arg in step.arguments or []:
        if arg.name in arguments:
            problems.append(f"{label}: argument {arg.name!r} is given twice")
        arguments[arg.name] = arg.value
    return arguments


def _typed_step(number: int, step: DraftStep, problems: list[str]) -> PlaybookStep | None:
    """One flat step as a typed pack step; fields the step type does not use are ignored."""
    label = f"step {number} ({step.type} {step.name!r})"
    before = len(problems)
    name = step.name.strip()
    text = (step.text or "").strip()
    tool = (step.tool or "").strip()
    if not name:
        problems.append(f"step {number} ({step.type}): needs a name")
    needs_text = {"notify": "a message", "add_comment": "a comment", "manual": "instructions"}
    if step.type in needs_text and not text:
        problems.append(f"{label}: needs {needs_text[step.type]} in text")
    if step.type == "call_tool" and not tool:
        problems.append(f"{label}: needs a tool")
    if step.type == "set_status" and step.status is None:
        problems.append(f"{label}: needs a status")
    arguments = _arguments(step, label, problems) if tool else {}
    if len(problems) > before:
        return None
    group = (step.group or "").strip() or None
    match step.type:
        case "notify":
            return NotifyStep(type="notify", name=name, group=group, message=text)
        case "assign_owner":
            return AssignOwnerStep(type="assign_owner", name=name, group=group)
        case "set_status":
            assert step.status is not None
            return SetStatusStep(type="set_status", name=name, status=step.status)
        case "add_comment":
            return AddCommentStep(type="add_comment", name=name, text=text)
        case "call_tool":
            return CallToolStep(type="call_tool", name=name, tool=tool, arguments=arguments)
        case "manual":
            suggested = SuggestedToolCall(tool=tool, arguments=arguments) if tool else None
            return ManualStep(type="manual", name=name, instructions=text, suggestedToolCall=suggested)


def draft_to_playbook(draft: PlaybookDraft, *, playbook_id: str, applies_to: Sequence[str]) -> Playbook:
    """Turn a flat draft into a typed, never-approved playbook; raises DraftError listing every bad step."""
    problems: list[str] = []
    if not draft.name.strip():
        problems.append("the draft needs a name")
    if not draft.steps:
        problems.append("the draft has no steps")
    steps = [_typed_step(number, step, problems) for number, step in enumerate(draft.steps, start=1)]
    if problems:
        raise DraftError(problems)
    return Playbook(
        id=playbook_id,
        name=draft.name.strip(),
        description=draft.description.strip(),
        appliesTo=list(applies_to),
        approved=False,  # an LLM-drafted playbook is never approved automatically
        steps=[step for step in steps if step is not None],
        successCriteria=[c for c in (c.strip() for c in draft.successCriteria) if c],
    )
