"""``exops bench``: measure what exops adds over bare LangGraph and bare FastAPI on this machine.

Everything runs in a throw-away folder (its own SQLite files, sample packs, dry-run tools), so the
command is safe next to a real installation. The figures and how to read them: docs/performance.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from app.bench import BenchError
from app.bench.ingest import measure_ingest
from app.bench.pipeline import measure_pipeline
from app.bench.report import summary, table
from app.bench.scale import measure_scale
from app.cli.output import console, errors


def _progress(line: str) -> None:
    errors.print(line, markup=False, style="dim")


async def _measure(
    root: Path, *, cases: int, requests: int, rounds: int, concurrency: int, workers: int,
    database_url: str | None = None, scale_cases: int = 200, memory_cases: int = 100_000,
    memory_queries: int = 50,
) -> dict[str, Any]:  # fmt: skip
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    pipeline = await measure_pipeline(root, cases=cases, rounds=rounds, workers=workers, progress=_progress)
    ingest = await measure_ingest(
        root, requests=requests, rounds=rounds, concurrency=concurrency, progress=_progress
    )
    scale = (
        await measure_scale(
            database_url, root, cases=scale_cases, rounds=rounds, concurrency=workers, progress=_progress
        )
        if database_url
        else {}
    )
    memory: dict[str, Any] = {}
    if memory_cases:
        from app.bench.memory import measure_memory  # chromadb and the model load only here

        memory = await measure_memory(root, cases=memory_cases, queries=memory_queries, progress=_progress)
    figures = summary(pipeline, ingest, seconds=time.perf_counter() - started, load_before=load_before)
    return figures | scale | memory


def bench(
    pipeline_cases: Annotated[
        int, typer.Option("--pipeline-cases", min=1, help="Exceptions per pipeline round and side.")
    ] = 100,
    ingest_requests: Annotated[
        int, typer.Option("--ingest-requests", min=1, help="POST requests per ingestion round and side.")
    ] = 500,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Alternating rounds per side.")] = 3,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Ingestion requests in flight.")
    ] = 8,
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, max=64, help="Pipeline workers (the server's worker_concurrency)."),
    ] = 4,
    as_json: Annotated[
        bool, typer.Option("--json", help="Also print the figures as one JSON object on the last line.")
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="A PostgreSQL server (postgresql://...; the user needs CREATEDB): "
            "also measure scale_ratio, cases/s with 2 worker processes over 1, in scratch databases",
        ),
    ] = None,
    scale_cases: Annotated[int, typer.Option("--scale-cases", min=1, help="Cases per scale round.")] = 200,
    memory_cases: Annotated[
        int,
        typer.Option(
            "--memory-cases",
            min=0,
            help="Remembered cases in the memory bench's tenant (0: skip "
            "memory_search_ratio; 100,000 adds about six minutes on 2 cores)",
        ),
    ] = 100_000,
    memory_queries: Annotated[
        int, typer.Option("--memory-queries", min=1, help="Memory search queries.")
    ] = 50,
) -> None:
    """Measure the pipeline and ingestion against bare LangGraph and FastAPI (ratios ours / bare)."""
    with tempfile.TemporaryDirectory(prefix="exops-bench-") as folder:
        try:
            result = asyncio.run(
                _measure(Path(folder), cases=pipeline_cases, requests=ingest_requests, rounds=rounds,
                         concurrency=concurrency, workers=workers, database_url=database_url,
                         scale_cases=scale_cases, memory_cases=memory_cases, memory_queries=memory_queries)
            )  # fmt: skip
        except BenchError as exc:
            errors.print(f"bench failed: {exc}", style="red", markup=False)
            raise typer.Exit(1) from None
    console.print(table(result))
    if "scale_ratio" in result:
        scale = result["scale"]
        console.print(f"scale_ratio {result['scale_ratio']} (cases/s with 2 worker processes / 1: "
                      f"{scale['two_workers_eps_by_round']} / {scale['one_worker_eps_by_round']})")  # fmt: skip
    if "memory_search_ratio" in result:
        memory = result["memory"]
        console.print(f"memory_search_ratio {result['memory_search_ratio']} (hybrid {memory['ours_p50_ms']} ms / raw "
                      f"chroma {memory['raw_p50_ms']} ms at {memory['cases']} cases), memory_p95_ms "
                      f"{result['memory_p95_ms']}, triage added {result['memory_triage_added_ms']} ms")  # fmt: skip
    if as_json:
        print(json.dumps(result, sort_keys=False))
