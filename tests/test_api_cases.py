"""Ingestion, listing, reading cases and timelines over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.api_helpers import Api

EXAMPLES = json.loads(
    (Path(__file__).parent.parent / "docs" / "examples" / "globex-markets-exceptions.json").read_text()
)["exceptions"]


async def test_ingest_processes_in_the_background(api: Api) -> None:
    response = await api.post_and_settle("globex-markets", EXAMPLES)
    assert response.status_code == 202
    assert response.json() == {"exceptionIds": [f"GLX-{1000 + i}" for i in range(1, 8)]}
    listing = (await api.client.get("/exceptions/globex-markets", headers=api.as_("viewer"))).json()
    assert listing["total"] == 7
    assert listing["countsByStatus"] == {
        "ESCALATED": 1,
        "IN_PROGRESS": 1,
        "PENDING_APPROVAL": 2,
        "RESOLVED": 3,
    }


async def test_single_exception_and_generated_id(api: Api) -> None:
    response = await api.post_and_settle(
        "globex-markets", {"exceptionType": "SETTLEMENT_DELAY_NOTICE", "rawPayload": {}}
    )
    [exception_id] = response.json()["exceptionIds"]
    assert exception_id.startswith("EX-")
    detail = (
        await api.client.get(f"/exceptions/globex-markets/{exception_id}", headers=api.as_("viewer"))
    ).json()
    assert (
        detail["resolutionStatus"] == "RESOLVED"
        and detail["record"]["exceptionType"] == "SETTLEMENT_DELAY_NOTICE"
    )
    assert [d["stage"] for d in detail["decisions"]] == [
        "intake",
        "triage",
        "policy",
        "supervisor",
        "feedback",
    ]
    trail = detail["record"]["auditTrail"]
    assert [e["seq"] for e in trail] == list(range(1, len(trail) + 1))
    assert all(e["packVersions"]["tenant"].startswith("globex-markets@") for e in trail)


async def test_idempotent_ingestion(api: Api) -> None:
    first = await api.post_and_settle("globex-markets", [EXAMPLES[0]], **{"Idempotency-Key": "batch-1"})
    again = await api.post_and_settle("globex-markets", [EXAMPLES[0]], **{"Idempotency-Key": "batch-1"})
    assert first.json() == again.json() == {"exceptionIds": ["GLX-1001"]}
    anon = await api.post_and_settle("globex-markets", [{"rawPayload": {}, "exceptionType": "SETTLEMENT_DELAY_NOTICE"}],
                                     **{"Idempotency-Key": "batch-2"})  # fmt: skip
    anon_again = await api.post_and_settle(
        "globex-markets", [{"rawPayload": {}}], **{"Idempotency-Key": "batch-2"}
    )
    assert anon.json() == anon_again.json()
    same_id = await api.post_and_settle("globex-markets", [EXAMPLES[0]])
    assert same_id.json() == {"exceptionIds": ["GLX-1001"]}
    events = (
        await api.client.get("/exceptions/globex-markets/GLX-1001/events", headers=api.as_("viewer"))
    ).json()
    assert sum(e["type"] == "stage_decision" and e["stage"] == "intake" for e in events["items"]) == 1


async def test_filters_search_and_pagination(api: Api) -> None:
    await api.post_and_settle("globex-markets", EXAMPLES)
    get = lambda q: api.client.get(f"/exceptions/globex-markets?{q}", headers=api.as_("viewer"))  # noqa: E731
    assert (await get("status=RESOLVED")).json()["total"] == 3
    assert (await get("status=RESOLVED,ESCALATED")).json()["total"] == 4
    assert {i["severity"] for i in (await get("severity=HIGH")).json()["items"]} == {"HIGH"}
    assert (await get("type=TRADE_MISMATCH")).json()["items"][0]["exceptionId"] == "GLX-1002"
    assert [i["exceptionId"] for i in (await get("text=glx-1005")).json()["items"]] == ["GLX-1005"]
    page = (await get("limit=2&offset=2&sort=receivedAt")).json()
    assert page["total"] == 7 and len(page["items"]) == 2 and page["offset"] == 2
    assert (await get("receivedFrom=2000-01-01T00:00:00Z&receivedTo=2001-01-01T00:00:00Z")).json()[
        "total"
    ] == 0
    bad = await get("sort=colour")
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"] == "query.sort"


async def test_events_paginated_and_filtered(api: Api) -> None:
    await api.post_and_settle("globex-markets", [EXAMPLES[0]])
    url = "/exceptions/globex-markets/GLX-1001/events"
    everything = (await api.client.get(url, headers=api.as_("viewer"))).json()
    tools = (await api.client.get(f"{url}?type=tool_call", headers=api.as_("viewer"))).json()
    assert tools["total"] >= 1 and all(e["type"] == "tool_call" for e in tools["items"])
    page = (await api.client.get(f"{url}?limit=3&offset=3", headers=api.as_("viewer"))).json()
    assert [e["seq"] for e in page["items"]] == [4, 5, 6] and page["total"] == everything["total"]
    assert (
        await api.client.get("/exceptions/globex-markets/NOPE/events", headers=api.as_("viewer"))
    ).status_code == 404


async def test_validation_errors_name_the_field_and_accept_nothing(api: Api) -> None:
    body: list[dict[str, Any]] = [EXAMPLES[0], {"severity": "SEVERE", "rawPayload": {}}, {"colour": "red"}]
    response = await api.post_and_settle("globex-markets", body)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert {e["path"] for e in response.json()["errors"]} == {"body[1].severity", "body[2].colour"}
    assert (await api.client.get("/exceptions/globex-markets", headers=api.as_("viewer"))).json()[
        "total"
    ] == 0
    wrong_tenant = await api.post_and_settle("globex-markets", {"tenantId": "acme-capital", "rawPayload": {}})
    assert wrong_tenant.json()["errors"] == [
        {"path": "body.tenantId", "message": "does not match the path tenant globex-markets"}
    ]


async def test_oversized_body_is_413(api: Api) -> None:
    big = {"rawPayload": {"blob": "x" * (api.settings.max_body_bytes + 10)}}
    response = await api.client.post("/exceptions/globex-markets", json=big, headers=api.as_("operator"))
    assert response.status_code == 413 and response.json()["status"] == 413


async def test_a_batch_repeating_stored_and_its_own_exceptions_processes_each_once(api: Api) -> None:
    await api.post_and_settle("globex-markets", [EXAMPLES[0]])
    batch = [EXAMPLES[0], EXAMPLES[1], EXAMPLES[1]]  # one already stored, one new sent twice
    response = await api.post_and_settle("globex-markets", batch)
    assert response.status_code == 202
    assert response.json() == {"exceptionIds": ["GLX-1001", "GLX-1002", "GLX-1002"]}
    for exception_id in ("GLX-1001", "GLX-1002"):
        events = (
            await api.client.get(
                f"/exceptions/globex-markets/{exception_id}/events", headers=api.as_("viewer")
            )
        ).json()
        intakes = [e for e in events["items"] if e["type"] == "stage_decision" and e["stage"] == "intake"]
        assert len(intakes) == 1, exception_id
    resent = await api.post_and_settle("globex-markets", [EXAMPLES[1], EXAMPLES[0]])
    assert resent.json() == {"exceptionIds": ["GLX-1002", "GLX-1001"]}
    listed = (await api.client.get("/exceptions/globex-markets", headers=api.as_("viewer"))).json()
    assert listed["total"] == 2


async def test_cases_without_a_type_sort_last_both_ways(api: Api) -> None:
    await api.post_and_settle("globex-markets", [*EXAMPLES[:2], {"exceptionId": "NO-TYPE", "rawPayload": {}}])
    get = lambda q: api.client.get(f"/exceptions/globex-markets?{q}", headers=api.as_("viewer"))  # noqa: E731
    for sort in ("exceptionType", "-exceptionType"):
        items = (await get(f"sort={sort}")).json()["items"]
        assert [i["exceptionId"] for i in items][-1] == "NO-TYPE", sort
        assert items[-1]["exceptionType"] is None and all(i["exceptionType"] for i in items[:-1])
