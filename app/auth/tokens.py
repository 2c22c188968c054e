"""JWT bearer tokens (HS256): claims ``sub``, ``tenant`` and ``role``, audience from settings."""

from __future__ import annotations

import time
from typing import Any

import jwt

from app.auth.principal import ROLES, Principal, Role


class TokenError(ValueError):
    pass


def issue_token(
    secret: str, *, subject: str, role: Role, tenant_id: str | None, audience: str, ttl_seconds: int = 3600
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "role": role,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if tenant_id is not None:
        claims["tenant"] = tenant_id
    return jwt.encode(claims, secret, algorithm="HS256")


def read_token(token: str, secret: str, audience: str) -> Principal:
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
    return Principal(
        subject=str(claims["sub"]),
        role=role,
        tenant_id=tenant if role != "platform_admin" else None,
        via="jwt",
    )
