"""State every exops process shares through the database, and how fresh each process's copy is.

An installation can run several API processes and workers on one PostgreSQL database (or a few
processes on one SQLite file). What used to live in one process's memory lives in the database, and
each process keeps a local copy where reading the database on every request or tool call would cost
too much:

| state | stored in | a process sees another's change | module |
|---|---|---|---|
| active pack versions, tool switches | ``pack_versions``, ``tenant_tool_settings`` | at its next poll (every ``EXOPS_SHARED_POLL_SECONDS``, 0.5 s), then reloads its ``PackStore`` | ``changes`` |
| circuit breakers | ``tool_breakers`` (only those not closed) | published within a moment of the change, applied at the next poll | ``breakers`` |
| rate-limit budget | ``rate_buckets`` | always: tokens are taken from the shared bucket in leases of at most a second's refill, each lease used for at most ``LEASE_SECONDS`` (1 s) | ``buckets`` |
| UI session secret | ``instance_secrets`` (unless ``EXOPS_UI_SESSION_SECRET`` is set) | generated once, read at start | ``instance`` |
| schema | Alembic's version table | migrations run under one lock (``app/db/migrate.py``) | — |

So with the default poll a change made through one process is in force in every other within a
second: the poll interval plus the time to apply it (reloading the packs takes tens of milliseconds).
The process that made the change applies it at once. The poll itself is one small SELECT of a few
rows (``shared_generations``), and a process reloads only the kind of state whose generation moved.
"""
