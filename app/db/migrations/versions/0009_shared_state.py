"""state every process shares: generations, circuit breakers, rate-limit buckets, instance secrets

Several server and worker processes now run against one database, so what each kept in memory
moves here: a generation counter per kind of locally cached state (pack versions and tool switches,
breakers), the breakers that are not closed, the rate-limit buckets, and secrets generated once for
the installation (the UI session key). ``app/shared/`` reads and writes them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.types import UtcDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shared_generations",
        sa.Column("topic", sa.String(length=40), nullable=False),
        sa.Column("generation", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("topic", name="pk_shared_generations"),
    )
    op.create_table(
        "tool_breakers",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.Float(), nullable=True),
        sa.Column("trial_until", sa.Float(), nullable=True),
        sa.Column("trial_owner", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_tool_breakers"),
    )
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("granted", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rate_buckets"),
    )
    op.create_table(
        "instance_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_instance_secrets"),
    )


def downgrade() -> None:
    op.drop_table("instance_secrets")
    op.drop_table("rate_buckets")
    op.drop_table("tool_breakers")
    op.drop_table("shared_generations")
