"""durable case jobs, and people's answers as claims with a lease

* ``case_jobs``: the embedded (SQLite) job queue. Every unit of case work is a row a worker takes
  with one conditional UPDATE and holds under a lease; a crashed worker's job is taken again once
  its lease runs out. On PostgreSQL the jobs live in procrastinate's tables instead, created here too
  (procrastinate's own schema, at the version pinned in pyproject), so ``exops db upgrade`` is the one
  step that prepares a database, under the same lock as every other migration.
* approvals and playbook states get the claim columns: who answered, when, the plan digest they
  saw, until when the claim holds, the answer, the job applying it and what came of it.
* On SQLite a trigger queues the ``process`` job of every case inserted as ``accepted``, in the
  statement that inserts the case: ingest costs what it did before jobs were durable (one row
  more, written by SQLite itself, without another round trip from Python). A later migration that
  rebuilds ``exceptions`` on SQLite (``batch_alter_table`` copies the table) drops the trigger with
  the old table and must create it again (``ACCEPT_TRIGGER`` below).
* Work already accepted is carried over: cases accepted or cut off mid-run get a job (they were
  found by ``recover()`` at start-up before), and approvals left ``DECIDING`` by a crash (the state
  the claim replaces) go back to ``PENDING``: the job that would have decided them died with its
  process, and the next answer is applied to whatever the graph holds.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)


def _claim_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_at", WHEN, nullable=True),
        sa.Column("claim_digest", sa.String(length=64), nullable=True),
        sa.Column("claim_lease_until", WHEN, nullable=True),
        sa.Column("claim_answer", JSON, nullable=True),
        sa.Column("claim_job", sa.String(length=64), nullable=True),
        sa.Column("claim_interrupt", sa.String(length=64), nullable=True),
        sa.Column("claim_outcome", JSON, nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "case_jobs",
        sa.Column("job_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=True),
        sa.Column("exception_id", sa.String(length=128), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=True),
        sa.Column("lease_until", WHEN, nullable=True),
        sa.Column("run_after", WHEN, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("finished_at", WHEN, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_case_jobs")),
    )
    op.create_index("ix_case_jobs_ready", "case_jobs", ["status", "job_id"])
    op.create_index("ix_case_jobs_case", "case_jobs", ["tenant_id", "exception_id", "status"])
    with op.batch_alter_table("approvals") as batch_op:
        for column in _claim_columns():
            batch_op.add_column(column)
    with op.batch_alter_table("playbook_states") as batch_op:
        batch_op.add_column(sa.Column("waiting_step", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("claim_step", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("claim_state", sa.String(length=10), nullable=True))
        for column in _claim_columns():
            batch_op.add_column(column)
    op.execute("UPDATE approvals SET status = 'PENDING' WHERE status = 'DECIDING'")
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _procrastinate_schema(bind)
        op.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, args, scheduled_at) "
            "SELECT 'exops', 'exops.process', 0, 'case:' || tenant_id || ':' || exception_id, "
            "jsonb_build_object('tenant_id', tenant_id, 'exception_id', exception_id, 'payload', '{}'::jsonb), "
            "NOW() FROM exceptions WHERE processing IN ('accepted', 'running') ORDER BY received_at"
        )
    else:
        op.execute(ACCEPT_TRIGGER)
        op.execute(
            "INSERT INTO case_jobs (kind, tenant_id, exception_id, payload, status, run_after, attempts, "
            "created_at) SELECT 'process', tenant_id, exception_id, '{}', 'queued', received_at, 0, received_at "
            "FROM exceptions WHERE processing IN ('accepted', 'running') ORDER BY received_at"
        )


ACCEPT_TRIGGER = """
CREATE TRIGGER case_jobs_process_on_accept AFTER INSERT ON exceptions WHEN NEW.processing = 'accepted'
BEGIN
    INSERT INTO case_jobs (kind, tenant_id, exception_id, payload, status, run_after, attempts, created_at)
    VALUES ('process', NEW.tenant_id, NEW.exception_id, '{}', 'queued', NEW.received_at, 0, NEW.received_at);
END
"""


def _procrastinate_schema(bind: sa.Connection) -> None:
    """procrastinate's schema, run as one script on the migration's own connection (and transaction)."""
    from procrastinate.schema import SchemaManager

    exists = bind.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar()
    if exists is None:
        driver = bind.connection.driver_connection
        assert driver is not None
        driver.execute(SchemaManager.get_schema())


def _drop_procrastinate(bind: sa.Connection) -> None:
    for (name,) in bind.execute(
        sa.text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'procrastinate\\_%' ESCAPE '\\'")
    ):
        op.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')
    for (signature,) in bind.execute(
        sa.text(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE p.proname LIKE 'procrastinate\\_%' ESCAPE '\\' AND n.nspname = current_schema()"
        )
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {signature} CASCADE")
    for (name,) in bind.execute(
        sa.text(
            "SELECT typname FROM pg_type WHERE typname LIKE 'procrastinate\\_%' ESCAPE '\\' AND typtype IN ('e', 'c')"
        )
    ):
        op.execute(f'DROP TYPE IF EXISTS "{name}" CASCADE')


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _drop_procrastinate(bind)
    else:
        op.execute("DROP TRIGGER IF EXISTS case_jobs_process_on_accept")
    op.execute("UPDATE approvals SET status = 'PENDING' WHERE status = 'CLAIMED'")
    with op.batch_alter_table("playbook_states") as batch_op:
        for column in reversed(_claim_columns()):
            batch_op.drop_column(column.name)
        batch_op.drop_column("claim_state")
        batch_op.drop_column("claim_step")
        batch_op.drop_column("waiting_step")
    with op.batch_alter_table("approvals") as batch_op:
        for column in reversed(_claim_columns()):
            batch_op.drop_column(column.name)
    op.drop_index("ix_case_jobs_case", table_name="case_jobs")
    op.drop_index("ix_case_jobs_ready", table_name="case_jobs")
    op.drop_table("case_jobs")
