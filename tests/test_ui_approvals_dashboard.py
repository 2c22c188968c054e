"""The approval queue and the dashboard pages over HTTP, on the real app (SQLite, and PostgreSQL when
configured): the queue after the sample batch, deciding from the list (approve, reject, a stale plan,
roles, CSRF), filters, and the dashboard's figures against the ingested data, its empty state and the
escaping of names that come from data."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from app.db.models import Approval, ExceptionCase
from app.ui.actions import plan_digest
from tests.api_helpers import Api

EXAMPLES = json.loads(
    (Path(__file__).parent.parent / "docs" / "examples" / "globex-markets-exceptions.json").read_text()
)["exceptions"]
T = "globex-markets"
QUEUE = f"/ui/t/{T}/approvals"
DASHBOARD = f"/ui/t/{T}/dashboard"
DECIDE_1003 = f"{QUEUE}/APR-GLX-1003-1/decide"


async def sign_in(api: Api, role: str, tenant: str = T) -> None:
    """The shared client now carries the session cookie of ``role`` (replacing any earlier one)."""
    response = await api.client.post(
        "/ui/login", data={"credential": api.keys[(tenant, role)], "next": "/ui/"}
    )
    assert response.status_code == 303, response.text


async def page(api: Api, url: str) -> str:
    response = await api.client.get(url)
    assert response.status_code == 200, response.text
    return response.text


def csrf(text: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert match, "no CSRF token on the page"
    return match.group(1)


def form_of(text: str, approval_id: str) -> dict[str, str]:
    """The hidden fields of the decide form of one row."""
    match = re.search(rf'<form method="post" action="{QUEUE}/{approval_id}/decide".*?</form>', text, re.S)
    assert match, f"no decide form for {approval_id}"
    return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', match.group(0)))


def row_of(text: str, approval_id: str) -> str:
    match = re.search(rf'<tr id="approval-{approval_id}">.*?</tr>', text, re.S)
    assert match, f"no row for {approval_id}"
    return match.group(0)


async def flash(api: Api, response: httpx.Response) -> tuple[str, str]:
    """Where a form sent the person back, and the message that page shows (once)."""
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    shown = re.findall(
        r'<p class="flash (?:ok|bad)" role="(?:status|alert)">(.*?)</p>', await page(api, location)
    )
    assert len(shown) <= 1, shown
    return location, html.unescape(shown[0]) if shown else ""


async def ingest(api: Api) -> None:
    response = await api.post_and_settle(T, EXAMPLES)
    assert response.status_code == 202, response.text


async def approval(api: Api, approval_id: str = "APR-GLX-1003-1") -> dict[str, Any]:
    response = await api.client.get(f"/approvals/{T}/{approval_id}", headers=api.as_("viewer"))
    return dict(response.json())


async def case_status(api: Api, exception_id: str) -> str:
    response = await api.client.get(f"/exceptions/{T}/{exception_id}", headers=api.as_("viewer"))
    return str(response.json()["resolutionStatus"])


async def set_deadline(
    api: Api, approval_id: str, deadline: datetime, created: datetime | None = None
) -> None:
    values: dict[str, Any] = {"deadline": deadline} | ({"created_at": created} if created else {})
    async with api.services.db.session() as session:
        await session.execute(
            update(Approval)
            .where(Approval.tenant_id == T, Approval.approval_id == approval_id)
            .values(**values)
        )


async def test_queue_lists_the_waiting_approvals_soonest_deadline_first(api: Api) -> None:
    await ingest(api)
    now = datetime.now(UTC)
    await set_deadline(api, "APR-GLX-1003-1", now + timedelta(hours=3, minutes=30))
    await set_deadline(
        api, "APR-GLX-1004-1", now - timedelta(hours=1, minutes=5), created=now - timedelta(hours=5)
    )
    await sign_in(api, "operator")
    text = await page(api, QUEUE)
    assert '<a href="/ui/t/globex-markets/approvals" aria-current="page">Approvals</a>' in text
    assert 'Waiting for a decision <span class="muted">(2)</span>' in text
    assert text.index('id="approval-APR-GLX-1004-1"') < text.index('id="approval-APR-GLX-1003-1"')
    row = row_of(text, "APR-GLX-1003-1")
    assert '<a href="/ui/t/globex-markets/exceptions/GLX-1003">GLX-1003</a>' in row
    assert (
        '<span class="type">REGULATORY_<wbr>REPORT_<wbr>REJECTED</span>' in row
        and '<span class="badge sev-medium">MEDIUM</span>' in row
    )
    assert "<strong>Run playbook regulatory-report-correct-resubmit</strong>" in row
    assert "<li>requireHumanApprovalFor lists REGULATORY_REPORT_REJECTED</li>" in row
    assert "<summary>Plan: 5 steps</summary>" in row and "Resubmit the report" in row
    assert re.search(r"<small>in 3 h (29|30) min</small>", row)
    late = row_of(text, "APR-GLX-1004-1")
    assert re.search(r"⌛</span> overdue by 1 h (4|5) min</span>", late)
    assert re.search(r">requested 5 h 0 min ago</span>", late) and "<span>due <time datetime=" in late
    assert "No plan is proposed" in late and 'value="approve"' not in late  # nothing to approve
    assert "edit in a plan or take the case over</a>, or reject it." in late
    assert re.search(r'<input type="text" id="reason-1" name="reason"[^>]* required>', late)
    pending = await api.services.runner.pending(T, "GLX-1003")
    assert pending is not None
    fields = form_of(text, "APR-GLX-1003-1")
    assert fields == {"csrf_token": csrf(text), "plan_digest": plan_digest(pending["plan"]), "view": ""}
    assert '<button type="submit" name="decision" value="approve">Approve</button>' in row
    assert '<label for="comment-2">Comment <span class="muted">(optional)</span></label>' in row


async def test_sorting_and_severity_filter(api: Api) -> None:
    await ingest(api)
    now = datetime.now(UTC)
    await set_deadline(api, "APR-GLX-1003-1", now + timedelta(hours=1), created=now - timedelta(hours=2))
    await set_deadline(api, "APR-GLX-1004-1", now + timedelta(hours=2), created=now - timedelta(hours=1))
    await sign_in(api, "viewer")
    by_deadline = await page(api, QUEUE)
    assert by_deadline.index("APR-GLX-1003-1") < by_deadline.index("APR-GLX-1004-1")
    by_severity = await page(api, f"{QUEUE}?sort=severity")
    assert by_severity.index("APR-GLX-1004-1") < by_severity.index("APR-GLX-1003-1")  # CRITICAL first
    assert '<option value="severity" selected>' in by_severity
    critical = await page(api, f"{QUEUE}?severity=CRITICAL")
    assert "APR-GLX-1004-1" in critical and "APR-GLX-1003-1" not in critical
    assert '<option value="CRITICAL" selected>' in critical
    low = await page(api, f"{QUEUE}?severity=LOW")
    assert '<p class="empty" role="status">No approvals waiting at severity LOW.</p>' in low
    odd = await page(api, f"{QUEUE}?severity=NOPE&sort=whatever&offset=-3")  # unknown values: the defaults
    assert "APR-GLX-1003-1" in odd and "APR-GLX-1004-1" in odd


async def test_approve_from_the_list(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "operator")
    text = await page(api, f"{QUEUE}?decided=1")
    fields = form_of(text, "APR-GLX-1003-1")
    assert fields["view"] == "decided=1"
    response = await api.client.post(
        DECIDE_1003, data={**fields, "decision": "approve", "comment": "LEI renewed"}
    )
    assert response.headers["location"] == f"{QUEUE}?decided=1"
    after = await page(api, f"{QUEUE}?decided=1")
    assert (
        '<p class="flash ok" role="status">✓ GLX-1003 (APR-GLX-1003-1): Approved: the plan runs now.</p>'
        in after
    )
    assert "Approved: the plan runs now." not in await page(api, f"{QUEUE}?decided=1")  # shown once
    assert 'id="approval-APR-GLX-1003-1"' not in after and 'id="approval-APR-GLX-1004-1"' in after
    assert 'Waiting for a decision <span class="muted">(1)</span>' in after
    decided = after[after.index("Recently decided") :]
    assert '<span class="badge status-approved"><span aria-hidden="true">✓</span> APPROVED</span>' in decided
    assert "<td>LEI renewed</td>" in decided and "GLX-1003" in decided
    stored = await approval(api)
    assert stored["status"] == "APPROVED" and stored["comment"] == "LEI renewed"
    assert stored["decidedBy"].startswith("key:") and f"<td>{stored['decidedBy']}</td>" in decided
    status = await case_status(api, "GLX-1003")
    assert status != "PENDING_APPROVAL" and status in ("IN_PROGRESS", "RESOLVED")
    again = await api.client.post(DECIDE_1003, data={**fields, "decision": "approve"})
    assert "approval APR-GLX-1003-1 is no longer waiting for a decision" in (await flash(api, again))[1]


async def test_reject_from_the_list(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "operator")
    fields = form_of(await page(api, QUEUE), "APR-GLX-1003-1")
    response = await api.client.post(DECIDE_1003, data={**fields, "decision": "reject", "reason": "  "})
    assert await flash(api, response) == (QUEUE, "✗ GLX-1003: say why you reject it: a reason is required")
    assert (await approval(api))["status"] == "PENDING"
    response = await api.client.post(
        DECIDE_1003, data={**fields, "decision": "reject", "reason": "LEI renewed"}
    )
    assert await flash(api, response) == (QUEUE, "✓ GLX-1003 (APR-GLX-1003-1): Rejected.")
    assert (await approval(api))["status"] == "REJECTED" and (await approval(api))["reason"] == "LEI renewed"
    assert await case_status(api, "GLX-1003") == "REJECTED"
    decided = await page(api, f"{QUEUE}?decided=1")
    assert '<span aria-hidden="true">✗</span> REJECTED</span>' in decided
    assert "<small>Reason: LEI renewed</small>" in decided


async def test_a_stale_plan_digest_is_refused(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "operator")
    fields = form_of(await page(api, QUEUE), "APR-GLX-1003-1")
    response = await api.client.post(
        DECIDE_1003, data={**fields, "decision": "approve", "plan_digest": "0" * 16}
    )
    assert await flash(api, response) == (
        QUEUE,
        "✗ GLX-1003: the plan changed since this page was loaded (it was recalculated): "
        "review it and decide again",
    )
    assert (await approval(api))["status"] == "PENDING"
    assert await case_status(api, "GLX-1003") == "PENDING_APPROVAL"
    unknown = await api.client.post(f"{QUEUE}/APR-NOPE-1/decide", data={**fields, "decision": "approve"})
    assert unknown.status_code == 404 and "no approval APR-NOPE-1" in unknown.text  # as the API answers
    bad = await api.client.post(DECIDE_1003, data={**fields, "decision": "edit"})
    assert await flash(api, bad) == (QUEUE, "✗ choose Approve or Reject")


async def test_viewer_sees_no_forms_and_cannot_post(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "viewer")
    text = await page(api, QUEUE)
    assert 'id="approval-APR-GLX-1003-1"' in text
    assert "/decide" not in text and 'name="plan_digest"' not in text and ">Approve</button>" not in text
    assert '<th scope="col">Status</th>' in text and '<th scope="col">Decide</th>' not in text
    pending = await api.services.runner.pending(T, "GLX-1003")
    assert pending is not None
    data = {"csrf_token": csrf(text), "decision": "approve", "plan_digest": plan_digest(pending["plan"])}
    refused = await api.client.post(DECIDE_1003, data=data)
    assert refused.status_code == 403 and "role viewer may not do this" in refused.text
    assert (await approval(api))["status"] == "PENDING"


async def test_a_post_without_csrf_token_is_refused(api: Api) -> None:
    await ingest(api)
    await sign_in(api, "operator")
    fields = form_of(await page(api, QUEUE), "APR-GLX-1003-1")
    del fields["csrf_token"]
    refused = await api.client.post(DECIDE_1003, data={**fields, "decision": "approve"})
    assert refused.status_code == 403 and "missing or wrong CSRF token" in refused.text
    wrong = await api.client.post(DECIDE_1003, data={**fields, "csrf_token": "forged", "decision": "approve"})
    assert wrong.status_code == 403
    assert (await approval(api))["status"] == "PENDING"


async def test_empty_queue_and_signed_out(api: Api) -> None:
    assert (await api.client.get(QUEUE)).headers[
        "location"
    ] == "/ui/login?next=/ui/t/globex-markets/approvals"
    await sign_in(api, "operator", "acme-capital")
    text = await page(api, "/ui/t/acme-capital/approvals?decided=1")
    assert '<p class="empty" role="status">No approvals waiting.</p>' in text
    assert '<p class="empty" role="status">No decided approvals yet.</p>' in text
    other = await api.client.get(QUEUE)
    assert other.status_code == 403 and "not globex-markets" in other.text


def svgs(text: str) -> list[str]:
    return re.findall(r"<svg .*?</svg>", text, re.S)


def table_rows(text: str, caption: str) -> dict[str, list[str]]:
    """The rows of the data table with ``caption``: row header -> cells."""
    match = re.search(rf"<caption>{re.escape(caption)}</caption>.*?</table>", text, re.S)
    assert match, f"no table {caption}"
    rows = re.findall(r'<tr><th scope="row">(.*?)</th>(.*?)</tr>', match.group(0))
    return {name: re.findall(r"<td>(.*?)</td>", cells) for name, cells in rows}


async def pin_times(api: Api, resolve_after: dict[str, int]) -> datetime:
    """Every case received an hour ago; the given ones resolved that many seconds later."""
    received = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    async with api.services.db.session() as session:
        await session.execute(
            update(ExceptionCase).where(ExceptionCase.tenant_id == T).values(received_at=received)
        )
        for exception_id, seconds in resolve_after.items():
            await session.execute(
                update(ExceptionCase)
                .where(ExceptionCase.tenant_id == T, ExceptionCase.exception_id == exception_id)
                .values(resolved_at=received + timedelta(seconds=seconds))
            )
    return received


async def test_dashboard_figures_match_the_ingested_batch(api: Api) -> None:
    await ingest(api)
    received = await pin_times(api, {"GLX-1001": 60, "GLX-1005": 120, "GLX-1007": 300, "GLX-1006": 1800})
    now = datetime.now(UTC)
    await set_deadline(api, "APR-GLX-1003-1", now - timedelta(minutes=10), created=now - timedelta(hours=5))
    await sign_in(api, "viewer")
    text = await page(api, DASHBOARD)
    assert '<a href="/ui/t/globex-markets/dashboard" aria-current="page">Dashboard</a>' in text
    figures = dict(re.findall(r"<dt>(.*?)</dt><dd><strong>(.*?)</strong>", text))
    assert figures == {"Exceptions": "7", "Auto-resolution rate": "50 %", "MTTR": "2.7 min",
                       "Approvals waiting": "2", "Escalations": "1"}  # fmt: skip
    charts = svgs(text)
    assert len(charts) == 7 and all('role="img"' in c and "<title>" in c and "<desc>" in c for c in charts)
    assert text.count('<details class="chart-data">') == 7

    volume = table_rows(text, "Exceptions received per hour")
    hour = received.strftime("%Y-%m-%d %H:00 UTC")
    assert volume["Total"] == ["1", "2", "1", "2", "1", "7"]  # CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN, total
    assert volume[hour] == volume["Total"] and len(volume) == 25  # 24 hours and the total
    assert "Exceptions received per hour, stacked by severity; 7 in all." in text
    assert '<text class="value" ' in charts[0] and ">7</text></svg>" in charts[0]

    by_type = table_rows(text, "By type")
    assert by_type["SETTLEMENT_FAIL"] == ["2", "28.6 %"] and by_type["FX_RATE_STALE"] == ["1", "14.3 %"]
    assert sum(int(cells[0]) for cells in by_type.values()) == 7 and len(by_type) == 6
    assert 'data-label="SETTLEMENT_FAIL" data-value="2"' in charts[1]
    by_severity = table_rows(text, "By severity")
    assert list(by_severity) == ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]
    assert [cells[0] for cells in by_severity.values()] == ["1", "2", "1", "2", "1"]

    assert table_rows(text, "Finished cases by outcome") == {
        "Auto-resolved": ["2", "50 %"], "Resolved with people": ["1", "25 %"],
        "Rejected": ["0", "0 %"], "Escalated": ["1", "25 %"], "Closed without action": ["0", "0 %"],
    }  # fmt: skip
    assert table_rows(text, "Mean time to resolution per severity") == {
        "HIGH": ["1 min", "60"], "LOW": ["3.5 min", "210"]  # GLX-1001; GLX-1005 and GLX-1007
    }  # fmt: skip
    assert "overall 2.7 min" in text and 'font-size="12">Minutes</text></svg>' in charts[4]

    ages = table_rows(text, "Approvals waiting, by age")
    assert ages == {"under 1 h": ["1"], "1-4 h": ["0"], "4-24 h": ["1"], "1-3 d": ["0"], "over 3 d": ["0"]}
    assert "2 approval(s) waiting; oldest 5 h, median" in text and "1 past the deadline" in text

    escalations = table_rows(text, "Received and escalated per hour")
    assert escalations["Total"] == ["7", "1"] and escalations[hour][0] == "7"
    escalated_hour = (received + timedelta(seconds=1800)).strftime("%Y-%m-%d %H:00 UTC")
    assert escalations[escalated_hour] == ["7" if escalated_hour == hour else "0", "1"]  # when it escalated
    assert "1 escalated in all, 25 % of finished cases." in text


async def test_volume_switches_to_days_when_the_data_spans_two_days_or_more(api: Api) -> None:
    await ingest(api)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    async with api.services.db.session() as session:
        await session.execute(
            update(ExceptionCase).where(ExceptionCase.tenant_id == T).values(received_at=today)
        )
        for exception_id, days in (("GLX-1001", 3), ("GLX-1002", 3), ("GLX-1003", 20)):
            await session.execute(
                update(ExceptionCase)
                .where(ExceptionCase.tenant_id == T, ExceptionCase.exception_id == exception_id)
                .values(received_at=today - timedelta(days=days) + timedelta(hours=5))
            )
    await sign_in(api, "viewer")
    text = await page(api, DASHBOARD)
    volume = table_rows(text, "Exceptions received per day, last 14 days")
    assert len(volume) == 15 and volume["Total"][-1] == "6"  # GLX-1003 is older than the window
    assert volume[(today - timedelta(days=3)).strftime("%Y-%m-%d")][-1] == "2"
    assert volume[today.strftime("%Y-%m-%d")][-1] == "4"
    assert '<p class="empty"' not in text and re.search(r"<dt>Exceptions</dt><dd><strong>7</strong>", text)


async def test_dashboard_empty_state_and_escaped_names(api: Api) -> None:
    await sign_in(api, "viewer", "acme-capital")
    text = await page(api, "/ui/t/acme-capital/dashboard")
    assert (
        '<p class="empty" role="status">No exceptions yet: the charts appear once this tenant has received'
        in text
    )
    assert "<svg" not in text and "<dl" not in text
    evil = "<script>alert(1)</script>"
    body = [{"exceptionId": "ACME-X-1", "sourceSystem": "test", "exceptionType": evil, "rawPayload": {}}]
    response = await api.post_and_settle("acme-capital", body)
    assert response.status_code == 202, response.text
    shown = await page(api, "/ui/t/acme-capital/dashboard")
    assert evil not in shown and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    by_type = table_rows(shown, "By type")
    assert by_type == {"&lt;script&gt;alert(1)&lt;/script&gt;": ["1", "100 %"]}
    assert 'data-label="&lt;script&gt;alert(1)&lt;/script&gt;"' in svgs(shown)[1]
