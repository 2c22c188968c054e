"""The boundary models for what people and systems send into the graph: raw exceptions and answers.

These are pydantic (validated where data enters); the graph's state itself is plain TypedDicts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PrivateAttr,
    TypeAdapter,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema

from packs.common import ResolutionStatus, Severity
from packs.jsonvalues import JsonObject
from packs.playbook import PlaybookStep

EXCEPTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"

SOURCE_CLAIMS = ("detectedRules", "suggestedActions", "resolutionStatus", "auditTrail", "currentPlaybookId",
                 "currentStep")  # fmt: skip
"""Fields of the canonical record that are decisions when exops makes them. A record coming from the
earlier system (or any system that already processed it) may carry its own: they are accepted and
kept under ``sourceClaims`` as what the source said, and never used to decide anything."""

CONTEXT_KEYS_WE_DECIDE = ("entity", "attributes", "missingRequired")
"""Keys of ``normalizedContext`` that intake computes from the domain pack; a source's own values for
them are kept under ``sourceClaims.normalizedContext`` only."""

PAYLOAD_TYPE_KEYS = ("exceptionType", "exception_type", "type")
"""Where a record without ``exceptionType`` may name its type inside ``rawPayload`` (the earlier
system's queue events carried it there), tried in this order."""


class SourceAuditEntry(BaseModel):
    """One entry of the audit trail a source sends with its record (the earlier system's shape)."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(min_length=1, max_length=5000)
    timestamp: datetime
    actor: str = Field(min_length=1, max_length=200)


NAIVE_TIMESTAMP = "timestamp had no offset; read as UTC"


class RawException(BaseModel):
    """An exception as an upstream system sends it (camelCase, unknown fields refused).

    Payload values must be JSON that exops can store and checkpoint (``JsonObject``: integers within
    64 bits, finite numbers), refused here with their path rather than failing the case later.
    A ``timestamp`` without an offset (older systems send local-looking times) is read as UTC, so
    nothing past this model ever holds a naive datetime; its JSON dump keeps the naive form (the record
    of what was received, from which a re-read says the same), and ``notices`` says so for the intake.

    Besides the facts (type, severity, payload, context), the canonical record's decision fields are
    accepted as the source wrote them (``SOURCE_CLAIMS``): see ``source_claims``."""

    model_config = ConfigDict(extra="forbid")

    exceptionId: str | None = Field(default=None, pattern=EXCEPTION_ID_PATTERN)
    tenantId: str | None = None
    sourceSystem: str = Field(default="unknown", min_length=1, max_length=200)
    exceptionType: str | None = Field(default=None, max_length=200)
    severity: Severity | None = None
    timestamp: datetime | None = Field(
        default=None, description="ISO 8601; without an offset it is read as UTC (and the case says so)"
    )
    rawPayload: JsonObject = Field(default_factory=dict)
    normalizedContext: JsonObject = Field(default_factory=dict)
    detectedRules: list[str] | None = Field(
        default=None, description="Rules the source says it detected: kept, never used to decide."
    )
    suggestedActions: list[str] | None = Field(
        default=None, description="Actions the source suggested: kept, never used to decide."
    )
    resolutionStatus: ResolutionStatus | None = Field(
        default=None, description="The source's status for its record: kept; exops's status starts OPEN."
    )
    auditTrail: list[SourceAuditEntry] | None = Field(
        default=None, description="The source's own audit trail: kept beside exops's."
    )
    currentPlaybookId: int | str | None = Field(
        default=None, description="The source's playbook for the record: kept, never run."
    )
    currentStep: int | None = Field(default=None, description="The source's step in its playbook: kept.")
    _timestamp_as_sent: str | None = PrivateAttr(default=None)

    @field_validator("severity", "resolutionStatus", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _utc_timestamp(self) -> RawException:
        moment = self.timestamp
        if moment is not None and moment.utcoffset() is None:
            self._timestamp_as_sent = moment.isoformat()
            self.timestamp = moment.replace(tzinfo=UTC)
        return self

    @field_serializer("timestamp", when_used="json")
    def _timestamp_text(self, moment: datetime | None) -> Any:
        return self._timestamp_as_sent or moment

    @property
    def notices(self) -> list[str]:
        """What intake read differently from how it was sent (for the case's evidence)."""
        return [NAIVE_TIMESTAMP] if self._timestamp_as_sent is not None else []

    def source_claims(self) -> dict[str, Any]:
        """What the source said about its own record (its decisions, and its normalizedContext when it
        sent one), in JSON form; empty when it said nothing of the kind."""
        names = {name for name in SOURCE_CLAIMS if getattr(self, name) is not None}
        if self.normalizedContext:
            names.add("normalizedContext")
        return self.model_dump(mode="json", include=names) if names else {}

    def reported_type(self) -> tuple[str | None, str | None]:
        """The type the source gives and where: ``exceptionType``, else the first string among
        ``rawPayload.exceptionType``, ``.exception_type`` and ``.type``; ``(None, None)`` if none."""
        if self.exceptionType:
            return self.exceptionType, "exceptionType"
        for key in PAYLOAD_TYPE_KEYS:
            value = self.rawPayload.get(key)
            if isinstance(value, str) and 0 < len(value.strip()) <= 200:
                return value.strip(), f"rawPayload.{key}"
        return None, None


def with_exception_id(raw: RawException) -> RawException:
    """Keep a provided exceptionId; otherwise give the exception a new one (the thread id needs it)."""
    if raw.exceptionId:
        return raw
    return raw.model_copy(update={"exceptionId": f"EX-{uuid.uuid4().hex[:16].upper()}"})


def _blank_is_none(value: Any) -> Any:
    """A reason of only whitespace is no reason."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


class ApprovalAnswer(BaseModel):
    """A decision on a pending approval; ``expire`` is the system's answer when the deadline passes.

    ``takeover``: the person takes the case over by hand (it stays open, assigned to them). A
    rejection needs a ``reason``; ``approve`` of an approval whose plan is empty is refused by the
    approval node (there is nothing to approve), which needs the graph's state to tell.
    """

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject", "edit", "comment", "expire", "takeover"]
    actor: str = Field(min_length=1, max_length=200)
    actorType: Literal["human", "system"] = "human"
    comment: str | None = Field(default=None, max_length=5000)
    reason: str | None = Field(default=None, max_length=5000, description="Why it is rejected")
    editedPlan: list[PlaybookStep] | None = None

    @field_validator("reason", mode="before")
    @classmethod
    def _no_blank_reason(cls, value: Any) -> Any:
        return _blank_is_none(value)

    @model_validator(mode="after")
    def _consistent(self) -> ApprovalAnswer:
        if self.decision == "edit" and not self.editedPlan:
            raise ValueError("an edit needs editedPlan with at least one step")
        if self.decision != "edit" and self.editedPlan is not None:
            raise ValueError("editedPlan is only allowed with decision 'edit'")
        if self.decision == "comment" and not self.comment:
            raise ValueError("a comment decision needs a comment")
        if self.decision == "reject" and self.reason is None:
            raise ValueError("a rejection needs a reason")
        if self.decision != "reject" and self.reason is not None:
            raise ValueError("a reason is only given with decision 'reject'")
        if self.decision == "expire" and self.actorType != "system":
            raise ValueError("only the system expires an approval")
        if self.decision == "takeover" and self.actorType != "human":
            raise ValueError("only a person takes a case over")
        return self


class Recalculate(BaseModel):
    """The command to match playbooks again under the packs in force now (``graph.recalculation``),
    given where an approval answer is awaited; the approval still waits afterwards."""

    model_config = ConfigDict(extra="forbid")

    command: Literal["recalculate"]
    actor: str = Field(min_length=1, max_length=200)


class ManualStepAnswer(BaseModel):
    """A person completing or skipping the manual step the case is waiting on; skipping needs a reason."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["complete", "skip"]
    actor: str = Field(min_length=1, max_length=200)
    notes: str | None = Field(default=None, max_length=5000)
    reason: str | None = Field(default=None, max_length=5000, description="Why the step is skipped")

    @field_validator("reason", mode="before")
    @classmethod
    def _no_blank_reason(cls, value: Any) -> Any:
        return _blank_is_none(value)

    @model_validator(mode="after")
    def _consistent(self) -> ManualStepAnswer:
        if self.action == "skip" and self.reason is None:
            raise ValueError("skipping a step needs a reason")
        if self.action == "complete" and self.reason is not None:
            raise ValueError("a reason is only given when skipping a step")
        return self


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The same JSON Schema with every local ``$ref`` replaced by its definition (none are recursive)."""
    definitions = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            rest = {key: value for key, value in node.items() if key != "$ref"}
            return walk({**definitions[ref.removeprefix("#/$defs/")], **rest})
        return {key: walk(value) for key, value in node.items() if key != "$defs"}

    return walk(schema)  # type: ignore[no-any-return]


def resume_type(
    model: type[BaseModel] | TypeAdapter[Any],
    *,
    name: str | None = None,
    validate: Callable[[Any], Any] | None = None,
) -> type:
    """A type for ``interrupt(..., response_schema=...)`` that validates the answer with ``model`` (a
    model class, or a ``TypeAdapter`` for a union of them; ``validate`` replaces its validation).

    Given a model class, LangGraph builds its JSON schema on every interrupt (5 ms for
    ``ApprovalAnswer``, a tenth of a case's CPU). Given a plain dict it would skip validation, and a
    malformed answer would then be saved as the resume value, leaving the case stuck on it. This type
    keeps LangGraph's validation (a bad answer raises before anything is saved, and the wait stays
    open) while handing it the schema computed once here.
    """
    if isinstance(model, TypeAdapter):
        schema = _inline_refs(model.json_schema())
        check = validate or model.validate_python
    else:
        schema = _inline_refs(model.model_json_schema())
        check = validate or model.model_validate

    class Answer:
        @classmethod
        def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
            return core_schema.no_info_plain_validator_function(check)

        @classmethod
        def __get_pydantic_json_schema__(
            cls, schema_: CoreSchema, handler: GetJsonSchemaHandler
        ) -> dict[str, Any]:
            return schema

    label = name or getattr(model, "__name__", "Answer")
    Answer.__name__ = Answer.__qualname__ = f"{label}Resume"
    return Answer


def approval_input(value: Any) -> ApprovalAnswer | Recalculate:
    """What an approval's wait accepts: the recalculation command (it names a ``command``), else a
    person's answer, validated as such, so a bad answer's errors point at the answer's own fields."""
    if isinstance(value, ApprovalAnswer | Recalculate):
        return value
    if isinstance(value, dict) and "command" in value:
        return Recalculate.model_validate(value)
    return ApprovalAnswer.model_validate(value)


APPROVAL_RESUME = resume_type(
    TypeAdapter(ApprovalAnswer | Recalculate), name="ApprovalAnswer", validate=approval_input
)
MANUAL_STEP_RESUME = resume_type(ManualStepAnswer)
