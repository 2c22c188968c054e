"""Approvals over HTTP: approve, reject and edit resume the graph; a second decision is 409; two
concurrent decisions cannot both run; a passed deadline escalates on its own."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.api_helpers import Api

EXAMPLES = json.loads(
    (Path(__file__).parent.parent / "docs" / "examples" / "globex-markets-exceptions.json").read_text()
)["exceptions"]
REGULATORY = EXAMPLES[2]  # GLX-1003: approval required (regulatory resubmission)


async def pending_approval(api: Api, exception_id: str = "GLX-1003") -> dict[str, Any]:
    await api.post_and_settle("globex-markets", [REGULATORY])
    listing = (await api.client.get("/approvals/globex-markets", headers=api.as_("viewer"))).json()
    [item] = [i for i in listing["items"] if i["exceptionId"] == exception_id]
    return dict(item)


async def case(api: Api, exception_id: str = "GLX-1003") -> dict[str, Any]:
    response = await api.client.get(f"/exceptions/globex-markets/{exception_id}", headers=api.as_("viewer"))
    return dict(response.json())


async def test_queue_shape(api: Api) -> None:
    item = await pending_approval(api)
    assert item["approvalId"] == "APR-GLX-1003-1" and item["status"] == "PENDING"
    assert {"approvalId", "exceptionId", "severity", "createdAt", "deadline", "payload"} <= item.keys()
    assert item["payload"]["allowedDecisions"] == ["approve", "reject", "edit", "comment", "takeover"]
    one = await api.client.get(f"/approvals/globex-markets/{item['approvalId']}", headers=api.as_("viewer"))
    assert one.json()["payload"]["plan"] and one.json()["exceptionId"] == "GLX-1003"
    assert (
        await api.client.get(
            "/approvals/acme-capital/APR-GLX-1003-1", headers=api.as_("viewer", "acme-capital")
        )
    ).status_code == 404


async def test_approve_resumes_the_graph(api: Api) -> None:
    item = await pending_approval(api)
    response = await api.client.post(f"/approvals/globex-markets/{item['approvalId']}/approve",
                                     json={"comment": "checked the report"}, headers=api.as_("operator"))  # fmt: skip
    assert response.status_code == 200, response.text
    decided = response.json()
    assert decided["status"] == "APPROVED" and decided["decidedBy"].startswith("key:")
    assert decided["comment"] == "checked the report"
    after = await case(api)
    assert after["resolutionStatus"] != "PENDING_APPROVAL"
    types = [e["type"] for e in after["record"]["auditTrail"]]
    assert "approval_decided" in types and types.index("approval_decided") > types.index("approval_requested")
    decided_event = next(e for e in after["record"]["auditTrail"] if e["type"] == "approval_decided")
    assert decided_event["actor"]["type"] == "human" and decided_event["actor"]["id"] == decided["decidedBy"]


async def test_reject(api: Api) -> None:
    item = await pending_approval(api)
    response = await api.client.post(f"/approvals/globex-markets/{item['approvalId']}/reject",
                                     json={"reason": "wrong counterparty"}, headers=api.as_("operator"))  # fmt: skip
    assert response.json()["status"] == "REJECTED" and response.json()["reason"] == "wrong counterparty"
    assert (await case(api))["resolutionStatus"] == "REJECTED"


async def test_approve_with_an_edited_plan(api: Api) -> None:
    item = await pending_approval(api)
    edited = [{"type": "add_comment", "name": "Note", "text": "Handled by phone"},
              {"type": "set_status", "name": "Close", "status": "RESOLVED"}]  # fmt: skip
    response = await api.client.post(f"/approvals/globex-markets/{item['approvalId']}/approve",
                                     json={"editedPlan": edited}, headers=api.as_("operator"))  # fmt: skip
    assert response.json()["status"] == "EDITED"
    after = await case(api)
    assert after["resolutionStatus"] == "RESOLVED"
    assert [s["name"] for s in after["result"]["plan"]] == ["Note", "Close"]


async def test_edit_with_a_tool_the_tenant_may_not_use_is_refused_and_stays_pending(api: Api) -> None:
    item = await pending_approval(api)
    tenant = api.services.store.tenant("globex-markets")
    domain = api.services.store.domain("capital-markets")
    assert tenant is not None and domain is not None
    not_allowed = sorted(set(domain.tools) - set(tenant.toolsAllowList))
    tool = not_allowed[0] if not_allowed else "no_such_tool"
    edited = [{"type": "call_tool", "name": "Do it", "tool": tool, "arguments": {}}]
    response = await api.client.post(f"/approvals/globex-markets/{item['approvalId']}/approve",
                                     json={"editedPlan": edited}, headers=api.as_("operator"))  # fmt: skip
    assert response.status_code == 422 and tool in response.json()["detail"]
    again = await api.client.get(f"/approvals/globex-markets/{item['approvalId']}", headers=api.as_("viewer"))
    assert again.json()["status"] == "PENDING"
    ok = await api.client.post(
        f"/approvals/globex-markets/{item['approvalId']}/reject",
        json={"reason": "r"},
        headers=api.as_("operator"),
    )
    assert ok.json()["status"] == "REJECTED"


async def test_second_decision_is_409(api: Api) -> None:
    item = await pending_approval(api)
    url = f"/approvals/globex-markets/{item['approvalId']}"
    assert (
        await api.client.post(f"{url}/reject", json={"reason": "r"}, headers=api.as_("operator"))
    ).status_code == 200
    second = await api.client.post(f"{url}/approve", json={}, headers=api.as_("operator"))
    assert second.status_code == 409
    detail = second.json()["detail"]  # who answered, and when
    assert detail.startswith(f"approval {item['approvalId']} is already rejected (by key:"), detail
    assert " at 20" in detail and detail.endswith(")")


async def test_two_concurrent_decisions_cannot_both_run(api: Api) -> None:
    item = await pending_approval(api)
    url = f"/approvals/globex-markets/{item['approvalId']}"
    first, second = await asyncio.gather(
        api.client.post(f"{url}/approve", json={}, headers=api.as_("operator")),
        api.client.post(f"{url}/reject", json={"reason": "r"}, headers=api.as_("operator")),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    decided = [e for e in (await case(api))["record"]["auditTrail"] if e["type"] == "approval_decided"]
    assert len(decided) == 1


async def test_unknown_fields_and_viewers_are_refused(api: Api) -> None:
    item = await pending_approval(api)
    url = f"/approvals/globex-markets/{item['approvalId']}/approve"
    extra = await api.client.post(url, json={"comment": "x", "force": True}, headers=api.as_("operator"))
    assert extra.status_code == 422 and extra.json()["errors"] == [
        {"path": "body.force", "message": "Extra inputs are not permitted"}
    ]
    viewer = await api.client.post(url, json={}, headers=api.as_("viewer"))
    assert viewer.status_code == 403
    other = await api.client.post(
        url.replace("globex-markets", "acme-capital"), json={}, headers=api.as_("operator")
    )
    assert other.status_code == 403


async def test_deadline_passed_escalates_on_its_own(api: Api) -> None:
    item = await pending_approval(api)
    expired = await api.services.cases.sweep_deadlines(now=datetime(2100, 1, 1, tzinfo=UTC))
    assert expired == [item["approvalId"]]
    await api.settle()  # the sweep claims the approval and queues its job; the job expires it
    approval = (
        await api.client.get(f"/approvals/globex-markets/{item['approvalId']}", headers=api.as_("viewer"))
    ).json()
    assert approval["status"] == "EXPIRED" and approval["decidedBy"] == "deadline-sweeper"
    after = await case(api)
    assert after["resolutionStatus"] == "ESCALATED"
    assert after["result"]["escalation"]["reason"].startswith(
        f"approval {item['approvalId']} passed its deadline"
    )
    assert await api.services.cases.sweep_deadlines(now=datetime(2100, 1, 1, tzinfo=UTC)) == []


async def test_two_tenants_may_use_the_same_exception_id(api: Api) -> None:
    body = {"exceptionId": "SAME-1", "exceptionType": "REGULATORY_REPORT_REJECTED", "rawPayload": {}}
    for tenant in ("globex-markets", "acme-capital"):
        response = await api.client.post(
            f"/exceptions/{tenant}", json=body, headers=api.as_("operator", tenant)
        )
        assert response.status_code == 202
    await api.settle()
    for tenant in ("globex-markets", "acme-capital"):
        [item] = (await api.client.get(f"/approvals/{tenant}", headers=api.as_("viewer", tenant))).json()[
            "items"
        ]
        assert item["approvalId"] == "APR-SAME-1-1" and item["tenantId"] == tenant
    decided = await api.client.post(
        "/approvals/acme-capital/APR-SAME-1-1/reject",
        json={"reason": "r"},
        headers=api.as_("operator", "acme-capital"),
    )
    assert decided.status_code == 200
    still = await api.client.get("/approvals/globex-markets/APR-SAME-1-1", headers=api.as_("viewer"))
    assert still.json()["status"] == "PENDING"
