"""What every UI page depends on: the signed-in session, the tenant page with its role check, and
forms whose CSRF token matches the session's.

Roles are enforced here on the server for every page and every form, exactly as the API enforces
them; templates only hide what a role cannot do, they never decide it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.datastructures import FormData

from app.api.deps import Services, ServicesDep, active_tenant_name, token_revoked
from app.auth.principal import Principal, Role
from app.auth.tokens import TokenClaims
from app.db.models import ApiKey
from app.ui.session import COOKIE, UiSession, csrf_matches, decode
from packs.common import TENANT_ID_PATTERN


class LoginRequired(Exception):
    """No valid session: the person is sent to the sign-in page, then back to ``next_url``."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class UiError(Exception):
    """A page-level refusal (403, 404, 409...) shown as an error page with the reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def session_secret(request: Request) -> bytes:
    secret: bytes = request.app.state.services.ui_secret
    return secret


async def ui_session(request: Request, services: ServicesDep) -> UiSession:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    session = decode(request.cookies.get(COOKIE), session_secret(request))
    if session is None:
        raise LoginRequired(here)
    if session.key_id is not None:
        async with services.db.session() as db:
            key = await db.get(ApiKey, session.key_id)
            if key is None or key.revoked_at is not None:
                raise LoginRequired(here)
    if session.via == "jwt":
        claims = TokenClaims(session.principal, session.token_id, session.token_issued, session.expires)
        if await token_revoked(services, claims):
            raise LoginRequired(here)
    return session


SessionDep = Annotated[UiSession, Depends(ui_session)]


@dataclass(frozen=True)
class Page:
    """A tenant page: who is looking, at which tenant and domain, with which services."""

    session: UiSession
    services: Services
    tenant_id: str
    tenant_name: str
    domain_name: str | None
    domain_version: str | None
    secret: bytes = dataclass_field(repr=False, default=b"")
    """The UI signing key, for the message a form sends back (``app/ui/flash.py``)."""

    @property
    def principal(self) -> Principal:
        return self.session.principal

    def can(self, role: Role) -> bool:
        return self.principal.has(role)


def tenant_page(role: Role) -> Callable[..., Awaitable[Page]]:
    async def page(
        request: Request,
        services: ServicesDep,
        session: SessionDep,
        tenantId: Annotated[str, Path(pattern=TENANT_ID_PATTERN)],
    ) -> Page:
        principal = session.principal
        if not principal.may_act_on(tenantId):
            raise UiError(403, f"you are signed in for {principal.tenant_id}, not {tenantId}")
        if not principal.has(role):
            raise UiError(403, f"role {principal.role} may not do this; {role} or above is needed")
        tenant_name = await active_tenant_name(services, tenantId)
        if tenant_name is None:
            raise UiError(404, f"no tenant {tenantId}")
        policy = services.store.tenants.get(tenantId)
        domain = None
        if policy is not None:
            try:
                domain = services.store.domain_of(policy)
            except LookupError:
                domain = None
        return Page(session=session, services=services, tenant_id=tenantId, tenant_name=tenant_name,
                    domain_name=domain.domainName if domain else None,
                    domain_version=domain.version if domain else None, secret=session_secret(request))  # fmt: skip

    return page


ViewerPage = Annotated[Page, Depends(tenant_page("viewer"))]
OperatorPage = Annotated[Page, Depends(tenant_page("operator"))]
AdminPage = Annotated[Page, Depends(tenant_page("admin"))]


async def checked_form(request: Request, session: SessionDep) -> FormData:
    """The posted form, once its ``csrf_token`` (or ``X-CSRF-Token`` header) matches the session's."""
    form = await request.form()
    token = form.get("csrf_token")
    presented = token if isinstance(token, str) else request.headers.get("X-CSRF-Token")
    if not csrf_matches(session, presented):
        raise UiError(403, "missing or wrong CSRF token: reload the page and try again")
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def field(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default
