"""tool executions keep every attempt and the breaker state

A tool call may take several attempts (retries with backoff) and is guarded by a circuit breaker;
operators need both when they look at a tool's recent executions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tool_executions") as batch_op:
        batch_op.add_column(sa.Column("breaker", sa.String(length=10), nullable=True))
        batch_op.add_column(
            sa.Column("attempt_log", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("tool_executions") as batch_op:
        batch_op.drop_column("attempt_log")
        batch_op.drop_column("breaker")
