"""The pipeline pair: exceptions per second through our graph against a do-nothing graph of its size.

"Ours" is the server's own processing path, end to end: a stack opened by ``open_services`` (SQLite
database, SQLite checkpointer, sample packs) with tenant globex-markets, each exception stored by
``CaseService.ingest`` and then processed by the real background workers (``CaseService._work`` →
``process``: read the case, run the graph, read its state back, project it into the tables). Only
the processing is timed: ingestion is the other pair's subject.

"Bare" is LangGraph alone: a linear chain with as many nodes as our graph has (the framework's
generated ``__error_handler__`` nodes are not counted: they only run when a node fails), each node
returning a one-field update; the same ``AsyncSqliteSaver`` opened by the same ``open_checkpointer``,
the same durability, one distinct thread per exception, invoked by as many concurrent workers as
ours has. It writes nothing else: no database, no state read back.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Durability
from typing_extensions import TypedDict

from app.admin.accounts import ensure_tenant
from app.api.deps import Services
from app.api.main import open_services
from app.bench import TENANT, BenchError, Progress, bench_settings, sample_exceptions
from app.bench.storage import CaseStorage, measure_case_storage
from app.settings import Settings
from graph.builder import build_graph
from graph.checkpoint import open_checkpointer
from graph.inputs import RawException


def real_node_count() -> int:
    """The nodes of our compiled graph, without ``__start__`` and LangGraph's own ``__error_handler__*``
    nodes (added for ``error_handler=``, never visited on a run where no node fails)."""
    return sum(1 for name in build_graph().nodes if not name.startswith("__"))


class BareState(TypedDict, total=False):
    tenantId: str
    raw: dict[str, Any]
    visited: Annotated[int, operator.add]


async def _step(state: BareState) -> dict[str, Any]:
    return {"visited": 1}


BareGraph = CompiledStateGraph[BareState, None, BareState, BareState]


def bare_graph(nodes: int, checkpointer: BaseCheckpointSaver[str]) -> BareGraph:
    """``nodes`` nodes in a line, each a trivial update, nothing else."""
    builder = StateGraph(BareState)
    names = [f"step{index}" for index in range(nodes)]
    for name in names:
        builder.add_node(name, _step)
    builder.add_edge(START, names[0])
    for before, after in itertools.pairwise(names):
        builder.add_edge(before, after)
    builder.add_edge(names[-1], END)
    return builder.compile(checkpointer=checkpointer, name="bare")


async def _pool(
    items: Sequence[dict[str, Any]], workers: int, work: Callable[[dict[str, Any]], Awaitable[None]]
) -> None:
    """``workers`` tasks taking items off one shared iterator, like the server's worker tasks do."""
    pending = iter(items)

    async def worker() -> None:
        for item in pending:
            await work(item)

    await asyncio.gather(*(worker() for _ in range(max(1, workers))))


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds, and CPU seconds of this whole process (every thread, the SQLite ones too):
    CPU time is far less disturbed than wall time by other work on the machine."""

    wall: float
    cpu: float


class Stopwatch:
    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def stop(self) -> Timing:
        return Timing(time.perf_counter() - self.wall, time.process_time() - self.cpu)


class Side(Protocol):
    name: str

    async def run(self, items: Sequence[dict[str, Any]]) -> Timing:
        """Process ``items``; how long the processing took."""
        ...


class Ours:
    """The real stack; ``run`` stores the exceptions (untimed), then times the workers draining them."""

    name = "ours"

    def __init__(self, settings: Settings, stack: AsyncExitStack) -> None:
        self.settings = settings
        self.stack = stack
        self.processed = 0

    async def open(self) -> None:
        self.services: Services = await self.stack.enter_async_context(open_services(self.settings))
        async with self.services.db.session() as session:
            await ensure_tenant(session, TENANT, "Globex Markets")
        await self.services.cases.stop_workers()  # started again, and timed, in run()
        self.baseline = count_rows(self.db_path)

    @property
    def db_path(self) -> Path:
        return self.settings.data_dir / "exops.db"

    async def run(self, items: Sequence[dict[str, Any]]) -> Timing:
        cases = self.services.cases
        for item in items:
            raw = RawException.model_validate(item)
            await cases.ingest(TENANT, [raw], idempotency_key=None, actor="bench")
        watch = Stopwatch()
        await cases.start_workers()
        await cases.drain()
        timing = watch.stop()
        await cases.stop_workers()
        self.processed += len(items)
        return timing

    def outcomes(self) -> dict[str, int]:
        """Cases by ``processing/status``; anything not done or waiting means a case failed."""
        with sqlite3.connect(self.db_path) as connection:
            rows = connection.execute(
                "SELECT processing, status, COUNT(*) FROM exceptions GROUP BY processing, status"
            ).fetchall()
        return {f"{processing}/{status}": count for processing, status, count in rows}


class Bare:
    """The do-nothing graph on the same checkpointer and durability."""

    name = "bare"

    def __init__(self, nodes: int, durability: Durability, workers: int, path: Path, stack: AsyncExitStack):
        self.nodes = nodes
        self.durability: Durability = durability
        self.workers = workers
        self.path = path
        self.stack = stack
        self.processed = 0

    async def open(self) -> None:
        saver = await self.stack.enter_async_context(open_checkpointer("sqlite", self.path))
        self.graph = bare_graph(self.nodes, saver)

    async def run(self, items: Sequence[dict[str, Any]]) -> Timing:
        async def one(item: dict[str, Any]) -> None:
            config: RunnableConfig = {"configurable": {"thread_id": f"{TENANT}:{item['exceptionId']}"}}
            state: BareState = {"tenantId": TENANT, "raw": item}
            await self.graph.ainvoke(state, config, durability=self.durability)

        watch = Stopwatch()
        await _pool(items, self.workers, one)
        timing = watch.stop()
        self.processed += len(items)
        return timing


def count_rows(path: Path) -> dict[str, int]:
    """Rows in every table of a SQLite file."""
    with sqlite3.connect(path) as connection:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {name: connection.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] for name in tables}


def file_bytes(path: Path) -> int:
    """A SQLite file's size with its write-ahead log, if one is left."""
    wal = path.with_name(path.name + "-wal")
    return sum(p.stat().st_size for p in (path, wal) if p.exists())


