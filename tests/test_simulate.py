"""`exops simulate`: synthetic exceptions that look like the packs' own, through the real graph, measured."""

from __future__ import annotations

import json
import random
import tempfile
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.bench.simulation import OUTCOMES, Target, outcome_group, percentile, plan_simulation
from app.bench.synthetic import case_type, generate, type_weights
from app.cli.main import cli
from app.cli.simulate import SimulationSetupError, pick_tenants, resolve_domains
from packs.decisions import case_data, classify_type
from packs.domain import Attribute, DomainPack
from packs.registry import PackRegistry
from packs.severity import decide_severity

SAMPLES = Path(__file__).parent.parent / "packs" / "samples"
DOMAINS = ("capital-markets", "healthcare-claims", "saas-incidents")
MAIN_PATH = ("intake", "triage", "policy", "supervisor", "resolution", "execute", "feedback")
runner = CliRunner()


@pytest.fixture(scope="module")
def registry() -> PackRegistry:
    return PackRegistry.from_directory(SAMPLES)


def domain(registry: PackRegistry, name: str) -> DomainPack:
    found = registry.domain(name)
    assert found is not None
    return found


def has_type(value: Any, attribute: Attribute) -> bool:
    """The JSON type an attribute declares, checked independently of the generator's own check."""
    checks = {
        "string": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
        "date": lambda v: isinstance(v, str) and date.fromisoformat(v) is not None,
        "datetime": lambda v: isinstance(v, str) and datetime.fromisoformat(v) is not None,
    }
    return bool(checks[attribute.type](value))


def test_same_seed_same_exceptions(registry: PackRegistry) -> None:
    pack = domain(registry, "capital-markets")
    first = generate(pack, 50, rng=random.Random(7), tenant_id="acme-capital", id_prefix="SIM-7")
    again = generate(pack, 50, rng=random.Random(7), tenant_id="acme-capital", id_prefix="SIM-7")
    other = generate(pack, 50, rng=random.Random(8), tenant_id="acme-capital", id_prefix="SIM-7")
    assert [r.model_dump() for r in first] == [r.model_dump() for r in again]
    assert [r.model_dump() for r in first] != [r.model_dump() for r in other]
    assert [r.exceptionId for r in first] == [f"SIM-7-{n}" for n in range(1, 51)]
    assert {r.tenantId for r in first} == {"acme-capital"}


def test_types_in_realistic_proportions(registry: PackRegistry) -> None:
    pack = domain(registry, "capital-markets")
    raws = generate(pack, 500, rng=random.Random(1), tenant_id="acme-capital")
    mix = Counter(case_type(pack, None, r.exceptionType) for r in raws)
    assert max(mix.values()) / len(raws) < 0.6
    actionable = [name for name, t in pack.exceptionTypes.items() if t.actionable]
    assert all(mix[name] > 0 for name in actionable)
    notices = [name for name, t in pack.exceptionTypes.items() if not t.actionable]
    weights = type_weights(pack)
    assert all(weights[n] < min(weights[a] for a in actionable) for n in notices)
    assert all(mix[n] < min(mix[a] for a in actionable) for n in notices)
    unlabelled = sum(r.exceptionType is None for r in raws)
    assert 0 < unlabelled < 0.08 * len(raws)  # about 3%
    respelled = [
        r.exceptionType for r in raws if r.exceptionType and r.exceptionType not in pack.exceptionTypes
    ]
    assert respelled and all(case_type(pack, None, label) for label in respelled)


@pytest.mark.parametrize("name", DOMAINS)
def test_payloads_follow_the_entity(registry: PackRegistry, name: str) -> None:
    pack = domain(registry, name)
    raws = generate(pack, 200, rng=random.Random(3), tenant_id="t1")
    checked = 0
    for raw in raws:
        type_name = case_type(pack, None, raw.exceptionType)
        if type_name is None:
            continue
        entity = pack.entities[pack.exceptionTypes[type_name].entity or ""]
        missing = [k for k, a in entity.attributes.items() if a.required and k not in raw.rawPayload]
        assert not missing, (raw.exceptionId, type_name, missing)
        for key, value in raw.rawPayload.items():
            attribute = entity.attributes.get(key)
            if attribute is None:
                continue
            assert has_type(value, attribute), (raw.exceptionId, key, value, attribute.type)
            assert attribute.enum is None or value in attribute.enum, (raw.exceptionId, key, value)
            checked += 1
    assert checked > 500


@pytest.mark.parametrize("name", DOMAINS)
def test_values_exercise_the_severity_rules(registry: PackRegistry, name: str) -> None:
    pack = domain(registry, name)
    raws = generate(pack, 200, rng=random.Random(5), tenant_id="t1")
    severities: Counter[str] = Counter()
    fired: set[str] = set()
    for raw in raws:
        data = case_data(exception_type=raw.exceptionType, tenant_id="t1", domain_name=pack.domainName,
                         raw_payload=raw.rawPayload, normalized_context=raw.normalizedContext)  # fmt: skip
        check = classify_type(pack, raw.exceptionType, data)
        assert check.exception_type is not None, check.reason  # unlabelled ones are still recognizable
        data["exceptionType"] = check.exception_type
        decision = decide_severity(pack, None, data, source_severity=raw.severity)
        severities[decision.severity] += 1
        fired.update(rule.id for rule in decision.matched_rules)
    assert len(severities) >= 2
    assert len(fired) >= len(pack.severityRules) // 2  # rules on both sides of thresholds fire


