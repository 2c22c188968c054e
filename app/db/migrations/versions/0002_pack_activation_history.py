"""pack activation history

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.types import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pack_activations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("activated_at", UtcDateTime(), nullable=False),
        sa.Column("activated_by", sa.String(length=200), nullable=False),
        sa.Column("undone_at", UtcDateTime(), nullable=True),
        sa.Column("undone_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pack_activations")),
    )
    with op.batch_alter_table("pack_activations", schema=None) as batch_op:
        batch_op.create_index("ix_pack_activations_pack", ["kind", "name", "id"], unique=False)
    # Versions active before history was kept become its first entries.
    op.execute(
        "INSERT INTO pack_activations (kind, name, version, activated_at, activated_by) "
        "SELECT kind, name, version, COALESCE(activated_at, created_at), 'migration' FROM pack_versions WHERE active"
    )


def downgrade() -> None:
    with op.batch_alter_table("pack_activations", schema=None) as batch_op:
        batch_op.drop_index("ix_pack_activations_pack")

    op.drop_table("pack_activations")
