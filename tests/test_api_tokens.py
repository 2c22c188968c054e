"""Bearer tokens: no token lives longer than the server allows, and a token (by ``jti``) or a
subject's tokens can be revoked before they expire, in every process sharing the database."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
from sqlalchemy import update

from app.api.main import create_app
from app.auth.access import AccessCache
from app.auth.tokens import issue_token
from app.db.models import TokenRevocation
from app.db.types import utc_now
from tests.api_helpers import JWT_SECRET, Api, running_api

CASES = "/exceptions/globex-markets"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token(subject: str = "alice@globex", tenant: str | None = "globex-markets", **options: Any) -> str:
    role = "platform_admin" if tenant is None else options.pop("role", "operator")
    return issue_token(JWT_SECRET, subject=subject, role=role, tenant_id=tenant, audience="exops", **options)


def raw(claims: dict[str, Any]) -> str:
    base = {"sub": "alice@globex", "role": "operator", "tenant": "globex-markets", "aud": "exops"}
    return jwt.encode({**base, **claims}, JWT_SECRET, algorithm="HS256")


async def status(api: Api, credential: str, url: str = CASES) -> tuple[int, str]:
    response = await api.client.get(url, headers=bearer(credential))
    return response.status_code, response.json().get("detail", "") if response.status_code >= 400 else ""


async def test_a_token_living_longer_than_the_maximum_is_refused(api: Api) -> None:
    limit = api.settings.jwt_max_lifetime_minutes * 60
    assert limit == 12 * 3600  # the default
    assert (await status(api, token(ttl_seconds=limit)))[0] == 200
    code, detail = await status(api, token(ttl_seconds=limit + 60))
    assert code == 401 and "lives 721 minutes; at most 720 are accepted" in detail
    now = int(time.time())
    assert (await status(api, raw({"exp": now + 600})))[0] == 200  # no iat: exp - now
    code, detail = await status(api, raw({"exp": now + limit + 600}))
    assert code == 401 and "from now (no iat)" in detail
    code, detail = await status(api, raw({"iat": now}))  # no exp
    assert code == 401 and '"exp"' in detail


async def test_the_maximum_is_a_setting(tmp_path: Path) -> None:
    async with running_api(tmp_path, "sqlite", jwt_max_lifetime_minutes=30) as api:
        assert (await status(api, token(ttl_seconds=1800)))[0] == 200
        assert (await status(api, token(ttl_seconds=1860)))[0] == 401


async def test_a_tenant_admin_revokes_one_token_by_its_jti(api: Api) -> None:
    stolen, other = token(token_id="t-stolen"), token(token_id="t-other")
    assert (await status(api, stolen))[0] == 200  # now remembered by the process
    response = await api.client.post(
        "/admin/globex-markets/token-revocations", json={"jti": "t-stolen", "reason": "laptop lost"},
        headers=api.as_("admin"),
    )  # fmt: skip
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["jti"] == "t-stolen" and body["subject"] is None and body["tenantId"] == "globex-markets"
    assert body["revokedBy"].startswith("key:") and body["reason"] == "laptop lost" and body["revokedAt"]
    assert await status(api, stolen) == (401, "invalid bearer token: revoked")
    assert (await status(api, other))[0] == 200
    # The same jti in another tenant's token is another tenant's business.
    acme = token("bob@acme", "acme-capital", token_id="t-stolen")
    assert (await status(api, acme, "/exceptions/acme-capital"))[0] == 200
    listing = await api.client.get("/admin/globex-markets/token-revocations", headers=api.as_("admin"))
    assert [item["jti"] for item in listing.json()["items"]] == ["t-stolen"]
    assert (
        await api.client.get(
            "/admin/acme-capital/token-revocations", headers=api.as_("admin", "acme-capital")
        )
    ).json() == {"items": []}


async def test_revoking_a_subject_refuses_its_tokens_issued_until_then(api: Api) -> None:
    before = token(now=int(time.time()) - 120)
    without_iat = raw({"exp": int(time.time()) + 600})
    colleague = token("carol@globex")
    response = await api.client.post(
        "/admin/globex-markets/token-revocations", json={"subject": "alice@globex"}, headers=api.as_("admin")
    )
    assert response.status_code == 201, response.text
    assert (await status(api, before))[0] == 401
    assert (await status(api, without_iat))[0] == 401
    assert (await status(api, colleague))[0] == 200
    # A token the issuer hands out after the revocation is accepted again.
    async with api.services.db.session() as session:
        await session.execute(update(TokenRevocation).values(revoked_at=utc_now() - timedelta(minutes=1)))
    api.services.access.forget_revoked("globex-markets")
    assert (await status(api, token()))[0] == 200
    assert (await status(api, before))[0] == 401


async def test_who_may_revoke_what(api: Api) -> None:
    body = {"subject": "alice@globex"}
    for role in ("viewer", "operator"):
        response = await api.client.post(
            "/admin/globex-markets/token-revocations", json=body, headers=api.as_(role)
        )
        assert response.status_code == 403, role
    other = await api.client.post(
        "/admin/globex-markets/token-revocations", json=body, headers=api.as_("admin", "acme-capital")
    )
    assert other.status_code == 403
    platform = await api.client.post(
        "/admin/token-revocations", json={"subject": "root"}, headers=api.as_("admin")
    )
    assert platform.status_code == 403
    for wrong in ({}, {"jti": "a", "subject": "b"}, {"jti": ""}, {"subject": "x", "extra": 1}):
        refused = await api.client.post(
            "/admin/globex-markets/token-revocations", json=wrong, headers=api.as_("admin")
        )
        assert refused.status_code == 422, wrong


async def test_the_platform_admin_revokes_platform_tokens(api: Api) -> None:
    root = token("root@platform", None)
    assert (await status(api, root, "/admin/tenants"))[0] == 200
    response = await api.client.post(
        "/admin/token-revocations", json={"subject": "root@platform"}, headers=api.as_("platform_admin")
    )
    assert response.status_code == 201 and response.json()["tenantId"] is None
    assert (await status(api, root, "/admin/tenants"))[0] == 401
    # A tenant token of the same subject name is not a platform token.
    assert (await status(api, token("root@platform")))[0] == 200
    listing = await api.client.get("/admin/token-revocations", headers=api.as_("platform_admin"))
    assert [item["subject"] for item in listing.json()["items"]] == ["root@platform"]


async def test_a_revocation_holds_in_another_process_sharing_the_database(api: Api) -> None:
    """A second server on the same database (its cache made to expire at once, as it does after a
    few seconds) refuses a token revoked through the first."""
    other = create_app(api.settings)
    other.state.services = dataclasses.replace(api.services, access=AccessCache(ttl=0))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=other), base_url="http://other.test"
    ) as client:
        credential = token(token_id="t-shared")
        assert (await client.get(CASES, headers=bearer(credential))).status_code == 200
        response = await api.client.post(
            "/admin/globex-markets/token-revocations", json={"jti": "t-shared"}, headers=api.as_("admin")
        )
        assert response.status_code == 201
        refused = await client.get(CASES, headers=bearer(credential))
        assert refused.status_code == 401 and refused.json()["detail"] == "invalid bearer token: revoked"


async def test_a_ui_session_made_from_a_revoked_token_ends(api: Api) -> None:
    credential = token(token_id="t-ui")
    signed_in = await api.client.post("/ui/login", data={"credential": credential, "next": "/ui/"})
    assert signed_in.status_code == 303
    assert (await api.client.get("/ui/t/globex-markets/exceptions")).status_code == 200
    response = await api.client.post(
        "/admin/globex-markets/token-revocations", json={"jti": "t-ui"}, headers=api.as_("admin")
    )
    assert response.status_code == 201
    after = await api.client.get("/ui/t/globex-markets/exceptions")
    assert after.status_code == 303 and after.headers["location"].startswith("/ui/login")
    again = await api.client.post("/ui/login", data={"credential": credential, "next": "/ui/"})
    assert again.status_code == 401 and "revoked" in again.text
    too_long = token(ttl_seconds=13 * 3600)
    refused = await api.client.post("/ui/login", data={"credential": too_long, "next": "/ui/"})
    assert refused.status_code == 401 and "at most 720 are accepted" in refused.text
