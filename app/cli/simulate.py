"""``exops simulate``: synthetic exceptions from the packs through the real graph, with the figures.

It answers "how fast, and where do cases end up?" for a set of domains before real traffic arrives.
This module only wires the app in: it picks the tenants, builds their run contexts (dry-run tools,
notifications recorded, the LLM as configured) and prints; generation and measurement live in
``app/bench`` (with the benchmark) so they stay usable without the CLI. ``--batch`` counts exceptions per domain, dealt
round-robin over the domain's ``--tenants`` tenants.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.bench.simulation import (
    LATENCY_KEYS,
    OUTCOMES,
    SimulationPlan,
    SimulationReport,
    Tally,
    Target,
    plan_simulation,
    run_simulation,
)
from app.cli.output import console, errors
from app.runtime import ConfigurationError, Runtime
from app.settings import get_settings
from graph.context import RunContext
from packs.domain import DomainPack
from packs.registry import PackRegistry
from packs.tenant import TenantPolicyPack

ALIASES: dict[str, str] = {
    "finance": "capital-markets",
    "markets": "capital-markets",
    "healthcare": "healthcare-claims",
    "claims": "healthcare-claims",
    "saas": "saas-incidents",
    "incidents": "saas-incidents",
}
"""Short names people type for the sample domains."""


class SimulationSetupError(ValueError):
    """The command line asks for something the packs cannot give (an unknown domain, no tenant)."""


def resolve_domains(text: str | None, known: Sequence[str]) -> list[str]:
    """Domain pack names for ``--domains`` (names or aliases, comma-separated); all known when None."""
    if text is None:
        return list(known)
    chosen: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name = item if item in known else ALIASES.get(item.lower(), "")
        if name not in known:
            aliases = ", ".join(f"{a} → {t}" for a, t in ALIASES.items() if t in known)
            raise SimulationSetupError(
                f"unknown domain {item!r}; known domains: {', '.join(known) or 'none'}"
                + (f" (aliases: {aliases})" if aliases else "")
            )
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise SimulationSetupError("--domains names no domain")
    return chosen


def pick_tenants(registry: PackRegistry, domain: str, count: int) -> list[TenantPolicyPack]:
    """The domain's own tenants first; beyond them, copies of them as ``<tenant>-sim<n>``."""
    samples = sorted(
        (p.pack for p in registry.tenants() if isinstance(p.pack, TenantPolicyPack)),
        key=lambda t: t.tenantId,
    )
    samples = [t for t in samples if t.domainName == domain]
    if not samples:
        raise SimulationSetupError(f"domain {domain!r} has no tenant pack to simulate with")
    chosen = samples[:count]
    for index in range(len(samples), count):
        base = samples[index % len(samples)]
        copy = index // len(samples) + 1
        chosen.append(
            base.model_copy(
                update={
                    "tenantId": f"{base.tenantId[:56]}-sim{copy}",
                    "tenantName": f"{base.tenantName} (simulated copy {copy})",
                }
            )
        )
    return chosen


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def tally_table(title: str, tally: Tally) -> Table:
    """Stage latencies beside the outcome mix (stages no case reached are left out)."""
    table = Table(title=title, title_justify="left")
    for column in ("stage", "cases", "p50 ms", "p95 ms"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for column in ("outcome", "count", "share"):
        table.add_column(column, justify="left" if column == "outcome" else "right")
    latency = [(key, tally.latency(key)) for key in LATENCY_KEYS]
    shown = [(key, figures) for key, figures in latency if figures["count"]]
    mix = tally.outcome_mix()
    for row in range(max(len(shown), len(OUTCOMES))):
        left = ["", "", "", ""]
        if row < len(shown):
            key, figures = shown[row]
            left = [key, str(figures["count"]), _ms(figures["p50"]), _ms(figures["p95"])]
        right = ["", "", ""]
        if row < len(OUTCOMES):
            name = OUTCOMES[row]
            right = [name, str(int(mix[name]["count"])), f"{mix[name]['percent']:.1f}%"]
        table.add_row(*left, *right)
    severities = ", ".join(f"{k} {v}" for k, v in sorted(tally.severities.items()))
    table.caption = (
        f"severities: {severities}; unlabelled: {tally.unlabelled} ({tally.recognized} recognized)"
        + (f"; errors: {tally.errors}" if tally.errors else "")
    )
    table.caption_justify = "left"
    return table


def print_report(report: SimulationReport) -> None:
    for domain in report.domains:
        t = domain.tally
        title = (
            f"{domain.domain}: {t.exceptions} exceptions, tenants {', '.join(domain.tenants)}, "
            f"{t.throughput:.1f}/s ({t.wall_seconds:.2f}s)"
        )
        console.print(tally_table(title, t))
    overall = report.overall
    if len(report.domains) > 1:
        title = f"all domains: {overall.exceptions} exceptions, {overall.throughput:.1f}/s ({overall.wall_seconds:.2f}s)"
        console.print(tally_table(title, overall))
    console.print(
        f"seed {report.seed}, batch {report.batch} per domain, concurrency {report.concurrency}: "
        f"{overall.exceptions} exceptions at {overall.throughput:.1f}/s",
        markup=False,
    )


def _plan(registry: PackRegistry, runtime: Runtime, domains: list[str], tenants: int, batch: int,
          seed: int, run_id: str) -> tuple[SimulationPlan, dict[str, RunContext]]:  # fmt: skip
    """The exceptions to run and a context per tenant, built up front so a bad setting stops nothing midway."""
    targets: list[Target] = []
    contexts: dict[str, RunContext] = {}
    for name in domains:
        for tenant in pick_tenants(registry, name, tenants):
            domain = registry.domain_of(tenant)
            contexts[tenant.tenantId] = runtime.context_for(
                tenant, domain, tool_mode="dry-run", run_id=run_id, record_only=True
            )
            targets.append(Target(tenant.tenantId, domain))
    return plan_simulation(targets, batch=batch, seed=seed), contexts


def simulate(
    domains: Annotated[
        str | None,
        typer.Option(
            "--domains",
            help="Comma-separated domain packs or aliases (finance, healthcare, saas...); default: all.",
        ),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Exceptions per domain.")] = 100,
    tenants: Annotated[
        int, typer.Option("--tenants", min=1, max=50, help="Tenants per domain (copies beyond the packs').")
    ] = 1,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Same seed, same exceptions (default: random).")
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", min=1, max=64, help="Cases in flight at once (default: EXOPS_RUN_CONCURRENCY)."
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on the last line.")
    ] = False,
    packs: Annotated[
        Path | None, typer.Option("--packs", help="Folder of packs (default: EXOPS_PACKS_DIR).")
    ] = None,
    keep: Annotated[
        Path | None,
        typer.Option("--keep", help="Keep the checkpoints in this folder (default: a temporary one)."),
    ] = None,
) -> None:
    """Run synthetic exceptions generated from the packs through the graph; print throughput, p50/p95
    latency per stage and the outcome mix (auto, approval, waiting, non_actionable, escalated).

    Tools run as a dry run and notifications are only recorded; the LLM is used as configured."""
    settings = get_settings()
    registry = PackRegistry.from_directory(packs or settings.packs_dir)
    runtime = Runtime(settings, registry)
    run_id = f"SIM-{uuid.uuid4().hex[:12].upper()}"
    seed = seed if seed is not None else random.SystemRandom().randrange(1_000_000)
    known = sorted({p.pack.domainName for p in registry.domains() if isinstance(p.pack, DomainPack)})
    try:
        chosen = resolve_domains(domains, known)
        plan, contexts = _plan(registry, runtime, chosen, tenants, batch, seed, run_id)
    except (SimulationSetupError, ConfigurationError, LookupError) as exc:
        errors.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    progress = Progress(
        TextColumn("[bold]simulating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=errors, disable=json_output, transient=True,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="exops-simulate-") as scratch:
        folder = keep or Path(scratch)
        checkpoints = folder / f"simulate-{run_id}.sqlite"
        with progress:
            task = progress.add_task("cases", total=plan.total)
            report = asyncio.run(
                run_simulation(
                    plan, contexts.__getitem__, checkpoints=checkpoints,
                    concurrency=concurrency or settings.run_concurrency,
                    durability=settings.checkpoint_durability, on_done=lambda: progress.advance(task),
                )
            )  # fmt: skip
    result = {"runId": run_id, **report.as_dict()}
    if keep is not None:
        result["checkpoints"] = str(checkpoints)
    if json_output:
        typer.echo(json.dumps(result, default=str))
        return
    print_report(report)
    if keep is not None:
        console.print(f"checkpoints kept in {checkpoints}", markup=False)
