"""An eval run: datasets by targets (by models) by epochs, each case scored, metrics per slice.

The result (``RunResult``) is plain JSON so runs can be stored, compared (``evals.compare``) and
rendered (``evals.report``) long after they ran. A case passes when every check it asked for passes:
each decision field written in ``expected``, the trajectory, the draft constraints, and the judge's
verdict when one was asked for. Replay misses and errors are failures of their own kind, kept apart
so a missing cassette never looks like a model that decided badly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from evals.dataset import SCORED_FIELDS, Dataset, EvalCase
from evals.scorers import classify, draft_problems, estimate, percentile, trajectory_problems
from evals.targets import Observation


class Target(Protocol):
    name: str

    async def run(self, case: EvalCase, domain: str) -> Observation: ...


class Check(BaseModel):
    name: str
    passed: bool
    expected: Any = None
    observed: Any = None
    detail: str = ""


class CaseRecord(BaseModel):
    dataset: str
    domain: str
    caseId: str
    tenant: str
    tags: list[str]
    target: str
    model: str
    epoch: int
    passed: bool
    checks: list[Check]
    observation: Observation

    @property
    def key(self) -> str:
        """Identifies the same case across runs (epochs apart)."""
        return f"{self.dataset}/{self.caseId}|{self.target}|{self.model}"


class RunResult(BaseModel):
    runId: str
    startedAt: str
    provider: str
    targets: list[str]
    models: list[str]
    epochs: int
    datasets: list[str]
    cases: list[CaseRecord]
    metrics: dict[str, Any] = Field(default_factory=dict)


Judge = Callable[[str, Mapping[str, Any]], Awaitable[Check]]
"""``(rubric, draft) -> check``: the optional LLM judge (``evals.judge``)."""

DraftSchemaFor = Callable[[str], Mapping[str, Any]]
"""Target name → the JSON schema its drafts must fit (pack playbooks, or the flat LLM draft)."""


def score(
    case: EvalCase,
    obs: Observation,
    *,
    allowed_tools: Sequence[str],
    draft_schema: Mapping[str, Any],
    decisions_scored: bool = True,
) -> list[Check]:
    """Every check the case asks for against one observation."""
    checks: list[Check] = []
    if obs.replayMiss:
        return [Check(name="replay", passed=False, detail=obs.replayMiss)]
    if obs.error:
        checks.append(Check(name="error", passed=False, detail=obs.error))
    expected = case.expected
    for name, value in expected.decisions().items():
        if not decisions_scored and name not in obs.decisions:
            continue
        got = obs.decisions.get(name)
        checks.append(Check(name=name, passed=got == value, expected=value, observed=got))
    if expected.trajectory is not None and decisions_scored:
        problems = trajectory_problems(expected.trajectory, obs.path)
        checks.append(
            Check(name="trajectory", passed=not problems, observed=obs.path, detail="; ".join(problems))
        )
    if expected.draft is not None and (
        obs.draft is not None or obs.draftSchemaValid is not None or decisions_scored
    ):
        if obs.draftSchemaValid is False:
            problems = ["the reply did not fit the draft schema"]
        else:
            problems = draft_problems(
                expected.draft, obs.draft, schema=draft_schema, allowed_tools=allowed_tools
            )
        checks.append(Check(name="draft", passed=not problems, detail="; ".join(problems)))
    return checks


def _rate(records: Sequence[CaseRecord], check: str | None = None) -> float | None:
    if check is None:
        return sum(r.passed for r in records) / len(records) if records else None
    found = [c.passed for r in records for c in r.checks if c.name == check]
    return sum(found) / len(found) if found else None


def slice_metrics(records: Sequence[CaseRecord]) -> dict[str, Any]:
    """Pass rates, classification per field, trajectory / draft rates, latency and tokens."""
    fields: dict[str, Any] = {}
    for name in SCORED_FIELDS:
        pairs = [(c.expected, c.observed) for r in records for c in r.checks if c.name == name]
        if pairs:
            fields[name] = classify(pairs).as_json()
    latencies = [r.observation.latencyMs for r in records]
    return {
        "cases": len(records),
        "passRate": _rate(records),
        "errors": sum(1 for r in records if r.observation.error and not r.observation.replayMiss),
        "replayMisses": sum(1 for r in records if r.observation.replayMiss),
        "fields": fields,
        "trajectoryRate": _rate(records, "trajectory"),
        "draftRate": _rate(records, "draft"),
        "judgeRate": _rate(records, "judge"),
        "latencyMs": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "llmCalls": sum(r.observation.llmCalls for r in records),
        "promptTokens": sum(r.observation.promptTokens for r in records),
        "completionTokens": sum(r.observation.completionTokens for r in records),
    }


def run_metrics(
    records: Sequence[CaseRecord], *, price_per_million: tuple[float, float] = (0.0, 0.0)
) -> dict[str, Any]:
    """Metrics overall and per slice (target and model, dataset, domain, tenant, tag), with the pass rate
    over epochs as a mean and a 95% interval."""
    overall = slice_metrics(records)
    cost = (
        overall["promptTokens"] * price_per_million[0] + overall["completionTokens"] * price_per_million[1]
    ) / 1e6
    overall["cost"] = round(cost, 6)
    by_epoch: dict[int, list[CaseRecord]] = defaultdict(list)
    for r in records:
        by_epoch[r.epoch].append(r)
    overall["passRateEpochs"] = estimate([_rate(rs) or 0.0 for _, rs in sorted(by_epoch.items())]).as_json()
    slices: dict[str, dict[str, Any]] = {}
    groups: dict[str, Callable[[CaseRecord], list[str]]] = {
        "run": lambda r: [f"{r.target} | {r.model}"],
        "dataset": lambda r: [r.dataset],
        "domain": lambda r: [r.domain],
        "tenant": lambda r: [r.tenant],
        "tag": lambda r: r.tags,
    }
    for group, keys in groups.items():
        buckets: dict[str, list[CaseRecord]] = defaultdict(list)
        for r in records:
            for key in keys(r):
                buckets[key].append(r)
        slices[group] = {key: slice_metrics(rs) for key, rs in sorted(buckets.items())}
    return {"overall": overall, "slices": slices}


def headline(result: RunResult) -> dict[str, Any]:
    """The few numbers ``--json`` prints on its last line."""
    overall = result.metrics.get("overall", {})
    fields = overall.get("fields", {})
    return {
        "runId": result.runId,
        "cases": overall.get("cases"),
        "passRate": overall.get("passRate"),
        "passRateEpochs": overall.get("passRateEpochs"),
        "macroF1": {name: f["macroF1"] for name, f in fields.items()},
        "accuracy": {name: f["accuracy"] for name, f in fields.items()},
        "trajectoryRate": overall.get("trajectoryRate"),
        "draftRate": overall.get("draftRate"),
        "replayMisses": overall.get("replayMisses"),
        "errors": overall.get("errors"),
        "promptTokens": overall.get("promptTokens"),
        "completionTokens": overall.get("completionTokens"),
        "cost": overall.get("cost"),
    }


async def run_eval(
    datasets: Sequence[Dataset],
    targets: Sequence[tuple[Target, str]],
    *,
    run_id: str,
    provider: str,
    epochs: int = 1,
    allowed_tools: Callable[[str, str], Sequence[str]],
    draft_schema: DraftSchemaFor,
    judge: Judge | None = None,
    price_per_million: tuple[float, float] = (0.0, 0.0),
    on_case: Callable[[CaseRecord], None] | None = None,
) -> RunResult:
    """Run every case of every dataset through every ``(target, model label)``, ``epochs`` times."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    records: list[CaseRecord] = []
    for epoch in range(1, epochs + 1):
        for target, model in targets:
            whole = target.name == "graph"
            for dataset in datasets:
                for case in dataset.cases:
                    if not whole and not _prompt_scores(target.name, case):
                        continue
                    obs = await target.run(case, dataset.domain)
                    checks = score(
                        case, obs, allowed_tools=allowed_tools(case.tenant, dataset.domain),
                        draft_schema=draft_schema(target.name), decisions_scored=whole,
                    )  # fmt: skip
                    rubric = case.expected.draft.judgeRubric if case.expected.draft else None
                    if judge is not None and rubric and obs.draft is not None:
                        checks.append(await judge(rubric, obs.draft))
                    record = CaseRecord(
                        dataset=dataset.dataset, domain=dataset.domain, caseId=case.id, tenant=case.tenant,
                        tags=case.tags, target=target.name, model=model, epoch=epoch,
                        passed=bool(checks) and all(c.passed for c in checks), checks=checks, observation=obs,
                    )  # fmt: skip
                    records.append(record)
                    if on_case is not None:
                        on_case(record)
    return RunResult(
        runId=run_id,
        startedAt=started,
        provider=provider,
        targets=sorted({t.name for t, _ in targets}),
        models=sorted({m for _, m in targets}),
        epochs=epochs,
        datasets=[d.dataset for d in datasets],
        cases=records,
        metrics=run_metrics(records, price_per_million=price_per_million),
    )


def _prompt_scores(target: str, case: EvalCase) -> bool:
    """Whether a prompt target has anything to score in this case."""
    if target.startswith("prompt:type_classification@"):
        return "exceptionType" in case.expected.model_fields_set
    if target.startswith("prompt:playbook_draft@"):
        return case.expected.draft is not None
    return False
