"""The ingestion pair: requests per second for ``POST /exceptions/{tenantId}``, ours against bare FastAPI.

Each server runs in its own process (``python -m app.bench.ingest {ours|bare} DATA_DIR``), served by
uvicorn with the same options, on a loopback port it picks and prints. Separate processes, because a
server in a thread of the client's process would share its interpreter lock: the client's own cost
would be added to both sides and push the ratio towards 1.

* ours: ``create_app`` as the server builds it (API key lookup and ``last_used_at`` update, role and
  rate-limit checks, tenant lookup, body validation, the case row and its run row stored in one
  transaction). Its background workers are stopped once it has started, so accepted cases queue up in
  memory instead of being processed: processing is the pipeline pair's subject, and it would otherwise
  compete with the requests for the CPU.
* bare: one FastAPI endpoint, the body taken as any JSON object, the same ``exceptions`` row inserted
  with SQLAlchemy through the same ``Database`` (same driver, same SQLite pragmas, same schema).

The client is one ``httpx.AsyncClient`` for both, ``concurrency`` requests in flight, one exception per
request, the same headers; rounds alternate ours, bare, ours, bare after a warm-up of each.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import Body, FastAPI

from app.admin.accounts import ensure_tenant, issue_key
from app.bench import TENANT, BenchError, Progress, bench_settings, sample_exceptions
from app.db.migrate import upgrade
from app.db.models import ExceptionCase
from app.db.session import Database
from app.settings import Settings

SIDES = ("ours", "bare")
START_TIMEOUT = 90.0


def _settings(data_dir: Path) -> Settings:
    return bench_settings(data_dir, workers=1)


def ours_app(data_dir: Path) -> FastAPI:
    """The real app; once its services are open, its background workers are stopped (see above)."""
    from app.api.main import create_app

    app = create_app(_settings(data_dir))
    opened = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with opened(app) as state:
            await app.state.services.cases.stop_workers()
            yield state

    app.router.lifespan_context = lifespan
    return app


def bare_app(data_dir: Path) -> FastAPI:
    """One endpoint storing the same row as ours, and nothing else."""
    db = Database(_settings(data_dir).db_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await db.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/exceptions/{tenantId}", status_code=202)
    async def ingest(tenantId: str, body: dict[str, Any] = Body(...)) -> dict[str, list[str]]:
        exception_id = str(body.get("exceptionId") or f"EX-{uuid.uuid4().hex[:16].upper()}")
        async with db.session() as session:
            session.add(
                ExceptionCase(
                    tenant_id=tenantId, exception_id=exception_id, source_system=body.get("sourceSystem", "unknown"),
                    reported_type=body.get("exceptionType"), severity=body.get("severity"), raw=body,
                    processing="accepted", idempotency_key=None, run_id=f"RUN-{uuid.uuid4().hex[:12].upper()}",
                    status="OPEN",
                )
            )  # fmt: skip
        return {"exceptionIds": [exception_id]}

    return app


def serve(side: str, data_dir: Path) -> None:
    """The server process: bind a loopback port, print it, serve until terminated."""
    import uvicorn

    app = ours_app(data_dir) if side == "ours" else bare_app(data_dir)
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on accepted sockets whose proto says TCP,
    # and without it every response waits ~40 ms for a delayed ACK (uvicorn's own bind gets it right).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


async def prepare(data_dir: Path) -> str:
    """A fresh database in ``data_dir`` with the tenant; returns a plaintext operator key for it."""
    settings = _settings(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(upgrade, settings.db_url)
    db = Database(settings.db_url)
    try:
        async with db.session() as session:
            await ensure_tenant(session, TENANT, "Globex Markets")
            return (await issue_key(session, tenant_id=TENANT, role="operator", name="bench")).plaintext
    finally:
        await db.close()


def peak_rss_mb(pid: int) -> float | None:
    """A live process's peak resident memory (``VmHWM``; Linux only). Not ``RUSAGE_CHILDREN``: on Linux a
    child's ``ru_maxrss`` starts from its parent's resident size at spawn, so it says nothing of the child."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a live process has used so far (``/proc``; Linux only)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Running:
    url: str
    pid: int
    peak_mb: float | None = None


