"""Tools, API keys and tenants over HTTP, and who may call each administration route, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.api_helpers import Api

FAIL = json.loads((Path(__file__).parent.parent / "docs" / "examples" / "globex-markets-exceptions.json").read_text())[
    "exceptions"
][0]  # fmt: skip
GLOBEX = "/admin/globex-markets"

# (method, path, the least role that may call it, a request that changes nothing, the status it gets)
# "platform" routes are the platform admin's alone; {t} is the path tenant.
ROUTES: list[tuple[str, str, str, Any, int]] = [
    ("GET", "/admin/tenants", "platform", None, 200),
    ("POST", "/admin/tenants", "platform", {}, 422),
    ("GET", "/admin/domain-packs", "platform", None, 200),
    ("POST", "/admin/domain-packs", "platform", {}, 422),
    ("POST", "/admin/domain-packs/validate", "platform", {}, 422),
    ("GET", "/admin/domain-packs/capital-markets/versions/9.9.9", "platform", None, 404),
    ("POST", "/admin/domain-packs/capital-markets/versions/9.9.9/activate", "platform", None, 404),
    ("POST", "/admin/domain-packs/saas-incidents/rollback", "platform", None, 409),
    ("GET", "/admin/domain-packs/capital-markets/diff?from=1.0.0&to=9.9.9", "platform", None, 404),
    ("GET", "/admin/{t}/policy", "admin", None, 200),
    ("POST", "/admin/{t}/policy", "admin", {}, 422),
    ("POST", "/admin/{t}/policy/validate", "admin", {}, 422),
    ("GET", "/admin/{t}/policy/versions/9.9.9", "admin", None, 404),
    ("POST", "/admin/{t}/policy/versions/9.9.9/activate", "admin", None, 404),
    ("POST", "/admin/{t}/policy/rollback", "admin", None, 409),
    ("GET", "/admin/{t}/policy/diff?from=1.4.0&to=9.9.9", "admin", None, 404),
    ("POST", "/admin/{t}/policy/whatif", "admin", {}, 422),
    ("POST", "/admin/{t}/policy/versions/9.9.9/whatif", "admin", None, 404),
    ("GET", "/admin/{t}/tools", "viewer", None, 200),
    ("POST", "/admin/{t}/tools/teleport/disable", "admin", None, 404),
    ("POST", "/admin/{t}/tools/teleport/enable", "admin", None, 404),
    ("POST", "/admin/{t}/tools/teleport/breaker/reset", "admin", None, 404),
    ("GET", "/admin/{t}/keys", "admin", None, 200),
    ("POST", "/admin/{t}/keys", "admin", {}, 422),
    ("DELETE", "/admin/{t}/keys/000000000000", "admin", None, 404),
    ("GET", "/admin/token-revocations", "platform", None, 200),
    ("POST", "/admin/token-revocations", "platform", {}, 422),
    ("GET", "/admin/{t}/token-revocations", "admin", None, 200),
    ("POST", "/admin/{t}/token-revocations", "admin", {}, 422),
]
RANK = {"viewer": 0, "operator": 1, "admin": 2, "platform": 3}


async def call(api: Api, method: str, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return await api.client.request(method, path, json=body, headers=headers)


async def test_every_admin_route_allows_and_refuses_by_role(api: Api) -> None:
    for method, template, least, body, expected in ROUTES:
        path = template.replace("{t}", "globex-markets")
        where = f"{method} {path}"
        assert (await call(api, method, path, body, {})).status_code == 401, where
        assert (await call(api, method, path, body, api.as_("platform_admin"))).status_code == expected, where
        for role in ("viewer", "operator", "admin"):
            response = await call(api, method, path, body, api.as_(role, "globex-markets"))
            wanted = expected if RANK[role] >= RANK[least] else 403
            assert response.status_code == wanted, (
                f"{where} as {role}: {response.status_code} {response.text}"
            )
            if wanted == 403:
                assert response.json()["title"] == "Forbidden"


async def test_tenant_scoped_admin_routes_refuse_another_tenants_credential(api: Api) -> None:
    for method, template, least, body, _ in ROUTES:
        if least == "platform":
            continue
        path = template.replace("{t}", "globex-markets")
        response = await call(api, method, path, body, api.as_("admin", "acme-capital"))
        assert response.status_code == 403, f"{method} {path}"
        assert response.json()["detail"] == "this credential is not for tenant globex-markets"
        unknown = await call(
            api, method, template.replace("{t}", "no-such-tenant"), body, api.as_("platform_admin")
        )
        assert unknown.status_code == 404, f"{method} {path}"


async def test_tools_list_their_allow_list_status_and_recent_calls(api: Api) -> None:
    assert (await api.post_and_settle("globex-markets", FAIL)).status_code == 202
    listing = (await api.client.get(f"{GLOBEX}/tools", headers=api.as_("viewer"))).json()
    domain = api.services.store.domain("capital-markets")
    assert domain is not None
    assert listing["domainName"] == "capital-markets" and listing["domainVersion"] == "1.0.0"
    assert [t["name"] for t in listing["items"]] == list(domain.tools)
    status = next(t for t in listing["items"] if t["name"] == "get_settlement_status")
    assert (
        status["method"] == "GET"
        and status["mutating"] is False
        and status["endpoint"].startswith("https://")
    )
    assert (status["inAllowList"], status["enabled"], status["effective"]) == (True, True, True)
    [call_] = status["recentExecutions"]
    assert call_["exceptionId"] == "GLX-1001" and call_["status"] == "DRY_RUN" and call_["mode"] == "dry-run"
    assert call_["latencyMs"] >= 0 and call_["at"]

    acme = (
        await api.client.get("/admin/acme-capital/tools", headers=api.as_("viewer", "acme-capital"))
    ).json()
    resubmit = next(t for t in acme["items"] if t["name"] == "resubmit_allocation")
    assert (resubmit["inAllowList"], resubmit["enabled"], resubmit["effective"]) == (False, True, False)
    assert resubmit["recentExecutions"] == []


async def test_a_disabled_tool_makes_its_step_manual_until_enabled(api: Api) -> None:
    admin = api.as_("admin")
    off = await api.client.post(f"{GLOBEX}/tools/retry_settlement_instruction/disable", headers=admin)
    assert off.status_code == 200, off.text
    assert (off.json()["inAllowList"], off.json()["enabled"], off.json()["effective"]) == (True, False, False)
    tenant = api.services.store.tenant("globex-markets")
    assert tenant is not None and "retry_settlement_instruction" not in tenant.toolsAllowList

    await api.post_and_settle("globex-markets", {**FAIL, "exceptionId": "GLX-OFF"})
    detail = (await api.client.get("/exceptions/globex-markets/GLX-OFF", headers=api.as_("viewer"))).json()
    step = next(s for s in detail["result"]["plan"] if s["name"] == "Re-instruct with refreshed SSIs")
    assert step["disposition"] == "manual", step
    assert detail["resolutionStatus"] != "RESOLVED"

    on = await api.client.post(f"{GLOBEX}/tools/retry_settlement_instruction/enable", headers=admin)
    assert on.status_code == 200 and on.json()["effective"] is True
    await api.post_and_settle("globex-markets", {**FAIL, "exceptionId": "GLX-ON"})
    detail = (await api.client.get("/exceptions/globex-markets/GLX-ON", headers=api.as_("viewer"))).json()
    assert detail["resolutionStatus"] == "RESOLVED"
    listing = (await api.client.get(f"{GLOBEX}/tools", headers=api.as_("viewer"))).json()
    assert all(t["effective"] for t in listing["items"])  # Globex allow-lists every tool


async def test_tool_switches_refuse_unknown_and_unlisted_tools(api: Api) -> None:
    headers = api.as_("admin", "acme-capital")
    unknown = await api.client.post("/admin/acme-capital/tools/teleport/disable", headers=headers)
    assert (
        unknown.status_code == 404
        and unknown.json()["detail"] == "domain capital-markets defines no tool teleport"
    )
    unlisted = await api.client.post("/admin/acme-capital/tools/resubmit_allocation/enable", headers=headers)
    assert unlisted.status_code == 409
    assert "add it to toolsAllowList in the policy pack" in unlisted.json()["detail"]
    off = await api.client.post("/admin/acme-capital/tools/resubmit_allocation/disable", headers=headers)
    assert off.status_code == 200 and (off.json()["enabled"], off.json()["effective"]) == (False, False)


async def test_keys_are_created_listed_and_revoked(api: Api) -> None:
    admin = api.as_("admin")
    created = await api.client.post(
        f"{GLOBEX}/keys", json={"role": "operator", "name": "murex-feed"}, headers=admin
    )
    assert created.status_code == 201, created.text
    issued = created.json()
    assert set(issued) == {"keyId", "role", "name", "key"} and issued["role"] == "operator"
    assert issued["key"].startswith(f"exo_{issued['keyId']}_")
    new_key = {"X-API-KEY": issued["key"]}
    assert (await api.client.get("/exceptions/globex-markets", headers=new_key)).status_code == 200
    assert (await api.client.get("/exceptions/acme-capital", headers=new_key)).status_code == 403

    listing = (await api.client.get(f"{GLOBEX}/keys", headers=admin)).json()["items"]
    assert {k["name"] for k in listing} == {"viewer", "operator", "admin", "murex-feed"}
    mine = next(k for k in listing if k["keyId"] == issued["keyId"])
    assert set(mine) == {"keyId", "role", "name", "createdAt", "createdBy", "revokedAt", "lastUsedAt"}
    assert (
        mine["createdBy"].endswith(":admin") and mine["revokedAt"] is None and mine["lastUsedAt"] is not None
    )
    assert issued["key"] not in json.dumps(listing)

    revoked = await api.client.delete(f"{GLOBEX}/keys/{issued['keyId']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revokedAt"] is not None
    refused = await api.client.get("/exceptions/globex-markets", headers=new_key)
    assert refused.status_code == 401 and refused.json()["detail"] == "unknown or revoked API key"
    again = await api.client.delete(f"{GLOBEX}/keys/{issued['keyId']}", headers=admin)
    assert again.status_code == 200 and again.json()["revokedAt"] == revoked.json()["revokedAt"]


async def test_key_ids_of_another_tenant_and_bad_requests(api: Api) -> None:
    acme = (await api.client.get("/admin/acme-capital/keys", headers=api.as_("admin", "acme-capital"))).json()
    acme_key = acme["items"][0]["keyId"]
    response = await api.client.delete(f"{GLOBEX}/keys/{acme_key}", headers=api.as_("admin"))
    assert response.status_code == 404
    still = (
        await api.client.get("/admin/acme-capital/keys", headers=api.as_("admin", "acme-capital"))
    ).json()
    assert still["items"][0]["revokedAt"] is None
    bad = await api.client.post(f"{GLOBEX}/keys", json={"role": "platform_admin", "name": "x", "colour": 1},
                                headers=api.as_("admin"))  # fmt: skip
    assert bad.status_code == 422 and {e["path"] for e in bad.json()["errors"]} == {
        "body.role",
        "body.colour",
    }


async def test_platform_admin_creates_tenants(api: Api) -> None:
    root = api.as_("platform_admin")
    created = await api.client.post(
        "/admin/tenants", json={"tenantId": "initech", "name": "Initech"}, headers=root
    )
    assert created.status_code == 201
    assert created.json()["tenantId"] == "initech" and created.json()["hasActivePolicy"] is False
    again = await api.client.post(
        "/admin/tenants", json={"tenantId": "initech", "name": "Initech"}, headers=root
    )
    assert again.status_code == 409
    reserved = await api.client.post(
        "/admin/tenants", json={"tenantId": "tenants", "name": "x"}, headers=root
    )
    assert reserved.status_code == 422 and reserved.json()["errors"][0]["path"] == "body.tenantId"
    bad = await api.client.post("/admin/tenants", json={"tenantId": "Not Valid", "name": "x"}, headers=root)
    assert bad.status_code == 422

    key = (
        await api.client.post("/admin/initech/keys", json={"role": "admin", "name": "first"}, headers=root)
    ).json()
    policy = await api.client.get("/admin/globex-markets/policy/versions/1.4.0", headers=root)
    document = {
        **policy.json()["content"],
        "tenantId": "initech",
        "tenantName": "Initech",
        "version": "1.0.0",
    }
    uploaded = await api.client.post(
        "/admin/initech/policy?activate=true", json=document, headers={"X-API-KEY": key["key"]}
    )
    assert uploaded.status_code == 201, uploaded.text
    tenants = (await api.client.get("/admin/tenants", headers=root)).json()["items"]
    assert [(t["tenantId"], t["hasActivePolicy"], t["policyVersion"]) for t in tenants] == [
        ("acme-capital", True, "2.3.0"),
        ("globex-markets", True, "1.4.0"),
        ("initech", True, "1.0.0"),
    ]
    own = {"X-API-KEY": key["key"]}
    response = await api.client.post(
        "/exceptions/initech", json={**FAIL, "exceptionId": "INI-1"}, headers=own
    )
    assert response.status_code == 202  # an admin key acts as an operator too
    await api.settle()
    case = (await api.client.get("/exceptions/initech/INI-1", headers=own)).json()
    assert case["record"]["auditTrail"][0]["packVersions"]["tenant"] == "initech@1.0.0"


async def test_openapi_documents_each_admin_route(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    seen = 0
    for path, item in document["paths"].items():
        if not path.startswith("/admin"):
            continue
        for method, operation in item.items():
            seen += 1
            responses = operation["responses"]
            success = [r for code, r in responses.items() if code.startswith("2")]
            assert success and all(
                "$ref" in str(r["content"]["application/json"]["schema"]) for r in success
            ), f"{method} {path}"
            expected = {"401", "403"} | ({"404", "429"} if "{tenantId}" in path else set())
            assert expected <= set(responses), f"{method} {path}: {sorted(responses)}"
            for code in responses:
                if code[0] == "4":
                    assert responses[code]["content"]["application/problem+json"]["schema"]["$ref"].endswith(
                        "/Problem"
                    )
            if path.endswith(("/domain-packs", "/policy", "/validate")) and method == "post":
                assert set(operation["requestBody"]["content"]) == {
                    "application/json", "application/yaml", "application/x-yaml", "text/yaml"
                }  # fmt: skip
    assert seen == len(ROUTES)


async def test_breaker_state_and_tenant_limits_are_visible_and_an_admin_can_reset(api: Api) -> None:
    breakers = api.services.runtime.breakers
    key = "acme-capital/capital-markets/get_settlement_status"
    for _ in range(api.services.settings.tool_breaker_failures):
        assert breakers.breaker(key).allow()
        breakers.breaker(key).record_failure()
    acme = "/admin/acme-capital/tools"
    listing = (await api.client.get(acme, headers=api.as_("viewer", "acme-capital"))).json()
    status = next(t for t in listing["items"] if t["name"] == "get_settlement_status")
    assert status["breaker"]["state"] == "open" and status["breaker"]["retryAt"]
    assert status["breaker"]["consecutiveFailures"] == api.services.settings.tool_breaker_failures
    assert (status["timeoutSeconds"], status["maxRetries"]) == (3.0, 1)  # acme's toolOverrides
    other = next(t for t in listing["items"] if t["name"] == "get_trade_details")
    assert other["breaker"]["state"] == "closed"
    globex = (await api.client.get(f"{GLOBEX}/tools", headers=api.as_("viewer"))).json()
    same_tool = next(t for t in globex["items"] if t["name"] == "get_settlement_status")
    assert same_tool["breaker"]["state"] == "closed"  # breakers are per tenant
    refused = await api.client.post(f"{acme}/get_settlement_status/breaker/reset",
                                    headers=api.as_("operator", "acme-capital"))  # fmt: skip
    assert refused.status_code == 403
    reset = await api.client.post(f"{acme}/get_settlement_status/breaker/reset",
                                  headers=api.as_("admin", "acme-capital"))  # fmt: skip
    assert reset.status_code == 200 and reset.json()["breaker"]["state"] == "closed"
