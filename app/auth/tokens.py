"""JWT bearer tokens (HS256): claims ``sub``, ``tenant`` and ``role``, audience from settings.

A token is accepted only with an expiry (``exp``) and a lifetime no longer than the server allows
(``EXOPS_JWT_MAX_LIFETIME_MINUTES``): ``exp - iat``, or ``exp - now`` when it has no ``iat``. A
stolen long-lived token is the one a revocation list cannot keep up with, so none is accepted. What
a token carries besides the principal (its ``jti`` and ``iat``) is what a revocation is checked
against (``app/auth/revocations.py``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from app.auth.principal import ROLES, Principal, Role


class TokenError(ValueError):
    pass


@dataclass(frozen=True)
class TokenClaims:
    """A verified token: who it stands for, and what a revocation can name it by."""

    principal: Principal
    token_id: str | None
    issued_at: float | None
    expires_at: float


def issue_token(
    secret: str,
    *,
    subject: str,
    role: Role,
    tenant_id: str | None,
    audience: str,
    ttl_seconds: int = 3600,
    now: int | None = None,
    token_id: str | None = None,
) -> str:
    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "sub": subject,
        "role": role,
        "aud": audience,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": token_id or uuid.uuid4().hex,
    }
    if tenant_id is not None:
        claims["tenant"] = tenant_id
    return jwt.encode(claims, secret, algorithm="HS256")


def read_token(
    token: str, secret: str, audience: str, *, max_lifetime_seconds: float, now: float | None = None
) -> TokenClaims:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=audience,
            options={"require": ["sub", "exp", "role"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid bearer token: {exc}") from None
    role = claims.get("role")
    if role not in ROLES:
        raise TokenError(f"invalid bearer token: unknown role {role!r}")
    tenant = claims.get("tenant")
    if role != "platform_admin" and not isinstance(tenant, str):
        raise TokenError("invalid bearer token: a tenant role needs a 'tenant' claim")
    expires = float(claims["exp"])
    issued = claims.get("iat")
    start = float(issued) if isinstance(issued, int | float) else time.time() if now is None else now
    if expires - start > max_lifetime_seconds:
        raise TokenError(
            f"invalid bearer token: it lives {(expires - start) / 60:.0f} minutes"
            f"{'' if issued is not None else ' from now (no iat)'}; at most "
            f"{max_lifetime_seconds / 60:.0f} are accepted"
        )
    jti = claims.get("jti")
    principal = Principal(
        subject=str(claims["sub"]),
        role=role,
        tenant_id=tenant if role != "platform_admin" else None,
        via="jwt",
    )
    return TokenClaims(
        principal,
        token_id=str(jti) if jti is not None else None,
        issued_at=float(issued) if isinstance(issued, int | float) else None,
        expires_at=expires,
    )
