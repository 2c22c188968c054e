"""Turning the measured figures into what ``exops bench`` prints: one JSON object and a table.

The JSON object is the contract (scripts and CI read its last line): the two ratios first, then the
figures behind them, the goals and whether they were met, and the machine they were measured on,
since a ratio from a loaded laptop and one from an idle server are not the same evidence.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
from typing import Any

from rich.table import Table

from app.bench.ingest import IngestFigures
from app.bench.pipeline import PipelineFigures

GOALS = {"pipeline": 0.8, "ingest": 0.8}
"""Ours / bare at or above which the overhead is acceptable, on the 2-core machine the goals were set on."""
STORAGE_GOAL = 15_000
"""Bytes per finished case (checkpoints plus table rows) at or below which storage is acceptable: a
million cases a year in 15 GB."""


def peak_memory_mb() -> float:
    """This process's peak resident memory (``ru_maxrss``: KiB on Linux, bytes on macOS): the pipeline
    pair, both sides, and the ingestion client."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _r(value: float, digits: int = 3) -> float:
    return round(value, digits)


def _opt(value: float | None, digits: int) -> float | None:
    return None if value is None else _r(value, digits)


def _cpu_ratio(ours: float | None, bare: float | None) -> float | None:
    """Bare's CPU per unit over ours: read like the throughput ratios (higher is better), but from CPU
    time, which other work on the machine disturbs much less than wall time."""
    return None if not ours or bare is None else _r(bare / ours)


def summary(
    pipeline: PipelineFigures, ingest: IngestFigures, *, seconds: float, load_before: float
) -> dict[str, Any]:
    ratios = {"pipeline": pipeline.ratio, "ingest": ingest.ratio}
    stored = pipeline.case_storage
    met = {name: ratios[name] >= goal for name, goal in GOALS.items()}
    return {
        "pipeline_ratio": _r(pipeline.ratio),
        "ingest_ratio": _r(ingest.ratio),
        "pipeline_ours_eps": _r(pipeline.ours, 2),
        "pipeline_bare_eps": _r(pipeline.bare, 2),
        "ingest_ours_rps": _r(ingest.ours, 1),
        "ingest_bare_rps": _r(ingest.bare, 1),
        "storage_bytes_per_case": round(stored.bytes_per_case),
        "checkpoint_bytes_per_exception": round(pipeline.ours_storage.checkpoint_bytes),
        "db_rows_per_exception": _r(pipeline.db_rows_per_exception, 2),
        "peak_memory_mb": _r(peak_memory_mb(), 1),
        "server_peak_memory_mb": {
            "ours": _opt(ingest.ours_server_peak_mb, 1),
            "bare": _opt(ingest.bare_server_peak_mb, 1),
        },
        "goals": {**GOALS, "storage_bytes_per_case": STORAGE_GOAL},
        "met": {**met, "storage": stored.bytes_per_case <= STORAGE_GOAL},
        "pipeline": {
            "cases_per_round": pipeline.cases,
            "rounds": pipeline.rounds,
            "workers": pipeline.workers,
            "nodes": pipeline.nodes,
            "durability": pipeline.durability,
            "ours_eps_by_round": [_r(v, 2) for v in pipeline.ours_eps],
            "bare_eps_by_round": [_r(v, 2) for v in pipeline.bare_eps],
            "cpu_ms_per_exception": {
                "ours": _r(pipeline.ours_cpu_ms, 2),
                "bare": _r(pipeline.bare_cpu_ms, 2),
            },
            "cpu_ratio": _cpu_ratio(pipeline.ours_cpu_ms, pipeline.bare_cpu_ms),
            "checkpoints_per_exception": {
                "ours": _r(pipeline.ours_storage.checkpoints, 2),
                "bare": _r(pipeline.bare_storage.checkpoints, 2),
            },
            "checkpoint_writes_per_exception": {
                "ours": _r(pipeline.ours_storage.checkpoint_writes, 2),
                "bare": _r(pipeline.bare_storage.checkpoint_writes, 2),
            },
            "bare_checkpoint_bytes_per_exception": round(pipeline.bare_storage.checkpoint_bytes),
            "db_rows_by_table": {table: _r(v, 2) for table, v in pipeline.db_rows_by_table.items()},
            "storage": {
                "finished_cases": stored.finished_cases,
                "checkpoint_bytes_per_case": round(stored.checkpoint_bytes),
                "table_bytes_per_case": round(stored.table_bytes),
                "logical_bytes_per_case": round(stored.logical_bytes),
                "bytes_per_case_by_table": {t: round(v) for t, v in stored.bytes_by_table.items()},
            },
            "outcomes": pipeline.outcomes,
        },
        "ingest": {
            "requests_per_round": ingest.requests,
            "rounds": ingest.rounds,
            "concurrency": ingest.concurrency,
            "ours_rps_by_round": [_r(v, 1) for v in ingest.ours_rps],
            "bare_rps_by_round": [_r(v, 1) for v in ingest.bare_rps],
            "server_cpu_ms_per_request": {
                "ours": _opt(ingest.ours_cpu_ms, 2),
                "bare": _opt(ingest.bare_cpu_ms, 2),
            },
            "cpu_ratio": _cpu_ratio(ingest.ours_cpu_ms, ingest.bare_cpu_ms),
            "latency_ms": {
                "ours_p50": _r(ingest.ours_p50_ms, 1),
                "ours_p95": _r(ingest.ours_p95_ms, 1),
                "bare_p50": _r(ingest.bare_p50_ms, 1),
                "bare_p95": _r(ingest.bare_p95_ms, 1),
            },
        },
        "seconds": _r(seconds, 1),
        "machine": machine() | {"load_average_1m_before": round(load_before, 2)},
    }


