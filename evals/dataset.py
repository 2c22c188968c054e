"""Eval datasets: labelled exceptions with what a good run decides, typed and schema'd like packs.

A dataset is a YAML (or JSON) file under ``evals/datasets/<domain>/``: a few header fields and a
list of cases. Each case is a raw exception as an upstream system sends it, the tenant whose policy
it runs under, tags for slicing the metrics, and ``expected``: only the fields given are scored, so
a case about severity thresholds says nothing about playbooks and is not penalised for them.

``answers`` lets whole runs be scored: when the graph stops for an approval or a manual step, the
case's answer is given (approve / reject / edit; complete / skip), so the final status is the one a
person's decision leads to. Without an answer the run stops where it waits, as in production.

Three sources feed the same model: hand-written files, the packs' own test suites (``from_suites``),
and real decided cases exported from the database (``exops eval dataset from-cases``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from graph.inputs import ApprovalAnswer, ManualStepAnswer, RawException
from packs.common import Actionability, ResolutionStatus, Severity, TenantId
from packs.domain import DomainPack
from packs.playbook import StepType
from packs.suite_runner import AUTHOR_TENANT_ID
from packs.testsuite import TestCase

DATASETS_DIR = Path(__file__).parent / "datasets"
SCHEMA_PATH = Path(__file__).parent / "schemas" / "dataset.schema.json"
Stage = Literal[
    "intake", "triage", "policy", "supervisor", "resolution", "approval", "execute", "human_step", "feedback",
    "escalate",
]  # fmt: skip
SCORED_FIELDS = (
    "exceptionType",
    "severity",
    "actionability",
    "playbookId",
    "humanApprovalRequired",
    "resolutionStatus",
)
"""Decision fields scored as classifications (per class precision / recall / F1, confusion matrix)."""


class EvalModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepMatch(EvalModel):
    """A step a draft must (or must not) hold: every field given must match, names case-insensitively
    as substrings (``name: retry`` matches "Retry settlement")."""

    type: StepType | None = None
    tool: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _something(self) -> StepMatch:
        if self.type is None and self.tool is None and self.name is None:
            raise ValueError("a step match needs at least one of type, tool, name")
        return self


class DraftExpectation(EvalModel):
    """Constraints on a playbook draft (LLM-written): checked whenever the run produced one."""

    required: bool | None = Field(
        default=None, description="true: a draft must exist; false: none may (an approved playbook applies)."
    )
    schemaValid: bool = Field(default=True, description="The draft must fit the playbook schema.")
    onlyAllowedTools: bool = Field(
        default=True, description="Every tool the draft names is defined by the domain and allow-listed."
    )
    mustInclude: list[StepMatch] = Field(default_factory=list)
    mustNotInclude: list[StepMatch] = Field(default_factory=list)
    judgeRubric: str | None = Field(
        default=None, description="A rubric for the optional LLM judge (``--judge``); pass/fail plus a score."
    )


class TrajectoryExpectation(EvalModel):
    """The node path: ``strict`` equals it exactly; ``subset`` nodes appear in this order (gaps allowed);
    ``absent`` nodes are never visited."""

    strict: list[Stage] | None = None
    subset: list[Stage] | None = None
    absent: list[Stage] = Field(default_factory=list)


class Expected(EvalModel):
    """What a good run decides; only the fields given are scored. ``playbookId: null`` means none."""

    exceptionType: str | None = None
    severity: Severity | None = None
    actionability: Actionability | None = None
    playbookId: str | None = None
    humanApprovalRequired: bool | None = None
    resolutionStatus: ResolutionStatus | None = None
    trajectory: TrajectoryExpectation | None = None
    draft: DraftExpectation | None = None

    def decisions(self) -> dict[str, Any]:
        """The decision fields the author wrote (``None`` included when written), by name."""
        return {name: getattr(self, name) for name in SCORED_FIELDS if name in self.model_fields_set}


class Answers(EvalModel):
    """How people answer the graph's questions in this case (first match is used each time)."""

    approval: ApprovalAnswer | None = None
    manualSteps: ManualStepAnswer | None = Field(
        default=None, description="Given to every manual step the run stops at."
    )


class EvalCase(EvalModel):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    tenant: TenantId
    input: RawException
    expected: Expected
    answers: Answers = Field(default_factory=Answers)


class Dataset(EvalModel):
    """One file of cases for one domain."""

    dataset: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Name used in reports and baselines.")
    domain: str
    description: str = ""
    source: Literal["hand-written", "pack-suite", "decided-cases"] = "hand-written"
    cases: list[EvalCase] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Dataset:
        seen: set[str] = set()
        for index, case in enumerate(self.cases):
            if case.id in seen:
                raise ValueError(f"cases[{index}].id {case.id!r} is used twice")
            seen.add(case.id)
        return self


class DatasetError(ValueError):
    """A dataset file that cannot be read; the message names the file and the field."""


def _where(loc: Sequence[int | str]) -> str:
    path = "$"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def load_dataset(path: Path) -> Dataset:
    """Read one dataset file; errors name the file and every bad field by its path."""
    try:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc
    try:
        return Dataset.model_validate(doc)
    except ValidationError as exc:
        problems = [f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)]
        raise DatasetError(f"{path}: " + "; ".join(problems[:10])) from None


def dataset_files(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, and every ``*.yaml`` / ``*.json`` under folders named."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json")))
        elif path.exists():
            found.append(path)
        else:
            raise DatasetError(f"{path}: no such file or folder")
    return found


def load_datasets(paths: Iterable[Path]) -> list[Dataset]:
    return [load_dataset(path) for path in dataset_files(paths)]


def raw_from_suite(case: TestCase) -> RawException:
    context = dict(case.input.normalizedContext)
    if case.input.slaMinutesRemaining is not None:
        context["slaMinutesRemaining"] = case.input.slaMinutesRemaining
    return RawException(
        exceptionId=case.caseId,
        exceptionType=case.input.exceptionType,
        sourceSystem=case.input.sourceSystem,
        severity=case.input.severity,
        rawPayload=case.input.rawPayload,
        normalizedContext=context,
    )


def from_suites(domain: DomainPack) -> Dataset | None:
    """A pack's own test suites read as a dataset; cases without a tenant run under the author's view
    (``packs.suite_runner.author_tenant``: every approved playbook, every tool), as ``exops packs test``
    runs them. None when the pack has none."""
    cases = [
        EvalCase(
            id=f"{suite.suiteId}.{case.caseId}",
            description=case.description,
            tags=["pack-suite", suite.suiteId],
            tenant=case.tenantId or AUTHOR_TENANT_ID,
            input=raw_from_suite(case),
            expected=Expected.model_validate(case.expected.checked()),
        )
        for suite in domain.testSuites
        for case in suite.cases
    ]
    if not cases:
        return None
    name = f"{domain.domainName.lower()}-suites"
    return Dataset(dataset=name, domain=domain.domainName, source="pack-suite", cases=cases)


def dataset_schema() -> dict[str, Any]:
    schema = Dataset.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "exops eval dataset",
    }


def render_schema() -> str:
    return json.dumps(dataset_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_schema(), encoding="utf-8")
    return path
