"""tenant ids are kept as users wrote them, and no two differ only in case

Tenant ids may now be written in upper case (``TENANT_FINANCE_001``, as the earlier system's users
have them). A unique index on the lower-cased id keeps ``ACME`` and ``acme`` from ever being two
tenants, even when both are created at the same moment.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("uq_tenants_id_folded", "tenants", [sa.text("lower(tenant_id)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_tenants_id_folded", table_name="tenants")
