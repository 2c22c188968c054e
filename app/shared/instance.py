"""Secrets the installation generates once and every process shares.

The UI signs its session and message cookies with a key. Set ``EXOPS_UI_SESSION_SECRET`` and that
is the key; otherwise the first process to start generates one (256 random bits) and stores it in
``instance_secrets``, and every process, now and after restarts, reads the same one. So a UI session
made through one API process is accepted by another, and survives a restart. Two processes starting
together both try to insert theirs; the insert that comes second does nothing and both read the one
stored. Whoever can read that table can sign sessions: set the variable to keep the key out of it.
"""

from __future__ import annotations

import secrets

from pydantic import SecretStr

from app.db.models import InstanceSecret
from app.db.session import Database

UI_SESSION = "ui-session"


async def instance_secret(db: Database, name: str) -> str:
    """The secret ``name``, generated and stored by the first process to ask."""
    async with db.session() as session:
        await session.execute(
            db.insert_new_only(InstanceSecret).values(name=name, value=secrets.token_urlsafe(32))
        )
    async with db.session() as session:
        row = await session.get(InstanceSecret, name)
    assert row is not None
    return row.value


async def ui_session_secret(db: Database, configured: SecretStr | None) -> bytes:
    """The key of the UI's cookies: the configured one, else the installation's."""
    if configured is not None:
        return configured.get_secret_value().encode()
    return (await instance_secret(db, UI_SESSION)).encode()
