"""A case's playbook over HTTP: the view, completing and skipping the step the case waits on (and only
that one), roles and tenant isolation, and recalculation (a no-op when nothing changed; a new plan on
the same approval when the active packs now choose another playbook)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import update

from app.db.models import Approval
from app.packstore import store_version
from packs.loader import load_document
from tests.api_helpers import SAMPLES, Api, plan_digest_of

EXAMPLES = json.loads(
    (Path(__file__).parent.parent / "docs" / "examples" / "globex-markets-exceptions.json").read_text()
)["exceptions"]
BY_ID = {e["exceptionId"]: e for e in EXAMPLES}
BASE = "/exceptions/globex-markets"
CRITICAL_FAIL_DESK = {
    "id": "globex-critical-fail-desk",
    "name": "Hand a critical fail to the settlements desk",
    "appliesTo": ["SETTLEMENT_FAIL"],
    "match": {"severity_in": ["CRITICAL"]},
    "priority": 60,
    "steps": [
        {"type": "assign_owner", "name": "Assign to settlements escalations", "group": "settlements-escalations"},
        {"type": "manual", "name": "Call the custodian", "instructions": "Agree a fix with the custodian."},
        {"type": "set_status", "name": "Resolve", "status": "RESOLVED"},
    ],
}  # fmt: skip


async def post(api: Api, *ids: str) -> None:
    response = await api.post_and_settle("globex-markets", [BY_ID[i] for i in ids])
    assert response.status_code == 202, response.text


async def playbook(api: Api, exception_id: str, role: str = "viewer") -> Any:
    return await api.client.get(f"{BASE}/{exception_id}/playbook", headers=api.as_(role))


async def events(api: Api, exception_id: str, *types: str) -> list[dict[str, Any]]:
    query = "&".join(f"type={t}" for t in types)
    response = await api.client.get(f"{BASE}/{exception_id}/events?{query}", headers=api.as_("viewer"))
    return list(response.json()["items"])


async def activate_globex_policy(api: Api, change: Callable[[dict[str, Any]], None]) -> None:
    """Activate a new version of Globex's policy through the pack store, as an admin upload would."""
    document = yaml.safe_load((SAMPLES / "tenants" / "globex-markets.yaml").read_text())
    document["version"] = "1.4.1-test"
    change(document)
    loaded = load_document(document, "test:globex-markets", api.services.store.domain)
    async with api.services.db.session() as session:
        await store_version(session, loaded, source="test", actor="test", activate=True)
        await api.services.store.load(session)


async def approval_status(api: Api, approval_id: str, status: str, **claim: Any) -> None:
    async with api.services.db.session() as session:
        await session.execute(
            update(Approval).where(Approval.approval_id == approval_id).values(status=status, **claim)
        )


def add_critical_fail_playbook(document: dict[str, Any]) -> None:
    document["customPlaybooks"].append(CRITICAL_FAIL_DESK)
    document["approvedBusinessProcesses"].append(CRITICAL_FAIL_DESK["id"])


async def test_playbook_view_of_a_case_waiting_on_a_manual_step(api: Api) -> None:
    await post(api, "GLX-1002")
    response = await playbook(api, "GLX-1002")
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["playbook"]["id"] == "trade-mismatch-economic-review"
    assert view["playbook"]["approvedForTenant"] is True and view["playbook"]["origin"] == "domain"
    assert view["playbook"]["match"] == {"severity_in": ["HIGH", "CRITICAL"]}
    assert [s["status"] for s in view["steps"]] == ["SUCCESS", "SUCCESS", "SUCCESS", "PENDING", "PENDING"]
    assert view["steps"][0]["completedBy"] == "exops" and view["steps"][0]["actorType"] == "agent"
    assert view["steps"][0]["completedAt"] and view["steps"][3]["completedBy"] is None
    assert view["currentStep"] == 4 and view["waitingFor"] == "manual_step" and view["approvalId"] is None
    selection = view["selection"]
    assert selection["selectedPlaybookId"] == "trade-mismatch-economic-review"
    assert "approved by the tenant" in selection["reasoning"]
    assert [c["playbookId"] for c in selection["candidates"]] == ["trade-mismatch-economic-review"]


