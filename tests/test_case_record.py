"""The tables are a case's record: events written once by the event sink (a kill -9 between a node's
events and its checkpoint included), a finished case's checkpoints deleted and every read path
reading the tables, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.cases.events import DatabaseEventSink
from app.db.models import Approval, ExceptionEvent, ToolExecution
from graph.events import CaseKey, KeyedEvent
from graph.state import AuditEvent
from tests.api_helpers import Api, running_api

ROOT = Path(__file__).parent.parent
EXAMPLES = json.loads((ROOT / "docs" / "examples" / "globex-markets-exceptions.json").read_text())[
    "exceptions"
]
TENANT = "globex-markets"
BASE = f"/exceptions/{TENANT}"


def example(exception_id: str, new_id: str | None = None) -> dict[str, Any]:
    [found] = [e for e in EXAMPLES if e["exceptionId"] == exception_id]
    return {**found, "exceptionId": new_id or exception_id}


async def stored_events(api: Api, exception_id: str) -> list[ExceptionEvent]:
    async with api.services.db.session() as session:
        rows = await session.execute(
            select(ExceptionEvent)
            .where(ExceptionEvent.tenant_id == TENANT, ExceptionEvent.exception_id == exception_id)
            .order_by(ExceptionEvent.seq)
        )
        return list(rows.scalars())


async def count(api: Api, model: Any, exception_id: str) -> int:
    async with api.services.db.session() as session:
        query = select(func.count()).where(model.tenant_id == TENANT, model.exception_id == exception_id)
        return int((await session.execute(query)).scalar_one())


async def test_a_finished_case_is_read_from_the_tables_once_its_checkpoints_are_gone(api: Api) -> None:
    await api.post_and_settle(TENANT, [example("GLX-1001"), example("GLX-1002")])
    runner = api.services.runner
    assert await runner.values(TENANT, "GLX-1001") == {}  # finished: its thread was deleted
    assert (await runner.values(TENANT, "GLX-1002"))["plan"]  # waiting for a person: still working state

    detail = (await api.client.get(f"{BASE}/GLX-1001", headers=api.as_("viewer"))).json()
    assert detail["resolutionStatus"] == "RESOLVED" and detail["processing"] == "done"
    assert [d["stage"] for d in detail["decisions"]] == [s["stage"] for s in detail["result"]["stages"]]
    assert detail["decisions"][0]["stage"] == "intake" and detail["decisions"][-1]["stage"] == "feedback"
    assert [s["status"] for s in detail["result"]["plan"]] and all(
        s["status"] == "SUCCESS" for s in detail["result"]["plan"]
    )
    trail = detail["record"]["auditTrail"]
    assert [e["seq"] for e in trail] == list(range(1, len(trail) + 1))
    recorded = [e["data"] for e in trail if e["type"] == "stage_decision"]
    assert detail["decisions"] == [{k: d[k] for k in ("stage", "decision", "confidence", "nextStep", "evidence")}
                                   for d in recorded]  # fmt: skip
    playbook = (await api.client.get(f"{BASE}/GLX-1001/playbook", headers=api.as_("viewer"))).json()
    assert playbook["currentStep"] is None and playbook["waitingFor"] is None
    assert all(step["completedAt"] and step["actorType"] == "agent" for step in playbook["steps"])
    assert playbook["selection"]["selectedPlaybookId"] == playbook["playbook"]["id"]
    assert playbook["selection"]["candidates"] and playbook["playbook"]["approvedForTenant"] is True
    again = await api.client.post(f"{BASE}/GLX-1001/playbook/recalculate", headers=api.as_("operator"))
    assert again.status_code == 200 and again.json()["changed"] is False

    await api.client.post("/ui/login", data={"credential": api.keys[(TENANT, "viewer")], "next": "/ui/"})
    page = await api.client.get(f"/ui/t/{TENANT}/exceptions/GLX-1001")
    assert page.status_code == 200
    for text in ("Intake", "Feedback", playbook["playbook"]["name"], playbook["steps"][0]["name"]):
        assert text in page.text


async def test_the_sink_stores_a_batch_once_with_its_side_rows(api: Api) -> None:
    await api.post_and_settle(TENANT, [example("GLX-1001")])
    before = await stored_events(api, "GLX-1001")
    sink = api.services.runtime.events
    assert isinstance(sink, DatabaseEventSink)
    tool: AuditEvent = {
        "type": "tool_call", "stage": "execute", "actor": {"type": "agent", "id": "exops"},
        "at": "2026-12-08T10:00:00+00:00", "packVersions": {"tenant": "globex-markets@x"},
        "data": {"tool": "getTrade", "status": "DRY_RUN", "mode": "dry-run", "attempts": 1},
    }  # fmt: skip
    asked: AuditEvent = {**tool, "type": "approval_requested", "stage": "supervisor",
                         "data": {"approvalId": "APR-X-1", "severity": "HIGH", "requestedAt": tool["at"],
                                  "deadline": "2026-12-08T14:00:00+00:00"}}  # fmt: skip
    batch = [KeyedEvent("execute:9:0", tool), KeyedEvent("execute:9:1", asked)]
    tools_before = await count(api, ToolExecution, "GLX-1001")
    for _ in range(3):  # the node ran three times: stored once
        await sink.write(CaseKey(TENANT, "GLX-1001"), batch)
    after = await stored_events(api, "GLX-1001")
    assert [e.seq for e in after] == list(range(1, len(before) + 3))
    assert [(e.event_key, e.type) for e in after[-2:]] == [("execute:9:0", "tool_call"),
                                                          ("execute:9:1", "approval_requested")]  # fmt: skip
    assert after[-1].data == asked["data"] and after[-1].at.isoformat() == asked["at"]
    assert await count(api, ToolExecution, "GLX-1001") == tools_before + 1
    async with api.services.db.session() as session:
        approval = await session.get(Approval, (TENANT, "APR-X-1"))
    assert approval is not None and approval.status == "PENDING" and approval.payload == asked["data"]


async def test_each_event_has_a_key_unique_in_its_case(api: Api) -> None:
    await api.post_and_settle(TENANT, EXAMPLES)
    for item in EXAMPLES:
        events = await stored_events(api, item["exceptionId"])
        keys = [e.event_key for e in events]
        assert None not in keys and len(keys) == len(set(keys)), item["exceptionId"]
        assert [e.seq for e in events] == list(range(1, len(events) + 1))


@pytest.mark.parametrize("kill_after", [1, 7])
async def test_kill_9_after_a_node_stored_its_events_then_restart_records_each_once(
    tmp_path: Path, kill_after: int
) -> None:
    """kill_after 1: after intake's events; 7: after execute's (its tool call) — before their checkpoints."""
    crashed = subprocess.run(
        [sys.executable, "-m", "tests.crash_case", str(tmp_path), str(kill_after)],
        input=json.dumps(example("GLX-1001", "GLX-CRASH")), capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
    )  # fmt: skip
    assert crashed.returncode == -9, crashed.stderr
    async with running_api(tmp_path, "sqlite", database_url=f"sqlite:///{tmp_path / 'exops.db'}") as api:
        before = await stored_events(api, "GLX-CRASH")
        assert len({e.event_key.rsplit(":", 1)[0] for e in before if e.event_key}) == kill_after  # batches
        await api.settle()  # the restart picked the case up again: it carries on from its checkpoint
        await api.post_and_settle(TENANT, [example("GLX-1001", "GLX-CLEAN")])  # the same, never cut off
        crashed_case = await stored_events(api, "GLX-CRASH")
        clean = await stored_events(api, "GLX-CLEAN")
        assert [(e.event_key, e.type) for e in crashed_case] == [(e.event_key, e.type) for e in clean]
        assert [e.seq for e in crashed_case] == list(range(1, len(clean) + 1))
        assert Counter(e.type for e in crashed_case)["tool_call"] == await count(
            api, ToolExecution, "GLX-CRASH"
        )
        assert await count(api, ToolExecution, "GLX-CRASH") == await count(api, ToolExecution, "GLX-CLEAN")
        detail = (await api.client.get(f"{BASE}/GLX-CRASH", headers=api.as_("viewer"))).json()
        assert detail["resolutionStatus"] == "RESOLVED" and detail["processing"] == "done"
        assert await api.services.runner.values(TENANT, "GLX-CRASH") == {}


async def test_a_finished_case_left_with_its_checkpoints_is_compacted_when_its_job_runs_again(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that died between a finished case's projection and its compaction leaves the thread;
    the job, taken again, finds the case processed and deletes it then."""
    runner = api.services.runner
    compact = runner.compact

    async def dies_first(*_args: Any) -> None:  # as if killed right before compacting
        return None

    monkeypatch.setattr(runner, "compact", dies_first)
    await api.post_and_settle(TENANT, [example("GLX-1001")])
    assert (await runner.values(TENANT, "GLX-1001"))["status"] == "RESOLVED"  # left behind
    events = await count(api, ExceptionEvent, "GLX-1001")
    monkeypatch.setattr(runner, "compact", compact)
    result = await api.services.cases.process(TENANT, "GLX-1001")  # the job, taken again
    assert result["resolutionStatus"] == "RESOLVED"
    assert await runner.values(TENANT, "GLX-1001") == {}
    assert await count(api, ExceptionEvent, "GLX-1001") == events  # not run again
