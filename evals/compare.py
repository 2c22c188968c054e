"""Comparing two runs, gating CI on thresholds and a baseline, and JUnit XML for CI dashboards.

A case *regressed* when it passed in the baseline and fails now (any epoch failing counts as a
failure for that case), and *improved* the other way round; cases only in one run are listed apart.

Gate exit codes (``exops eval run --gate``, ``exops eval compare --gate``), documented in docs/evals.md:

- ``0``: every threshold holds and no case regressed;
- ``1``: a threshold failed (pass rate, a field's macro-F1, replay misses);
- ``2``: a case regressed against the baseline (takes precedence over ``1``);
- ``3``: the run could not be scored at all (bad dataset, replay miss with ``--strict-replay``...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from pydantic import BaseModel, Field

from evals.run import CaseRecord, RunResult

EXIT_OK, EXIT_THRESHOLD, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 2, 3


class Thresholds(BaseModel):
    """Minimums a run must meet; a field missing from the run is not checked."""

    passRate: float | None = None
    macroF1: dict[str, float] = Field(default_factory=dict)
    maxReplayMisses: int | None = 0
    maxErrors: int | None = None


BASELINES_DIR = Path(__file__).parent / "baselines"


class Baseline(BaseModel):
    """What a dataset scored when its baseline was last accepted: per case key, whether it passed."""

    dataset: str
    runId: str
    passRate: float | None
    outcomes: dict[str, bool]


def baselines_from(run: RunResult) -> list[Baseline]:
    outcomes = case_outcomes(run)
    found = []
    for dataset in run.datasets:
        mine = {k: v for k, v in outcomes.items() if k.startswith(f"{dataset}/")}
        rate = sum(mine.values()) / len(mine) if mine else None
        found.append(Baseline(dataset=dataset, runId=run.runId, passRate=rate, outcomes=mine))
    return found


def write_baselines(run: RunResult, folder: Path = BASELINES_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for baseline in baselines_from(run):
        path = folder / f"{baseline.dataset}.json"
        path.write_text(baseline.model_dump_json(indent=1) + "\n", encoding="utf-8")
        written.append(path)
    return written


def read_baselines(datasets: list[str], folder: Path = BASELINES_DIR) -> dict[str, bool] | None:
    """The committed outcomes of these datasets merged, or None when none has a baseline."""
    merged: dict[str, bool] = {}
    found = False
    for name in datasets:
        path = folder / f"{name}.json"
        if path.exists():
            found = True
            merged.update(Baseline.model_validate_json(path.read_text(encoding="utf-8")).outcomes)
    return merged if found else None


def regressions(before: Mapping[str, bool], run: RunResult) -> list[str]:
    now = case_outcomes(run)
    return sorted(k for k in before.keys() & now.keys() if before[k] and not now[k])


def load_run(path: Path) -> RunResult:
    """A run from its folder (``results.json`` inside) or the JSON file itself."""
    file = path / "results.json" if path.is_dir() else path
    return RunResult.model_validate_json(file.read_text(encoding="utf-8"))


def case_outcomes(run: RunResult) -> dict[str, bool]:
    """Per case key: passed in every epoch."""
    out: dict[str, bool] = {}
    for record in run.cases:
        out[record.key] = out.get(record.key, True) and record.passed
    return out


@dataclass
class Comparison:
    deltas: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    regressed: list[str] = field(default_factory=list)
    improved: list[str] = field(default_factory=list)
    only_before: list[str] = field(default_factory=list)
    only_after: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "deltas": {
                k: {"before": a, "after": b, "delta": None if a is None or b is None else b - a}
                for k, (a, b) in self.deltas.items()
            },
            "regressed": self.regressed,
            "improved": self.improved,
            "onlyBefore": self.only_before,
            "onlyAfter": self.only_after,
        }


def _flat(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    overall = metrics.get("overall", {})
    flat: dict[str, float | None] = {
        "passRate": overall.get("passRate"),
        "trajectoryRate": overall.get("trajectoryRate"),
        "draftRate": overall.get("draftRate"),
    }
    for name, f in overall.get("fields", {}).items():
        flat[f"{name}.accuracy"] = f["accuracy"]
        flat[f"{name}.macroF1"] = f["macroF1"]
    return flat


def compare(before: RunResult, after: RunResult) -> Comparison:
    a, b = _flat(before.metrics), _flat(after.metrics)
    result = Comparison(deltas={k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys())})
    was, now = case_outcomes(before), case_outcomes(after)
    for key in sorted(was.keys() & now.keys()):
        if was[key] and not now[key]:
            result.regressed.append(key)
        elif now[key] and not was[key]:
            result.improved.append(key)
    result.only_before = sorted(was.keys() - now.keys())
    result.only_after = sorted(now.keys() - was.keys())
    return result


def threshold_failures(run: RunResult, thresholds: Thresholds) -> list[str]:
    overall = run.metrics.get("overall", {})
    failures = []
    rate = overall.get("passRate")
    if thresholds.passRate is not None and rate is not None and rate < thresholds.passRate:
        failures.append(f"pass rate {rate:.3f} < {thresholds.passRate}")
    for name, minimum in thresholds.macroF1.items():
        got = overall.get("fields", {}).get(name, {}).get("macroF1")
        if got is not None and got < minimum:
            failures.append(f"{name} macro-F1 {got:.3f} < {minimum}")
    misses = overall.get("replayMisses", 0)
    if thresholds.maxReplayMisses is not None and misses > thresholds.maxReplayMisses:
        failures.append(f"{misses} replay misses (at most {thresholds.maxReplayMisses})")
    errors = overall.get("errors", 0)
    if thresholds.maxErrors is not None and errors > thresholds.maxErrors:
        failures.append(f"{errors} errors (at most {thresholds.maxErrors})")
    return failures


def gate(
    run: RunResult, thresholds: Thresholds, baseline: RunResult | Mapping[str, bool] | None
) -> tuple[int, list[str]]:
    """The exit code and the reasons for it; ``baseline`` is a run or committed outcomes."""
    reasons = threshold_failures(run, thresholds)
    code = EXIT_THRESHOLD if reasons else EXIT_OK
    if baseline is not None:
        before = case_outcomes(baseline) if isinstance(baseline, RunResult) else baseline
        regressed = regressions(before, run)
        if regressed:
            reasons.extend(f"regressed: {key}" for key in regressed)
            code = EXIT_REGRESSION
    return code, reasons


def junit_xml(run: RunResult) -> str:
    """One testsuite per dataset, one testcase per case and epoch; failures carry the failed checks."""
    root = ElementTree.Element("testsuites", name=f"exops eval {run.runId}")
    by_dataset: dict[str, list[CaseRecord]] = {}
    for record in run.cases:
        by_dataset.setdefault(record.dataset, []).append(record)
    for dataset, records in by_dataset.items():
        failures = sum(1 for r in records if not r.passed)
        suite = ElementTree.SubElement(
            root, "testsuite", name=dataset, tests=str(len(records)), failures=str(failures), errors="0"
        )
        for r in records:
            case = ElementTree.SubElement(
                suite, "testcase", classname=f"{dataset}.{r.target}.{r.model}", name=f"{r.caseId}#{r.epoch}",
                time=f"{r.observation.latencyMs / 1000:.3f}",
            )  # fmt: skip
            if not r.passed:
                failed = [c for c in r.checks if not c.passed]
                message = "; ".join(
                    f"{c.name}: expected {json.dumps(c.expected)} got {json.dumps(c.observed)}"
                    if c.detail == "" else f"{c.name}: {c.detail}"
                    for c in failed
                )  # fmt: skip
                ElementTree.SubElement(case, "failure", message=message[:2000])
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)