def _cell(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def table(result: dict[str, Any]) -> Table:
    """The people's view of ``summary``: one row per figure, goals marked met or missed."""
    view = Table(title="exops bench (ours / bare; medians of alternating rounds)", title_justify="left")
    view.add_column("figure")
    view.add_column("ours", justify="right")
    view.add_column("bare", justify="right")
    view.add_column("ratio", justify="right")
    view.add_column("goal", justify="right")
    pipeline, ingest = result["pipeline"], result["ingest"]

    def verdict(name: str) -> str:
        goal = f">= {result['goals'][name]}"
        return f"[green]{goal} met[/green]" if result["met"][name] else f"[red]{goal} missed[/red]"

    view.add_row(
        f"pipeline, exceptions/s ({pipeline['workers']} workers, {pipeline['nodes']} nodes, "
        f"durability {pipeline['durability']})",
        f"{result['pipeline_ours_eps']:.1f}",
        f"{result['pipeline_bare_eps']:.1f}",
        f"{result['pipeline_ratio']:.2f}",
        verdict("pipeline"),
    )
    view.add_row(
        f"ingestion, requests/s ({ingest['concurrency']} in flight)",
        f"{result['ingest_ours_rps']:.0f}",
        f"{result['ingest_bare_rps']:.0f}",
        f"{result['ingest_ratio']:.2f}",
        verdict("ingest"),
    )
    view.add_row(
        "pipeline CPU per exception, ms",
        f"{pipeline['cpu_ms_per_exception']['ours']:.1f}",
        f"{pipeline['cpu_ms_per_exception']['bare']:.1f}",
        _cell(pipeline["cpu_ratio"], 2),
    )
    latency = ingest["latency_ms"]
    view.add_row(
        "ingestion latency p50 / p95, ms",
        f"{latency['ours_p50']:.0f} / {latency['ours_p95']:.0f}",
        f"{latency['bare_p50']:.0f} / {latency['bare_p95']:.0f}",
        "",
        "",
    )
    cpu = ingest["server_cpu_ms_per_request"]
    view.add_row(
        "ingestion server CPU per request, ms",
        _cell(cpu["ours"], 2),
        _cell(cpu["bare"], 2),
        _cell(ingest["cpu_ratio"], 2),
    )
    storage = pipeline["storage"]
    limit = result["goals"]["storage_bytes_per_case"]
    storage_goal = f"<= {limit:,}"
    view.add_row(
        f"storage per finished case, bytes ({storage['checkpoint_bytes_per_case']:,} checkpoints + "
        f"{storage['table_bytes_per_case']:,} table rows)",
        f"{result['storage_bytes_per_case']:,}",
        "",
        "",
        f"[green]{storage_goal} met[/green]"
        if result["met"]["storage"]
        else f"[red]{storage_goal} missed[/red]",
    )
    view.add_row(
        "checkpoint bytes per exception",
        f"{result['checkpoint_bytes_per_exception']:,}",
        f"{pipeline['bare_checkpoint_bytes_per_exception']:,}",
        "",
        "",
    )
    checkpoints = pipeline["checkpoints_per_exception"]
    view.add_row(
        "checkpoints per exception", f"{checkpoints['ours']:.1f}", f"{checkpoints['bare']:.1f}", "", ""
    )
    view.add_row("database rows per exception", f"{result['db_rows_per_exception']:.1f}", "0", "", "")
    servers = result["server_peak_memory_mb"]
    view.add_row(
        "peak memory of the bench process (pipeline, both sides), MB", f"{result['peak_memory_mb']:.0f}"
    )
    view.add_row(
        "peak memory of the ingestion server, MB",
        _cell(servers["ours"], 0),
        _cell(servers["bare"], 0),
    )
    return view
