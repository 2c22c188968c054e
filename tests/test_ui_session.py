"""Signing in to the UI: the session cookie, its CSRF token, expiry, revocation, and safe redirects."""

from __future__ import annotations

import re

from app.admin.accounts import revoke_key
from app.auth.principal import Principal
from app.auth.tokens import issue_token
from app.ui.session import COOKIE, csrf_matches, decode, encode, new_session
from tests.api_helpers import JWT_SECRET, Api

SECRET = b"k" * 32
ALICE = Principal(subject="key:abc:alice", role="operator", tenant_id="globex-markets", via="api_key")


def test_a_session_survives_the_round_trip_and_nothing_else() -> None:
    session = new_session(ALICE, key_id="abc", hours=1, now=1000.0)
    value = encode(session, SECRET)
    assert decode(value, SECRET, now=1001.0) == session
    assert decode(value, b"other" * 8, now=1001.0) is None  # another server's secret
    body, signature = value.rsplit(".", 1)
    assert decode(body[:-2] + "AA." + signature, SECRET, now=1001.0) is None  # edited
    assert decode(value, SECRET, now=1000.0 + 3600) is None  # expired
    assert decode("garbage", SECRET) is None and decode(None, SECRET) is None
    assert session.principal.via == "session" and session.principal.role == "operator"


def test_csrf_tokens_must_match_exactly() -> None:
    session = new_session(ALICE, key_id=None, hours=1)
    assert csrf_matches(session, session.csrf)
    assert (
        not csrf_matches(session, None) and not csrf_matches(session, "") and not csrf_matches(session, "x")
    )


def test_a_session_never_outlives_its_token() -> None:
    session = new_session(ALICE, key_id=None, hours=12, until=5000.0, now=1000.0)
    assert session.expires == 5000.0


async def test_sign_in_with_a_key_sets_an_http_only_cookie_without_the_key(api: Api) -> None:
    key = api.as_("operator")["X-API-KEY"]
    response = await api.client.post(
        "/ui/login", data={"credential": key, "next": "/ui/t/globex-markets/exceptions"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/ui/t/globex-markets/exceptions"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/ui" in cookie and key not in cookie


async def test_a_wrong_key_is_refused_on_the_page(api: Api) -> None:
    response = await api.client.post(
        "/ui/login", data={"credential": "exo_000000000000_wrong-secret", "next": "/ui/"}
    )
    assert response.status_code == 401 and "unknown or revoked API key" in response.text
    assert COOKIE not in response.headers.get("set-cookie", "")
    empty = await api.client.post("/ui/login", data={"credential": "  ", "next": "/ui/"})
    assert empty.status_code == 400 and "Enter an API key or a token." in empty.text


async def test_next_never_leaves_the_ui(api: Api) -> None:
    key = api.as_("viewer")["X-API-KEY"]
    for target in ("https://evil.example/", "//evil.example/ui/", "/admin/tenants"):
        response = await api.client.post("/ui/login", data={"credential": key, "next": target})
        assert response.headers["location"] == "/ui/", target


async def test_without_a_session_pages_send_you_to_sign_in(api: Api) -> None:
    response = await api.client.get("/ui/t/globex-markets/exceptions?status=OPEN")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=/ui/t/globex-markets/exceptions%3Fstatus%3DOPEN"


async def test_sign_in_with_a_token_and_sign_out_needs_the_csrf_token(api: Api) -> None:
    token = issue_token(JWT_SECRET, subject="carol", role="platform_admin", tenant_id=None, audience="exops")
    assert (await api.client.post("/ui/login", data={"credential": token, "next": "/ui/"})).status_code == 303
    home = await api.client.get("/ui/")
    assert home.status_code == 200 and "globex-markets" in home.text and "acme-capital" in home.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert csrf is not None
    assert (await api.client.post("/ui/logout", data={})).status_code == 403
    out = await api.client.post("/ui/logout", data={"csrf_token": csrf[1]})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert (await api.client.get("/ui/")).status_code == 303


async def test_revoking_the_key_ends_the_session(api: Api) -> None:
    key = api.as_("operator", "acme-capital")["X-API-KEY"]
    assert (await api.client.post("/ui/login", data={"credential": key, "next": "/ui/"})).status_code == 303
    assert (await api.client.get("/ui/")).headers["location"] == "/ui/t/acme-capital/exceptions"
    async with api.services.db.session() as session:
        assert await revoke_key(session, "acme-capital", key.split("_")[1]) is not None
    assert (await api.client.get("/ui/")).headers["location"].startswith("/ui/login")


async def test_another_tenants_pages_are_refused(api: Api) -> None:
    key = api.as_("admin", "acme-capital")["X-API-KEY"]
    await api.client.post("/ui/login", data={"credential": key, "next": "/ui/"})
    refused = await api.client.get("/ui/t/globex-markets/exceptions")
    assert (
        refused.status_code == 403
        and "you are signed in for acme-capital, not globex-markets" in refused.text
    )
