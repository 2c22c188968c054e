"""Running the Alembic migrations from code (``exops db upgrade``, no alembic.ini needed), under a lock.

Several processes may start against one database at once (API servers, workers, a deploy step running
``exops db upgrade``), and two Alembic runs on a fresh database would both create the same tables.
So every upgrade first takes one lock, on the connection that then migrates:

* PostgreSQL: the advisory lock ``MIGRATION_LOCK`` (``pg_try_advisory_lock``, asked again every
  0.1 s), held until the upgrade is committed (released with the connection too, should the process
  die);
* SQLite: ``BEGIN EXCLUSIVE``, the migration running inside that one transaction.

Inside the lock the current revision is read again, so exactly one process migrates and the others,
once they get the lock, find the schema at head and change nothing. On PostgreSQL the graph's
checkpoint tables (LangGraph's own migrations, run by its ``setup()``) are brought up to date in the
same turn: run by several processes at once on a fresh database, ``setup()`` collides with itself
(its ``CREATE TABLE IF NOT EXISTS`` is not safe against a concurrent one), and once it has run under
the lock, the ``setup()`` each process's checkpointer calls at start-up has nothing left to create.
(The SQLite checkpoint file needs none of this: SQLite creates a table under its write lock.)

The server's start-up takes the same path (or, with ``EXOPS_MIGRATE_ON_START=false``, only checks
the schema is at head), so it never reads a schema another process is halfway through changing. ``migration_lock`` is public for other
schema work that must take the same turn (a job queue's own schema).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app.db.session import is_sqlite, sync_url

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x6578_6F70_735F_6462  # "exops_db": the advisory lock key on PostgreSQL
LOCK_POLL_SECONDS = 0.1
"""How often a process waiting for another's migration on PostgreSQL asks for the lock again."""
SQLITE_WAIT_SECONDS = 600.0
"""How long a process waits for another's migration of a SQLite file before giving up."""


OTHER_OWNERS = ("checkpoint", "procrastinate")
"""Prefixes of tables that live in the same PostgreSQL database but are not the models' (LangGraph's
checkpoints, a job queue's): Alembic's comparisons leave them alone."""


def ours(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: compare only the tables the models describe."""
    return type_ != "table" or name is None or not name.startswith(OTHER_OWNERS)


class SchemaNotCurrent(RuntimeError):
    """The database is not at the latest revision and this process was told not to migrate it."""


@dataclass(frozen=True)
class UpgradeResult:
    before: str | None
    after: str | None

    @property
    def migrated(self) -> bool:
        return self.before != self.after


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def shown_url(url: str) -> str:
    """The URL for messages: without its password."""
    return make_url(url).render_as_string(hide_password=True)


def _prepare_sqlite_folder(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _advisory_lock(connection: Connection) -> None:
    """Take the PostgreSQL lock by asking again and again, idle in between, rather than waiting in
    ``pg_advisory_lock``: a session blocked in a statement holds a snapshot, and LangGraph's
    checkpoint migrations build indexes ``CONCURRENTLY``, which wait for every older snapshot; the
    holder of the lock would wait for its waiters."""
    while True:
        taken = connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": MIGRATION_LOCK}
        ).scalar()
        connection.commit()
        if taken:
            return
        time.sleep(LOCK_POLL_SECONDS)


@contextmanager
def migration_lock(url: str) -> Iterator[Connection]:
    """A connection holding the migration lock, in a transaction committed on the way out."""
    sqlite = is_sqlite(url)
    if sqlite:
        _prepare_sqlite_folder(url)
    connect_args = {"timeout": SQLITE_WAIT_SECONDS} if sqlite else {}
    engine = create_engine(sync_url(url), poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            if sqlite:
                connection.exec_driver_sql("BEGIN EXCLUSIVE")
            else:
                _advisory_lock(connection)
            try:
                yield connection
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
            finally:
                if not sqlite and not connection.invalidated:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                    connection.commit()
    finally:
        engine.dispose()


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def checkpoint_url(url: str) -> str:
    """The plain ``postgresql://`` URL LangGraph's PostgreSQL checkpointer takes for ``url``."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _setup_checkpoints(url: str) -> None:
    from langgraph.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(checkpoint_url(url)) as saver:
        saver.setup()


def _checkpoints_current(url: str) -> bool:
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver

    with psycopg.connect(checkpoint_url(url), autocommit=True) as connection:
        try:
            row = connection.execute("SELECT max(v) FROM checkpoint_migrations").fetchone()
        except psycopg.errors.UndefinedTable:
            return False
    return row is not None and row[0] == len(PostgresSaver.MIGRATIONS) - 1


def upgrade(url: str, revision: str = "head") -> UpgradeResult:
    """Bring the database at ``url`` to ``revision`` under the migration lock (creating a SQLite
    file's folder first; on PostgreSQL, the checkpoint tables too); says from which revision to which."""
    with migration_lock(url) as connection:
        before = _current(connection)
        if revision != "head" or before != head_revision():
            config = alembic_config(url)
            config.attributes["connection"] = connection  # env.py migrates on it, inside the lock
            command.upgrade(config, revision)
        after = _current(connection)
        if not is_sqlite(url):
            connection.commit()  # the tables are in; the lock (a session's) is still held
            _setup_checkpoints(url)
    return UpgradeResult(before, after)


def current_revision(url: str) -> str | None:
    if is_sqlite(url):
        _prepare_sqlite_folder(url)
    engine = create_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return _current(connection)
    finally:
        engine.dispose()


def ensure_schema(url: str, *, migrate: bool) -> UpgradeResult:
    """What the server does at start-up: upgrade under the lock, or only check the schema is current."""
    if migrate:
        return upgrade(url)
    current, head = current_revision(url), head_revision()
    if current != head:
        raise SchemaNotCurrent(
            f"the database at {shown_url(url)} is at revision {current or '(empty)'}, not {head}: "
            "run exops db upgrade (EXOPS_MIGRATE_ON_START is false)"
        )
    if not is_sqlite(url) and not _checkpoints_current(url):
        raise SchemaNotCurrent(
            f"the checkpoint tables of the database at {shown_url(url)} are not up to date: "
            "run exops db upgrade (EXOPS_MIGRATE_ON_START is false)"
        )
    return UpgradeResult(current, current)
