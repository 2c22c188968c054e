"""``exops bench --database-url postgresql://...``: how case work scales with worker processes.

``scale_ratio`` is cases per second with two ``exops worker`` processes over cases per second with
one, on PostgreSQL (procrastinate jobs, the Postgres checkpointer). Each round gets a fresh database
on the given server (created and dropped here, so the command is safe next to a real installation;
the URL's user needs CREATEDB), starts the workers and waits until they are registered, has them
process an untimed warm-up of ``WARMUP_PER_PROCESS`` cases per process, then stores ``cases``
exceptions with their jobs in one transaction and times from that commit until no job is left. Rounds alternate one worker, two workers, so machine noise hits both sides alike. On a
2-core machine the database server shares the cores with the workers: the ratio says how much of the
second core a second worker process wins, not more.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.admin.accounts import ensure_tenant
from app.bench import TENANT, BenchError, Progress, bench_settings, sample_exceptions
from app.db.session import Database
from graph.inputs import RawException

START_TIMEOUT = 120.0
WARMUP_PER_PROCESS = 16
"""Untimed cases per worker process before a round is timed (the sample mix twice over, and more)."""
RUN_TIMEOUT = 1800.0


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(url: str) -> AsyncIterator[str]:
    """A new, empty database on ``url``'s server; dropped afterwards."""
    name = f"exops_bench_{uuid.uuid4().hex[:10]}"
    admin = make_url(url)
    try:
        with psycopg.connect(_plain(url), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise BenchError(f"cannot create a scratch database on {admin.host}: {exc}") from None
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_plain(url), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _one_round(
    url: str, data_dir: Path, processes: int, cases: int, concurrency: int, tag: str
) -> float:
    """Cases per second with ``processes`` worker processes."""
    from app.api.main import open_services

    settings = bench_settings(data_dir, workers=concurrency).model_copy(update={"database_url": url})
    # the workers' settings pinned like the bench's own (no LLM, dry-run tools, recorded notifications)
    env = {name: value for name, value in os.environ.items() if not name.startswith("EXOPS_")}
    env |= {"EXOPS_DATABASE_URL": url, "EXOPS_DATA_DIR": str(data_dir), "EXOPS_PACKS_DIR": str(settings.packs_dir), "EXOPS_MEMORY_ENABLED": "false",
            "EXOPS_WORKER_CONCURRENCY": str(concurrency), "EXOPS_JOB_POLL_SECONDS": "0.5",
            "EXOPS_DEADLINE_SWEEP_SECONDS": "3600", "EXOPS_TOOL_MODE": "dry-run", "EXOPS_NOTIFICATIONS": "record",
            "EXOPS_CHECKPOINT_DURABILITY": settings.checkpoint_durability}  # fmt: skip
    async with open_services(settings, workers=False) as services:  # migrates the scratch database
        async with services.db.session() as session:
            await ensure_tenant(session, TENANT, "Globex Markets")
        logs = [(data_dir / f"worker-{tag}-{n}.log").open("wb") for n in range(processes)]
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "app.cli.main", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for log in logs
        ]
        try:
            await _registered(services.db, processes, workers)
            # untimed warm-up, as the pipeline pair has: each process's first cases pay for lazy
            # imports, compiled conditions and templates, first connections; two processes pay twice
            warm = [RawException.model_validate(item) for item in sample_exceptions(WARMUP_PER_PROCESS * processes, f"W{tag}")]  # fmt: skip
            await services.cases.ingest(TENANT, warm, idempotency_key=None, actor="bench")
            await _drained(services.db, workers)
            raws = [RawException.model_validate(item) for item in sample_exceptions(cases, f"S{tag}")]
            await services.cases.ingest(TENANT, raws, idempotency_key=None, actor="bench")
            started = time.perf_counter()
            await _drained(services.db, workers)
            return cases / (time.perf_counter() - started)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                try:
                    worker.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
            for log in logs:
                log.close()


async def _registered(db: Database, count: int, workers: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        async with db.session() as session:
            seen = (await session.execute(text("SELECT COUNT(*) FROM procrastinate_workers"))).scalar_one()
        if seen >= count:
            return
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            raise BenchError("the worker processes did not start (see their logs in the bench folder)")
        await asyncio.sleep(0.2)


async def _drained(db: Database, workers: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    busy = text("SELECT COUNT(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing') "
                "AND task_name <> 'exops.sweep'")  # fmt: skip
    while True:
        async with db.session() as session:
            if (await session.execute(busy)).scalar_one() == 0:
                failed = await session.execute(
                    text("SELECT COUNT(*) FROM procrastinate_jobs WHERE status = 'failed'")
                )
                if failed.scalar_one():
                    raise BenchError("some cases failed in the scale benchmark (see the worker logs)")
                return
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            raise BenchError("the workers did not finish the scale benchmark's cases")
        await asyncio.sleep(0.1)


async def measure_scale(
    url: str, root: Path, *, cases: int, rounds: int, concurrency: int, progress: Progress
) -> dict[str, Any]:
    """``scale_ratio`` and the rates behind it (see the module docstring)."""
    rates: dict[int, list[float]] = {1: [], 2: []}
    for round_ in range(rounds):
        for processes in (1, 2):
            async with fresh_database(url) as scratch:
                folder = root / f"scale-{round_}-{processes}"
                folder.mkdir(parents=True, exist_ok=True)
                rate = await _one_round(
                    scratch, folder, processes, cases, concurrency, f"{round_}{processes}"
                )
            rates[processes].append(round(rate, 2))
            progress(f"scale round {round_ + 1}: {processes} worker process(es): {rate:.2f} cases/s")
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    return {
        "scale_ratio": round(two / one, 3),
        "scale": {"cases_per_round": cases, "rounds": rounds, "concurrency_per_worker": concurrency,
                  "one_worker_eps_by_round": rates[1], "two_workers_eps_by_round": rates[2]},
    }  # fmt: skip
