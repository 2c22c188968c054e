"""Simulation: synthetic exceptions through the real graph, measured (throughput, stage latency, outcomes).

It runs exactly what production runs (``build_graph`` with a SQLite checkpointer, ``CaseRunner``'s
bounded-concurrency batches), so the figures include checkpoint writes and the packs' real rules.
It never builds run contexts itself (so it stays independent of the runtime): the caller passes
``context_for(tenant_id)`` (the CLI builds it from ``app.runtime.Runtime``).

``batch`` is per domain: each domain gets ``batch`` exceptions, dealt round-robin over its tenants,
and domains run one after another so each one's throughput is its own.

Outcome mix (every case lands in exactly one group):

- ``auto``: resolved with nobody involved;
- ``approval``: stopped at the approval gate (or was decided there), whatever the plan holds;
- ``waiting``: ran without approval up to a manual step a person must complete;
- ``non_actionable``: an information-only type, recorded and closed;
- ``escalated``: sent to the escalation queue (unknown type, guardrail, failure).
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langgraph.types import Durability

from app.bench.synthetic import generate
from graph.builder import STAGES, build_graph
from graph.checkpoint import open_checkpointer
from graph.context import RunContext
from graph.inputs import RawException
from graph.runner import CaseRunner
from packs.domain import DomainPack

OutcomeGroup = Literal["auto", "approval", "waiting", "non_actionable", "escalated"]
OUTCOMES: tuple[OutcomeGroup, ...] = ("auto", "approval", "waiting", "non_actionable", "escalated")
TOTAL, END_TO_END = "stagesTotal", "endToEnd"
"""Beyond the stages: the sum of a case's stage times, and its wall time in the runner (checkpoints too)."""
LATENCY_KEYS: tuple[str, ...] = (*STAGES, TOTAL, END_TO_END)

ContextFor = Callable[[str], RunContext]


def outcome_group(result: Mapping[str, Any]) -> OutcomeGroup:
    """The group of one run result (see the module docstring)."""
    label = (result.get("outcome") or {}).get("outcome")
    waiting_for = (result.get("pending") or {}).get("kind")
    if result.get("resolutionStatus") == "ESCALATED" or label == "escalated" or result.get("error"):
        return "escalated"
    if label == "non_actionable":
        return "non_actionable"
    if waiting_for == "approval" or label in ("resolved_after_approval", "rejected"):
        return "approval"
    if waiting_for == "manual_step" or label == "resolved_with_people":
        return "waiting"
    if label == "auto_resolved":
        return "auto"
    return "escalated"  # a case that neither finished nor waits for anyone has gone wrong


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..1); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Target:
    """One tenant to simulate, with the domain pack it runs."""

    tenant_id: str
    domain: DomainPack


@dataclass(frozen=True)
class DomainBatch:
    domain: str
    tenants: tuple[str, ...]
    raws: tuple[RawException, ...]


@dataclass(frozen=True)
class SimulationPlan:
    seed: int
    batch: int
    batches: tuple[DomainBatch, ...]

    @property
    def total(self) -> int:
        return sum(len(b.raws) for b in self.batches)


def plan_simulation(targets: Sequence[Target], *, batch: int, seed: int) -> SimulationPlan:
    """``batch`` exceptions per domain, split over its tenants, interleaved so tenants share the load.

    Each tenant draws from its own generator seeded by ``(seed, domain, tenant)``, so adding a domain
    or a tenant leaves the others' exceptions unchanged. Ids ``SIM-<seed>-<n>`` are unique in the run.
    """
    by_domain: dict[str, list[Target]] = {}
    for target in targets:
        by_domain.setdefault(target.domain.domainName, []).append(target)
    batches: list[DomainBatch] = []
    number = 1
    for name, group in by_domain.items():
        per_tenant: list[list[RawException]] = []
        for index, target in enumerate(group):
            count = batch // len(group) + (1 if index < batch % len(group) else 0)
            rng = random.Random(f"{seed}:{name}:{target.tenant_id}")
            raws = generate(
                target.domain,
                count,
                rng=rng,
                tenant_id=target.tenant_id,
                id_prefix=f"SIM-{seed}",
                first=number,
            )
            number += count
            per_tenant.append(raws)
        dealt = [
            raws[i]
            for i in range(max(map(len, per_tenant), default=0))
            for raws in per_tenant
            if i < len(raws)
        ]
        batches.append(DomainBatch(name, tuple(t.tenant_id for t in group), tuple(dealt)))
    return SimulationPlan(seed, batch, tuple(batches))


