"""Signing in and out, the home page (the person's tenant, or a tenant chooser for platform
admins), and the error pages every UI refusal turns into."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from app.api.deps import ServicesDep, authenticate, bearer_claims
from app.api.problems import ProblemError
from app.auth.keys import split_key
from app.db.models import Tenant
from app.ui.deps import CheckedForm, LoginRequired, SessionDep, UiError, session_secret
from app.ui.render import render, templates
from app.ui.session import COOKIE, encode, new_session

router = APIRouter(prefix="/ui", include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Only a path inside the UI: a sign-in link cannot send anyone to another site."""
    return value if value and value.startswith("/ui/") and not value.startswith("//") else "/ui/"


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", None, next=_safe_next(next))


@router.post("/login", response_model=None)
async def login(
    request: Request,
    services: ServicesDep,
    credential: Annotated[str, Form(max_length=4096)] = "",
    next: Annotated[str, Form()] = "/ui/",
) -> Response:
    """An API key or a JWT, checked like the API checks it; the cookie never holds the credential."""
    presented = credential.strip()
    if not presented:
        return render(request, "login.html", None, status=400, next=_safe_next(next),
                      failure="Enter an API key or a token.")  # fmt: skip
    parts = split_key(presented)
    try:
        if parts is not None:
            principal = await authenticate(services, presented, None)
            session = new_session(principal, key_id=parts[0], hours=services.settings.ui_session_hours)
        else:
            claims = await bearer_claims(services, presented)
            session = new_session(claims.principal, key_id=None, hours=services.settings.ui_session_hours,
                                  until=claims.expires_at, token_id=claims.token_id,
                                  token_issued=claims.issued_at)  # fmt: skip
    except ProblemError as exc:
        return render(request, "login.html", None, status=401, next=_safe_next(next), failure=exc.detail)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(COOKIE, encode(session, session_secret(request)), httponly=True, samesite="strict",
                        secure=services.settings.ui_secure_cookies, path="/ui",
                        max_age=int(services.settings.ui_session_hours * 3600))  # fmt: skip
    return response


@router.post("/logout")
async def logout(form: CheckedForm) -> RedirectResponse:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


@router.get("/", response_model=None)
async def home(request: Request, session: SessionDep, services: ServicesDep) -> Response:
    if session.tenant_id is not None:
        return RedirectResponse(f"/ui/t/{session.tenant_id}/exceptions", status_code=303)
    async with services.db.session() as db:
        tenants = (await db.execute(select(Tenant).order_by(Tenant.tenant_id))).scalars().all()
    return render(request, "tenants.html", None, session=session, tenants=tenants)


def install(app: FastAPI) -> None:
    """Send people without a session to sign in, and show refusals as pages (not JSON problems)."""

    async def to_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(f"/ui/login?next={quote(exc.next_url)}", status_code=303)

    async def error_page(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, UiError)
        return templates.TemplateResponse(request, "error.html", {"status": exc.status, "message": exc.message,
                                          "page": None, "session": None}, status_code=exc.status)  # fmt: skip

    app.add_exception_handler(LoginRequired, to_login)
    app.add_exception_handler(UiError, error_page)
