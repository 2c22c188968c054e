"""The packs and tools pages: reading pack history, validating, uploading, activating, rolling back
and diffing through forms; tool allow-list status, breakers and switches; and who may do what."""

from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path
from typing import Any

import httpx
import yaml

from app.admin.accounts import ensure_tenant
from tests.api_helpers import SAMPLES, Api

T = "/ui/t/globex-markets"
DOMAIN = yaml.safe_load((SAMPLES / "domains" / "capital-markets.yaml").read_text())
POLICY = yaml.safe_load((SAMPLES / "tenants" / "globex-markets.yaml").read_text())
EXAMPLES = Path(__file__).parent.parent / "docs" / "examples" / "globex-markets-exceptions.json"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
BREAKER_KEY = "globex-markets/capital-markets/get_settlement_status"


def policy(version: str, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = copy.deepcopy(POLICY)
    doc["version"] = version
    doc.update(changes)
    return doc


def domain(version: str) -> dict[str, Any]:
    doc: dict[str, Any] = copy.deepcopy(DOMAIN)
    doc["version"] = version
    return doc


async def sign_in(api: Api, role: str, tenant: str = "globex-markets") -> str:
    """Sign the test client in with the role's key; returns the session's CSRF token."""
    api.client.cookies.clear()
    key = api.as_(role, tenant)["X-API-KEY"]
    response = await api.client.post("/ui/login", data={"credential": key, "next": "/ui/"})
    assert response.status_code == 303, response.text
    page = await api.client.get(f"/ui/t/{tenant}/packs")
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found is not None
    return found.group(1)


def text(response: httpx.Response) -> str:
    """The page with entities decoded and whitespace collapsed, to assert on what a person reads."""
    return re.sub(r"\s+", " ", html.unescape(response.text))


def words(response: httpx.Response) -> str:
    """Only the words a person reads: tags dropped, entities decoded, whitespace collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.text)))


async def follow(api: Api, response: httpx.Response) -> httpx.Response:
    assert response.status_code == 303, response.text
    return await api.client.get(response.headers["location"])


def pack_form(csrf: str, doc: dict[str, Any] | None = None, **extra: str) -> dict[str, str]:
    return {"csrf_token": csrf, "document": yaml.safe_dump(doc, sort_keys=False) if doc else "", **extra}


async def policy_versions(api: Api) -> list[tuple[str, bool]]:
    from app.admin.packs_service import PackAdmin

    rows = await PackAdmin(api.services.db, api.services.store, "tenant", ()).versions("globex-markets")
    return [(row.version, row.active) for row in rows]


async def test_packs_page_lists_the_active_versions_and_a_version_shows_as_yaml(api: Api) -> None:
    await sign_in(api, "admin")
    page = await api.client.get(f"{T}/packs")
    assert page.status_code == 200
    body = text(page)
    assert (
        "Tenant policy <code>globex-markets</code>" in body
        and "Domain pack <code>capital-markets</code>" in body
    )
    assert f'<a href="{T}/packs/policy/1.4.0"><strong>1.4.0</strong></a>' in page.text
    assert f'<a href="{T}/packs/domain/1.0.0"><strong>1.0.0</strong></a>' in page.text
    assert body.count('<span aria-hidden="true">●</span> active') == 2 and "1 version, newest first" in body
    assert "Read-only: the domain pack is shared by every tenant on it" in body
    assert f'action="{T}/packs/policy/upload"' in page.text  # the tenant admin manages the policy
    assert f'formaction="{T}/packs/policy/validate"' in page.text
    assert f'action="{T}/packs/domain/upload"' not in page.text  # ...not the domain pack
    assert "Roll back" not in body  # a single version: nothing to roll back to
    assert 'aria-current="page">Packs' in page.text

    version = await api.client.get(f"{T}/packs/policy/1.4.0")
    assert version.status_code == 200
    shown = re.search(r"<pre[^>]*>(.*?)</pre>", version.text, re.S)
    assert shown is not None
    assert yaml.safe_load(html.unescape(shown.group(1))) == POLICY
    assert html.unescape(shown.group(1)).startswith(
        "tenantId: globex-markets\ntenantName: Globex Markets LLC\n"
    )
    assert "No other version to compare with." in text(version)
    assert "Activate 1.4.0" not in text(version)  # already active
    domain_page = await api.client.get(f"{T}/packs/domain/1.0.0")
    assert domain_page.status_code == 200 and "domainName: capital-markets" in html.unescape(domain_page.text)
    missing = await api.client.get(f"{T}/packs/policy/9.9.9")
    assert missing.status_code == 404 and "no tenant policy globex-markets version 9.9.9" in text(missing)
    unknown_kind = await api.client.get(f"{T}/packs/widgets/1.0.0")
    assert unknown_kind.status_code == 404


async def test_validate_lists_every_problem_with_its_path_and_stores_nothing(api: Api) -> None:
    csrf = await sign_in(api, "admin")
    invalid = policy("1.5.0", toolsAllowList=[*POLICY["toolsAllowList"], "teleport"])
    response = await api.client.post(f"{T}/packs/policy/validate", data=pack_form(csrf, invalid))
    assert response.status_code == 422
    body = text(response)
    assert "✗ 1 problem(s) in the tenant policy; nothing was stored" in body
    assert "<code>$.toolsAllowList[14]</code>: unknown tool 'teleport' in domain 'capital-markets'" in body
    assert "teleport" in html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", response.text, re.S)[1])  # type: ignore[index]
    assert await policy_versions(api) == [("1.4.0", True)]

    uploaded = await api.client.post(
        f"{T}/packs/policy/upload", data=pack_form(csrf, invalid, activate="yes")
    )
    assert uploaded.status_code == 422 and "$.toolsAllowList[14]" in text(uploaded)
    assert await policy_versions(api) == [("1.4.0", True)]

    other_tenant = await api.client.post(
        f"{T}/packs/policy/validate", data=pack_form(csrf, policy("1.5.0", tenantId="acme-capital"))
    )
    assert other_tenant.status_code == 422
    assert "<code>$.tenantId</code>: does not match the path tenant globex-markets" in text(other_tenant)

    empty = await api.client.post(f"{T}/packs/policy/validate", data=pack_form(csrf))
    assert empty.status_code == 422 and "choose a pack file or paste the pack" in text(empty)

    as_file = await api.client.post(
        f"{T}/packs/policy/validate",
        data={"csrf_token": csrf},
        files={"file": ("policy.json", json.dumps(policy("1.5.0")), "application/json")},
    )
    assert as_file.status_code == 200
    assert "✓ the tenant policy is valid; nothing was stored" in text(as_file)
    wrong_type = await api.client.post(
        f"{T}/packs/policy/validate",
        data={"csrf_token": csrf},
        files={"file": ("policy.txt", "x", "text/plain")},
    )
    assert wrong_type.status_code == 415 and "not .txt" in text(wrong_type)
    taken = await api.client.post(
        f"{T}/packs/policy/validate", data=pack_form(csrf, policy("1.4.0", tenantName="X"))
    )
    assert taken.status_code == 200
    assert "<code>$.version</code>: 1.4.0 already exists with other content: raise the version" in text(taken)
    assert await policy_versions(api) == [("1.4.0", True)]


async def test_upload_activate_diff_and_roll_back_a_policy(api: Api) -> None:
    csrf = await sign_in(api, "admin")
    newer = policy("1.5.0")
    newer["guardrailOverrides"] = {**POLICY["guardrailOverrides"], "maxAutoRetries": 2}
    response = await api.client.post(
        f"{T}/packs/policy/upload",
        data={"csrf_token": csrf, "activate": "yes"},
        files={"file": ("globex.yaml", yaml.safe_dump(newer, sort_keys=False), "application/x-yaml")},
    )
    assert response.headers["location"] == f"{T}/packs/policy/1.5.0"
    shown = await follow(api, response)
    assert "✓ stored tenant policy globex-markets 1.5.0; it is now active" in text(shown)
    assert await policy_versions(api) == [("1.4.0", False), ("1.5.0", True)]
    assert api.services.store.tenants["globex-markets"].version == "1.5.0"
    assert '<option value="1.4.0" >1.4.0</option>' in shown.text  # diff against the previous version

    diff = await api.client.get(f"{T}/packs/policy/diff", params={"from": "1.4.0", "to": "1.5.0"})
    assert diff.status_code == 200
    assert "2 changes from 1.4.0 to 1.5.0" in words(diff)
    body = text(diff)
    assert (
        '<td><code>$.guardrailOverrides.maxAutoRetries</code></td> <td><span class="badge change-changed">'
        '<span aria-hidden="true">~</span> changed</span></td> <td><pre>3</pre></td> <td><pre>2</pre></td>'
    ) in body
    assert '<code>$.version</code></td> <td><span class="badge change-changed">' in body
    assert '<pre>"1.4.0"</pre></td> <td><pre>"1.5.0"</pre>' in body
    same = await api.client.get(f"{T}/packs/policy/diff", params={"from": "1.5.0", "to": "1.5.0"})
    assert "= Versions 1.5.0 and 1.5.0 are identical." in words(same)
    picker = await api.client.get(f"{T}/packs/policy/diff")
    assert '<option value="1.4.0" selected>' in picker.text and "Choose two versions to compare." in text(
        picker
    )
    unknown = await api.client.get(f"{T}/packs/policy/diff", params={"from": "1.4.0", "to": "7.0.0"})
    assert unknown.status_code == 404

    listing = await api.client.get(f"{T}/packs")
    assert "2 versions, newest first" in text(listing) and "Roll back 1.5.0" in text(listing)
    rolled = await api.client.post(f"{T}/packs/policy/rollback", data={"csrf_token": csrf})
    assert "✓ rolled the tenant policy globex-markets back to 1.4.0" in text(await follow(api, rolled))
    assert await policy_versions(api) == [("1.4.0", True), ("1.5.0", False)]
    assert api.services.store.tenants["globex-markets"].version == "1.4.0"
    further = await api.client.post(f"{T}/packs/policy/rollback", data={"csrf_token": csrf})
    assert "✗ tenant policy globex-markets 1.4.0 has no earlier version to roll back to" in text(
        await follow(api, further)
    )

    version_page = await api.client.get(f"{T}/packs/policy/1.5.0")
    assert f'action="{T}/packs/policy/1.5.0/activate"' in version_page.text
    activated = await api.client.post(f"{T}/packs/policy/1.5.0/activate", data={"csrf_token": csrf})
    assert "✓ tenant policy globex-markets 1.5.0 is now active" in text(await follow(api, activated))
    assert await policy_versions(api) == [("1.4.0", False), ("1.5.0", True)]

    again = await api.client.post(f"{T}/packs/policy/upload", data=pack_form(csrf, newer))
    assert "1.5.0 was already stored with the same content" in text(await follow(api, again))


async def test_a_viewer_sees_no_forms_and_every_post_is_refused(api: Api) -> None:
    csrf = await sign_in(api, "viewer")
    page = await api.client.get(f"{T}/packs")
    assert page.status_code == 200 and 'method="post" action="/ui/t' not in page.text
    assert "<textarea" not in page.text and "Read-only: a tenant admin manages the policy." in text(page)
    version = await api.client.get(f"{T}/packs/policy/1.4.0")
    assert version.status_code == 200 and "/activate" not in version.text
    tools = await api.client.get(f"{T}/tools")
    assert tools.status_code == 200 and "Disable" not in tools.text and ">Actions<" not in tools.text
    for path in ("packs/policy/validate", "packs/policy/upload", "packs/policy/rollback",
                 "packs/policy/1.4.0/activate", "tools/get_trade_details/disable",
                 "tools/get_trade_details/enable", "tools/get_trade_details/breaker/reset"):  # fmt: skip
        refused = await api.client.post(f"{T}/{path}", data=pack_form(csrf, policy("1.5.0")))
        assert refused.status_code == 403, path
        assert "role viewer may not do this; admin or above is needed" in text(refused)
    assert await policy_versions(api) == [("1.4.0", True)]
    assert api.services.store.tenant("globex-markets").toolsAllowList == POLICY["toolsAllowList"]  # type: ignore[union-attr]


async def test_posts_without_the_csrf_token_are_refused(api: Api) -> None:
    await sign_in(api, "admin")
    for path in ("packs/policy/upload", "packs/policy/rollback", "tools/get_trade_details/disable"):
        refused = await api.client.post(f"{T}/{path}", data={"document": yaml.safe_dump(policy("1.5.0"))})
        assert refused.status_code == 403, path
        assert "missing or wrong CSRF token" in text(refused)
    wrong = await api.client.post(
        f"{T}/packs/policy/upload", data=pack_form("not-the-token", policy("1.5.0"))
    )
    assert wrong.status_code == 403
    assert await policy_versions(api) == [("1.4.0", True)]
    assert "get_trade_details" in api.services.store.tenant("globex-markets").toolsAllowList  # type: ignore[union-attr]


async def test_only_a_platform_admin_changes_the_domain_pack_and_refusals_list_their_problems(
    api: Api,
) -> None:
    csrf = await sign_in(api, "admin")
    for path in ("packs/domain/upload", "packs/domain/validate", "packs/domain/rollback",
                 "packs/domain/1.0.0/activate"):  # fmt: skip
        refused = await api.client.post(f"{T}/{path}", data=pack_form(csrf, domain("1.1.0")))
        assert refused.status_code == 403, path
        assert "only a platform admin manages the domain pack" in text(refused)

    csrf = await sign_in(api, "platform_admin")
    page = await api.client.get(f"{T}/packs")
    assert f'action="{T}/packs/domain/upload"' in page.text and "Read-only" not in page.text
    stored = await api.client.post(f"{T}/packs/domain/upload", data=pack_form(csrf, domain("1.1.0")))
    assert "✓ stored domain pack capital-markets 1.1.0" in text(await follow(api, stored))
    other = DOMAIN | {"domainName": "other-markets", "version": "1.0.0"}
    wrong_domain = await api.client.post(f"{T}/packs/domain/validate", data=pack_form(csrf, other))
    assert wrong_domain.status_code == 422
    assert "<code>$.domainName</code>: is 'other-markets', not 'capital-markets'" in text(wrong_domain)

    # acme-capital pins capital-markets 1.0.0: activating 1.1.0 would break it.
    refused = await api.client.post(f"{T}/packs/domain/1.1.0/activate", data={"csrf_token": csrf})
    shown = text(await follow(api, refused))
    assert "✗ activating capital-markets 1.1.0 would break the active tenant policy of acme-capital" in shown
    assert (
        "<li><code>$.domainName: tenant policy acme-capital 2.3.0: domain pack "
        "'capital-markets 1.0.0' is not loaded</code></li>"
    ) in shown
    assert api.services.store.domain("capital-markets").version == "1.0.0"  # type: ignore[union-attr]


async def test_a_tenant_without_a_policy_shows_empty_states(api: Api) -> None:
    async with api.services.db.session() as session:
        await ensure_tenant(session, "initech", "Initech")
    await sign_in(api, "platform_admin")
    packs = await api.client.get("/ui/t/initech/packs")
    assert packs.status_code == 200
    body = text(packs)
    assert "No version stored yet." in body
    assert "No policy names this tenant's domain yet: upload the tenant policy first." in body
    tools = await api.client.get("/ui/t/initech/tools")
    assert tools.status_code == 200
    assert "No tools to show: tenant initech has no active policy pack" in text(tools)


async def test_tools_page_shows_status_breakers_and_calls_and_an_admin_switches_them(api: Api) -> None:
    failures = api.services.settings.tool_breaker_failures
    breakers = api.services.runtime.breakers
    for _ in range(failures):
        assert breakers.breaker(BREAKER_KEY).allow()
        breakers.breaker(BREAKER_KEY).record_failure()
    failing = json.loads(EXAMPLES.read_text())["exceptions"][0]
    assert (await api.post_and_settle("globex-markets", failing)).status_code == 202

    csrf = await sign_in(api, "admin")
    page = await api.client.get(f"{T}/tools")
    assert page.status_code == 200 and 'aria-current="page">Tools' in page.text
    body = text(page)
    row = re.search(r"<code>get_settlement_status</code>.*?</tr>", body)
    assert row is not None
    assert (
        '<span aria-hidden="true">✓</span> effective' in row[0]
        and "✓ in allow-list" in row[0]
        and "✓ enabled" in row[0]
    )
    assert '<span aria-hidden="true">✗</span> open</span>' in row[0]
    assert f"{failures} failures in a row" in row[0] and "retry at 20" in row[0]
    assert "<code>GET</code>" in row[0] and "read-only" in row[0] and "Reset breaker" in row[0]
    listed = (await api.client.get("/admin/globex-markets/tools", headers=api.as_("viewer"))).json()
    limits = next(t for t in listed["items"] if t["name"] == "get_settlement_status")
    retries = limits["maxRetries"]
    assert f"timeout {limits['timeoutSeconds']} s · {retries} retr{'y' if retries == 1 else 'ies'}" in row[0]
    assert f'<code class="endpoint">{limits["endpoint"]}</code>' in row[0]
    closed = re.search(r"<code>get_trade_details</code>.*?</tr>", body)
    assert closed is not None and '<span aria-hidden="true">✓</span> closed</span>' in closed[0]
    assert "Reset breaker" not in closed[0]
    calls = re.findall(rf'<a href="{T}/exceptions/([^"]+)">', page.text)
    assert failing["exceptionId"] in calls

    reset = await api.client.post(f"{T}/tools/get_settlement_status/breaker/reset", data={"csrf_token": csrf})
    after = text(await follow(api, reset))
    assert "✓ the circuit breaker of get_settlement_status is closed" in after
    assert breakers.snapshot(BREAKER_KEY).state == "closed"
    row = re.search(r"<code>get_settlement_status</code>.*?</tr>", after)
    assert row is not None and "✓</span> closed" in row[0] and "0 failures in a row" in row[0]

    off = await api.client.post(f"{T}/tools/get_trade_details/disable", data={"csrf_token": csrf})
    after = text(await follow(api, off))
    assert "✓ get_trade_details is switched off for globex-markets" in after
    row = re.search(r"<code>get_trade_details</code>.*?</tr>", after)
    assert (
        row is not None
        and '<span aria-hidden="true">✗</span> not effective' in row[0]
        and "✗ switched off" in row[0]
    )
    assert f'action="{T}/tools/get_trade_details/enable"' in row[0]
    assert "get_trade_details" not in api.services.store.tenant("globex-markets").toolsAllowList  # type: ignore[union-attr]
    on = await api.client.post(f"{T}/tools/get_trade_details/enable", data={"csrf_token": csrf})
    assert "✓ get_trade_details is switched on again for globex-markets" in text(await follow(api, on))
    assert "get_trade_details" in api.services.store.tenant("globex-markets").toolsAllowList  # type: ignore[union-attr]

    unknown = await api.client.post(f"{T}/tools/teleport/breaker/reset", data={"csrf_token": csrf})
    assert unknown.status_code == 404 and "domain capital-markets defines no tool teleport" in text(unknown)

    csrf = await sign_in(api, "admin", "acme-capital")
    acme = text(await api.client.get("/ui/t/acme-capital/tools"))
    row = re.search(r"<code>amend_trade_booking</code>.*?</tr>", acme)
    assert row is not None and "✗ not in allow-list" in row[0] and "Add it to toolsAllowList" in row[0]
    assert "/enable" not in row[0]
    refused = await api.client.post(
        "/ui/t/acme-capital/tools/amend_trade_booking/enable", data={"csrf_token": csrf}
    )
    assert "✗ amend_trade_booking is not in the policy's allow-list" in text(await follow(api, refused))
