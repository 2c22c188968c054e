"""The UI's sign-in session: a signed, httpOnly cookie that names the principal, never the key.

Signing in with an API key (or a JWT) checks it once, then the cookie carries who the person is
(subject, role, tenant, the key id), when the session ends, and a CSRF token that every form must
echo. The cookie is an HMAC-signed JSON document: it cannot be forged or edited without the secret
(``EXOPS_UI_SESSION_SECRET``; without one, a key generated once and kept in the database, so every
server process accepts the cookie and a restart keeps it: ``app/shared/instance.py``).
A session made from an API key ends as soon as the key is revoked, one made from a JWT as soon as
the token or its subject is revoked (both checked on every request).
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import asdict, dataclass

from app.auth.principal import Principal, Role
from app.ui.signed import seal, unseal

COOKIE = "exops_session"


@dataclass(frozen=True)
class UiSession:
    subject: str
    role: Role
    tenant_id: str | None
    key_id: str | None
    via: str
    expires: float
    csrf: str
    token_id: str | None = None
    """A session made from a JWT: the token's ``jti`` and ``iat``, so that revoking the token (or its
    subject) ends the session too."""
    token_issued: float | None = None

    @property
    def principal(self) -> Principal:
        return Principal(subject=self.subject, role=self.role, tenant_id=self.tenant_id, via="session")


def new_session(
    principal: Principal,
    *,
    key_id: str | None,
    hours: float,
    until: float | None = None,
    now: float | None = None,
    token_id: str | None = None,
    token_issued: float | None = None,
) -> UiSession:
    """A session of ``hours``, never outliving ``until`` (a token's own expiry)."""
    issued = time.time() if now is None else now
    expires = min(issued + hours * 3600, until) if until is not None else issued + hours * 3600
    return UiSession(subject=principal.subject, role=principal.role, tenant_id=principal.tenant_id, key_id=key_id,
                     via=principal.via, expires=expires, csrf=secrets.token_urlsafe(24), token_id=token_id,
                     token_issued=token_issued)  # fmt: skip


_LABEL = b"exops-session\x00"


def encode(session: UiSession, secret: bytes) -> str:
    return seal(asdict(session), secret, _LABEL)


def decode(value: str | None, secret: bytes, *, now: float | None = None) -> UiSession | None:
    """The session in ``value`` when its signature holds and it has not expired, else None."""
    data = unseal(value, secret, _LABEL)
    if not isinstance(data, dict):
        return None
    try:
        session = UiSession(**data)
    except TypeError:
        return None
    if session.expires <= (time.time() if now is None else now):
        return None
    return session


def csrf_matches(session: UiSession, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf, presented or "")
