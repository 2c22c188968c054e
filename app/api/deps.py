"""Every dependency a route can ask for, in one place: services, the caller, role and tenant checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, Path, Request

from app.api.limits import RateLimiter, retry_after
from app.api.problems import ProblemError, raises
from app.auth import revocations
from app.auth.access import AccessCache, KnownKey
from app.auth.keys import secret_matches, split_key
from app.auth.principal import Principal, Role
from app.auth.tokens import TokenClaims, TokenError, read_token
from app.cases.service import CaseService
from app.db.models import ApiKey, Tenant
from app.db.session import Database
from app.db.types import utc_now
from app.packstore import PackStore
from app.runtime import Runtime
from app.settings import Settings
from app.shared.changes import SharedState
from graph.runner import CaseRunner
from packs.common import TENANT_ID_PATTERN


@dataclass
class Services:
    settings: Settings
    db: Database
    store: PackStore
    runtime: Runtime
    runner: CaseRunner
    cases: CaseService
    limiter: RateLimiter
    ui_secret: bytes
    """Signs UI session and message cookies: ``EXOPS_UI_SESSION_SECRET``, else the installation's
    own, generated once and kept in the database (``app/shared/instance.py``)."""
    shared: SharedState | None = None
    """This process's poller of state shared with other processes (``app/shared/``)."""
    access: AccessCache = field(default_factory=AccessCache)


async def get_services(request: Request) -> Services:
    """Async on purpose: a plain ``def`` dependency is sent to the thread pool on every request."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
UNAUTHORIZED = {"WWW-Authenticate": 'Bearer, ApiKey header="X-API-KEY"'}


async def authenticate(services: Services, api_key: str | None, authorization: str | None) -> Principal:
    if api_key:
        parts = split_key(api_key)
        if parts is None:
            raise ProblemError(401, "malformed API key", headers=UNAUTHORIZED)
        return await _key_principal(services.db, services.access, *parts)
    if authorization and authorization.lower().startswith("bearer "):
        return (await bearer_claims(services, authorization[7:])).principal
    raise ProblemError(
        401, "credentials required: X-API-KEY header or Authorization: Bearer", headers=UNAUTHORIZED
    )


async def bearer_claims(services: Services, token: str) -> TokenClaims:
    """A bearer token's verified claims: signed, for our audience, not too long-lived, not revoked."""
    secret = services.settings.jwt_secret
    if secret is None:
        raise ProblemError(401, "bearer tokens are not enabled on this server", headers=UNAUTHORIZED)
    try:
        claims = read_token(token, secret.get_secret_value(), services.settings.jwt_audience,
                            max_lifetime_seconds=services.settings.jwt_max_lifetime_minutes * 60)  # fmt: skip
    except TokenError as exc:
        raise ProblemError(401, str(exc), headers=UNAUTHORIZED) from None
    if await token_revoked(services, claims):
        raise ProblemError(401, "invalid bearer token: revoked", headers=UNAUTHORIZED)
    return claims


async def token_revoked(services: Services, claims: TokenClaims) -> bool:
    """Whether a revocation in the token's scope refuses it (the scope's list is cached briefly)."""
    scope = revocations.scope_of(claims)
    revoked = services.access.revoked(scope)
    if revoked is None:
        async with services.db.session() as session:
            revoked = await revocations.load(session, scope)
        services.access.remember_revoked(scope, revoked)
    return revoked.refuses(claims)


async def _key_principal(db: Database, access: AccessCache, key_id: str, secret: str) -> Principal:
    """The principal of an API key: from the database when not verified recently or when its
    ``last_used_at`` is due (see ``app/auth/access.py``), else from the cache; the secret is
    checked either way."""
    known = access.key(key_id)
    if known is not None and not secret_matches(secret, known.secret_hash):
        raise ProblemError(401, "unknown or revoked API key", headers=UNAUTHORIZED)
    touch = access.touch_due(key_id)
    if known is None or touch:
        async with db.session() as session:
            row = await session.get(ApiKey, key_id)
            if row is None or row.revoked_at is not None or not secret_matches(secret, row.secret_hash):
                raise ProblemError(401, "unknown or revoked API key", headers=UNAUTHORIZED)
            if touch:
                row.last_used_at = utc_now()
            role: Role = "platform_admin" if row.tenant_id is None else row.role  # type: ignore[assignment]
            subject = f"key:{row.key_id}:{row.name}" if row.name else f"key:{row.key_id}"
            known = KnownKey(row.secret_hash, Principal(subject, role, row.tenant_id, via="api_key"))
        access.remember_key(key_id, known)
        if touch:
            access.touched(key_id)
    return known.principal


async def active_tenant_name(services: Services, tenant_id: str) -> str | None:
    """The tenant's name when it exists and is active (remembered for a few seconds), else None."""
    name = services.access.tenant(tenant_id)
    if name is None:
        async with services.db.session() as session:
            tenant = await session.get(Tenant, tenant_id)
            if tenant is None or not tenant.active:
                return None
            name = tenant.name
        services.access.remember_tenant(tenant_id, name)
    return name


@raises(401)
async def current_principal(
    request: Request,
    services: ServicesDep,
    x_api_key: Annotated[str | None, Header(alias="X-API-KEY", description="An exops API key")] = None,
    authorization: Annotated[str | None, Header(description="Bearer <JWT>")] = None,
) -> Principal:
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is None:
        cached = await authenticate(services, x_api_key, authorization)
        request.state.principal = cached
    return cached


PrincipalDep = Annotated[Principal, Depends(current_principal)]


@raises(403)
async def require_platform_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_platform_admin:
        raise ProblemError(403, "platform admin only")
    return principal


PlatformAdmin = Annotated[Principal, Depends(require_platform_admin)]


def tenant_role(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller may act on the path's tenant with at least ``role``; rate-limited per tenant."""

    @raises(403, 404, 429)
    async def check(
        services: ServicesDep,
        principal: PrincipalDep,
        tenantId: Annotated[str, Path(description="Tenant id", pattern=TENANT_ID_PATTERN)],
    ) -> Principal:
        if not principal.may_act_on(tenantId):
            raise ProblemError(403, f"this credential is not for tenant {tenantId}")
        if not principal.has(role):
            raise ProblemError(403, f"role {principal.role} may not do this; {role} or above is needed")
        if await active_tenant_name(services, tenantId) is None:
            raise ProblemError(404, f"no tenant {tenantId}")
        # After the tenant check: only tenants that exist get a bucket in the shared table.
        wait = await services.limiter.take(tenantId)
        if wait > 0:
            raise ProblemError(
                429, f"rate limit for tenant {tenantId} exceeded", headers={"Retry-After": retry_after(wait)}
            )
        return principal

    return check


Viewer = Annotated[Principal, Depends(tenant_role("viewer"))]
Operator = Annotated[Principal, Depends(tenant_role("operator"))]
TenantAdmin = Annotated[Principal, Depends(tenant_role("admin"))]
