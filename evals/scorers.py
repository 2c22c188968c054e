"""Scorers: pure functions from (expected, observed) to numbers, so each is checked by hand in tests.

- classification per decision field: accuracy, per-class precision / recall / F1, macro-F1 over the
  classes that occur (expected or predicted), and the confusion matrix (rows expected, columns
  predicted); ``None`` is a class of its own, written ``(none)``, because "no playbook" is a decision;
- trajectory: strict (the node path equals the expected one), subset (the expected nodes appear in
  that order, other nodes in between allowed), absent (nodes never visited);
- drafts: JSON-schema validity against the playbook schema, tools defined and allow-listed, and the
  steps that must / must not appear;
- repeats: the mean and a 95% confidence interval (Student's t) over epochs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema

from evals.dataset import DraftExpectation, StepMatch, TrajectoryExpectation

NONE_LABEL = "(none)"


def label(value: Any) -> str:
    if value is None:
        return NONE_LABEL
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class ClassScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Classification:
    """One field's metrics over a set of (expected, predicted) pairs."""

    n: int
    accuracy: float
    macro_f1: float
    classes: dict[str, ClassScore]
    labels: list[str]
    matrix: list[list[int]]
    """``matrix[i][j]``: cases expected ``labels[i]`` and predicted ``labels[j]``."""

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "macroF1": self.macro_f1,
            "classes": {k: vars(v) for k, v in self.classes.items()},
            "labels": self.labels,
            "matrix": self.matrix,
        }


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def classify(pairs: Sequence[tuple[Any, Any]]) -> Classification:
    """Metrics for ``(expected, predicted)`` pairs; values are compared as labels (``label``)."""
    given = [(label(e), label(p)) for e, p in pairs]
    labels = sorted({e for e, _ in given} | {p for _, p in given})
    index = {name: i for i, name in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for e, p in given:
        matrix[index[e]][index[p]] += 1
    classes: dict[str, ClassScore] = {}
    for name, i in index.items():
        tp = matrix[i][i]
        predicted = sum(row[i] for row in matrix)
        support = sum(matrix[i])
        precision, recall = _ratio(tp, predicted), _ratio(tp, support)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        classes[name] = ClassScore(precision, recall, f1, support)
    correct = sum(matrix[i][i] for i in range(len(labels)))
    macro = sum(c.f1 for c in classes.values()) / len(classes) if classes else 0.0
    return Classification(len(given), _ratio(correct, len(given)), macro, classes, labels, matrix)


def trajectory_problems(expected: TrajectoryExpectation, path: Sequence[str]) -> list[str]:
    """Why ``path`` fails the expectation; empty when it passes."""
    problems: list[str] = []
    if expected.strict is not None and list(path) != list(expected.strict):
        problems.append(f"path {' > '.join(path)} is not {' > '.join(expected.strict)}")
    if expected.subset is not None and not in_order(expected.subset, path):
        problems.append(f"path {' > '.join(path)} does not visit {' > '.join(expected.subset)} in order")
    visited = sorted(set(expected.absent) & set(path))
    if visited:
        problems.append(f"path visits {', '.join(visited)}")
    return problems


def in_order(wanted: Sequence[str], path: Sequence[str]) -> bool:
    """Whether ``wanted`` is a subsequence of ``path``."""
    remaining = iter(path)
    return all(any(step == node for node in remaining) for step in wanted)


def _step_matches(match: StepMatch, step: Mapping[str, Any]) -> bool:
    if match.type is not None and step.get("type") != match.type:
        return False
    tool = step.get("tool") or (step.get("suggestedToolCall") or {}).get("tool")
    if match.tool is not None and tool != match.tool:
        return False
    return match.name is None or match.name.lower() in str(step.get("name", "")).lower()


def draft_tools(draft: Mapping[str, Any]) -> list[str]:
    tools = []
    for step in draft.get("steps") or []:
        if isinstance(step, Mapping):
            tool = step.get("tool") or (step.get("suggestedToolCall") or {}).get("tool")
            if tool:
                tools.append(str(tool))
    return tools


def draft_problems(
    expected: DraftExpectation,
    draft: Mapping[str, Any] | None,
    *,
    schema: Mapping[str, Any],
    allowed_tools: Iterable[str],
) -> list[str]:
    """Why a run's draft (a playbook document, or None) fails the expectation; empty when it passes."""
    if draft is None:
        return ["a draft was expected, none was written"] if expected.required else []
    if expected.required is False:
        return ["no draft was expected, one was written"]
    problems: list[str] = []
    if expected.schemaValid:
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(dict(draft)), key=str)
        problems.extend(
            f"schema: {'/'.join(str(p) for p in e.absolute_path) or 'draft'}: {e.message}" for e in errors[:5]
        )
    if expected.onlyAllowedTools:
        allowed = set(allowed_tools)
        problems.extend(f"tool {tool!r} is not allowed" for tool in draft_tools(draft) if tool not in allowed)
    steps = [s for s in draft.get("steps") or [] if isinstance(s, Mapping)]
    for match in expected.mustInclude:
        if not any(_step_matches(match, step) for step in steps):
            problems.append(f"no step matches {match.model_dump(exclude_none=True)}")
    for match in expected.mustNotInclude:
        if any(_step_matches(match, step) for step in steps):
            problems.append(f"a step matches the forbidden {match.model_dump(exclude_none=True)}")
    return problems


T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}  # fmt: skip
"""Two-sided 95% quantiles of Student's t by degrees of freedom (1.96 beyond 30)."""


def t_quantile(df: int) -> float:
    if df > 30:
        return 1.96
    return T_975[max(k for k in T_975 if k <= df)]


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float
    high: float
    n: int

    def as_json(self) -> dict[str, float | int]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def estimate(values: Sequence[float]) -> Estimate:
    """Mean with a 95% confidence interval (a single value has a zero-width interval: one epoch)."""
    n = len(values)
    if n == 0:
        return Estimate(0.0, 0.0, 0.0, 0)
    mean = sum(values) / n
    if n == 1:
        return Estimate(mean, mean, mean, 1)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])
