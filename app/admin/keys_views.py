"""Routes for a tenant's API keys: its admin creates, lists and revokes them.

The plaintext of a key is in the creation response only; the database keeps a hash, and no listing
ever shows either. A revoked key answers 401 from its next request on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from app.admin.accounts import issue_key, list_keys, revoke_key
from app.api.deps import ServicesDep, TenantAdmin
from app.api.problems import ProblemError, responses
from app.db.models import ApiKey

router = APIRouter(prefix="/admin", tags=["admin: keys"])


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["viewer", "operator", "admin"]
    name: str = Field(min_length=1, max_length=200, description="What the key is for, e.g. murex-feed")


class IssuedKeyView(BaseModel):
    keyId: str
    role: str
    name: str
    key: str = Field(description="The key itself: shown this once, never again")


class KeyView(BaseModel):
    keyId: str
    role: str
    name: str
    createdAt: datetime
    createdBy: str
    revokedAt: datetime | None
    lastUsedAt: datetime | None


class KeyList(BaseModel):
    items: list[KeyView]


def view(row: ApiKey) -> KeyView:
    return KeyView(keyId=row.key_id, role=row.role, name=row.name, createdAt=row.created_at,
                   createdBy=row.created_by, revokedAt=row.revoked_at, lastUsedAt=row.last_used_at)  # fmt: skip


@router.post("/{tenantId}/keys", status_code=status.HTTP_201_CREATED, response_model=IssuedKeyView,
             responses=responses(401, 403, 404, 422, 429))  # fmt: skip
async def create_key(
    tenantId: str, body: KeyRequest, principal: TenantAdmin, services: ServicesDep
) -> IssuedKeyView:
    """A new key for this tenant; copy it now, it cannot be shown again."""
    async with services.db.session() as session:
        issued = await issue_key(
            session, tenant_id=tenantId, role=body.role, name=body.name, created_by=principal.actor
        )
    return IssuedKeyView(keyId=issued.key_id, role=issued.role, name=issued.name, key=issued.plaintext)


@router.get("/{tenantId}/keys", response_model=KeyList, responses=responses(401, 403, 404, 429))
async def get_keys(tenantId: str, principal: TenantAdmin, services: ServicesDep) -> KeyList:
    """Every key of the tenant, revoked ones included; never a secret or its hash."""
    async with services.db.session() as session:
        return KeyList(items=[view(row) for row in await list_keys(session, tenantId)])


@router.delete("/{tenantId}/keys/{keyId}", response_model=KeyView, responses=responses(401, 403, 404, 429))
async def delete_key(tenantId: str, keyId: str, principal: TenantAdmin, services: ServicesDep) -> KeyView:
    """Revoke a key (kept for the record); revoking twice changes nothing."""
    async with services.db.session() as session:
        row = await revoke_key(session, tenantId, keyId)
        if row is None:
            raise ProblemError(404, f"no key {keyId}")
    services.access.forget_key(keyId)
    return view(row)
