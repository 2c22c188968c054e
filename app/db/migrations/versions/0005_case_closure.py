"""case statuses up to 32 characters; approvals keep a rejection's reason

``CLOSED_WITHOUT_ACTION`` (a case whose remaining steps people skipped, with nothing done) is 21
characters, one more than the 20 the case status column held. The exceptions table is the only one
storing a resolution status (approvals and tool executions store their own, shorter statuses; plans
and results are JSON). A rejection now needs a reason, kept beside the approval's comment.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("exceptions") as batch_op:
        batch_op.alter_column(
            "status", existing_type=sa.String(length=20), type_=sa.String(length=32), existing_nullable=False
        )
    with op.batch_alter_table("approvals") as batch_op:
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))


def downgrade() -> None:
    """Back to 20 characters: cases closed without action become REJECTED first, the older status
    closest to "a person chose not to act" (never RESOLVED: nothing was done; the audit trail still
    says what happened)."""
    op.execute("UPDATE exceptions SET status = 'REJECTED' WHERE status = 'CLOSED_WITHOUT_ACTION'")
    with op.batch_alter_table("approvals") as batch_op:
        batch_op.drop_column("reason")
    with op.batch_alter_table("exceptions") as batch_op:
        batch_op.alter_column(
            "status", existing_type=sa.String(length=32), type_=sa.String(length=20), existing_nullable=False
        )
