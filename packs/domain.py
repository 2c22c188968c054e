"""The domain pack: one business domain described as data, shared by every tenant on that domain."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from packs.common import PackModel, Severity
from packs.conditions import CaseCondition
from packs.fallbacks import Fallbacks
from packs.guardrails import Guardrails
from packs.playbook import Identifier, Playbook
from packs.testsuite import TestSuite

Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=128)]


class Concept(PackModel):
    definition: str = Field(min_length=1)
    synonyms: list[str] = Field(default_factory=list)


class Attribute(PackModel):
    type: Literal["string", "number", "integer", "boolean", "date", "datetime", "object", "array"]
    required: bool = False
    description: str = ""
    enum: list[Any] | None = Field(default=None, description="The allowed values, when a closed set.")
    examples: list[Any] = Field(default_factory=list, description="Realistic values (used by simulate).")


class Relation(PackModel):
    name: str = Field(min_length=1)
    target: str = Field(min_length=1, description="Another entity of this pack.")
    cardinality: Literal["one", "many"] = "one"


class Entity(PackModel):
    description: str = ""
    attributes: dict[Name, Attribute] = Field(default_factory=dict)
    relations: list[Relation] = Field(default_factory=list)
    identifiers: list[Name] = Field(
        default_factory=list,
        description="Attributes that identify one real-world thing (an account, an instruction): a case "
        "with the same value as a recently finished one is a recurrence (similar-case memory).",
    )

    @model_validator(mode="after")
    def _identifiers_are_attributes(self) -> Entity:
        unknown = [key for key in self.identifiers if key not in self.attributes]
        if unknown:
            raise ValueError(f"identifiers: {', '.join(unknown)} not among the attributes")
        return self


class DetectionRule(PackModel):
    description: str = Field(min_length=1)
    condition: CaseCondition | None = Field(
        default=None, description="When given, intake uses it to recognize an unlabelled exception."
    )


class ExceptionType(PackModel):
    description: str = Field(min_length=1)
    parentType: str | None = None
    entity: str | None = Field(default=None, description="The entity the raw payload describes.")
    actionable: bool = Field(
        default=True, description="False for information-only events that need no resolution."
    )
    detectionRules: list[DetectionRule] = Field(default_factory=list)


class SeverityRule(PackModel):
    id: Identifier
    description: str = ""
    condition: CaseCondition
    severity: Severity
    priorityScore: int = Field(default=0, description="Breaks ties between rules of equal severity.")


class ToolAuth(PackModel):
    kind: Literal["none", "api_key", "bearer", "basic"] = "none"
    secretRef: str | None = Field(
        default=None, description="Name of a secret held in settings; secrets never live in packs."
    )
    header: str = "X-API-Key"


class ToolDefinition(PackModel):
    description: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"}, description="JSON Schema of the arguments."
    )
    outputSchema: dict[str, Any] | None = Field(default=None, description="JSON Schema of the reply.")
    endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="The only URL this tool may reach; without one it can only run as a dry run.",
    )
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    auth: ToolAuth = Field(default_factory=ToolAuth)
    timeoutSeconds: float = Field(default=10.0, gt=0, le=300)
    retries: int = Field(default=0, ge=0, le=10)
    mutating: bool = Field(default=True, description="Whether calling it changes anything.")
    idempotent: bool = Field(default=False, description="Whether repeating a call is harmless.")

    @field_validator("parameters", "outputSchema")
    @classmethod
    def _is_json_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        if value is None:
            return value
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return value


class DomainPack(PackModel):
    domainName: Name
    version: str = Field(pattern=r"^\d+\.\d+(\.\d+)?([-+][0-9A-Za-z.-]+)?$")
    description: str = ""
    ontology: dict[str, Concept] = Field(default_factory=dict)
    entities: dict[Name, Entity] = Field(default_factory=dict)
    exceptionTypes: dict[Name, ExceptionType] = Field(min_length=1)
    severityRules: list[SeverityRule] = Field(default_factory=list)
    defaultSeverity: Severity | None = None
    tools: dict[Name, ToolDefinition] = Field(default_factory=dict)
    playbooks: list[Playbook] = Field(default_factory=list)
    guardrails: Guardrails = Field(default_factory=Guardrails)
    fallbacks: Fallbacks = Field(
        default_factory=Fallbacks,
        description="What decides when no rule or playbook does: exops's choices, or the earlier system's.",
    )
    testSuites: list[TestSuite] = Field(default_factory=list)

    def playbook(self, playbook_id: str) -> Playbook | None:
        return next((p for p in self.playbooks if p.id == playbook_id), None)