async def test_complete_the_current_step_resolves_the_case(api: Api) -> None:
    await post(api, "GLX-1002")
    url = f"{BASE}/GLX-1002/playbook/steps/4/complete"
    digest = await plan_digest_of(api, "GLX-1002")
    response = await api.client.post(url, json={"notes": "agreed with the desk", "planDigest": digest},
                                     headers=api.as_("operator"))  # fmt: skip
    assert response.status_code == 200, response.text
    view = response.json()
    assert (
        view["resolutionStatus"] == "RESOLVED" and view["currentStep"] is None and view["waitingFor"] is None
    )
    step = view["steps"][3]
    assert step["status"] == "SUCCESS" and step["notes"] == "agreed with the desk"
    assert step["completedBy"].startswith("key:") and step["actorType"] == "human"
    assert view["steps"][4]["status"] == "SUCCESS"
    completed = await events(api, "GLX-1002", "playbook_step_completed")
    [event] = [e for e in completed if e["actor"]["type"] == "human"]
    assert event["actor"]["id"] == step["completedBy"] and event["data"]["order"] == 4
    assert event["data"]["notes"] == "agreed with the desk"
    again = await api.client.post(url, json={"planDigest": digest}, headers=api.as_("operator"))
    assert again.status_code == 409 and "step 4 was already completed by key:" in again.json()["detail"]


async def test_only_the_next_expected_step(api: Api) -> None:
    await post(api, "GLX-1002", "GLX-1003")
    digest = await plan_digest_of(api, "GLX-1002")
    for order in (3, 5):
        response = await api.client.post(f"{BASE}/GLX-1002/playbook/steps/{order}/complete",
                                         json={"planDigest": digest}, headers=api.as_("operator"))  # fmt: skip
        assert response.status_code == 409 and "step 4 is" in response.json()["detail"]
    waiting_for_approval = await api.client.post(f"{BASE}/GLX-1003/playbook/steps/1/complete",
                                                 json={"planDigest": await plan_digest_of(api, "GLX-1003")},
                                                 headers=api.as_("operator"))  # fmt: skip
    assert waiting_for_approval.status_code == 409
    assert (await playbook(api, "GLX-1002")).json()["currentStep"] == 4


async def test_skip(api: Api) -> None:
    await post(api, "GLX-1002")
    response = await api.client.post(f"{BASE}/GLX-1002/playbook/steps/4/skip",
                                     json={"reason": "not needed", "planDigest": await plan_digest_of(api, "GLX-1002")},
                                     headers=api.as_("admin"))  # fmt: skip
    assert response.status_code == 200, response.text
    step = response.json()["steps"][3]
    assert step["status"] == "SKIPPED" and step["skipReason"] == "not needed" and step["actorType"] == "human"
    skipped = await events(api, "GLX-1002", "playbook_step_skipped")
    [event] = [e for e in skipped if e["actor"]["type"] == "human"]
    # the playbook's last step (set_status RESOLVED) is withheld: nothing was done, so nothing is resolved
    [withheld] = [e for e in skipped if e["actor"]["type"] == "agent"]
    assert withheld["data"]["order"] == 5 and withheld["data"]["detail"].startswith("not marked RESOLVED")
    assert response.json()["resolutionStatus"] == "CLOSED_WITHOUT_ACTION"
    assert event["data"] == {
        "order": 4,
        "name": step["name"],
        "notes": None,
        "reason": "not needed",
    }


async def test_roles_bodies_and_isolation(api: Api) -> None:
    await post(api, "GLX-1002")
    url = f"{BASE}/GLX-1002/playbook/steps/4/complete"
    body = {"planDigest": await plan_digest_of(api, "GLX-1002")}
    viewer = await api.client.post(url, json=body, headers=api.as_("viewer"))
    assert viewer.status_code == 403
    assert (
        await api.client.post(f"{BASE}/GLX-1002/playbook/recalculate", headers=api.as_("viewer"))
    ).status_code == 403
    extra = await api.client.post(
        url, json={"notes": "x", "actor": "someone else", **body}, headers=api.as_("operator")
    )
    assert extra.status_code == 422 and extra.json()["errors"][0]["path"] == "body.actor"
    assert (
        await api.client.post(url.replace("/4/", "/0/"), json=body, headers=api.as_("operator"))
    ).status_code == 422
    other = api.as_("operator", "acme-capital")
    assert (await api.client.get(f"{BASE}/GLX-1002/playbook", headers=other)).status_code == 403
    assert (await api.client.post(url, json=body, headers=other)).status_code == 403
    acme = "/exceptions/acme-capital/GLX-1002"
    assert (await api.client.get(f"{acme}/playbook", headers=other)).status_code == 404
    assert (
        await api.client.post(f"{acme}/playbook/steps/4/complete", json=body, headers=other)
    ).status_code == 404
    assert (await api.client.post(f"{acme}/playbook/recalculate", headers=other)).status_code == 404
    assert (await api.client.get(f"{BASE}/GLX-1002/playbook")).status_code == 401
    assert (await playbook(api, "GLX-1002")).json()["steps"][3]["status"] == "PENDING"


