"""Tenants and API keys: creating them (CLI and API), listing, revoking."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import new_key
from app.auth.principal import Role
from app.db.models import ApiKey, Tenant
from app.db.types import utc_now
from packs.common import TENANT_ID_RULE, valid_tenant_id

TENANT_ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    tenant_id: str | None
    role: Role
    name: str
    plaintext: str


RESERVED_TENANT_IDS = frozenset({"tenants", "domain-packs", "token-revocations"})
"""Path segments of /admin/... that a tenant id would collide with (refused in any case)."""


class InvalidTenantId(ValueError):
    """The id breaks the tenant id rule or is a reserved word."""


class TenantIdConflict(ValueError):
    """Another tenant already has this id written with different case."""

    def __init__(self, tenant_id: str, existing: str | None) -> None:
        first = (
            f"tenant {existing} already exists and {tenant_id} differs from it only in case"
            if existing is not None
            else f"a tenant with the id {tenant_id}, or one differing from it only in case, was just created"
        )
        super().__init__(
            f"{first}: tenant ids are kept as written, and two ids that differ only in case are refused"
        )
        self.existing = existing


def check_tenant_id(tenant_id: str) -> None:
    """Raise InvalidTenantId when ``tenant_id`` cannot be a tenant id (the rule, or a reserved word)."""
    if not valid_tenant_id(tenant_id):
        raise InvalidTenantId(f"invalid tenant id {tenant_id!r}: {TENANT_ID_RULE}")
    if tenant_id.lower() in RESERVED_TENANT_IDS:
        raise InvalidTenantId(f"{tenant_id!r} is reserved and cannot be a tenant id")


async def ensure_tenant(session: AsyncSession, tenant_id: str, name: str) -> tuple[Tenant, bool]:
    """The tenant with exactly this id, created when absent; ``(tenant, created)``.

    Raises InvalidTenantId, or TenantIdConflict when a tenant's id differs from this one only in case."""
    check_tenant_id(tenant_id)
    tenant = await session.get(Tenant, tenant_id)
    if tenant is not None:
        return tenant, False
    twin = (
        await session.execute(
            select(Tenant.tenant_id).where(func.lower(Tenant.tenant_id) == tenant_id.lower()).limit(1)
        )
    ).scalar_one_or_none()
    if twin is not None:
        raise TenantIdConflict(tenant_id, twin)
    tenant = Tenant(tenant_id=tenant_id, name=name)
    session.add(tenant)
    try:
        await session.flush()
    except IntegrityError:  # created at the same moment by another request
        raise TenantIdConflict(tenant_id, None) from None
    return tenant, True


async def issue_key(
    session: AsyncSession, *, tenant_id: str | None, role: Role, name: str = "", created_by: str = "system"
) -> IssuedKey:
    """A new key; the plaintext is returned once and only its hash is stored."""
    if tenant_id is None and role != "platform_admin":
        raise ValueError("a key without a tenant must be a platform_admin key")
    if tenant_id is not None and role not in TENANT_ROLES:
        raise ValueError(f"a tenant key's role is one of {', '.join(TENANT_ROLES)}")
    if tenant_id is not None and await session.get(Tenant, tenant_id) is None:
        raise LookupError(f"no tenant {tenant_id}")
    key = new_key()
    session.add(ApiKey(key_id=key.key_id, tenant_id=tenant_id, role=role, name=name, secret_hash=key.secret_hash,
                       created_by=created_by))  # fmt: skip
    await session.flush()
    return IssuedKey(key.key_id, tenant_id, role, name, key.plaintext)


async def revoke_key(session: AsyncSession, tenant_id: str | None, key_id: str) -> ApiKey | None:
    row = await session.get(ApiKey, key_id)
    if row is None or row.tenant_id != tenant_id:
        return None
    if row.revoked_at is None:
        row.revoked_at = utc_now()
    return row


async def list_keys(session: AsyncSession, tenant_id: str | None) -> list[ApiKey]:
    rows = await session.execute(
        select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at)
    )
    return list(rows.scalars().all())
