"""Bearer tokens refused before they expire, kept in the database so every server process honours
them.

A revocation names one token by its ``jti``, or a subject: then every token of that subject issued
(``iat``) up to the revocation is refused, and so is any of its tokens without ``iat``, while tokens
the issuer hands out afterwards are accepted again (a sign-out everywhere; to shut a person out for
good, their issuer stops issuing). A revocation holds within one scope: a tenant (for tokens whose
``tenant`` claim is that tenant) or the platform (platform-admin tokens, which have no tenant), so a
tenant admin can never refuse another tenant's tokens.

Each request with a token needs its scope's list. It is read in one query and remembered by the
process for a few seconds (``AccessCache``, like verified keys); a revocation made through this
process is applied at once, other processes sharing the database apply it within that time.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.tokens import TokenClaims
from app.db.models import TokenRevocation
from app.db.types import utc_now


@dataclass(frozen=True)
class Revoked:
    """One scope's revocations: token ids, and for each subject the latest revocation time."""

    token_ids: frozenset[str]
    subjects: dict[str, float]

    def refuses(self, claims: TokenClaims) -> bool:
        if claims.token_id is not None and claims.token_id in self.token_ids:
            return True
        until = self.subjects.get(claims.principal.subject)
        return until is not None and (claims.issued_at is None or claims.issued_at <= until)


def scope_of(claims: TokenClaims) -> str | None:
    return claims.principal.tenant_id


async def load(session: AsyncSession, tenant_id: str | None) -> Revoked:
    rows = await session.execute(
        select(TokenRevocation.jti, TokenRevocation.subject, TokenRevocation.revoked_at).where(
            TokenRevocation.tenant_id.is_(None)
            if tenant_id is None
            else TokenRevocation.tenant_id == tenant_id
        )
    )
    token_ids: set[str] = set()
    subjects: dict[str, float] = {}
    for jti, subject, revoked_at in rows.all():
        if jti is not None:
            token_ids.add(jti)
        if subject is not None:
            subjects[subject] = max(subjects.get(subject, 0.0), revoked_at.timestamp())
    return Revoked(frozenset(token_ids), subjects)


async def revoke(
    session: AsyncSession,
    tenant_id: str | None,
    *,
    jti: str | None,
    subject: str | None,
    reason: str | None,
    actor: str,
) -> TokenRevocation:
    """Record a revocation of one token (``jti``) or of a subject's tokens issued until now."""
    if (jti is None) == (subject is None):
        raise ValueError("a revocation names a jti or a subject, not both")
    row = TokenRevocation(revocation_id=f"rev_{secrets.token_hex(8)}", tenant_id=tenant_id, jti=jti,
                          subject=subject, reason=reason, revoked_by=actor, revoked_at=utc_now())  # fmt: skip
    session.add(row)
    await session.flush()
    return row


async def list_revocations(session: AsyncSession, tenant_id: str | None) -> list[TokenRevocation]:
    rows = await session.execute(
        select(TokenRevocation)
        .where(
            TokenRevocation.tenant_id.is_(None)
            if tenant_id is None
            else TokenRevocation.tenant_id == tenant_id
        )
        .order_by(TokenRevocation.revoked_at, TokenRevocation.revocation_id)
    )
    return list(rows.scalars().all())