async def test_no_playbook_is_404(api: Api) -> None:
    await post(api, "GLX-1004", "GLX-1005")
    for exception_id in ("GLX-1004", "GLX-1005", "GLX-9999"):
        response = await playbook(api, exception_id)
        assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"


async def test_a_case_waiting_for_approval_shows_the_held_step_and_the_approval(api: Api) -> None:
    rebook = {"exceptionId": "GLX-2001", "exceptionType": "TRADE_MISMATCH",
              "rawPayload": {"tradeId": "T-9", "mismatchFields": ["quantity"], "counterpartyAffirmed": True}}  # fmt: skip
    await api.post_and_settle("globex-markets", [rebook])
    view = (await playbook(api, "GLX-2001")).json()
    assert view["playbook"]["id"] == "trade-mismatch-cancel-rebook"
    assert view["waitingFor"] == "approval" and view["approvalId"] == "APR-GLX-2001-1"
    assert [s["status"] for s in view["steps"]] == ["PENDING", "NEEDS_APPROVAL", "PENDING", "PENDING"]
    assert "cancel_and_rebook_trade" in view["steps"][1]["reason"] and view["currentStep"] == 1


async def test_a_plan_edited_at_approval_is_shown_as_such(api: Api) -> None:
    await post(api, "GLX-1003")
    edited = [{"type": "manual", "name": "Fix the LEI", "instructions": "Renew the counterparty LEI."},
              {"type": "set_status", "name": "Close", "status": "RESOLVED"}]  # fmt: skip
    response = await api.client.post("/approvals/globex-markets/APR-GLX-1003-1/approve",
                                     json={"editedPlan": edited}, headers=api.as_("operator"))  # fmt: skip
    assert response.status_code == 200, response.text
    view = (await playbook(api, "GLX-1003")).json()
    assert view["playbook"]["id"] == "EDITED" and view["playbook"]["approvedForTenant"] is False
    assert "regulatory-report-correct-resubmit" in view["playbook"]["description"]
    assert [s["name"] for s in view["steps"]] == ["Fix the LEI", "Close"] and view["currentStep"] == 1
    done = await api.client.post(f"{BASE}/GLX-1003/playbook/steps/1/complete",
                                 json={"notes": "renewed", "planDigest": await plan_digest_of(api, "GLX-1003")},
                                 headers=api.as_("operator"))  # fmt: skip
    assert done.json()["resolutionStatus"] == "RESOLVED"


