"""Routes for revoking bearer tokens before they expire: a tenant admin for the tenant's tokens, the
platform admin for platform-admin tokens (``app/auth/revocations.py`` says what a revocation refuses).

A revocation names one token (``{"jti": ...}``) or a subject (``{"subject": ...}``: every token of
that subject issued until now). It is kept for the record with who revoked and when; this process
applies it at once, other processes sharing the database within a few seconds.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import PlatformAdmin, Services, ServicesDep, TenantAdmin
from app.auth import revocations
from app.db.models import TokenRevocation

router = APIRouter(prefix="/admin", tags=["admin: tokens"])
Reason = Field(default=None, max_length=500, description="Why, for the record")


class RevokeToken(BaseModel):
    """Refuse one token: the ``jti`` claim it carries."""

    model_config = ConfigDict(extra="forbid")

    jti: str = Field(min_length=1, max_length=200)
    reason: str | None = Reason


class RevokeSubject(BaseModel):
    """Refuse every token of a subject (its ``sub`` claim) issued until now, and any without ``iat``."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=200)
    reason: str | None = Reason


class RevocationView(BaseModel):
    revocationId: str
    tenantId: str | None = Field(description="None: platform-admin tokens")
    jti: str | None
    subject: str | None
    reason: str | None
    revokedAt: datetime = Field(description="A subject's tokens issued (iat) until then are refused")
    revokedBy: str


class RevocationList(BaseModel):
    items: list[RevocationView]


def view(row: TokenRevocation) -> RevocationView:
    return RevocationView(revocationId=row.revocation_id, tenantId=row.tenant_id, jti=row.jti, subject=row.subject,
                          reason=row.reason, revokedAt=row.revoked_at, revokedBy=row.revoked_by)  # fmt: skip


async def _revoke(
    services: Services, tenant_id: str | None, body: RevokeToken | RevokeSubject, actor: str
) -> RevocationView:
    jti = body.jti if isinstance(body, RevokeToken) else None
    subject = body.subject if isinstance(body, RevokeSubject) else None
    async with services.db.session() as session:
        row = await revocations.revoke(
            session, tenant_id, jti=jti, subject=subject, reason=body.reason, actor=actor
        )
        shown = view(row)
    services.access.forget_revoked(tenant_id)
    return shown


async def _list(services: Services, tenant_id: str | None) -> RevocationList:
    async with services.db.session() as session:
        return RevocationList(items=[view(r) for r in await revocations.list_revocations(session, tenant_id)])


@router.post("/token-revocations", status_code=status.HTTP_201_CREATED, response_model=RevocationView)
async def revoke_platform_token(
    body: RevokeToken | RevokeSubject, principal: PlatformAdmin, services: ServicesDep
) -> RevocationView:
    """Refuse a platform-admin token (by jti) or a platform admin's tokens (by subject) from now on."""
    return await _revoke(services, None, body, principal.actor)


@router.get("/token-revocations", response_model=RevocationList)
async def list_platform_revocations(principal: PlatformAdmin, services: ServicesDep) -> RevocationList:
    """Every revocation of platform-admin tokens, oldest first, with who revoked and when."""
    return await _list(services, None)


@router.post(
    "/{tenantId}/token-revocations", status_code=status.HTTP_201_CREATED, response_model=RevocationView
)
async def revoke_tenant_token(
    tenantId: str, body: RevokeToken | RevokeSubject, principal: TenantAdmin, services: ServicesDep
) -> RevocationView:
    """Refuse one of the tenant's tokens (by jti) or a subject's tokens for this tenant (by subject)."""
    return await _revoke(services, tenantId, body, principal.actor)


@router.get("/{tenantId}/token-revocations", response_model=RevocationList)
async def list_tenant_revocations(
    tenantId: str, principal: TenantAdmin, services: ServicesDep
) -> RevocationList:
    """Every revocation of the tenant's tokens, oldest first, with who revoked and when."""
    return await _list(services, tenantId)
