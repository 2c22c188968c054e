"""The boundary models for what people and systems send into the graph: raw exceptions and answers.

These are pydantic (validated where data enters); the graph's state itself is plain TypedDicts.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from packs.common import Severity
from packs.playbook import PlaybookStep

EXCEPTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


class RawException(BaseModel):
    """An exception as an upstream system sends it (camelCase, unknown fields refused)."""

    model_config = ConfigDict(extra="forbid")

    exceptionId: str | None = Field(default=None, pattern=EXCEPTION_ID_PATTERN)
    tenantId: str | None = None
    sourceSystem: str = Field(default="unknown", min_length=1, max_length=200)
    exceptionType: str | None = Field(default=None, max_length=200)
    severity: Severity | None = None
    timestamp: datetime | None = None
    rawPayload: dict[str, Any] = Field(default_factory=dict)
    normalizedContext: dict[str, Any] = Field(default_factory=dict)

    @field_validator("severity", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


def with_exception_id(raw: RawException) -> RawException:
    """Keep a provided exceptionId; otherwise give the exception a new one (the thread id needs it)."""
    if raw.exceptionId:
        return raw
    return raw.model_copy(update={"exceptionId": f"EX-{uuid.uuid4().hex[:16].upper()}"})


class ApprovalAnswer(BaseModel):
    """A decision on a pending approval; ``expire`` is the system's answer when the deadline passes."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject", "edit", "comment", "expire"]
    actor: str = Field(min_length=1, max_length=200)
    actorType: Literal["human", "system"] = "human"
    comment: str | None = Field(default=None, max_length=5000)
    editedPlan: list[PlaybookStep] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ApprovalAnswer:
        if self.decision == "edit" and not self.editedPlan:
            raise ValueError("an edit needs editedPlan with at least one step")
        if self.decision != "edit" and self.editedPlan is not None:
            raise ValueError("editedPlan is only allowed with decision 'edit'")
        if self.decision == "comment" and not self.comment:
            raise ValueError("a comment decision needs a comment")
        if self.decision == "expire" and self.actorType != "system":
            raise ValueError("only the system expires an approval")
        return self


class ManualStepAnswer(BaseModel):
    """A person completing or skipping the manual step the case is waiting on."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["complete", "skip"]
    actor: str = Field(min_length=1, max_length=200)
    notes: str | None = Field(default=None, max_length=5000)
