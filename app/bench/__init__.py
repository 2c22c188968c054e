"""``exops bench``: what the product costs on top of the bare frameworks it is built on.

Two pairs are measured in one command, each side of a pair alternating with the other round by round
so that machine noise (another process, a CPU frequency change) hits both sides alike:

* pipeline (``pipeline.py``): our graph with its real nodes, packs, database writes and SQLite
  checkpointer, against a LangGraph graph of the same size that does nothing, on the same
  checkpointer and durability;
* ingestion (``ingest.py``): ``POST /exceptions/{tenantId}`` through the real app, against a bare
  FastAPI endpoint that inserts the same row, both over HTTP on loopback with the same client.

The headline figures are ratios (ours / bare), so they say what exops adds rather than how fast the
machine is; ``report.py`` turns them into the table, the JSON line and the goals.
docs/performance.md says how to read them and holds the latest figures.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from app.settings import SAMPLE_PACKS_DIR, Settings

TENANT = "globex-markets"
"""The sample tenant the benchmark's exceptions belong to (its packs ship in packs/samples)."""

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "globex-markets-exceptions.json"
"""Realistic exceptions for that tenant: settlement fails, trade mismatches, report rejections..."""


Progress = Callable[[str], None]
"""Where the measurements report each round as it ends (the CLI prints to stderr)."""


class BenchError(RuntimeError):
    """The benchmark could not measure what it meant to (a case failed, a server did not start)."""


@cache
def _examples() -> tuple[dict[str, Any], ...]:
    if not EXAMPLES.is_file():
        raise BenchError(f"the benchmark's sample exceptions are missing: {EXAMPLES}")
    items = json.loads(EXAMPLES.read_text())["exceptions"]
    return tuple(items)


def sample_exceptions(count: int, prefix: str) -> list[dict[str, Any]]:
    """``count`` exceptions cycling through the examples, each with its own ``exceptionId``
    (``prefix`` keeps the ids of different rounds and sides apart, so nothing is deduplicated)."""
    examples = _examples()
    items = []
    for index in range(count):
        item = copy.deepcopy(examples[index % len(examples)])
        item["exceptionId"] = f"{prefix}-{index:06d}"
        items.append(item)
    return items


def bench_settings(data_dir: Path, *, workers: int) -> Settings:
    """Settings for a benchmark stack in ``data_dir``, pinned so nothing in the environment can point
    the benchmark at a real database, an LLM, live tools or mail: SQLite in ``data_dir``, the sample
    packs, dry-run tools, recorded notifications. Checkpoint durability is the one value read from the
    environment (``EXOPS_CHECKPOINT_DURABILITY``), as the server reads it; both sides of the pipeline
    pair use it. The rate limit still runs on every request but is set too high to refuse any.
    Similar-case memory is off: the pipeline and ingestion pairs measure the graph and the API against
    their frameworks, and what memory adds to triage is measured on its own (``app/bench/memory.py``)."""
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'exops.db'}",
        packs_dir=SAMPLE_PACKS_DIR,
        llm_base_url=None,
        llm_api_key=None,
        llm_model=None,
        tool_mode="dry-run",
        notifications="record",
        worker_concurrency=workers,
        deadline_sweep_seconds=24 * 3600,
        rate_limit_per_minute=1_000_000_000,
        memory_enabled=False,
    )
