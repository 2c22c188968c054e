"""Run one case in a real exops stack and kill the process (SIGKILL) right after the graph's event sink
committed its ``kill_after``-th batch: the node's events are stored, its checkpoint is not.

``python -m tests.crash_case DATA_DIR KILL_AFTER`` reads the exception as JSON on stdin. The stack is
the server's own (``open_services``) on the SQLite files in DATA_DIR; ``tests/test_case_record.py``
then restarts it on the same files.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from app.admin.accounts import ensure_tenant
from app.api.main import open_services
from app.settings import Settings
from graph.events import CaseKey, EventSink, KeyedEvent
from graph.inputs import RawException

SAMPLES = Path(__file__).parent.parent / "packs" / "samples"
TENANT = "globex-markets"


def settings_for(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'exops.db'}", packs_dir=SAMPLES,
        deadline_sweep_seconds=3600, tool_mode="dry-run", notifications="record",
    )  # fmt: skip


class KillAfter:
    def __init__(self, inner: EventSink, batches: int) -> None:
        self.inner = inner
        self.left = batches

    async def write(self, case: CaseKey, events: Sequence[KeyedEvent]) -> None:
        await self.inner.write(case, events)
        self.left -= 1
        if self.left == 0:
            os.kill(os.getpid(), signal.SIGKILL)


async def main(data_dir: Path, kill_after: int, raw: RawException) -> None:
    async with open_services(settings_for(data_dir)) as services:
        await services.cases.stop_workers()
        async with services.db.session() as session:
            await ensure_tenant(session, TENANT, "Globex Markets")
        assert services.runtime.events is not None
        services.runtime.events = KillAfter(services.runtime.events, kill_after)
        [exception_id], _ = await services.cases.ingest(TENANT, [raw], idempotency_key=None, actor="test")
        await services.cases.process(TENANT, exception_id)
    raise SystemExit("the process was meant to be killed before the case finished")


if __name__ == "__main__":
    raw = RawException.model_validate(json.loads(sys.stdin.read()))
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), raw))
