"""Running pack test suites through the whole graph, as ``exops packs test --graph`` does.

Each case becomes a raw exception, runs with an in-memory checkpointer and dry-run tools, and its
result is compared with the case's expectations exactly as the deterministic runner compares them,
so the two runners agree or a test shows where the graph and the packs disagree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from graph.builder import build_graph
from graph.checkpoint import open_checkpointer
from graph.context import RunContext
from graph.inputs import RawException
from graph.runner import CaseRunner
from packs.domain import DomainPack
from packs.suite_runner import CaseResult, TenantLookup, judge, planned_cases
from packs.tenant import TenantPolicyPack
from packs.testsuite import TestCase


def raw_exception(case: TestCase, index: int) -> RawException:
    context = dict(case.input.normalizedContext)
    if case.input.slaMinutesRemaining is not None:
        context["slaMinutesRemaining"] = case.input.slaMinutesRemaining
    return RawException(
        exceptionId=f"{case.caseId}-{index}",
        exceptionType=case.input.exceptionType,
        sourceSystem=case.input.sourceSystem,
        severity=case.input.severity,
        rawPayload=case.input.rawPayload,
        normalizedContext=context,
    )


def outcome_of(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "exceptionType": result.get("exceptionType"),
        "severity": result.get("severity"),
        "actionability": result.get("actionability"),
        "playbookId": result.get("selectedPlaybookId"),
        "humanApprovalRequired": result.get("humanApprovalRequired"),
        "resolutionStatus": result.get("resolutionStatus"),
    }


async def run_suites_through_graph(
    domain: DomainPack,
    context_for: Callable[[TenantPolicyPack], RunContext],
    *,
    tenant: TenantPolicyPack | None = None,
    find_tenant: TenantLookup = lambda _tenant_id: None,
) -> list[CaseResult]:
    planned = planned_cases(domain, tenant=tenant, find_tenant=find_tenant)
    async with open_checkpointer("memory") as saver:
        runner = CaseRunner(build_graph(checkpointer=saver))
        results = []
        for index, item in enumerate(planned):
            if item.tenant is None:
                results.append(judge(item))
                continue
            try:
                result = await runner.start(context_for(item.tenant), raw_exception(item.case, index))
            except Exception as exc:  # a broken case is a failed case
                results.append(judge(item, error=f"{type(exc).__name__}: {exc}"))
                continue
            results.append(judge(item, outcome_of(result)))
    return results


def run_suites_through_graph_sync(
    domain: DomainPack,
    context_for: Callable[[TenantPolicyPack], RunContext],
    *,
    tenant: TenantPolicyPack | None = None,
    find_tenant: TenantLookup = lambda _tenant_id: None,
) -> list[CaseResult]:
    return asyncio.run(run_suites_through_graph(domain, context_for, tenant=tenant, find_tenant=find_tenant))