async def test_recalculate_without_a_change_is_a_no_op(api: Api) -> None:
    await post(api, "GLX-1002", "GLX-1003")
    for exception_id in ("GLX-1002", "GLX-1003", "GLX-1003"):
        before = await events(api, exception_id)
        response = await api.client.post(
            f"{BASE}/{exception_id}/playbook/recalculate", headers=api.as_("operator")
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["changed"] is False and body["previous"] == body["current"]
        assert body["packVersions"]["tenant"] == "globex-markets@1.4.0"
        assert body["playbook"]["exceptionId"] == exception_id
        assert await events(api, exception_id) == before


async def test_recalculate_with_a_change_replaces_the_plan_awaiting_approval(api: Api) -> None:
    await post(api, "GLX-1002", "GLX-1004")
    await activate_globex_policy(api, add_critical_fail_playbook)
    url = f"{BASE}/GLX-1004/playbook/recalculate"
    await approval_status(api, "APR-GLX-1004-1", "CLAIMED", claimed_by="key:someone",  # a decision in flight
                          claimed_at=datetime.now(UTC), claim_answer={"decision": "approve"})  # fmt: skip
    busy = await api.client.post(url, headers=api.as_("operator"))
    assert busy.status_code == 409 and "being approved by key:someone" in busy.json()["detail"]
    assert await events(api, "GLX-1004", "playbook_recalculated") == []
    await approval_status(api, "APR-GLX-1004-1", "PENDING")
    response = await api.client.post(url, headers=api.as_("operator"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["changed"] is True and body["packVersions"]["tenant"] == "globex-markets@1.4.1-test"
    assert body["previous"]["selectedPlaybookId"] is None
    assert body["previous"]["actionability"] == "ACTIONABLE_NON_APPROVED_PROCESS"
    assert body["current"]["selectedPlaybookId"] == "globex-critical-fail-desk"
    assert body["current"]["candidates"][0] == {"playbookId": "globex-critical-fail-desk", "approved": True,
                                                "origin": "tenant", "priority": 60}  # fmt: skip
    view = body["playbook"]
    assert view["playbook"]["id"] == "globex-critical-fail-desk" and view["playbook"]["origin"] == "tenant"
    assert view["waitingFor"] == "approval" and view["approvalId"] == "APR-GLX-1004-1"
    assert [s["name"] for s in view["steps"]] == [s["name"] for s in CRITICAL_FAIL_DESK["steps"]]
    [recorded] = await events(api, "GLX-1004", "playbook_recalculated")
    assert recorded["actor"]["type"] == "human" and recorded["actor"]["id"].startswith("key:")
    assert recorded["data"]["current"]["selectedPlaybookId"] == "globex-critical-fail-desk"

    approvals = (await api.client.get("/approvals/globex-markets", headers=api.as_("viewer"))).json()["items"]
    [approval] = [a for a in approvals if a["exceptionId"] == "GLX-1004"]
    assert approval["approvalId"] == "APR-GLX-1004-1"
    assert [s["name"] for s in approval["payload"]["plan"]] == [
        s["name"] for s in CRITICAL_FAIL_DESK["steps"]
    ]
    assert approval["payload"]["playbookId"] == "globex-critical-fail-desk"
    case = (await api.client.get(f"{BASE}/GLX-1004", headers=api.as_("viewer"))).json()
    assert case["result"]["pending"]["plan"] == approval["payload"]["plan"]
    assert case["result"]["selectedPlaybookId"] == "globex-critical-fail-desk"
    summary = (await api.client.get(f"{BASE}?text=GLX-1004", headers=api.as_("viewer"))).json()["items"][0]
    assert (
        summary["playbookId"] == "globex-critical-fail-desk"
        and summary["resolutionStatus"] == "PENDING_APPROVAL"
    )

    again = await api.client.post(url, headers=api.as_("operator"))
    assert again.json()["changed"] is False
    assert len(await events(api, "GLX-1004", "playbook_recalculated")) == 1

    approved = await api.client.post("/approvals/globex-markets/APR-GLX-1004-1/approve", json={},
                                     headers=api.as_("operator"))  # fmt: skip
    assert approved.status_code == 200, approved.text
    view = (await playbook(api, "GLX-1004")).json()
    assert [s["status"] for s in view["steps"]] == ["SUCCESS", "PENDING", "PENDING"] and view[
        "currentStep"
    ] == 2
    done = await api.client.post(
        f"{BASE}/GLX-1004/playbook/steps/2/complete",
        json={"planDigest": await plan_digest_of(api, "GLX-1004")},
        headers=api.as_("operator"),
    )
    assert done.json()["resolutionStatus"] == "RESOLVED"

    # the new policy changes nothing for a trade mismatch: a no-op even though GLX-1002's steps ran
    assert (
        await api.client.post(f"{BASE}/GLX-1002/playbook/recalculate", headers=api.as_("operator"))
    ).json()["changed"] is False


async def test_recalculate_after_execution_started_is_409(api: Api) -> None:
    await post(api, "GLX-1002")

    def prefer_another_playbook(document: dict[str, Any]) -> None:
        document["customPlaybooks"].append(
            {
                **CRITICAL_FAIL_DESK,
                "id": "globex-mismatch-desk",
                "appliesTo": ["TRADE_MISMATCH"],
                "match": {"severity_in": ["HIGH"]},
            }
        )
        document["approvedBusinessProcesses"].append("globex-mismatch-desk")

    await activate_globex_policy(api, prefer_another_playbook)
    before = await events(api, "GLX-1002")
    response = await api.client.post(f"{BASE}/GLX-1002/playbook/recalculate", headers=api.as_("operator"))
    assert response.status_code == 409
    assert "the playbook can only change before execution starts" in response.json()["detail"]
    assert await events(api, "GLX-1002") == before
    assert (await playbook(api, "GLX-1002")).json()["playbook"]["id"] == "trade-mismatch-economic-review"
