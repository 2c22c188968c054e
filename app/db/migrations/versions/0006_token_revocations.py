"""bearer tokens can be revoked before they expire

A tenant admin (or the platform admin, for platform tokens) refuses one token by its ``jti`` or
every token of a subject issued until now; the list lives in the database so every server process
honours it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.types import UtcDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "token_revocations",
        sa.Column("revocation_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=True),
        sa.Column("jti", sa.String(length=200), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint("(jti IS NULL) <> (subject IS NULL)", name="ck_token_revocations_one_target"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name="fk_token_revocations_tenant_id_tenants"
        ),
        sa.PrimaryKeyConstraint("revocation_id", name="pk_token_revocations"),
    )
    op.create_index("ix_token_revocations_tenant_id", "token_revocations", ["tenant_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_token_revocations_tenant_id", table_name="token_revocations")
    op.drop_table("token_revocations")
