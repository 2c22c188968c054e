"""approvals keyed by tenant

Approval ids are derived from exception ids, which tenants choose; two tenants may use the same
exception id, so an approval is identified by (tenant_id, approval_id).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("approvals", recreate="always") as batch_op:
        batch_op.drop_constraint("pk_approvals", type_="primary")
        batch_op.create_primary_key("pk_approvals", ["tenant_id", "approval_id"])


def downgrade() -> None:
    with op.batch_alter_table("approvals", recreate="always") as batch_op:
        batch_op.drop_constraint("pk_approvals", type_="primary")
        batch_op.create_primary_key("pk_approvals", ["approval_id"])
