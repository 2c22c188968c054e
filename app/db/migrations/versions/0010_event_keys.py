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

The playbook row's ``playbook`` now holds the playbook as operators see it (``app.cases.record``:
the chosen one with whether the tenant approved it and where it came from, or an edited plan, or a
takeover), and every case the policy decided has a row. Rows written before are rewritten from what
the tables knew then (the case's result, its approvals): the candidates the policy weighed and its
reasoning were only in the graph's state, so those rows show none.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
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
    _rewrite_playbook_rows()


JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
PLAYBOOKS = sa.table(
    "playbook_states", sa.column("tenant_id", sa.String), sa.column("exception_id", sa.String),
    sa.column("playbook_id", sa.String), sa.column("playbook", JSON), sa.column("steps", JSON),
    sa.column("current_step", sa.Integer), sa.column("selection", JSON), sa.column("updated_at", sa.DateTime),
)  # fmt: skip
CASES = sa.table(
    "exceptions", sa.column("tenant_id", sa.String), sa.column("exception_id", sa.String),
    sa.column("actionability", sa.String), sa.column("result", JSON), sa.column("updated_at", sa.DateTime),
)  # fmt: skip
APPROVALS = sa.table(
    "approvals", sa.column("tenant_id", sa.String), sa.column("exception_id", sa.String),
    sa.column("decision", sa.String), sa.column("decided_by", sa.String), sa.column("decided_at", sa.DateTime),
)  # fmt: skip
BY_HAND: dict[str, Any] = {"id": None, "version": None, "approvedForTenant": False, "appliesTo": [], "match": {}, "priority": None,
           "successCriteria": []}  # fmt: skip


def _header(
    playbook: dict[str, Any] | None,
    steps: list[Any],
    result: dict[str, Any],
    decision: tuple[str, str] | None,
) -> dict[str, Any] | None:
    """The operator's view of an older row's playbook (as ``app.cases.record.playbook_info`` builds it)."""
    if not playbook and not steps:
        return None
    if decision is not None and decision[0] == "takeover":
        instead = f" instead of playbook {playbook['id']}" if playbook else ""
        return {**BY_HAND, "id": "TAKEOVER", "name": "Taken over by a person", "origin": "takeover",
                "description": f"{decision[1]} took the case over and handles it by hand{instead}"}  # fmt: skip
    if not playbook or (decision is not None and decision[0] == "edit"):
        instead = f" in place of playbook {playbook['id']}" if playbook else ""
        who = decision[1] if decision is not None else "a person"
        return {**BY_HAND, "id": "EDITED", "name": "Plan edited at approval", "origin": "edited",
                "description": f"Steps written by {who} when approving{instead}"}  # fmt: skip
    drafted = (result.get("draft") or {}).get("id") == playbook["id"]
    return {
        "id": playbook["id"], "name": playbook["name"], "version": playbook.get("version"),
        "description": playbook.get("description", ""),
        "approvedForTenant": result.get("selectedPlaybookId") == playbook["id"] and not drafted,
        "origin": "llm_draft" if drafted else None, "appliesTo": playbook.get("appliesTo", []),
        "match": playbook.get("match", {}), "priority": playbook.get("priority"),
        "successCriteria": playbook.get("successCriteria", []),
    }  # fmt: skip


def _selection(actionability: str | None, result: dict[str, Any]) -> dict[str, Any]:
    return {"actionability": actionability, "selectedPlaybookId": result.get("selectedPlaybookId"),
            "recommendedPlaybookId": result.get("recommendedPlaybookId"), "reasoning": None, "candidates": []}  # fmt: skip


def _rewrite_playbook_rows() -> None:
    bind = op.get_bind()
    decisions: dict[tuple[str, str], tuple[str, str]] = {}
    for found in bind.execute(
        sa.select(
            APPROVALS.c.tenant_id, APPROVALS.c.exception_id, APPROVALS.c.decision, APPROVALS.c.decided_by
        )
        .where(APPROVALS.c.decision.in_(("takeover", "edit")))
        .order_by(APPROVALS.c.decided_at)
    ):
        decisions[(found.tenant_id, found.exception_id)] = (found.decision, found.decided_by or "a person")
    rows = bind.execute(
        sa.select(CASES.c.tenant_id, CASES.c.exception_id, CASES.c.actionability, CASES.c.result,
                  CASES.c.updated_at, PLAYBOOKS.c.playbook, PLAYBOOKS.c.steps, PLAYBOOKS.c.tenant_id.label("has_row"))
        .select_from(CASES.outerjoin(PLAYBOOKS, sa.and_(PLAYBOOKS.c.tenant_id == CASES.c.tenant_id,
                                                        PLAYBOOKS.c.exception_id == CASES.c.exception_id)))
        .where(CASES.c.actionability.is_not(None))
    ).all()  # fmt: skip
    for row in rows:
        key = {"tenant_id": row.tenant_id, "exception_id": row.exception_id}
        playbook, steps, result = row.playbook, row.steps or [], row.result or {}
        if row.has_row is None:
            bind.execute(sa.insert(PLAYBOOKS).values(**key, playbook_id=None, playbook=None, steps=[], current_step=None,
                                                     selection=_selection(row.actionability, result),
                                                     updated_at=row.updated_at))  # fmt: skip
            continue
        if isinstance(playbook, dict) and "origin" in playbook and "approvedForTenant" in playbook:
            continue  # already in the new form
        header = _header(playbook, steps, result, decisions.get((row.tenant_id, row.exception_id)))
        bind.execute(
            sa.update(PLAYBOOKS)
            .where(PLAYBOOKS.c.tenant_id == row.tenant_id, PLAYBOOKS.c.exception_id == row.exception_id)
            .values(playbook=header, selection=_selection(row.actionability, result))
        )


def downgrade() -> None:
    with op.batch_alter_table("playbook_states") as batch_op:
        batch_op.drop_column("selection")
    with op.batch_alter_table("exception_events") as batch_op:
        batch_op.create_index("ix_exception_events_type", ["type"], unique=False)
        batch_op.create_index("ix_events_case", ["tenant_id", "exception_id", "seq"], unique=False)
        batch_op.drop_index("uq_exception_events_key")
        batch_op.drop_column("event_key")
