"""The exceptions pages of the UI over HTTP: the list (counts, filters, search, sort, pages, empty and
error states), one case's detail (stages, events, tools, playbook, approval), and the forms that
complete a manual step, decide an approval and recalculate a playbook — with roles and CSRF enforced."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import yaml

from app.db.models import ExceptionCase
from tests.api_helpers import Api

EXAMPLES = json.loads(
    (Path(__file__).parent.parent / "docs" / "examples" / "globex-markets-exceptions.json").read_text()
)["exceptions"]
TENANT = "globex-markets"
LIST = f"/ui/t/{TENANT}/exceptions"
DASH = "\N{EN DASH}"  # as in the pager's range, 1 to 7 of 7


async def ingest(api: Api) -> None:
    response = await api.post_and_settle(TENANT, EXAMPLES)
    assert response.status_code == 202, response.text


async def sign_in(api: Api, role: str) -> None:
    response = await api.client.post(
        "/ui/login", data={"credential": api.keys[(TENANT, role)], "next": "/ui/"}
    )
    assert response.status_code == 303, response.text


async def get(api: Api, url: str, expect: int = 200) -> str:
    response = await api.client.get(url)
    assert response.status_code == expect, response.text
    return response.text


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def ids_in_table(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<code>(GLX-\d+)</code></a>", body)


def count_of(html: str, label: str) -> int:
    found = re.search(rf"{re.escape(label)}</span> <strong>(\d+)</strong>", html)
    assert found, f"no count for {label}"
    return int(found.group(1))


async def post_form(api: Api, url: str, data: dict[str, Any]) -> httpx.Response:
    return await api.client.post(url, data=data)


async def follow(api: Api, response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    return await get(api, response.headers["location"])


async def case_status(api: Api, exception_id: str) -> str:
    response = await api.client.get(f"/exceptions/{TENANT}/{exception_id}", headers=api.as_("viewer"))
    return str(response.json()["resolutionStatus"])


async def test_the_list_shows_every_case_and_the_counts_by_status(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "viewer")
    html = await get(api, LIST)
    assert sorted(ids_in_table(html)) == [f"GLX-100{i}" for i in range(1, 8)]
    assert re.search(r"All <strong>7</strong>", html)
    assert count_of(html, "RESOLVED") == 3 and count_of(html, "PENDING_APPROVAL") == 2
    assert (
        count_of(html, "IN_PROGRESS") == 1
        and count_of(html, "ESCALATED") == 1
        and count_of(html, "OPEN") == 0
    )
    assert f'href="{LIST}?status=RESOLVED"' in html  # each count is a link that filters
    assert f"1{DASH}7 of 7" in html
    assert '<a href="/ui/t/globex-markets/exceptions/GLX-1003"><code>GLX-1003</code></a>' in html
    assert '<option value="REGULATORY_REPORT_REJECTED"' in html and '<option value="CRITICAL"' in html
    assert 'aria-current="page">Exceptions</a>' in html


async def test_filters_by_status_and_severity_and_searches(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "viewer")
    pending = await get(api, f"{LIST}?status=PENDING_APPROVAL")
    assert sorted(ids_in_table(pending)) == ["GLX-1003", "GLX-1004"]
    assert count_of(pending, "RESOLVED") == 3  # the other statuses still count, to switch to them
    assert '<option value="PENDING_APPROVAL" selected>' in pending
    low = await get(api, f"{LIST}?severity=LOW")
    assert sorted(ids_in_table(low)) == ["GLX-1005", "GLX-1007"]
    both = await get(api, f"{LIST}?status=RESOLVED&severity=LOW&type=SEC_MASTER_MISMATCH")
    assert ids_in_table(both) == ["GLX-1007"]
    found = await get(api, f"{LIST}?q=regulatory")
    assert ids_in_table(found) == ["GLX-1003"]
    assert 'value="regulatory"' in found and "Clear filters" in found
    today = await get(api, f"{LIST}?from=2000-01-01&to=2999-12-31")
    assert len(ids_in_table(today)) == 7
    too_early = await get(api, f"{LIST}?to=2000-01-01")
    assert "No exceptions match these filters." in too_early and "<tbody>" not in too_early


async def test_sorts_by_a_column_both_ways(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "viewer")
    html = await get(api, f"{LIST}?sort=type&dir=asc")
    order = [i for i in ids_in_table(html) if i != "GLX-1006"]  # no type: NULLs sort differently per database
    assert order == ["GLX-1003", "GLX-1007", "GLX-1005", "GLX-1001", "GLX-1004", "GLX-1002"]
    assert 'aria-sort="ascending"' in html
    assert f'href="{LIST}?sort=type">Type' in html  # the header flips the direction (desc is the default)
    reverse = await get(api, f"{LIST}?sort=type&dir=desc")
    descending = [i for i in ids_in_table(reverse) if i != "GLX-1006"]
    assert descending == [
        "GLX-1002",
        "GLX-1001",
        "GLX-1004",
        "GLX-1005",
        "GLX-1007",
        "GLX-1003",
    ]  # ties by id
    assert 'aria-sort="descending"' in reverse


async def test_pages_through_the_list(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "viewer")
    first = await get(api, f"{LIST}?sort=received&dir=asc&size=3")
    assert len(ids_in_table(first)) == 3 and f"1{DASH}3 of 7" in first
    assert f'href="{LIST}?dir=asc&amp;page=2&amp;size=3" rel="next"' in first
    assert '<span class="muted" aria-disabled="true">← Previous</span>' in first
    last = await get(api, f"{LIST}?sort=received&dir=asc&size=3&page=3")
    assert len(ids_in_table(last)) == 1 and f"7{DASH}7 of 7" in last
    assert '<span class="muted" aria-disabled="true">Next →</span>' in last
    seen = (
        ids_in_table(first)
        + ids_in_table(await get(api, f"{LIST}?dir=asc&page=2&size=3"))
        + ids_in_table(last)
    )
    assert sorted(seen) == [f"GLX-100{i}" for i in range(1, 8)]
    beyond = await get(api, f"{LIST}?size=3&page=9")  # past the end: the last page
    assert f"7{DASH}7 of 7" in beyond


async def test_empty_states_and_bad_filters(api: Api) -> None:
    await sign_in(api, "viewer")
    assert "No exceptions have been received for this tenant yet." in await get(api, LIST)
    await ingest(api)
    nothing = await get(api, f"{LIST}?q=no-such-thing")
    assert "No exceptions match these filters." in nothing
    assert f'<a href="{LIST}">Clear the filters</a>' in nothing and "<table>" not in nothing
    bad = await get(api, f"{LIST}?from=2026-13-45&status=NOPE&page=x", expect=400)
    assert "Received from is not a date: use YYYY-MM-DD" in bad
    assert "the status is none of OPEN, " in bad and "page must be a whole number from 1 to 100000" in bad
    assert 'role="alert">✗' in bad and "<table>" not in bad
    backwards = await get(api, f"{LIST}?from=2026-02-01&to=2026-01-01", expect=400)
    assert "Received from is after Received to" in backwards


async def test_detail_of_a_resolved_case(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "viewer")
    html = await get(api, f"{LIST}/GLX-1001")
    assert (
        "<h1><code>GLX-1001</code>" in html
        and "SETTLEMENT_FAIL" in html
        and "settlements-escalations" in html
    )
    for stage, decision in (("Intake", "TYPE_GIVEN"), ("Triage", "SEVERITY_HIGH"),
                            ("Policy", "ACTIONABLE_APPROVED_PROCESS"), ("Resolution", "PLAN_READY"),
                            ("Execute", "STEPS_DONE"), ("Feedback", "OUTCOME_AUTO_RESOLVED")):  # fmt: skip
        assert re.search(rf"<strong>{stage}</strong>\s*<code>{decision}</code>", html), stage
    assert html.count("<strong>Supervisor</strong>") == 2  # reviewed after policy and after resolution
    assert (
        '<span class="kind">taxonomy</span> SETTLEMENT_FAIL is an exception type of capital-markets' in html
    )
    assert "not reached" not in html
    tools = html.split('id="tools-h"', 1)[1].split("</section>", 1)[0]
    assert (
        "<code>get_settlement_status</code>" in tools and "<code>retry_settlement_instruction</code>" in tools
    )
    assert "DRY_RUN" in tools and "dry-run" in tools and "settlements.example.internal" in tools
    events = html.split('id="events-h"', 1)[1].split("</section>", 1)[0]
    assert '<span class="kind kind-tool">tool</span> <code>tool_call</code>' in events
    assert '<span class="kind kind-playbook">playbook</span> <code>playbook_started</code>' in events
    assert "agent: exops" in events and "playbook settlement-fail-resubmit (4 steps)" in events
    assert "<summary>Raw payload</summary>" in html and "SI-CREST-7712004" in html
    assert "Similar-case memory is off on this server." in html
    assert "data-poll" not in html  # nothing will change any more
    assert "<code>settlement-fail-resubmit</code>" in html and "✓ yes" in html  # the candidate table


async def test_a_case_waiting_on_a_manual_step_and_its_notifications(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "operator")
    html = await get(api, f"{LIST}/GLX-1002")
    assert re.search(r'<li class="current" aria-current="step">\s*<div>\s*<strong>4\. Agree economics', html)
    assert f'action="{LIST}/GLX-1002/steps/4/complete"' in html
    skip = re.search(rf'<form method="post" action="{LIST}/GLX-1002/steps/4/skip" class="step-skip">.*?</form>',
                     html, re.S)  # fmt: skip
    assert skip and re.search(r'<textarea id="step-reason-4" name="reason"[^>]* required>', skip.group(0))
    assert "waiting for a person to do step 4: Agree economics with trader and counterparty" in html
    events = await api.client.get(f"/exceptions/{TENANT}/GLX-1002/events?limit=1", headers=api.as_("viewer"))
    total = events.json()["total"]
    assert f'data-poll="{LIST}/GLX-1002/status.json" data-value="IN_PROGRESS|waiting|{total}"' in html
    assert "Channel <strong>ops-email</strong>" in html and "recipients: mo@globex-markets.example" in html
    status = await api.client.get(f"{LIST}/GLX-1002/status.json")
    assert status.json() == {"value": f"IN_PROGRESS|waiting|{total}"}


async def test_completing_the_manual_step_through_the_form(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "operator")
    page = await get(api, f"{LIST}/GLX-1002")
    csrf = csrf_of(page)
    digest = re.search(r'name="plan_digest" value="([0-9a-f]{16})"', page)
    assert digest  # each step form says which plan it showed
    response = await post_form(api, f"{LIST}/GLX-1002/steps/4/complete",
                               {"csrf_token": csrf, "notes": "agreed with the desk", "plan_digest": digest.group(1)})  # fmt: skip
    assert response.headers["location"] == f"{LIST}/GLX-1002"  # the message is not in the URL
    html = await follow(api, response)
    assert 'role="status">✓ Step 4 completed.</p>' in html
    assert "Step 4 completed." not in await get(api, f"{LIST}/GLX-1002")  # shown once
    step = html.split("<strong>4. Agree economics", 1)[1].split("</li>", 1)[0]
    assert "SUCCESS" in step and "Notes: agreed with the desk" in step and "(human)" in step
    assert "Complete step 4" not in html
    view = await api.client.get(f"/exceptions/{TENANT}/GLX-1002/playbook", headers=api.as_("viewer"))
    assert view.json()["steps"][3]["status"] == "SUCCESS"
    assert (
        '<span class="kind kind-playbook">playbook</span> <span class="kind kind-human">human</span>' in html
    )
    again = await post_form(api, f"{LIST}/GLX-1002/steps/4/skip",
                            {"csrf_token": csrf, "reason": "late", "plan_digest": digest.group(1)})  # fmt: skip
    assert 'role="alert">✗ step 4 was already completed by key:' in await follow(api, again)


async def test_approving_through_the_form(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "operator")
    html = await get(api, f"{LIST}/GLX-1003")
    assert "Approval needed <code>APR-GLX-1003-1</code>" in html
    assert "Run playbook regulatory-report-correct-resubmit" in html
    assert "requireHumanApprovalFor lists REGULATORY_REPORT_REJECTED" in html
    assert "- name: Assign to regulatory reporting" in html  # the plan as YAML, ready to edit
    assert "<p>Look up EMIR-VR-0043 in the repository" in html  # manual instructions filled from the case
    digest = re.search(r'name="plan_digest" value="([0-9a-f]{16})"', html)
    assert digest
    response = await post_form(api, f"{LIST}/GLX-1003/approvals/APR-GLX-1003-1/decide",
                               {"csrf_token": csrf_of(html), "plan_digest": digest.group(1), "decision": "approve",
                                "comment": "looks right"})  # fmt: skip
    after = await follow(api, response)
    assert "✓ Approved: the plan runs now." in after
    assert await case_status(api, "GLX-1003") != "PENDING_APPROVAL"
    assert 'id="approval-h"' not in after  # no approval box any more
    assert "approve by key:" in after and ": looks right" in after  # the decision in the events


async def test_a_stale_plan_digest_is_refused(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "operator")
    csrf = csrf_of(await get(api, f"{LIST}/GLX-1003"))
    response = await post_form(api, f"{LIST}/GLX-1003/approvals/APR-GLX-1003-1/decide",
                               {"csrf_token": csrf, "plan_digest": "0000000000000000", "decision": "approve"})  # fmt: skip
    html = await follow(api, response)
    assert (
        "✗ the plan changed since this page was loaded (it was recalculated): review it and decide again"
        in html
    )
    assert await case_status(api, "GLX-1003") == "PENDING_APPROVAL"


async def test_editing_the_plan_with_invalid_yaml_and_commenting(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "operator")
    html = await get(api, f"{LIST}/GLX-1003")
    digest = re.search(r'name="plan_digest" value="([0-9a-f]{16})"', html)
    assert digest
    url = f"{LIST}/GLX-1003/approvals/APR-GLX-1003-1/decide"
    form = {"csrf_token": csrf_of(html), "plan_digest": digest.group(1)}
    broken = await follow(
        api, await post_form(api, url, {**form, "decision": "edit", "edited_plan": "- name: [x"})
    )
    assert "✗ the edited plan is not valid YAML or JSON" in broken
    wrong = await follow(
        api, await post_form(api, url, {**form, "decision": "edit", "edited_plan": "- name: x"})
    )
    assert "✗ edited plan[0]" in wrong
    noted = await follow(
        api, await post_form(api, url, {**form, "decision": "comment", "comment": "checking"})
    )
    assert "Comment added; the approval still waits." in noted and "</small>: checking</li>" in noted
    unknown = await follow(api, await post_form(api, url, {**form, "decision": "maybe"}))
    assert "unknown decision “maybe”" in unknown
    assert await case_status(api, "GLX-1003") == "PENDING_APPROVAL"
    prefilled = re.search(r'<textarea id="edited-plan" name="edited_plan"[^>]*>(.*?)</textarea>', noted, re.S)
    assert prefilled
    steps = yaml.safe_load(unescape(prefilled.group(1)))
    assert [step["name"] for step in steps][:2] == [
        "Assign to regulatory reporting",
        "Read the underlying trade",
    ]
    edited = yaml.safe_dump(steps[:1] + steps[-1:], sort_keys=False)  # keep the first and the last step
    approved = await follow(
        api, await post_form(api, url, {**form, "decision": "edit", "edited_plan": edited})
    )
    assert "✓ Approved with your edited plan." in approved
    assert "Plan edited at approval" in approved and "<strong>2. Resolve</strong>" in approved
    assert await case_status(api, "GLX-1003") == "RESOLVED"


async def test_recalculating_the_playbook(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "operator")
    html = await get(api, f"{LIST}/GLX-1003")
    assert "Recalculate playbook" in html
    same = await follow(
        api, await post_form(api, f"{LIST}/GLX-1003/recalculate", {"csrf_token": csrf_of(html)})
    )
    assert "the choice is unchanged (regulatory-report-correct-resubmit)" in same
    refused = await follow(
        api, await post_form(api, f"{LIST}/GLX-1006/recalculate", {"csrf_token": csrf_of(html)})
    )
    assert "✗ case GLX-1006 has no policy decision to recalculate" in refused


async def test_a_viewer_sees_no_actions_and_cannot_post(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "viewer")
    approval = await get(api, f"{LIST}/GLX-1003")
    step = await get(api, f"{LIST}/GLX-1002")
    for html in (approval, step):
        assert 'name="decision"' not in html and "Recalculate playbook" not in html
        assert "Complete step" not in html and "Skip step" not in html
        assert html.count("<button") == 1  # only "Sign out"
    assert "An operator decides this approval." in approval
    assert "Waiting for an operator to complete or skip this step." in step
    csrf = csrf_of(approval)
    for url in (f"{LIST}/GLX-1002/steps/4/complete", f"{LIST}/GLX-1003/recalculate",
                f"{LIST}/GLX-1003/approvals/APR-GLX-1003-1/decide"):  # fmt: skip
        response = await post_form(api, url, {"csrf_token": csrf, "decision": "reject"})
        assert response.status_code == 403 and "role viewer may not do this" in response.text
    assert await case_status(api, "GLX-1003") == "PENDING_APPROVAL"


async def test_a_post_without_the_csrf_token_is_refused(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "operator")
    response = await post_form(
        api, f"{LIST}/GLX-1003/approvals/APR-GLX-1003-1/decide", {"decision": "reject"}
    )
    assert response.status_code == 403 and "missing or wrong CSRF token" in response.text
    wrong = await post_form(api, f"{LIST}/GLX-1002/steps/4/complete", {"csrf_token": "forged"})
    assert wrong.status_code == 403
    assert await case_status(api, "GLX-1003") == "PENDING_APPROVAL"
    assert await case_status(api, "GLX-1002") == "IN_PROGRESS"


async def test_a_case_not_processed_yet_polls_and_shows_empty_sections(api: Api) -> None:
    async with api.services.db.session() as session:
        session.add(ExceptionCase(tenant_id=TENANT, exception_id="GLX-2000", source_system="murex",
                                  reported_type="SETTLEMENT_FAIL", raw={"rawPayload": {"tradeId": "T-9"}},
                                  processing="accepted", status="OPEN"))  # fmt: skip
    await sign_in(api, "viewer")
    html = await get(api, f"{LIST}/GLX-2000")
    assert f'data-poll="{LIST}/GLX-2000/status.json" data-value="OPEN|accepted|0"' in html
    assert "▶ The case is being processed (accepted)." in html
    assert "No events recorded yet." in html and "No tool was called for this case." in html
    assert "No playbook for this case." in html and html.count("— not reached") == 6
    assert "processing (accepted)" in await get(api, LIST)
    status = await api.client.get(f"{LIST}/GLX-2000/status.json")
    assert status.json() == {"value": "OPEN|accepted|0"} and status.headers["cache-control"] == "no-store"


async def test_an_unknown_case_is_404(api: Api) -> None:
    await sign_in(api, "operator")
    html = await get(api, f"{LIST}/GLX-9999", expect=404)
    assert "no exception GLX-9999 for tenant globex-markets" in html
    assert (await api.client.get(f"{LIST}/GLX-9999/status.json")).status_code == 404
    csrf = csrf_of(await get(api, LIST))
    response = await post_form(api, f"{LIST}/GLX-9999/recalculate", {"csrf_token": csrf})
    assert response.status_code == 404


def form_with(html: str, css: str) -> str:
    found = re.search(rf'<form method="post" action="[^"]+" class="{css}">.*?</form>', html, re.S)
    assert found, f"no {css} form"
    return found.group(0)


async def test_an_approval_without_a_plan_offers_edit_reject_and_take_over_but_no_approve(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "operator")
    html = await get(api, f"{LIST}/GLX-1004")
    box = html.split('id="approval-h"', 1)[1].split("</section>", 1)[0]
    assert (
        "<strong>No plan is proposed</strong>: no approved playbook applies, so there is nothing to approve."
        in box
    )
    assert 'value="approve"' not in box and "✓ Approve</button>" not in box
    reject = form_with(box, "reject")
    assert '<input type="hidden" name="decision" value="reject">' in reject
    assert re.search(r'<textarea id="reject-reason" name="reason"[^>]* required></textarea>', reject)
    assert "with no plan proposed the case escalates" in reject
    takeover = form_with(box, "takeover")
    assert (
        '<input type="hidden" name="decision" value="takeover">' in takeover
        and "☞ Take over</button>" in takeover
    )
    assert "<details open>\n    <summary>Edit the plan</summary>" in box
    url = f"{LIST}/GLX-1004/approvals/APR-GLX-1004-1/decide"
    digest = re.search(r'name="plan_digest" value="([0-9a-f]{16})"', box)
    assert digest
    form = {"csrf_token": csrf_of(html), "plan_digest": digest.group(1)}
    refused = await follow(api, await post_form(api, url, {**form, "decision": "approve"}))
    assert "✗ there is no plan to approve: write the steps with “Edit the plan”" in refused
    no_reason = await follow(api, await post_form(api, url, {**form, "decision": "reject", "reason": " "}))
    assert "✗ say why you reject it: a reason is required" in no_reason
    assert await case_status(api, "GLX-1004") == "PENDING_APPROVAL"
    taken = await follow(api, await post_form(api, url, {**form, "decision": "takeover", "comment": "mine"}))
    assert "✓ You took the case over: it stays open and assigned to you" in taken
    assert await case_status(api, "GLX-1004") == "IN_PROGRESS"
    owner = re.search(r"<dt>Owner</dt><dd>(key:[^<]+)</dd>", taken)
    assert (
        owner and "Taken over by a person" in taken and "<strong>1. Handle the case by hand</strong>" in taken
    )
    assert f"{owner.group(1)} took this case over." in taken and "case_taken_over" in taken
    assert f"{owner.group(1)} took the case over: mine" in taken  # the event, in words
    skipped = await follow(api, await post_form(api, f"{LIST}/GLX-1004/steps/1/skip",
                                                {"csrf_token": form["csrf_token"], "reason": ""}))  # fmt: skip
    assert "✗ say why the step is skipped: a reason is required" in skipped
    step_digest = re.search(r'name="plan_digest" value="([0-9a-f]{16})"', taken.split("step-skip", 1)[0])
    assert step_digest
    closed = await follow(api, await post_form(api, f"{LIST}/GLX-1004/steps/1/skip",
                                               {"csrf_token": form["csrf_token"], "reason": "DTC fixed it",
                                                "plan_digest": step_digest.group(1)}))  # fmt: skip
    assert (
        '<span class="badge status-closed_without_action"><span aria-hidden="true">∅</span> CLOSED_WITHOUT_ACTION'
        in closed
    )
    assert "Skipped because: DTC fixed it" in closed and "OUTCOME_CLOSED_WITHOUT_ACTION" in closed
    assert "step 1 Handle the case by hand — skipped because: DTC fixed it" in closed  # the event, in words
    listed = await get(api, f"{LIST}?status=CLOSED_WITHOUT_ACTION")
    assert ids_in_table(listed) == ["GLX-1004"] and count_of(listed, "CLOSED_WITHOUT_ACTION") == 1


async def test_rejecting_an_empty_plan_from_the_case_page_escalates(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "operator")
    html = await get(api, f"{LIST}/GLX-1004")
    url = f"{LIST}/GLX-1004/approvals/APR-GLX-1004-1/decide"
    done = await follow(api, await post_form(api, url, {"csrf_token": csrf_of(html), "decision": "reject",
                                                         "reason": "treasury handles it"}))  # fmt: skip
    assert "✓ Rejected: with no plan proposed, the case escalates." in done
    assert await case_status(api, "GLX-1004") == "ESCALATED"
