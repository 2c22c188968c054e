"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and
run under one lock, so that any number of processes may upgrade (or start) at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.dialects import postgresql

from app.db.migrate import (
    SchemaNotCurrent,
    UpgradeResult,
    current_revision,
    ensure_schema,
    head_revision,
    ours,
    upgrade,
)
from app.db.models import Base
from app.db.session import sync_url
from tests.api_helpers import POSTGRES_URL, postgres_database

ROOT = Path(__file__).parent.parent


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres,
                pytest.mark.skipif(POSTGRES_URL is None, reason="EXOPS_TEST_POSTGRES_URL not set")])])  # fmt: skip
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'exops.db'}"
        return
    async with postgres_database() as url:
        yield url


# SQLite cannot reflect the expression index on lower(tenant_id), so autogenerate skips comparing it
# there (PostgreSQL compares it); tests/test_tenant_ids.py checks that the index refuses case twins.
@pytest.mark.filterwarnings("ignore:.*expression-based index uq_tenants_id_folded")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_migrations_match_the_models(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)  # running it again changes nothing
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_name": ours})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_upgrading_carries_accepted_work_over_to_jobs(database_url: str) -> None:
    """Cases accepted (or cut off) before jobs were durable get a job; an approval a crash left
    DECIDING is pending again (migration 0008)."""
    from sqlalchemy import text

    upgrade(database_url, "0007")
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO tenants (tenant_id, name, active, created_at) "
                                    "VALUES ('t1', 'T', true, CURRENT_TIMESTAMP)"))  # fmt: skip
            for exception_id, processing in (("A", "accepted"), ("B", "running"), ("C", "done")):
                connection.execute(
                    text("INSERT INTO exceptions (tenant_id, exception_id, source_system, status, raw, processing, "
                         "events_synced, received_at, updated_at) VALUES ('t1', :e, 's', 'OPEN', '{}', :p, 0, "
                         "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                    {"e": exception_id, "p": processing},
                )  # fmt: skip
            connection.execute(text("INSERT INTO approvals (tenant_id, approval_id, exception_id, status, payload, "
                                    "created_at, deadline) VALUES ('t1', 'APR-C-1', 'C', 'DECIDING', '{}', "
                                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))  # fmt: skip
        upgrade(database_url)
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                jobs = connection.execute(
                    text("SELECT args->>'exception_id' FROM procrastinate_jobs WHERE task_name = 'exops.process' "
                         "AND status = 'todo' AND lock = 'case:t1:' || (args->>'exception_id')")
                ).scalars()  # fmt: skip
            else:
                jobs = connection.execute(
                    text("SELECT exception_id FROM case_jobs WHERE kind = 'process' AND status = 'queued'")
                ).scalars()
            assert sorted(jobs) == ["A", "B"]
            assert connection.execute(text("SELECT status FROM approvals")).scalar_one() == "PENDING"
    finally:
        engine.dispose()


def test_0010_rewrites_older_playbook_rows_for_the_read_paths(database_url: str) -> None:
    """Rows projected before 0010 held the playbook document; they become the operator's view, and a
    case the policy decided without a playbook gets a row for its selection."""
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    tenants = sa.table("tenants", sa.column("tenant_id"), sa.column("name"), sa.column("active"),
                       sa.column("created_at", sa.DateTime))  # fmt: skip
    cases = sa.table(
        "exceptions", *(sa.column(c) for c in ("tenant_id", "exception_id", "source_system", "status",
                                              "actionability", "processing", "events_synced")),
        sa.column("raw", json), sa.column("result", json), sa.column("received_at", sa.DateTime),
        sa.column("updated_at", sa.DateTime),
    )  # fmt: skip
    playbooks = sa.table("playbook_states", sa.column("tenant_id"), sa.column("exception_id"),
                         sa.column("playbook_id"), sa.column("playbook", json), sa.column("steps", json),
                         sa.column("updated_at", sa.DateTime))  # fmt: skip
    approvals = sa.table("approvals", *(sa.column(c) for c in ("tenant_id", "approval_id", "exception_id", "status",
                                                               "decision", "decided_by")),
                         sa.column("payload", json), sa.column("created_at", sa.DateTime),
                         sa.column("deadline", sa.DateTime), sa.column("decided_at", sa.DateTime))  # fmt: skip
    upgrade(database_url, "0007")
    engine = create_engine(sync_url(database_url))
    document = {"id": "PB-1", "name": "Resubmit", "version": "1.0.0", "description": "d", "appliesTo": ["X"],
                "steps": [{"type": "notify", "name": "n"}]}  # fmt: skip
    result = {"selectedPlaybookId": "PB-1", "recommendedPlaybookId": "PB-1"}
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.insert(tenants).values(tenant_id="t", name="T", active=True, created_at=now)
            )
            for exception_id, actionability in (("A", "ACTIONABLE_APPROVED_PROCESS"), ("B", "ACTIONABLE_APPROVED_PROCESS"),
                                                ("C", "NON_ACTIONABLE_INFO_ONLY")):  # fmt: skip
                connection.execute(sa.insert(cases).values(
                    tenant_id="t", exception_id=exception_id, source_system="s", status="RESOLVED",
                    actionability=actionability, processing="done", events_synced=0, raw={}, received_at=now,
                    updated_at=now, result=result if exception_id != "C" else {},
                ))  # fmt: skip
            for exception_id in ("A", "B"):
                connection.execute(sa.insert(playbooks).values(tenant_id="t", exception_id=exception_id,
                                                               playbook_id="PB-1", playbook=document,
                                                               steps=[{"order": 1}], updated_at=now))  # fmt: skip
            connection.execute(sa.insert(approvals).values(tenant_id="t", approval_id="APR-B-1", exception_id="B",
                                                           status="TAKEN_OVER", decision="takeover", decided_by="bob",
                                                           payload={}, created_at=now, deadline=now, decided_at=now))  # fmt: skip
        upgrade(database_url)
        with engine.connect() as connection:
            rows = {
                row.exception_id: row
                for row in connection.execute(
                    sa.select(
                        playbooks.c.exception_id, playbooks.c.playbook, sa.column("selection", json)
                    ).select_from(playbooks)
                )
            }
    finally:
        engine.dispose()
    assert rows["A"].playbook == {"id": "PB-1", "name": "Resubmit", "version": "1.0.0", "description": "d",
                                  "approvedForTenant": True, "origin": None, "appliesTo": ["X"], "match": {},
                                  "priority": None, "successCriteria": []}  # fmt: skip
    assert rows["A"].selection == {"actionability": "ACTIONABLE_APPROVED_PROCESS", "selectedPlaybookId": "PB-1",
                                   "recommendedPlaybookId": "PB-1", "reasoning": None, "candidates": []}  # fmt: skip
    assert (
        rows["B"].playbook["id"] == "TAKEOVER"
        and "bob took the case over" in rows["B"].playbook["description"]
    )
    assert rows["C"].playbook is None and rows["C"].selection["actionability"] == "NON_ACTIONABLE_INFO_ONLY"


