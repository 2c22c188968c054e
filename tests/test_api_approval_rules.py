"""Approving nothing resolves nothing (issue 12, defect 2).

The sample CRITICAL $75m settlement fail (GLX-1004) gets no plan: its approval cannot be approved as
it stands; the person rejects it with a reason (the case escalates), edits in a plan, or takes the
case over. Rejecting and skipping need a reason. Skipping every remaining step closes the case as
CLOSED_WITHOUT_ACTION, never RESOLVED, and the feedback stage says what was skipped, by whom and why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.api_helpers import Api, plan_digest_of

EXAMPLES = json.loads(
    (Path(__file__).parent.parent / "docs" / "examples" / "globex-markets-exceptions.json").read_text()
)["exceptions"]
BY_ID = {e["exceptionId"]: e for e in EXAMPLES}
CASES = "/exceptions/globex-markets"
APPROVALS = "/approvals/globex-markets"
EMPTY = f"{APPROVALS}/APR-GLX-1004-1"
TWO_MANUAL_STEPS = [
    {"type": "manual", "name": "Call DTC", "instructions": "Agree the corrected SSI with DTC."},
    {"type": "manual", "name": "Book the penalty", "instructions": "Book the CSDR penalty."},
]


async def post(api: Api, *ids: str) -> None:
    response = await api.post_and_settle("globex-markets", [BY_ID[i] for i in ids])
    assert response.status_code == 202, response.text


async def case(api: Api, exception_id: str) -> dict[str, Any]:
    response = await api.client.get(f"{CASES}/{exception_id}", headers=api.as_("viewer"))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def approval(api: Api, url: str = EMPTY) -> dict[str, Any]:
    return dict((await api.client.get(url, headers=api.as_("viewer"))).json())


async def critical_fail_without_a_plan(api: Api) -> dict[str, Any]:
    await post(api, "GLX-1004")
    item = await approval(api)
    assert item["status"] == "PENDING" and item["severity"] == "CRITICAL"
    assert item["payload"]["plan"] == [] and item["payload"]["what"] == "Decide how to resolve this exception"
    assert (await case(api, "GLX-1004"))["resolutionStatus"] == "PENDING_APPROVAL"
    return item


def paths(response: Any) -> list[str]:
    return [e["path"] for e in response.json()["errors"]]


async def test_approving_an_empty_plan_is_refused_and_the_case_keeps_waiting(api: Api) -> None:
    await critical_fail_without_a_plan(api)
    refused = await api.client.post(f"{EMPTY}/approve", json={"comment": "ok"}, headers=api.as_("operator"))
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    detail = refused.json()["detail"]
    assert "no plan" in detail and "reject" in detail and "editedPlan" in detail and "take" in detail
    empty_edit = await api.client.post(
        f"{EMPTY}/approve", json={"editedPlan": []}, headers=api.as_("operator")
    )
    assert empty_edit.status_code == 422 and paths(empty_edit) == ["body.editedPlan"]
    assert (await approval(api))["status"] == "PENDING"
    after = await case(api, "GLX-1004")
    assert after["resolutionStatus"] == "PENDING_APPROVAL" and after["processing"] == "waiting"
    types = [e["type"] for e in after["record"]["auditTrail"]]
    assert "approval_refused" in types and "approval_decided" not in types
    # editing in a plan is a way on: the case now waits on the person's first step
    edited = await api.client.post(f"{EMPTY}/approve", json={"editedPlan": TWO_MANUAL_STEPS},
                                   headers=api.as_("operator"))  # fmt: skip
    assert edited.status_code == 200 and edited.json()["status"] == "EDITED"
    after = await case(api, "GLX-1004")
    assert after["resolutionStatus"] == "IN_PROGRESS" and after["result"]["pending"]["order"] == 1


async def test_reject_needs_a_reason_and_takes_no_plan(api: Api) -> None:
    await post(api, "GLX-1003")
    url = f"{APPROVALS}/APR-GLX-1003-1/reject"
    for body in ({}, {"comment": "no"}, {"reason": ""}, {"reason": "   \n\t"}):
        response = await api.client.post(url, json=body, headers=api.as_("operator"))
        assert response.status_code == 422 and paths(response) == ["body.reason"], (body, response.text)
    with_plan = await api.client.post(url, json={"reason": "x", "editedPlan": TWO_MANUAL_STEPS},
                                      headers=api.as_("operator"))  # fmt: skip
    assert with_plan.status_code == 422 and paths(with_plan) == ["body.editedPlan"]
    assert (await approval(api, f"{APPROVALS}/APR-GLX-1003-1"))["status"] == "PENDING"
    rejected = await api.client.post(url, json={"reason": "LEI renewed upstream", "comment": "see ticket"},
                                     headers=api.as_("operator"))  # fmt: skip
    assert rejected.status_code == 200, rejected.text
    decided = rejected.json()
    assert decided["status"] == "REJECTED" and decided["reason"] == "LEI renewed upstream"
    assert decided["comment"] == "see ticket"
    assert (await case(api, "GLX-1003"))["resolutionStatus"] == "REJECTED"


async def test_the_reject_body_is_documented_as_the_server_takes_it(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    operation = document["paths"]["/approvals/{tenantId}/{approvalId}/reject"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    model = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(model["properties"]) == {"reason", "comment", "planDigest"} and model["required"] == ["reason"]
    assert model["additionalProperties"] is False
    skip = document["paths"]["/exceptions/{tenantId}/{exceptionId}/playbook/steps/{stepOrder}/skip"]["post"]
    ref = skip["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert document["components"]["schemas"][ref.rsplit("/", 1)[-1]]["required"] == ["planDigest", "reason"]
    takeover = document["paths"]["/approvals/{tenantId}/{approvalId}/takeover"]["post"]
    assert "409" in takeover["responses"] and "422" in takeover["responses"]
    assert "202" in takeover["responses"] and "202" in skip["responses"]  # a job still running: its link


async def test_rejecting_an_empty_plan_escalates(api: Api) -> None:
    await critical_fail_without_a_plan(api)
    response = await api.client.post(f"{EMPTY}/reject", json={"reason": "needs treasury, not ops"},
                                     headers=api.as_("operator"))  # fmt: skip
    assert response.status_code == 200 and response.json()["status"] == "REJECTED"
    after = await case(api, "GLX-1004")
    assert after["resolutionStatus"] == "ESCALATED"
    reason = after["result"]["escalation"]["reason"]
    assert "APR-GLX-1004-1" in reason and "no plan" in reason and "needs treasury, not ops" in reason


async def test_skip_needs_a_reason(api: Api) -> None:
    await post(api, "GLX-1002")
    url = f"{CASES}/GLX-1002/playbook/steps/4/skip"
    digest = await plan_digest_of(api, "GLX-1002")
    for body in ({}, {"notes": "not needed"}, {"reason": " "}):
        response = await api.client.post(
            url, json={**body, "planDigest": digest}, headers=api.as_("operator")
        )
        assert response.status_code == 422 and paths(response) == ["body.reason"], (body, response.text)
    view = (await api.client.get(f"{CASES}/GLX-1002/playbook", headers=api.as_("viewer"))).json()
    assert view["currentStep"] == 4 and view["waitingFor"] == "manual_step"


async def test_skipping_every_remaining_step_closes_without_action(api: Api) -> None:
    await post(api, "GLX-1002")
    response = await api.client.post(f"{CASES}/GLX-1002/playbook/steps/4/skip",
                                     json={"reason": "duplicate of T-20261121-000186", "notes": "desk says so",
                                           "planDigest": await plan_digest_of(api, "GLX-1002")},
                                     headers=api.as_("operator"))  # fmt: skip
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["resolutionStatus"] == "CLOSED_WITHOUT_ACTION"
    step = view["steps"][3]
    assert step["status"] == "SKIPPED" and step["skipReason"] == "duplicate of T-20261121-000186"
    assert step["notes"] == "desk says so" and step["completedBy"].startswith("key:")
    assert view["steps"][4]["name"] == "Resolve" and view["steps"][4]["status"] == "SKIPPED"
    after = await case(api, "GLX-1002")
    assert after["resolutionStatus"] == "CLOSED_WITHOUT_ACTION"
    feedback = [d for d in after["decisions"] if d["stage"] == "feedback"][-1]
    assert feedback["decision"] == "OUTCOME_CLOSED_WITHOUT_ACTION"
    said = " ".join(e["detail"] for e in feedback["evidence"])
    assert "step 4" in said and step["name"] in said and step["completedBy"] in said
    assert "duplicate of T-20261121-000186" in said
    outcome = after["result"]["outcome"]
    assert outcome["status"] == "CLOSED_WITHOUT_ACTION" and outcome["outcome"] == "closed_without_action"
    assert outcome["skipped"] == [{"order": 4, "name": step["name"], "by": step["completedBy"],
                                   "reason": "duplicate of T-20261121-000186"}]  # fmt: skip
    events = await api.client.get(f"{CASES}/GLX-1002/events?type=status_changed", headers=api.as_("viewer"))
    assert all(e["data"]["to"] != "RESOLVED" for e in events.json()["items"])
    listed = await api.client.get(f"{CASES}?status=CLOSED_WITHOUT_ACTION", headers=api.as_("viewer"))
    assert [i["exceptionId"] for i in listed.json()["items"]] == ["GLX-1002"]
    assert listed.json()["countsByStatus"] == {"CLOSED_WITHOUT_ACTION": 1}
    metrics = (await api.client.get("/metrics/globex-markets", headers=api.as_("viewer"))).json()
    assert metrics["byStatus"] == {"CLOSED_WITHOUT_ACTION": 1} and metrics["closedWithoutAction"] == 1
    assert metrics["mttrSeconds"] is None  # closing without action is not a resolution


async def test_some_steps_done_and_the_rest_skipped_resolves_and_lists_the_skipped(api: Api) -> None:
    await critical_fail_without_a_plan(api)
    await api.client.post(
        f"{EMPTY}/approve", json={"editedPlan": TWO_MANUAL_STEPS}, headers=api.as_("operator")
    )
    digest = await plan_digest_of(api, "GLX-1004")
    done = await api.client.post(f"{CASES}/GLX-1004/playbook/steps/1/complete",
                                 json={"notes": "SSI fixed", "planDigest": digest}, headers=api.as_("operator"))  # fmt: skip
    assert done.status_code == 200 and done.json()["resolutionStatus"] == "IN_PROGRESS"
    skipped = await api.client.post(f"{CASES}/GLX-1004/playbook/steps/2/skip",
                                    json={"reason": "no penalty: settled within the day", "planDigest": digest},
                                    headers=api.as_("operator"))  # fmt: skip
    assert skipped.status_code == 200 and skipped.json()["resolutionStatus"] == "RESOLVED"
    after = await case(api, "GLX-1004")
    feedback = [d for d in after["decisions"] if d["stage"] == "feedback"][-1]
    said = " ".join(e["detail"] for e in feedback["evidence"])
    assert "step 2 Book the penalty skipped by key:" in said and "no penalty: settled within the day" in said
    assert [s["order"] for s in after["result"]["outcome"]["skipped"]] == [2]


async def test_take_over(api: Api) -> None:
    await critical_fail_without_a_plan(api)
    response = await api.client.post(f"{EMPTY}/takeover", json={"comment": "calling DTC myself"},
                                     headers=api.as_("operator"))  # fmt: skip
    assert response.status_code == 200, response.text
    taken = response.json()
    who = taken["decidedBy"]
    assert taken["status"] == "TAKEN_OVER" and taken["decision"] == "takeover" and who.startswith("key:")
    after = await case(api, "GLX-1004")
    assert after["resolutionStatus"] == "IN_PROGRESS" and after["processing"] == "waiting"
    assert after["record"]["owner"] == who
    [event] = [e for e in after["record"]["auditTrail"] if e["type"] == "case_taken_over"]
    assert event["actor"] == {"type": "human", "id": who} and event["data"]["owner"] == who
    assert event["data"]["comment"] == "calling DTC myself"
    listed = (await api.client.get(f"{CASES}?status=IN_PROGRESS", headers=api.as_("viewer"))).json()
    assert [(i["exceptionId"], i["owner"]) for i in listed["items"]] == [("GLX-1004", who)]
    view = (await api.client.get(f"{CASES}/GLX-1004/playbook", headers=api.as_("viewer"))).json()
    assert view["playbook"]["origin"] == "takeover" and view["waitingFor"] == "manual_step"
    assert [s["type"] for s in view["steps"]] == ["manual"] and who in view["steps"][0]["instructions"]
    again = await api.client.post(f"{EMPTY}/takeover", json={}, headers=api.as_("operator"))
    assert again.status_code == 409
    # nothing resolves it but the person: completing the hand-work step does
    finished = await api.client.post(f"{CASES}/GLX-1004/playbook/steps/1/complete",
                                     json={"notes": "DTC re-instructed, settled",
                                           "planDigest": await plan_digest_of(api, "GLX-1004")},
                                     headers=api.as_("operator"))  # fmt: skip
    assert finished.json()["resolutionStatus"] == "RESOLVED"


async def test_take_over_is_for_operators_of_the_tenant(api: Api) -> None:
    await critical_fail_without_a_plan(api)
    assert (await api.client.post(f"{EMPTY}/takeover", json={}, headers=api.as_("viewer"))).status_code == 403
    other = await api.client.post(EMPTY.replace("globex-markets", "acme-capital") + "/takeover", json={},
                                  headers=api.as_("operator", "acme-capital"))  # fmt: skip
    assert other.status_code == 404
    extra = await api.client.post(f"{EMPTY}/takeover", json={"editedPlan": []}, headers=api.as_("operator"))
    assert extra.status_code == 422 and paths(extra) == ["body.editedPlan"]