@contextlib.contextmanager
def server(side: str, data_dir: Path) -> Iterator[Running]:
    """Start a server process; yields its URL; at the end, notes its peak memory and stops it."""
    log = (data_dir / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.bench.ingest", side, str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    running = Running("", process.pid)
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        if not port.isdigit():
            process.wait(timeout=10)
            raise BenchError(
                f"the {side} server did not start:\n{(data_dir / 'server.log').read_text()[-2000:]}"
            )
        running.url = f"http://127.0.0.1:{port}"
        yield running
    finally:
        running.peak_mb = peak_rss_mb(process.pid)
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def wait_ready(client: httpx.AsyncClient, base: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if (await client.get(f"{base}/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{base} did not answer /health within {START_TIMEOUT:.0f}s")
        await asyncio.sleep(0.1)


async def post_all(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    bodies: Sequence[dict[str, Any]],
    concurrency: int,
) -> tuple[float, list[float]]:
    """Send every body, ``concurrency`` at a time; the seconds it took and each request's latency."""
    pending = iter(bodies)
    latencies: list[float] = []

    async def sender() -> None:
        for body in pending:
            started = time.perf_counter()
            response = await client.post(url, json=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 202:
                raise BenchError(f"POST {url} answered {response.status_code}: {response.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(max(1, concurrency))))
    return time.perf_counter() - started, latencies


@dataclass(frozen=True)
class IngestFigures:
    requests: int
    rounds: int
    concurrency: int
    ours_rps: list[float]
    bare_rps: list[float]
    ours_p50_ms: float
    bare_p50_ms: float
    ours_p95_ms: float
    bare_p95_ms: float
    ours_cpu_ms: float | None
    bare_cpu_ms: float | None
    ours_server_peak_mb: float | None
    bare_server_peak_mb: float | None

    @property
    def ours(self) -> float:
        return statistics.median(self.ours_rps)

    @property
    def bare(self) -> float:
        return statistics.median(self.bare_rps)

    @property
    def ratio(self) -> float:
        return self.ours / self.bare


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def measure_ingest(
    root: Path, *, requests: int, rounds: int, concurrency: int, progress: Progress
) -> IngestFigures:
    dirs = {side: root / f"ingest-{side}" for side in SIDES}
    key = await prepare(dirs["ours"])
    await prepare(dirs["bare"])
    headers = {"X-API-KEY": key}
    rates: dict[str, list[float]] = {side: [] for side in SIDES}
    latencies: dict[str, list[float]] = {side: [] for side in SIDES}
    cpu = {side: 0.0 for side in SIDES}  # server CPU seconds over the timed rounds
    measured_cpu = True
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with server("ours", dirs["ours"]) as ours, server("bare", dirs["bare"]) as bare:
        ours_url, bare_url = ours.url, bare.url
        processes = {"ours": ours, "bare": bare}
        urls = {"ours": f"{ours_url}/exceptions/{TENANT}", "bare": f"{bare_url}/exceptions/{TENANT}"}
        async with httpx.AsyncClient(limits=limits, timeout=60.0, trust_env=False) as client:
            await wait_ready(client, ours_url)
            await wait_ready(client, bare_url)
            for side in SIDES:  # warm-up: connections opened, first-request costs paid, untimed
                await post_all(
                    client,
                    urls[side],
                    headers,
                    sample_exceptions(2 * concurrency, f"WARM-{side}"),
                    concurrency,
                )
            for number in range(1, rounds + 1):
                for side in SIDES:
                    bodies = sample_exceptions(requests, f"R{number}-{side}")
                    cpu_before = cpu_seconds(processes[side].pid)
                    seconds, times = await post_all(client, urls[side], headers, bodies, concurrency)
                    cpu_after = cpu_seconds(processes[side].pid)
                    if cpu_before is None or cpu_after is None:
                        measured_cpu = False
                    else:
                        cpu[side] += cpu_after - cpu_before
                    rates[side].append(requests / seconds)
                    latencies[side] += times
                progress(
                    f"ingest round {number}/{rounds}: ours {rates['ours'][-1]:.0f}/s, bare {rates['bare'][-1]:.0f}/s"
                )
    return IngestFigures(
        requests=requests,
        rounds=rounds,
        concurrency=concurrency,
        ours_rps=rates["ours"],
        bare_rps=rates["bare"],
        ours_p50_ms=_percentile(latencies["ours"], 0.5),
        bare_p50_ms=_percentile(latencies["bare"], 0.5),
        ours_p95_ms=_percentile(latencies["ours"], 0.95),
        bare_p95_ms=_percentile(latencies["bare"], 0.95),
        ours_cpu_ms=cpu["ours"] * 1000 / (requests * rounds) if measured_cpu else None,
        bare_cpu_ms=cpu["bare"] * 1000 / (requests * rounds) if measured_cpu else None,
        ours_server_peak_mb=ours.peak_mb,
        bare_server_peak_mb=bare.peak_mb,
    )


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in SIDES:
        sys.exit("usage: python -m app.bench.ingest {ours|bare} DATA_DIR")
    serve(sys.argv[1], Path(sys.argv[2]))
