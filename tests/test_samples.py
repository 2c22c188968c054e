"""The sample packs are valid and every sample test suite passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from packs.domain import DomainPack
from packs.registry import PackRegistry
from packs.suite_runner import run_suites

SAMPLES = Path(__file__).parent.parent / "packs" / "samples"


@pytest.fixture(scope="module")
def registry() -> PackRegistry:
    return PackRegistry.from_directory(SAMPLES)


def test_samples_load_without_problems_or_notices(registry: PackRegistry) -> None:
    assert registry.errors == {}
    assert [p.key for p in registry.domains()] == [
        "capital-markets@1.0.0",
        "healthcare-claims@1.0.0",
        "saas-incidents@1.0.0",
    ]
    assert [p.key for p in registry.tenants()] == [
        "acme-capital",
        "globex-markets",
        "mercy-health",
        "nimbus-cloud",
    ]
    assert all(not p.notices for p in [*registry.domains(), *registry.tenants()])


@pytest.mark.parametrize("domain_name", ["capital-markets", "healthcare-claims", "saas-incidents"])
def test_sample_suites_pass(registry: PackRegistry, domain_name: str) -> None:
    domain = registry.domain(domain_name)
    assert isinstance(domain, DomainPack)
    assert len(domain.exceptionTypes) >= 6
    results = run_suites(domain, find_tenant=registry.tenant)
    assert len(results) >= 8
    failures = [(r.case_id, r.differences, r.error) for r in results if not r.passed]
    assert failures == []


def test_finance_tenants_differ(registry: PackRegistry) -> None:
    domain = registry.domain("capital-markets")
    assert domain is not None
    acme = {r.case_id: r.outcome for r in run_suites(domain, tenant=registry.tenant("acme-capital"))}
    globex = {r.case_id: r.outcome for r in run_suites(domain, tenant=registry.tenant("globex-markets"))}
    assert acme.keys() == globex.keys()
    assert sum(acme[k] != globex[k] for k in acme) >= 5
