"""Alembic environment: the URL (or a connection holding the migration lock) comes from the config
``app/db/migrate.py`` builds."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from app.db.migrate import ours
from app.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        include_name=ours,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    shared = config.attributes.get("connection")
    if shared is not None:  # app/db/migrate.py: a connection holding the migration lock, in its transaction
        context.configure(
            connection=shared, target_metadata=target_metadata, render_as_batch=True, include_name=ours
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connectable = engine_from_config(
        config.get_section(config.config_ini_section) or {}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with connectable.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True, include_name=ours
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
