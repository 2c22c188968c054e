"""Pack versions over HTTP: upload, validate, activate, roll back and diff domain packs and tenant
policies, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.api_helpers import SAMPLES, Api

DOMAIN = yaml.safe_load((SAMPLES / "domains" / "capital-markets.yaml").read_text())
POLICIES = {t: yaml.safe_load((SAMPLES / "tenants" / f"{t}.yaml").read_text()) for t in ("globex-markets", "acme-capital")}  # fmt: skip
FAIL = json.loads((Path(__file__).parent.parent / "docs" / "examples" / "globex-markets-exceptions.json").read_text())[
    "exceptions"
][0]  # fmt: skip


def domain(version: str = "1.1.0") -> dict[str, Any]:
    doc: dict[str, Any] = copy.deepcopy(DOMAIN)
    doc["version"] = version
    return doc


def policy(tenant: str, version: str) -> dict[str, Any]:
    doc: dict[str, Any] = copy.deepcopy(POLICIES[tenant])
    doc["version"] = version
    return doc


def playbook(doc: dict[str, Any], playbook_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in doc["playbooks"] if p["id"] == playbook_id)
    return found


async def send(api: Api, path: str, doc: dict[str, Any] | str, *, fmt: str = "yaml", role: str = "platform_admin",
               tenant: str = "globex-markets") -> httpx.Response:  # fmt: skip
    """POST a pack as YAML (``application/yaml``) or JSON, as a file would be sent."""
    if isinstance(doc, str):
        body, media = doc, "text/yaml"
    elif fmt == "yaml":
        body, media = yaml.safe_dump(doc, sort_keys=False), "application/yaml"
    else:
        body, media = json.dumps(doc), "application/json"
    return await api.client.post(path, content=body, headers={**api.as_(role, tenant), "Content-Type": media})


async def domains(api: Api) -> dict[str, Any]:
    listing = (await api.client.get("/admin/domain-packs", headers=api.as_("platform_admin"))).json()
    return {d["domainName"]: d for d in listing["items"]}


async def run_versions(api: Api, exception_id: str, tenant: str = "globex-markets") -> dict[str, str]:
    """Ingest one exception, let it run, and return the pack versions its audit trail records."""
    response = await api.post_and_settle(tenant, {**FAIL, "exceptionId": exception_id})
    assert response.status_code == 202, response.text
    detail = (
        await api.client.get(f"/exceptions/{tenant}/{exception_id}", headers=api.as_("viewer", tenant))
    ).json()
    versions = {json.dumps(e["packVersions"], sort_keys=True) for e in detail["record"]["auditTrail"]}
    assert len(versions) == 1, versions
    result: dict[str, str] = json.loads(versions.pop())
    return result


async def test_upload_yaml_then_json_and_list_versions(api: Api) -> None:
    created = await send(api, "/admin/domain-packs", domain("1.1.0"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["kind"] == "domain" and body["name"] == "capital-markets" and body["version"] == "1.1.0"
    assert body["active"] is False and body["created"] is True and body["source"] == "api"
    assert body["createdBy"].startswith("key:") and body["createdBy"].endswith(":root")
    assert body["notices"] == [] and body["activatedAt"] is None
    again = await send(api, "/admin/domain-packs", domain("1.1.0"), fmt="json")
    assert again.status_code == 200 and again.json()["created"] is False
    as_json = await send(api, "/admin/domain-packs", domain("1.2.0"), fmt="json")
    assert as_json.status_code == 201 and as_json.json()["version"] == "1.2.0"

    listing = await domains(api)
    assert set(listing) == {"capital-markets", "healthcare-claims", "saas-incidents"}
    capital = listing["capital-markets"]
    assert capital["activeVersion"] == "1.0.0"
    assert [(v["version"], v["active"]) for v in capital["versions"]] == [
        ("1.0.0", True),
        ("1.1.0", False),
        ("1.2.0", False),
    ]
    assert (
        capital["versions"][0]["source"].startswith("file:")
        and capital["versions"][0]["createdBy"] == "packs-folder"
    )
    assert all(v["createdAt"] for v in capital["versions"])
    content = await api.client.get(
        "/admin/domain-packs/capital-markets/versions/1.1.0", headers=api.as_("platform_admin")
    )
    assert content.status_code == 200 and content.json()["content"]["version"] == "1.1.0"
    assert content.json()["content"]["tools"].keys() == DOMAIN["tools"].keys()
    missing = await api.client.get(
        "/admin/domain-packs/capital-markets/versions/9.9.9", headers=api.as_("platform_admin")
    )
    assert (
        missing.status_code == 404
        and missing.json()["detail"] == "no domain pack capital-markets version 9.9.9"
    )


async def test_older_layouts_are_rewritten_with_notices(api: Api) -> None:
    doc = domain("1.1.0")
    rule = doc["severityRules"][0]
    rule["if"] = rule.pop("condition")
    response = await send(api, "/admin/domain-packs", doc)
    assert response.status_code == 201, response.text
    assert response.json()["notices"] == [
        {"path": "$.severityRules[0]", "message": "renamed 'if' to 'condition'"}
    ]
    stored = await api.client.get(
        "/admin/domain-packs/capital-markets/versions/1.1.0", headers=api.as_("platform_admin")
    )
    assert "condition" in stored.json()["content"]["severityRules"][0]


async def test_validation_reports_every_problem_with_its_path(api: Api) -> None:
    ok = await send(api, "/admin/domain-packs/validate", domain("1.1.0"))
    assert ok.status_code == 200 and ok.json() == {"valid": True, "notices": []}

    bad = domain("1.1.0")
    bad["severityRules"][0]["severity"] = "SEVERE"
    bad["colour"] = "red"
    del bad["tools"]["get_trade_details"]["description"]
    expected = [
        {"path": "$.colour", "message": "unknown field"},
        {"path": "$.severityRules[0].severity",
         "message": "invalid value 'SEVERE': expected 'LOW', 'MEDIUM', 'HIGH' or 'CRITICAL'"},
        {"path": "$.tools.get_trade_details.description", "message": "required field is missing"},
    ]  # fmt: skip
    for path in ("/admin/domain-packs/validate", "/admin/domain-packs"):
        response = await send(api, path, bad, fmt="json")
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"] == expected

    unknown_tool = domain("1.1.0")
    playbook(unknown_tool, "settlement-fail-resubmit")["steps"][0]["tool"] = "teleport"
    response = await send(api, "/admin/domain-packs", unknown_tool)
    assert response.status_code == 422
    index = [p["id"] for p in DOMAIN["playbooks"]].index("settlement-fail-resubmit")
    assert [e["path"] for e in response.json()["errors"]] == [f"$.playbooks[{index}].steps[0].tool"]
    assert "teleport" in response.json()["errors"][0]["message"]

    broken = await send(api, "/admin/domain-packs", "domainName: [unclosed\n")
    assert broken.status_code == 422 and broken.json()["errors"][0]["path"] == "$"
    assert broken.json()["errors"][0]["message"].startswith("invalid YAML at line")
    plain = await api.client.post("/admin/domain-packs", content="{}",
                                  headers={**api.as_("platform_admin"), "Content-Type": "text/plain"})  # fmt: skip
    assert plain.status_code == 415
    wrong_kind = await send(api, "/admin/domain-packs", policy("globex-markets", "9.0.0"))
    assert wrong_kind.status_code == 422 and wrong_kind.json()["errors"] == [
        {
            "path": "$",
            "message": "this is a tenant pack, not a domain pack: upload it to /admin/{tenantId}/policy",
        }
    ]
    assert [v["version"] for v in (await domains(api))["capital-markets"]["versions"]] == ["1.0.0"]


async def test_a_version_with_other_content_is_a_conflict(api: Api) -> None:
    assert (await send(api, "/admin/domain-packs", domain("1.1.0"))).status_code == 201
    changed = domain("1.1.0")
    changed["description"] = "Something else"
    notice = await send(api, "/admin/domain-packs/validate", changed)
    assert notice.json()["notices"] == [
        {"path": "$.version", "message": "1.1.0 already exists with other content: raise the version"}
    ]
    response = await send(api, "/admin/domain-packs", changed)
    assert response.status_code == 409
    assert response.json()["errors"] == [
        {"path": "$.version",
         "message": "domain pack capital-markets 1.1.0 already exists with other content: raise the version"}
    ]  # fmt: skip


async def test_domain_activation_refused_when_a_tenant_policy_would_break(api: Api) -> None:
    doc = domain("1.1.0")
    playbook(doc, "trade-mismatch-cancel-rebook")["id"] = "trade-mismatch-cancel-rebook-v2"
    assert (await send(api, "/admin/domain-packs", doc)).status_code == 201
    response = await api.client.post(
        "/admin/domain-packs/capital-markets/versions/1.1.0/activate", headers=api.as_("platform_admin")
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["detail"] == (
        "activating capital-markets 1.1.0 would break the active tenant policies of acme-capital, globex-markets"
    )
    assert problem["errors"] == [
        {"path": "$.domainName",
         "message": "tenant policy acme-capital 2.3.0: domain pack 'capital-markets 1.0.0' is not loaded"},
        {"path": "$.approvedBusinessProcesses[2]",
         "message": "tenant policy globex-markets 1.4.0: unknown playbook id 'trade-mismatch-cancel-rebook'"},
    ]  # fmt: skip
    upload_and_activate = await send(api, "/admin/domain-packs?activate=true", domain("1.2.0"))
    assert upload_and_activate.status_code == 409  # acme pins 1.0.0: refused, and nothing stored
    listing = (await domains(api))["capital-markets"]
    assert listing["activeVersion"] == "1.0.0" and len(listing["versions"]) == 2
    assert api.services.store.domain("capital-markets") is not None
    assert api.services.store.domain("capital-markets").version == "1.0.0"  # type: ignore[union-attr]


async def test_activation_is_used_by_the_next_run_and_rolls_back(api: Api) -> None:
    admin = api.as_("platform_admin")
    assert await run_versions(api, "GLX-A1") == {
        "domain": "capital-markets@1.0.0",
        "tenant": "globex-markets@1.4.0",
    }
    unpinned = policy("acme-capital", "2.4.0")
    del unpinned["domainVersion"]
    acme = await send(
        api, "/admin/acme-capital/policy?activate=true", unpinned, role="admin", tenant="acme-capital"
    )
    assert acme.status_code == 201 and acme.json()["active"] is True

    activated = await send(api, "/admin/domain-packs?activate=true", domain("1.1.0"))
    assert activated.status_code == 201 and activated.json()["active"] is True
    assert activated.json()["activatedAt"] is not None
    assert await run_versions(api, "GLX-A2") == {
        "domain": "capital-markets@1.1.0",
        "tenant": "globex-markets@1.4.0",
    }
    pinned_again = await api.client.post(
        "/admin/acme-capital/policy/versions/2.3.0/activate", headers=api.as_("admin", "acme-capital")
    )
    assert pinned_again.status_code == 409 and pinned_again.json()["errors"] == [
        {"path": "$.domainName", "message": "domain pack 'capital-markets 1.0.0' is not loaded"}
    ]

    back = await api.client.post("/admin/domain-packs/capital-markets/rollback", headers=admin)
    assert back.status_code == 200 and back.json()["version"] == "1.0.0" and back.json()["active"] is True
    assert (await domains(api))["capital-markets"]["activeVersion"] == "1.0.0"
    assert (await run_versions(api, "GLX-A3"))["domain"] == "capital-markets@1.0.0"
    further = await api.client.post("/admin/domain-packs/capital-markets/rollback", headers=admin)
    assert further.status_code == 409  # 1.0.0 was the first activation: nothing earlier to go back to
    reactivated = await api.client.post(
        "/admin/domain-packs/capital-markets/versions/1.1.0/activate", headers=admin
    )
    assert reactivated.status_code == 200 and reactivated.json()["active"] is True
    again = await api.client.post("/admin/domain-packs/capital-markets/rollback", headers=admin)
    assert again.json()["version"] == "1.0.0"

    alone = await api.client.post("/admin/domain-packs/saas-incidents/rollback", headers=admin)
    assert alone.status_code == 409
    assert alone.json()["detail"] == "domain pack saas-incidents 1.0.0 has no earlier version to roll back to"
    unknown = await api.client.post("/admin/domain-packs/no-such-domain/rollback", headers=admin)
    assert unknown.status_code == 404


async def test_diff_between_two_versions(api: Api) -> None:
    doc = domain("1.1.0")
    doc["description"] = "Post-trade exceptions."
    resubmit = playbook(doc, "settlement-fail-resubmit")
    resubmit["priority"] = 15
    resubmit["successCriteria"].append("The desk is told.")
    doc["playbooks"].remove(playbook(doc, "trade-mismatch-cancel-rebook"))
    doc["tools"]["get_trade_details"]["timeoutSeconds"] = 7
    doc["severityRules"].insert(0, {"id": "everything-low", "condition": "true", "severity": "LOW"})
    assert (await send(api, "/admin/domain-packs", doc)).status_code == 201
    response = await api.client.get(
        "/admin/domain-packs/capital-markets/diff?from=1.0.0&to=1.1.0", headers=api.as_("platform_admin")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["from"], body["to"]) == ("capital-markets", "1.0.0", "1.1.0")
    removed = playbook(DOMAIN, "trade-mismatch-cancel-rebook")
    criteria = len(playbook(DOMAIN, "settlement-fail-resubmit")["successCriteria"])
    assert body["changes"] == [
        {"path": "$.description", "change": "changed", "from": DOMAIN["description"], "to": "Post-trade exceptions."},
        {"path": "$.playbooks[?(@.id=='trade-mismatch-cancel-rebook')]", "change": "removed", "from": removed,
         "to": None},
        {"path": "$.playbooks[?(@.id=='settlement-fail-resubmit')].priority", "change": "changed", "from": 10,
         "to": 15},
        {"path": f"$.playbooks[?(@.id=='settlement-fail-resubmit')].successCriteria[{criteria}]",
         "change": "added", "from": None, "to": "The desk is told."},
        {"path": "$.severityRules[?(@.id=='everything-low')]", "change": "added", "from": None,
         "to": {"id": "everything-low", "condition": "true", "severity": "LOW"}},
        {"path": "$.tools.get_trade_details.timeoutSeconds", "change": "changed", "from": 5, "to": 7},
        {"path": "$.version", "change": "changed", "from": "1.0.0", "to": "1.1.0"},
    ]  # fmt: skip
    same = await api.client.get(
        "/admin/domain-packs/capital-markets/diff?from=1.0.0&to=1.0.0", headers=api.as_("platform_admin")
    )
    assert same.json()["changes"] == []
    missing = await api.client.get(
        "/admin/domain-packs/capital-markets/diff?from=1.0.0&to=3.0.0", headers=api.as_("platform_admin")
    )
    assert missing.status_code == 404
    no_query = await api.client.get(
        "/admin/domain-packs/capital-markets/diff", headers=api.as_("platform_admin")
    )
    assert no_query.status_code == 422 and {e["path"] for e in no_query.json()["errors"]} == {
        "query.from",
        "query.to",
    }


async def test_tenant_policy_lifecycle(api: Api) -> None:
    headers = api.as_("admin", "acme-capital")
    base = "/admin/acme-capital/policy"
    start = (await api.client.get(base, headers=headers)).json()
    assert start["tenantId"] == "acme-capital" and start["activeVersion"] == "2.3.0"
    assert [v["version"] for v in start["versions"]] == ["2.3.0"]

    newer = policy("acme-capital", "2.4.0")
    newer["escalationQueue"] = "acme-duty-desk"
    checked = await send(api, f"{base}/validate", newer, fmt="json", role="admin", tenant="acme-capital")
    assert checked.status_code == 200 and checked.json() == {"valid": True, "notices": []}
    uploaded = await send(api, base, newer, fmt="json", role="admin", tenant="acme-capital")
    assert uploaded.status_code == 201 and uploaded.json()["createdBy"].endswith(":admin")
    assert api.services.store.tenants["acme-capital"].version == "2.3.0"

    activated = await api.client.post(f"{base}/versions/2.4.0/activate", headers=headers)
    assert activated.status_code == 200 and activated.json()["active"] is True
    assert api.services.store.tenants["acme-capital"].escalationQueue == "acme-duty-desk"
    diff = (await api.client.get(f"{base}/diff?from=2.3.0&to=2.4.0", headers=headers)).json()
    assert diff["changes"] == [
        {
            "path": "$.escalationQueue",
            "change": "changed",
            "from": "acme-ops-managers",
            "to": "acme-duty-desk",
        },
        {"path": "$.version", "change": "changed", "from": "2.3.0", "to": "2.4.0"},
    ]
    content = (await api.client.get(f"{base}/versions/2.4.0", headers=headers)).json()
    assert content["content"]["escalationQueue"] == "acme-duty-desk" and content["name"] == "acme-capital"

    rolled = await api.client.post(f"{base}/rollback", headers=headers)
    assert rolled.status_code == 200 and rolled.json()["version"] == "2.3.0"
    assert api.services.store.tenants["acme-capital"].version == "2.3.0"
    listing = (await api.client.get(base, headers=headers)).json()
    assert listing["activeVersion"] == "2.3.0" and [v["active"] for v in listing["versions"]] == [True, False]


async def test_tenant_policy_must_be_for_the_path_tenant_and_valid_on_its_domain(api: Api) -> None:
    base = "/admin/acme-capital/policy"
    other = policy("globex-markets", "9.0.0")
    for path in (base, f"{base}/validate"):
        response = await send(api, path, other, role="admin", tenant="acme-capital")
        assert response.status_code == 422
        assert response.json()["errors"] == [
            {"path": "$.tenantId", "message": "does not match the path tenant acme-capital"}
        ]
    unknown = policy("acme-capital", "2.4.0")
    unknown["toolsAllowList"].append("teleport")
    unknown["approvedBusinessProcesses"].append("no-such-playbook")
    response = await send(api, base, unknown, role="admin", tenant="acme-capital")
    assert response.status_code == 422
    assert [e["path"] for e in response.json()["errors"]] == [
        "$.approvedBusinessProcesses[10]",
        "$.toolsAllowList[6]",
    ]
    missing_domain = policy("acme-capital", "2.4.0")
    missing_domain["domainName"] = "astrology"
    response = await send(api, base, missing_domain, role="admin", tenant="acme-capital")
    assert response.json()["errors"] == [
        {"path": "$.domainName", "message": "domain pack 'astrology 1.0.0' is not loaded"}
    ]
    a_domain = await send(api, base, domain("1.1.0"), role="admin", tenant="acme-capital")
    assert a_domain.status_code == 422 and a_domain.json()["errors"][0]["path"] == "$"
    assert [v["version"] for v in (await api.client.get(base, headers=api.as_("admin", "acme-capital"))).json()["versions"]] == ["2.3.0"]  # fmt: skip


async def test_a_run_after_policy_activation_uses_it(api: Api) -> None:
    newer = policy("globex-markets", "1.5.0")
    response = await send(api, "/admin/globex-markets/policy?activate=true", newer, role="admin")
    assert response.status_code == 201 and response.json()["active"] is True
    assert (await run_versions(api, "GLX-P1"))["tenant"] == "globex-markets@1.5.0"
