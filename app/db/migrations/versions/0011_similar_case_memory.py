"""similar-case memory: the queue of finished cases to remember, and the embedding cache

``memory_queue`` holds a row per finished case not yet remembered: written by the projection in the
transaction that records the case as finished, deleted by the indexer once the case's vector is in
the tenant's chroma collection, so a crash between the two loses nothing (``app/memory``).
``embedding_cache`` keeps each embedding by tenant, model and text hash, so re-indexing, rebuilds and
re-runs embed a text once. Cases finished before this revision are remembered by
``exops memory rebuild``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.types import UtcDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "memory_queue",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("exception_id", sa.String(length=128), nullable=False),
        sa.Column("queued_at", UtcDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "exception_id", name="pk_memory_queue"),
    )
    op.create_table(
        "embedding_cache",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "model", "text_hash", name="pk_embedding_cache"),
    )


def downgrade() -> None:
    op.drop_table("embedding_cache")
    op.drop_table("memory_queue")