UPGRADE_ON_SIGNAL = """
import pathlib, sys, time
from app.cli.main import cli
folder = pathlib.Path(sys.argv[1])
(folder / f"ready-{sys.argv[2]}").touch()
while not (folder / "go").exists():
    time.sleep(0.005)
cli(["db", "upgrade"])
"""
"""``exops db upgrade``, started only once every process has imported the app, so that they all reach
the database at the same moment instead of one after the other."""


def _upgrade_process(url: str, folder: Path, n: int) -> subprocess.Popen[str]:
    """``exops db upgrade`` in a process of its own, as a deploy step or a second host would run it."""
    env = {**os.environ, "EXOPS_DATABASE_URL": url, "EXOPS_DATA_DIR": str(folder),
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", UPGRADE_ON_SIGNAL, str(folder), str(n)],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_concurrent_upgrades_all_succeed_and_exactly_one_migrates(database_url: str, tmp_path: Path) -> None:
    """Four ``exops db upgrade`` processes and a server start-up (``ensure_schema``) on one fresh
    database at the same moment: every one succeeds, one of them migrates, the rest find it done."""
    processes = [_upgrade_process(database_url, tmp_path, n) for n in range(4)]
    while len(list(tmp_path.glob("ready-*"))) < 4:
        assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
        time.sleep(0.01)
    (tmp_path / "go").touch()
    in_process = ensure_schema(database_url, migrate=True)
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        outputs.append(out)
    migrated = [o for o in outputs if "migrated from (empty) to" in o] + ([""] if in_process.migrated else [])
    assert len(migrated) == 1, (outputs, in_process)
    head = head_revision()
    assert sum(f"is up to date ({head})" in o for o in outputs) == (4 if in_process.migrated else 3)
    assert "exops:exops@" not in "".join(outputs)  # the URL is shown without its password
    assert current_revision(database_url) == head


def test_a_server_told_not_to_migrate_refuses_an_old_schema(database_url: str) -> None:
    with pytest.raises(SchemaNotCurrent, match="run exops db upgrade"):
        ensure_schema(database_url, migrate=False)
    assert upgrade(database_url).migrated
    assert ensure_schema(database_url, migrate=False) == UpgradeResult(head_revision(), head_revision())
    assert not upgrade(database_url).migrated
