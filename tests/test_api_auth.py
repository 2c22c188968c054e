"""Credentials, roles, tenant isolation and rate limits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.admin.accounts import revoke_key
from app.auth.tokens import issue_token
from tests.api_helpers import JWT_SECRET, Api, running_api

ALL_TENANT_GETS = [
    "/exceptions/{t}",
    "/approvals/{t}",
    "/exceptions/{t}/X-1",
    "/exceptions/{t}/X-1/events",
    "/approvals/{t}/A-1",
]


async def test_no_or_bad_credentials_are_401(api: Api) -> None:
    bare = await api.client.get("/exceptions/globex-markets")
    assert bare.status_code == 401 and bare.headers["content-type"] == "application/problem+json"
    assert bare.json()["detail"] == "credentials required: X-API-KEY header or Authorization: Bearer"
    assert "WWW-Authenticate" in bare.headers
    assert (
        await api.client.get("/exceptions/globex-markets", headers={"X-API-KEY": "nonsense"})
    ).status_code == 401
    wrong_secret = api.keys[("globex-markets", "viewer")][:-3] + "abc"
    assert (
        await api.client.get("/exceptions/globex-markets", headers={"X-API-KEY": wrong_secret})
    ).status_code == 401


async def test_revoked_key_is_401(api: Api) -> None:
    key = api.keys[("globex-markets", "viewer")]
    key_id = key.split("_")[1]
    async with api.services.db.session() as session:
        assert await revoke_key(session, "globex-markets", key_id) is not None
    response = await api.client.get("/exceptions/globex-markets", headers={"X-API-KEY": key})
    assert response.status_code == 401 and response.json()["detail"] == "unknown or revoked API key"


async def test_keys_are_stored_hashed(api: Api) -> None:
    from sqlalchemy import select

    from app.db.models import ApiKey

    async with api.services.db.session() as session:
        rows = (await session.execute(select(ApiKey))).scalars().all()
    plaintexts = set(api.keys.values())
    for row in rows:
        assert re.fullmatch(r"[0-9a-f]{64}", row.secret_hash)
        assert not any(
            row.secret_hash in key or key.split("_", 2)[2] == row.secret_hash for key in plaintexts
        )


async def test_roles(api: Api) -> None:
    body = {"exceptionType": "SETTLEMENT_DELAY_NOTICE", "rawPayload": {}}
    assert (await api.client.get("/exceptions/globex-markets", headers=api.as_("viewer"))).status_code == 200
    refused = await api.client.post("/exceptions/globex-markets", json=body, headers=api.as_("viewer"))
    assert (
        refused.status_code == 403
        and refused.json()["detail"] == "role viewer may not do this; operator or above is needed"
    )
    for role in ("operator", "admin", "platform_admin"):
        assert (
            await api.client.post("/exceptions/globex-markets", json=body, headers=api.as_(role))
        ).status_code == 202


@pytest.mark.parametrize("path", ALL_TENANT_GETS)
async def test_another_tenants_path_is_403(api: Api, path: str) -> None:
    response = await api.client.get(path.format(t="acme-capital"), headers=api.as_("admin", "globex-markets"))
    assert (
        response.status_code == 403
        and response.json()["detail"] == "this credential is not for tenant acme-capital"
    )


async def test_another_tenants_ids_under_ones_own_path_are_404(api: Api) -> None:
    await api.post_and_settle(
        "globex-markets", {"exceptionId": "GLX-SECRET", "exceptionType": "SETTLEMENT_DELAY_NOTICE"}
    )
    acme = api.as_("admin", "acme-capital")
    assert (await api.client.get("/exceptions/acme-capital/GLX-SECRET", headers=acme)).status_code == 404
    assert (
        await api.client.get("/exceptions/acme-capital/GLX-SECRET/events", headers=acme)
    ).status_code == 404
    assert (await api.client.get("/exceptions/acme-capital", headers=acme)).json()["total"] == 0


async def test_unknown_tenant_is_404_for_the_platform_admin(api: Api) -> None:
    response = await api.client.get("/exceptions/nobody-here", headers=api.as_("platform_admin"))
    assert response.status_code == 404


async def test_jwt_bearer_tokens(api: Api) -> None:
    token = issue_token(
        JWT_SECRET, subject="alice@globex", role="operator", tenant_id="globex-markets", audience="exops"
    )
    ok = await api.client.get("/exceptions/globex-markets", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    other = await api.client.get("/exceptions/acme-capital", headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 403
    expired = issue_token(
        JWT_SECRET,
        subject="a",
        role="operator",
        tenant_id="globex-markets",
        audience="exops",
        ttl_seconds=-10,
    )
    response = await api.client.get(
        "/exceptions/globex-markets", headers={"Authorization": f"Bearer {expired}"}
    )
    assert response.status_code == 401 and "expired" in response.json()["detail"].lower()
    forged = issue_token("another-secret-of-sufficient-length-000", subject="a", role="admin", tenant_id="globex-markets",
                         audience="exops")  # fmt: skip
    assert (
        await api.client.get("/exceptions/globex-markets", headers={"Authorization": f"Bearer {forged}"})
    ).status_code == 401
    no_tenant = issue_token(JWT_SECRET, subject="a", role="viewer", tenant_id=None, audience="exops")
    assert (
        await api.client.get("/exceptions/globex-markets", headers={"Authorization": f"Bearer {no_tenant}"})
    ).status_code == 401


async def test_decisions_record_the_token_subject(api: Api) -> None:
    token = issue_token(
        JWT_SECRET, subject="alice@globex", role="operator", tenant_id="globex-markets", audience="exops"
    )
    auth = {"Authorization": f"Bearer {token}"}
    await api.post_and_settle("globex-markets", {"exceptionId": "GLX-J", "exceptionType": "REGULATORY_REPORT_REJECTED",
                                                 "rawPayload": {}})  # fmt: skip
    [item] = (await api.client.get("/approvals/globex-markets", headers=auth)).json()["items"]
    decided = await api.client.post(
        f"/approvals/globex-markets/{item['approvalId']}/reject", json={"reason": "not ours"}, headers=auth
    )
    assert decided.json()["decidedBy"] == "alice@globex"


async def test_rate_limit_per_tenant(tmp_path: Path) -> None:
    async with running_api(tmp_path, "sqlite", rate=3) as api:
        codes = [
            (await api.client.get("/exceptions/globex-markets", headers=api.as_("viewer"))).status_code
            for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        limited = await api.client.get("/exceptions/globex-markets", headers=api.as_("viewer"))
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert (
            await api.client.get("/exceptions/acme-capital", headers=api.as_("viewer", "acme-capital"))
        ).status_code == 200


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_access_cache_forgets_keys_and_tenants_after_their_ttl_and_on_revoke() -> None:
    from app.auth.access import AccessCache, KnownKey
    from app.auth.principal import Principal

    clock = FakeClock()
    cache = AccessCache(ttl=5.0, touch_every=60.0, clock=clock)
    known = KnownKey("hash", Principal("key:k1", "viewer", "globex-markets", via="api_key"))
    cache.remember_key("k1", known)
    cache.remember_tenant("globex-markets", "Globex Markets")
    clock.now += 4.9
    assert cache.key("k1") == known and cache.tenant("globex-markets") == "Globex Markets"
    clock.now += 0.1
    assert cache.key("k1") is None and cache.tenant("globex-markets") is None
    cache.remember_key("k1", known)
    cache.forget_key("k1")
    assert cache.key("k1") is None
    assert cache.touch_due("k1")
    cache.touched("k1")
    assert not cache.touch_due("k1")
    clock.now += 59.9
    assert not cache.touch_due("k1")
    clock.now += 0.1
    assert cache.touch_due("k1") and cache.touch_due("k2")
    assert "k2" not in cache._touched  # asking records nothing: made-up key ids leave no trace


async def test_last_used_is_written_at_most_once_a_minute_and_the_secret_is_checked_every_time(
    api: Api,
) -> None:
    from app.db.models import ApiKey

    clock = FakeClock()
    api.services.access.clock = clock
    key = api.keys[("globex-markets", "viewer")]
    key_id = key.split("_")[1]

    async def last_used() -> object:
        async with api.services.db.session() as session:
            row = await session.get(ApiKey, key_id)
            assert row is not None
            return row.last_used_at

    get = lambda k: api.client.get("/exceptions/globex-markets", headers={"X-API-KEY": k})  # noqa: E731
    assert (await get(key)).status_code == 200
    first = await last_used()
    assert first is not None
    clock.now += 30
    assert (await get(key)).status_code == 200
    assert await last_used() == first
    assert (await get(key[:-3] + "abc")).status_code == 401  # a remembered key still needs its secret
    made_up = f"exo_{'0' * 12}_whatever"
    assert (await get(made_up)).status_code == 401
    assert "0" * 12 not in api.services.access._touched
    clock.now += 31
    assert (await get(key)).status_code == 200
    later = await last_used()
    assert later is not None and later != first


async def test_a_tenant_created_after_a_404_is_found_at_once(api: Api) -> None:
    root = api.as_("platform_admin")
    assert (await api.client.get("/exceptions/initech", headers=root)).status_code == 404
    created = await api.client.post(
        "/admin/tenants", json={"tenantId": "initech", "name": "Initech"}, headers=root
    )
    assert created.status_code == 201
    listed = await api.client.get("/exceptions/initech", headers=root)
    assert listed.status_code == 200 and listed.json()["total"] == 0
