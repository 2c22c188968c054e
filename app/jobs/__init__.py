"""Durable jobs for case work: one interface (``base.JobQueue``), two backends.

* SQLite (the embedded default): ``table.TableJobQueue``, jobs as rows of ``case_jobs`` run by
  workers in-process (``exops serve``/``start``) or in ``exops worker`` processes on the same file.
* PostgreSQL: ``pg.ProcrastinateJobQueue``, on procrastinate (LISTEN/NOTIFY, a lock per case,
  retries, worker heartbeats, periodic tasks), for N API processes and M ``exops worker`` processes.

People's answers are claims with a lease (``claims``); the job status route is ``views``.
"""

from __future__ import annotations

from app.db.session import Database, is_sqlite
from app.jobs.base import JobQueue
from app.settings import Settings


def open_job_queue(settings: Settings, db: Database) -> JobQueue:
    """The job queue for the configured database (call ``close`` when done)."""
    if is_sqlite(settings.db_url):
        from app.jobs.table import TableJobQueue

        return TableJobQueue(db, settings)
    from app.jobs.pg import ProcrastinateJobQueue

    return ProcrastinateJobQueue(db, settings)