@dataclass
class Tally:
    """Measurements of a set of cases: latency samples per key, outcome, severity and type counts."""

    exceptions: int = 0
    wall_seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: {key: [] for key in LATENCY_KEYS})
    outcomes: Counter[str] = field(default_factory=Counter)
    severities: Counter[str] = field(default_factory=Counter)
    types: Counter[str] = field(default_factory=Counter)
    unlabelled: int = 0
    recognized: int = 0
    errors: int = 0

    def add(self, raw: RawException, result: Mapping[str, Any], seconds: float | None) -> None:
        self.exceptions += 1
        timings: Mapping[str, float] = result.get("timingsMs") or {}
        for stage, ms in timings.items():
            self.latencies.setdefault(stage, []).append(float(ms))
        if timings:
            self.latencies[TOTAL].append(sum(float(ms) for ms in timings.values()))
        if seconds is not None:
            self.latencies[END_TO_END].append(seconds * 1000)
        self.outcomes[outcome_group(result)] += 1
        self.severities[str(result.get("severity") or "NONE")] += 1
        self.types[str(result.get("exceptionType") or "UNKNOWN")] += 1
        if raw.exceptionType is None:
            self.unlabelled += 1
            self.recognized += bool(result.get("exceptionType"))
        self.errors += bool(result.get("error"))

    def merge(self, other: Tally) -> None:
        self.exceptions += other.exceptions
        self.wall_seconds += other.wall_seconds
        for key, values in other.latencies.items():
            self.latencies.setdefault(key, []).extend(values)
        self.outcomes.update(other.outcomes)
        self.severities.update(other.severities)
        self.types.update(other.types)
        self.unlabelled += other.unlabelled
        self.recognized += other.recognized
        self.errors += other.errors

    @property
    def throughput(self) -> float:
        return self.exceptions / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def latency(self, key: str) -> dict[str, Any]:
        values = self.latencies.get(key, [])
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        return {
            "count": len(values),
            "p50": round(p50, 3) if p50 is not None else None,
            "p95": round(p95, 3) if p95 is not None else None,
        }

    def outcome_mix(self) -> dict[str, dict[str, float]]:
        total = self.exceptions or 1
        return {
            name: {"count": self.outcomes[name], "percent": round(100 * self.outcomes[name] / total, 1)}
            for name in OUTCOMES
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "exceptions": self.exceptions,
            "wallSeconds": round(self.wall_seconds, 3),
            "throughputPerSecond": round(self.throughput, 2),
            "latencyMs": {key: self.latency(key) for key in LATENCY_KEYS},
            "outcomes": self.outcome_mix(),
            "severities": dict(sorted(self.severities.items())),
            "types": dict(sorted(self.types.items())),
            "unlabelled": {"total": self.unlabelled, "recognized": self.recognized},
            "errors": self.errors,
        }


@dataclass
class DomainReport:
    domain: str
    tenants: tuple[str, ...]
    tally: Tally

    def as_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "tenants": list(self.tenants), **self.tally.as_dict()}


@dataclass
class SimulationReport:
    seed: int
    batch: int
    concurrency: int
    domains: list[DomainReport]

    @property
    def overall(self) -> Tally:
        total = Tally()
        for report in self.domains:
            total.merge(report.tally)
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "batchPerDomain": self.batch,
            "concurrency": self.concurrency,
            **self.overall.as_dict(),
            "domains": [d.as_dict() for d in self.domains],
        }


async def run_simulation(
    plan: SimulationPlan,
    context_for: ContextFor,
    *,
    checkpoints: Path,
    concurrency: int,
    durability: Durability = "sync",
    on_done: Callable[[], None] | None = None,
) -> SimulationReport:
    """Run every batch of ``plan`` through the graph (checkpoints in the SQLite file ``checkpoints``)."""
    contexts: dict[str, RunContext] = {}
    started: dict[str, float] = {}
    finished: dict[str, float] = {}

    def context(raw: RawException) -> RunContext:
        started[str(raw.exceptionId)] = time.perf_counter()
        tenant_id = str(raw.tenantId)
        if tenant_id not in contexts:
            contexts[tenant_id] = context_for(tenant_id)
        return contexts[tenant_id]

    def done(result: dict[str, Any]) -> None:
        finished[str(result.get("exceptionId"))] = time.perf_counter()
        if on_done is not None:
            on_done()

    reports: list[DomainReport] = []
    async with open_checkpointer("sqlite", checkpoints) as saver:
        runner = CaseRunner(build_graph(checkpointer=saver), durability=durability)
        for batch in plan.batches:
            began = time.perf_counter()
            results = await runner.run_batch(context, batch.raws, concurrency=concurrency, on_done=done)
            tally = Tally(wall_seconds=time.perf_counter() - began)
            for raw, result in zip(batch.raws, results, strict=True):
                key = str(raw.exceptionId)
                seconds = finished[key] - started[key] if key in started and key in finished else None
                tally.add(raw, result, seconds)
            reports.append(DomainReport(batch.domain, batch.tenants, tally))
    return SimulationReport(plan.seed, plan.batch, concurrency, reports)