def test_batch_is_per_domain_dealt_over_tenants(registry: PackRegistry) -> None:
    markets, claims = domain(registry, "capital-markets"), domain(registry, "healthcare-claims")
    targets = [
        Target("acme-capital", markets),
        Target("globex-markets", markets),
        Target("mercy-health", claims),
    ]
    plan = plan_simulation(targets, batch=5, seed=7)
    assert [b.domain for b in plan.batches] == ["capital-markets", "healthcare-claims"]
    assert plan.total == 10
    tenants = [r.tenantId for r in plan.batches[0].raws]
    assert tenants == ["acme-capital", "globex-markets"] * 2 + ["acme-capital"]
    ids = [r.exceptionId for b in plan.batches for r in b.raws]
    assert len(set(ids)) == 10 and all(str(i).startswith("SIM-7-") for i in ids)
    again = plan_simulation(targets, batch=5, seed=7)
    assert [r.model_dump() for b in again.batches for r in b.raws] == [
        r.model_dump() for b in plan.batches for r in b.raws
    ]


@pytest.mark.parametrize(
    ("result", "group"),
    [
        ({"resolutionStatus": "RESOLVED", "outcome": {"outcome": "auto_resolved"}}, "auto"),
        ({"resolutionStatus": "PENDING_APPROVAL", "pending": {"kind": "approval"}}, "approval"),
        ({"resolutionStatus": "RESOLVED", "outcome": {"outcome": "resolved_after_approval"}}, "approval"),
        ({"resolutionStatus": "IN_PROGRESS", "pending": {"kind": "manual_step"}}, "waiting"),
        ({"resolutionStatus": "RESOLVED", "outcome": {"outcome": "resolved_with_people"}}, "waiting"),
        ({"resolutionStatus": "RESOLVED", "outcome": {"outcome": "non_actionable"}}, "non_actionable"),
        ({"resolutionStatus": "ESCALATED", "outcome": {"outcome": "escalated"}}, "escalated"),
        ({"resolutionStatus": "ESCALATED", "error": "RuntimeError: boom"}, "escalated"),
    ],
)
def test_outcome_groups(result: dict[str, Any], group: str) -> None:
    assert outcome_group(result) == group


def test_percentile() -> None:
    assert percentile([], 0.5) is None
    assert percentile([4.0], 0.95) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile(list(map(float, range(101))), 0.95) == pytest.approx(95.0)


def test_domain_names_and_aliases() -> None:
    assert resolve_domains("finance,markets, saas", DOMAINS) == ["capital-markets", "saas-incidents"]
    assert resolve_domains("healthcare-claims,claims", DOMAINS) == ["healthcare-claims"]
    assert resolve_domains(None, DOMAINS) == list(DOMAINS)
    with pytest.raises(SimulationSetupError, match="known domains: capital-markets"):
        resolve_domains("finance,retail", DOMAINS)


def test_tenants_beyond_the_samples_are_copies(registry: PackRegistry) -> None:
    chosen = pick_tenants(registry, "capital-markets", 3)
    assert [t.tenantId for t in chosen] == ["acme-capital", "globex-markets", "acme-capital-sim2"]
    assert chosen[2].approvedBusinessProcesses == chosen[0].approvedBusinessProcesses
    assert [t.tenantId for t in pick_tenants(registry, "healthcare-claims", 1)] == ["mercy-health"]


def simulate(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["simulate", "--packs", str(SAMPLES), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def offline_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No LLM whatever the environment says; temporary folders under tmp_path, to see them removed."""
    for name in ("EXOPS_LLM_BASE_URL", "EXOPS_LLM_API_KEY", "EXOPS_LLM_MODEL", "EXOPS_TOOL_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_simulate_json_end_to_end(offline_settings: Path) -> None:
    code, out, err = simulate("--domains", "finance,healthcare", "--batch", "5", "--tenants", "2",
                              "--seed", "7", "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["seed"] == 7 and report["batchPerDomain"] == 5 and report["exceptions"] == 10
    assert report["throughputPerSecond"] > 0
    assert all(report["latencyMs"][stage]["p50"] is not None for stage in MAIN_PATH)
    assert all(report["latencyMs"][stage]["p95"] >= report["latencyMs"][stage]["p50"] for stage in MAIN_PATH)
    assert report["latencyMs"]["endToEnd"]["count"] == 10
    assert set(report["outcomes"]) == set(OUTCOMES)
    assert sum(o["count"] for o in report["outcomes"].values()) == 10
    domains = {d["domain"]: d for d in report["domains"]}
    assert set(domains) == {"capital-markets", "healthcare-claims"}
    assert domains["healthcare-claims"]["tenants"] == ["mercy-health", "mercy-health-sim2"]
    assert all(sum(o["count"] for o in d["outcomes"].values()) == 5 for d in domains.values())
    assert report["errors"] == 0
    assert not list(offline_settings.glob("exops-simulate-*"))  # the temporary checkpoints are gone


def test_simulate_prints_tables_and_keeps_checkpoints_on_request(offline_settings: Path) -> None:
    kept = offline_settings / "kept"
    code, out, err = simulate("--domains", "saas", "--batch", "2", "--seed", "1", "--keep", str(kept))
    assert code == 0, err
    assert "saas-incidents: 2 exceptions" in out and "p95 ms" in out and "non_actionable" in out
    assert len(list(kept.glob("simulate-SIM-*.sqlite"))) == 1


def test_unknown_domain_is_a_usage_error(offline_settings: Path) -> None:
    code, _out, err = simulate("--domains", "finance,retail", "--batch", "5")
    assert code == 2
    assert "unknown domain 'retail'" in err and "capital-markets" in err and "saas-incidents" in err
