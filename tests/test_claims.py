"""People's answers are claims with a lease, applied by jobs (issue 14).

Two answers to the same step or approval: exactly one wins, the other is a 409 naming who answered
and when; the step after is never completed by a request that did not name it. A request that waits
too long answers 202 with its job's link. A claim is applied exactly once, or not at all: a job that
dies after resuming the graph is recorded (not resumed twice) when it runs again, and a claim that
lapsed before the graph took it is returned.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from app.db.models import Approval, CaseJob, ExceptionEvent, PlaybookState
from app.db.types import utc_now
from app.jobs import claims
from tests.api_helpers import Api, plan_digest_of, running_api

EXAMPLES = json.loads(
    (Path(__file__).parent.parent / "docs" / "examples" / "globex-markets-exceptions.json").read_text()
)["exceptions"]
BY_ID = {e["exceptionId"]: e for e in EXAMPLES}
CASES = "/exceptions/globex-markets"
APPROVALS = "/approvals/globex-markets"
TWO_MANUAL_STEPS = [
    {"type": "manual", "name": "Call DTC", "instructions": "Agree the corrected SSI with DTC."},
    {"type": "manual", "name": "Book the penalty", "instructions": "Book the CSDR penalty."},
]


async def two_manual_steps(api: Api) -> str:
    """GLX-1004 approved with a plan of two manual steps; the plan digest of its playbook."""
    response = await api.post_and_settle("globex-markets", [BY_ID["GLX-1004"]])
    assert response.status_code == 202
    edited = await api.client.post(f"{APPROVALS}/APR-GLX-1004-1/approve", json={"editedPlan": TWO_MANUAL_STEPS},
                                   headers=api.as_("operator"))  # fmt: skip
    assert edited.status_code == 200, edited.text
    return await plan_digest_of(api, "GLX-1004")


async def human_events(api: Api, exception_id: str, kind: str) -> list[dict[str, Any]]:
    async with api.services.db.session() as session:
        rows = await session.execute(
            select(ExceptionEvent).where(
                ExceptionEvent.exception_id == exception_id,
                ExceptionEvent.type == kind,
                ExceptionEvent.actor_type == "human",
            )
        )
        return [{"actor": e.actor_id, "data": e.data} for e in rows.scalars()]


async def test_two_concurrent_completes_of_a_step_one_wins_and_the_next_step_stays_open(api: Api) -> None:
    digest = await two_manual_steps(api)
    url = f"{CASES}/GLX-1004/playbook/steps/1/complete"
    first, second = await asyncio.gather(
        api.client.post(url, json={"planDigest": digest, "notes": "A"}, headers=api.as_("operator")),
        api.client.post(url, json={"planDigest": digest, "notes": "B"}, headers=api.as_("admin")),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409], (first.text, second.text)
    won, lost = (first, second) if first.status_code == 200 else (second, first)
    detail = lost.json()["detail"]
    winner = won.json()["steps"][0]["completedBy"]
    assert detail.startswith("step 1 ") and f"by {winner} (at 20" in detail, detail  # who, and when
    view = (await api.client.get(f"{CASES}/GLX-1004/playbook", headers=api.as_("viewer"))).json()
    assert [s["status"] for s in view["steps"]] == ["SUCCESS", "PENDING"]
    assert view["currentStep"] == 2 and view["waitingFor"] == "manual_step"
    done = await human_events(api, "GLX-1004", "playbook_step_completed")
    assert len(done) == 1 and done[0]["data"]["order"] == 1 and done[0]["actor"] == winner
    # the step after is answered only by a request that names it
    again = await api.client.post(url, json={"planDigest": digest}, headers=api.as_("operator"))
    assert again.status_code == 409 and "step 1 was already completed by" in again.json()["detail"]
    assert (await api.client.get(f"{CASES}/GLX-1004/playbook", headers=api.as_("viewer"))).json()["steps"][1][
        "status"
    ] == "PENDING"
    step_two = await api.client.post(f"{CASES}/GLX-1004/playbook/steps/2/complete", json={"planDigest": digest},
                                     headers=api.as_("operator"))  # fmt: skip
    assert step_two.status_code == 200 and step_two.json()["resolutionStatus"] == "RESOLVED"


async def test_many_concurrent_answers_to_one_step_apply_once(api: Api) -> None:
    digest = await two_manual_steps(api)
    url = f"{CASES}/GLX-1004/playbook/steps/1/skip"
    answers = await asyncio.gather(
        *(
            api.client.post(url, json={"planDigest": digest, "reason": f"r{i}"}, headers=api.as_("operator"))
            for i in range(8)
        )
    )
    assert sorted(a.status_code for a in answers) == [200] + [409] * 7
    assert len(await human_events(api, "GLX-1004", "playbook_step_skipped")) == 1


async def test_a_step_answer_on_a_plan_that_changed_is_refused(api: Api) -> None:
    await two_manual_steps(api)
    response = await api.client.post(f"{CASES}/GLX-1004/playbook/steps/1/complete",
                                     json={"planDigest": "0123456789abcdef"}, headers=api.as_("operator"))  # fmt: skip
    assert response.status_code == 409 and "the plan changed" in response.json()["detail"]
    async with api.services.db.session() as session:
        state = await session.get(PlaybookState, ("globex-markets", "GLX-1004"))
    assert state is not None and state.claim_state is None  # the refused claim left nothing behind


async def test_an_approval_names_the_plan_it_approves(api: Api) -> None:
    await api.post_and_settle("globex-markets", [BY_ID["GLX-1003"]])
    url = f"{APPROVALS}/APR-GLX-1003-1"
    shown = (await api.client.get(url, headers=api.as_("viewer"))).json()
    stale = await api.client.post(
        f"{url}/approve", json={"planDigest": "0" * 16}, headers=api.as_("operator")
    )
    assert stale.status_code == 409 and "the plan changed" in stale.json()["detail"]
    assert (await api.client.get(url, headers=api.as_("viewer"))).json()["status"] == "PENDING"
    ok = await api.client.post(
        f"{url}/approve", json={"planDigest": shown["planDigest"]}, headers=api.as_("operator")
    )
    assert ok.status_code == 200 and ok.json()["status"] == "APPROVED"
    assert ok.json()["claimedBy"] == ok.json()["decidedBy"]


async def test_an_answer_still_running_is_a_202_with_a_link_to_follow(tmp_path: Path) -> None:
    async with running_api(tmp_path, "sqlite", answer_wait_seconds=0) as api:
        await api.post_and_settle("globex-markets", [BY_ID["GLX-1003"]])
        await api.services.cases.stop_workers()  # nothing runs the answer yet
        response = await api.client.post(f"{APPROVALS}/APR-GLX-1003-1/approve", json={},
                                         headers=api.as_("operator"))  # fmt: skip
        assert response.status_code == 202, response.text
        job = response.json()
        assert response.headers["location"] == job["links"]["self"] == f"/jobs/globex-markets/{job['jobId']}"
        assert job["status"] == "queued" and job["kind"] == "answer" and job["outcome"] is None
        assert job["links"]["approval"] == f"{APPROVALS}/APR-GLX-1003-1"
        claimed = (await api.client.get(f"{APPROVALS}/APR-GLX-1003-1", headers=api.as_("viewer"))).json()
        assert claimed["status"] == "CLAIMED" and claimed["claimedBy"].startswith("key:")
        busy = await api.client.post(f"{APPROVALS}/APR-GLX-1003-1/reject", json={"reason": "no"},
                                     headers=api.as_("operator"))  # fmt: skip
        assert (
            busy.status_code == 409
            and f"is being approved by {claimed['claimedBy']}" in busy.json()["detail"]
        )
        other = await api.client.get(job["links"]["self"].replace("globex-markets", "acme-capital"),
                                     headers=api.as_("viewer", "acme-capital"))  # fmt: skip
        assert other.status_code == 404  # a job is seen only from its own tenant
        await api.services.cases.start_workers()
        await api.settle()
        followed = (await api.client.get(job["links"]["self"], headers=api.as_("viewer"))).json()
        assert followed["status"] == "done" and followed["outcome"]["status"] == 200
        decided = (await api.client.get(f"{APPROVALS}/APR-GLX-1003-1", headers=api.as_("viewer"))).json()
        assert decided["status"] == "APPROVED"


async def _claimed_but_not_run(api: Api) -> dict[str, Any]:
    """An approval claimed for "approve" whose job has not run (this process's workers are stopped)."""
    await api.post_and_settle("globex-markets", [BY_ID["GLX-1003"]])
    await api.services.cases.stop_workers()
    response = await api.client.post(
        f"{APPROVALS}/APR-GLX-1003-1/approve", json={}, headers=api.as_("operator")
    )
    assert response.status_code == 202
    return dict(response.json())


async def test_a_claim_that_lapsed_before_the_graph_took_it_is_returned(tmp_path: Path) -> None:
    async with running_api(tmp_path, "sqlite", answer_wait_seconds=0) as api:
        job = await _claimed_but_not_run(api)
        async with api.services.db.session() as session:
            await session.execute(
                update(Approval).values(claim_lease_until=utc_now() - timedelta(seconds=1))
            )  # e.g. the service was down longer than the lease
        await api.services.cases.start_workers()
        await api.settle()
        approval = (await api.client.get(f"{APPROVALS}/APR-GLX-1003-1", headers=api.as_("viewer"))).json()
        assert approval["status"] == "PENDING"  # not applied at all: the person decides again
        followed = (await api.client.get(job["links"]["self"], headers=api.as_("viewer"))).json()
        assert followed["outcome"]["status"] == 409 and "lapsed" in followed["outcome"]["detail"]
        assert await human_events(api, "GLX-1003", "approval_decided") == []
        again = await api.client.post(f"{APPROVALS}/APR-GLX-1003-1/reject", json={"reason": "no"},
                                      headers=api.as_("operator"))  # fmt: skip
        assert again.status_code == 202  # this API waits for nothing (answer_wait_seconds=0)
        await api.settle()
        assert (await api.client.get(f"{APPROVALS}/APR-GLX-1003-1", headers=api.as_("viewer"))).json()[
            "status"
        ] == "REJECTED"


async def test_a_job_that_died_after_resuming_the_graph_records_it_once(tmp_path: Path) -> None:
    async with running_api(tmp_path, "sqlite", answer_wait_seconds=0) as api:
        job = await _claimed_but_not_run(api)
        cases = api.services.cases
        # what the first try of the job did before its process died: note the interrupt, resume the
        # graph with the answer; the projection and the claim's settling never happened
        async with api.services.db.session() as session:
            row = await session.get(Approval, ("globex-markets", "APR-GLX-1003-1"))
            assert row is not None and row.claim_token is not None
            ref = {"target": "approval", "key": "APR-GLX-1003-1", "token": row.claim_token}
            claim = await claims.load(session, "globex-markets", "GLX-1003", ref)
        assert claim is not None and claim.live
        pending = await cases.runner.pending("globex-markets", "GLX-1003")
        assert pending is not None
        async with api.services.db.session() as session:
            await claims.note_interrupt(session, claim, pending["interruptId"])
        ctx = cases.runtime.context("globex-markets")
        await cases.runner.answer(ctx, "GLX-1003", claim.answer, expect="approval")
        await cases.start_workers()  # the job runs again: the graph has the answer already
        await api.settle()
        approval = (await api.client.get(f"{APPROVALS}/APR-GLX-1003-1", headers=api.as_("viewer"))).json()
        assert approval["status"] == "APPROVED"
        assert len(await human_events(api, "GLX-1003", "approval_decided")) == 1
        case = (await api.client.get("/exceptions/globex-markets/GLX-1003", headers=api.as_("viewer"))).json()
        assert (
            case["resolutionStatus"] != "PENDING_APPROVAL"
        )  # recorded, though the first try never projected
        followed = (await api.client.get(job["links"]["self"], headers=api.as_("viewer"))).json()
        assert followed["status"] == "done" and followed["outcome"]["status"] == 200


async def test_a_lapsed_claim_whose_job_failed_for_good_is_re_driven_by_the_sweep(tmp_path: Path) -> None:
    async with running_api(tmp_path, "sqlite", answer_wait_seconds=0) as api:
        await _claimed_but_not_run(api)
        async with api.services.db.session() as session:
            await session.execute(update(CaseJob).where(CaseJob.kind == "answer").values(status="failed"))
            await session.execute(update(Approval).values(claim_lease_until=utc_now() - timedelta(seconds=1)))
        await api.services.cases.start_workers()
        assert await api.services.cases.redrive_lapsed_claims() == 1
        await api.settle()
        approval = (await api.client.get(f"{APPROVALS}/APR-GLX-1003-1", headers=api.as_("viewer"))).json()
        assert approval["status"] == "PENDING" and approval["claimedBy"].startswith("key:")
        assert await api.services.cases.redrive_lapsed_claims() == 0
        async with api.services.db.session() as session:
            answers = await session.execute(
                select(func.count()).select_from(CaseJob).where(CaseJob.kind == "answer")
            )
        assert answers.scalar_one() == 2
