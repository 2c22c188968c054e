"""events keyed by where the graph recorded them; the playbook row keeps the policy's selection

``exception_events.event_key`` is the key the graph gives each audit event (``stage:visit:n``,
``graph.events``), unique within the case: the event sink inserts with ``ON CONFLICT DO NOTHING``
on it, so a node run again on resume records nothing twice. Events written before this revision
keep a NULL key (NULLs never conflict). The unique index on (tenant, exception, key) is also how a
case's events are found, so the older per-case index on seq goes, and so does the index on the
event type, which no query used (events are always read within one case): together they were a
sixth of a finished case's bytes. ``playbook_states.selection`` is the policy's playbook choice
(actionability, the playbooks considered, why), which operators read from the tables once a
finished case's checkpoints are gone.

Numbered 0010 with down_revision 0007 for now: parallel work adds 0008 and 0009, and the chain is
put in order when they are merged.

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("exception_events") as batch_op:
        batch_op.add_column(sa.Column("event_key", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "uq_exception_events_key", ["tenant_id", "exception_id", "event_key"], unique=True
        )
        batch_op.drop_index("ix_events_case")
        batch_op.drop_index("ix_exception_events_type")
    with op.batch_alter_table("playbook_states") as batch_op:
        batch_op.add_column(
            sa.Column(
                "selection",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("playbook_states") as batch_op:
        batch_op.drop_column("selection")
    with op.batch_alter_table("exception_events") as batch_op:
        batch_op.create_index("ix_exception_events_type", ["type"], unique=False)
        batch_op.create_index("ix_events_case", ["tenant_id", "exception_id", "seq"], unique=False)
        batch_op.drop_index("uq_exception_events_key")
        batch_op.drop_column("event_key")