@dataclass(frozen=True)
class Storage:
    """What one side left on disk, per exception processed."""

    checkpoint_bytes: float
    checkpoints: float
    checkpoint_writes: float


def storage(path: Path, processed: int) -> Storage:
    """Read after the checkpointer is closed, so its log has been folded into the file."""
    rows = count_rows(path)
    return Storage(
        checkpoint_bytes=file_bytes(path) / processed,
        checkpoints=rows.get("checkpoints", 0) / processed,
        checkpoint_writes=rows.get("writes", 0) / processed,
    )


@dataclass(frozen=True)
class PipelineFigures:
    cases: int
    rounds: int
    workers: int
    nodes: int
    durability: str
    ours_eps: list[float]
    bare_eps: list[float]
    ours_cpu_ms: float
    bare_cpu_ms: float
    ours_storage: Storage
    bare_storage: Storage
    db_rows_per_exception: float
    db_rows_by_table: dict[str, float]
    case_storage: CaseStorage
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def ours(self) -> float:
        return statistics.median(self.ours_eps)

    @property
    def bare(self) -> float:
        return statistics.median(self.bare_eps)

    @property
    def ratio(self) -> float:
        return self.ours / self.bare


async def measure_pipeline(
    root: Path, *, cases: int, rounds: int, workers: int, progress: Progress
) -> PipelineFigures:
    """Warm both sides up, then ``rounds`` rounds of ``cases`` exceptions: ours, bare, ours, bare..."""
    settings = bench_settings(root / "ours", workers=workers)
    nodes = real_node_count()
    durability: Durability = settings.checkpoint_durability
    async with AsyncExitStack() as stack:
        ours = Ours(settings, stack)
        bare = Bare(nodes, durability, workers, root / "bare" / "checkpoints.sqlite", stack)
        await ours.open()
        await bare.open()
        sides: tuple[Side, Side] = (ours, bare)
        warmup = min(cases, 7)  # one of each example: caches, compiled conditions, first connections
        for side in sides:
            await side.run(sample_exceptions(warmup, f"WARM-{side.name}"))
        rates: dict[str, list[float]] = {"ours": [], "bare": []}
        cpu = {"ours": 0.0, "bare": 0.0}
        for number in range(1, rounds + 1):
            for side in sides:
                timing = await side.run(sample_exceptions(cases, f"R{number}-{side.name}"))
                rates[side.name].append(cases / timing.wall)
                cpu[side.name] += timing.cpu
            progress(
                f"pipeline round {number}/{rounds}: ours {rates['ours'][-1]:.1f}/s, "
                f"bare {rates['bare'][-1]:.1f}/s"
            )
        outcomes = ours.outcomes()
        rows = count_rows(ours.db_path)
    stuck = {key: count for key, count in outcomes.items() if key.split("/")[0] not in ("done", "waiting")}
    if stuck:
        raise BenchError(f"some cases did not finish processing: {stuck}")
    added = {table: rows[table] - ours.baseline.get(table, 0) for table in rows}
    return PipelineFigures(
        cases=cases,
        rounds=rounds,
        workers=workers,
        nodes=nodes,
        durability=durability,
        ours_eps=rates["ours"],
        bare_eps=rates["bare"],
        ours_cpu_ms=cpu["ours"] * 1000 / (cases * rounds),
        bare_cpu_ms=cpu["bare"] * 1000 / (cases * rounds),
        ours_storage=storage(settings.checkpoint_path, ours.processed),
        bare_storage=storage(bare.path, bare.processed),
        db_rows_per_exception=sum(added.values()) / ours.processed,
        db_rows_by_table={table: count / ours.processed for table, count in sorted(added.items()) if count},
        case_storage=measure_case_storage(ours.db_path, settings.checkpoint_path),
        outcomes=outcomes,
    )
