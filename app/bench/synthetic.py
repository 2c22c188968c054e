"""Synthetic exceptions built from a domain pack, so the real pipeline can be loaded with plausible traffic.

Hand-written load data drifts from the packs and never covers the rules; everything here is read from
the pack itself, so a new domain pack can be simulated without writing any code.

Proportions. Each exception type gets the weight ``1 + C + R``: ``C`` is the number of test-suite
cases about the type (by the expected type, else the input type after spelling normalization) and
``R`` the number of severity rules whose condition names it. Authors write cases and rules for the
kinds of exception they meet most, so this is the pack's own account of what is common; the ``1``
keeps a type nobody tested in the mix. Information-only types (``actionable: false``) are multiplied
by ``NOTICE_FACTOR``: they matter, but a queue of notices is not what an operations team is sized
for. On top of the chosen type, ``UNLABELLED_SHARE`` (3%) of exceptions arrive without an
``exceptionType`` (intake must recognize them by the detection rules or escalate them) and
``RESPELLED_SHARE`` (2%) with a non-canonical spelling such as ``"settlement fail"``, as the packs'
own test suites show upstream systems do.

Payloads. Fields come from the type's entity: required attributes always, and the fields the type's
detection rules test for (``has(rawPayload.x)``, ``rawPayload.x == ...``) so that an unlabelled payload
is still recognizable; fields a detection rule excludes (``!has(...)``) and the tell-tale fields of
another type on the same entity are left out. Values use ``enum`` or ``examples`` when given, else
plausible values per attribute type. To exercise the severity rules, ``TEMPLATE_SHARE`` of payloads
start from a test-suite case of the type (its field set and values), and numeric fields are drawn
around the examples, the template value and the thresholds the rules compare them with, scaled by a
log-uniform factor between 0.1 and 10, so rules on both sides of every threshold fire.

Deterministic: the same ``rng`` state gives the same exceptions (no clock, no global randomness).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from graph.inputs import RawException
from packs.common import Severity
from packs.decisions import plain
from packs.domain import Attribute, DomainPack, ExceptionType

UNLABELLED_SHARE = 0.03
RESPELLED_SHARE = 0.02
NOTICE_FACTOR = 0.5
TEMPLATE_SHARE = 0.6
KEEP_TEMPLATE_VALUE = 0.4
OPTIONAL_SHARE = 0.5
RULE_FIELD_SHARE = 0.85
EXTRA_RULE_FIELD_SHARE = 0.3
SCALE_LOW, SCALE_HIGH = 0.1, 10.0
BASE_DATE = date(2026, 11, 20)
"""Dates without examples are drawn around this day (the sample packs' examples sit around it)."""

_HAS = re.compile(r"(!?)\s*has\(\s*rawPayload\.(\w+)\s*\)")
_LITERAL = r"(true|false|'[^']*'|\"[^\"]*\"|-?\d+(?:\.\d+)?)"
_EQUALITY = re.compile(rf"rawPayload\.(\w+)\s*(==|!=)\s*{_LITERAL}")
_COMPARISON = re.compile(r"rawPayload\.(\w+)\s*(?:>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)")
_MEMBERSHIP = re.compile(r"rawPayload\.(\w+)\s+in\s+\[([^\]]*)\]")
_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")
_TRAILING_DIGITS = re.compile(r"(\d+)(?!.*\d)")
_ID_SUFFIXES = ("Id", "Number", "Ref")


def _literal(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if text[0] in "'\"":
        return text[1:-1]
    return float(text) if "." in text else int(text)


def _canonical(name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")


@dataclass(frozen=True)
class Template:
    """A test-suite case of the type: a realistic field set with values the author chose."""

    payload: dict[str, Any]
    source_system: str | None
    severity: Severity | None
    normalized_context: dict[str, Any]


@dataclass
class TypeProfile:
    """What the pack says about one exception type, read once per ``generate`` call."""

    name: str
    definition: ExceptionType
    weight: float
    attributes: dict[str, Attribute] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    signature: set[str] = field(default_factory=set)
    excluded: set[str] = field(default_factory=set)
    forced: dict[str, Any] = field(default_factory=dict)
    avoided: dict[str, list[Any]] = field(default_factory=dict)
    rule_fields: set[str] = field(default_factory=set)
    thresholds: dict[str, list[float]] = field(default_factory=dict)
    literals: dict[str, list[Any]] = field(default_factory=dict)
    templates: list[Template] = field(default_factory=list)


def case_type(domain: DomainPack, expected: str | None, given: str | None) -> str | None:
    """The taxonomy type a test case is about: the expected type, else the input type once normalized."""
    if expected in domain.exceptionTypes:
        return expected
    by_canonical = {_canonical(name): name for name in domain.exceptionTypes}
    return by_canonical.get(_canonical(given)) if given else None


def type_weights(domain: DomainPack) -> dict[str, float]:
    """``1 + test cases + severity rules`` per type, information-only types scaled by NOTICE_FACTOR."""
    cases: dict[str, int] = dict.fromkeys(domain.exceptionTypes, 0)
    for suite in domain.testSuites:
        for case in suite.cases:
            name = case_type(domain, case.expected.exceptionType, case.input.exceptionType)
            if name is not None:
                cases[name] += 1
    weights: dict[str, float] = {}
    for name, definition in domain.exceptionTypes.items():
        rules = sum(
            f"'{name}'" in rule.condition or f'"{name}"' in rule.condition for rule in domain.severityRules
        )
        weight = float(1 + cases[name] + rules)
        weights[name] = weight * (NOTICE_FACTOR if not definition.actionable else 1.0)
    return weights


def _detection(profile: TypeProfile) -> None:
    for rule in profile.definition.detectionRules:
        if rule.condition is None or "||" in rule.condition:
            continue  # alternatives say nothing certain about any one field
        for negated, name in _HAS.findall(rule.condition):
            (profile.excluded if negated else profile.signature).add(name)
        for name, operator, text in _EQUALITY.findall(rule.condition):
            profile.signature.add(name)
            if operator == "==":
                profile.forced[name] = _literal(text)
            else:
                profile.avoided.setdefault(name, []).append(_literal(text))


def _severity_rules(profile: TypeProfile, domain: DomainPack) -> None:
    for rule in domain.severityRules:
        condition = rule.condition
        if f"'{profile.name}'" not in condition and f'"{profile.name}"' not in condition:
            continue
        for name, number in _COMPARISON.findall(condition):
            profile.rule_fields.add(name)
            profile.thresholds.setdefault(name, []).append(float(number))
        for name, _operator, text in _EQUALITY.findall(condition):
            profile.rule_fields.add(name)
            profile.literals.setdefault(name, []).append(_literal(text))
        for name, items in _MEMBERSHIP.findall(condition):
            profile.rule_fields.add(name)
            profile.literals.setdefault(name, []).extend(a or b for a, b in _QUOTED.findall(items))
        profile.rule_fields.update(re.findall(r"rawPayload\.(\w+)", condition))


def profiles(domain: DomainPack) -> list[TypeProfile]:
    """One profile per exception type, in pack order (so generation is reproducible)."""
    weights = type_weights(domain)
    found: list[TypeProfile] = []
    for name, definition in domain.exceptionTypes.items():
        profile = TypeProfile(name, definition, weights[name])
        entity = domain.entities.get(definition.entity or "")
        if entity is not None:
            profile.attributes = dict(entity.attributes)
            profile.required = {k for k, a in entity.attributes.items() if a.required}
        _detection(profile)
        _severity_rules(profile, domain)
        for suite in domain.testSuites:
            for case in suite.cases:
                if case_type(domain, case.expected.exceptionType, case.input.exceptionType) != name:
                    continue
                context = dict(plain(case.input.normalizedContext))
                if case.input.slaMinutesRemaining is not None:
                    context["slaMinutesRemaining"] = case.input.slaMinutesRemaining
                source = case.input.sourceSystem if case.input.sourceSystem != "test-suite" else None
                template = Template(dict(plain(case.input.rawPayload)), source, case.input.severity, context)
                profile.templates.append(template)
        found.append(profile)
    for profile in found:  # another type's tell-tale fields on a shared entity would make detection ambiguous
        for other in found:
            if other is not profile and other.definition.entity == profile.definition.entity:
                profile.excluded |= other.signature - profile.signature - profile.required
    return found


def fits(value: Any, attribute: Attribute) -> bool:
    """Whether ``value`` has the attribute's JSON type (and is one of its enum values, when closed)."""
    if attribute.enum is not None and value not in attribute.enum:
        return False
    kind = attribute.type
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    if not isinstance(value, str):
        return False
    if kind in ("date", "datetime"):
        try:
            (date.fromisoformat if kind == "date" else datetime.fromisoformat)(value)
        except ValueError:
            return False
    return True


def _scaled(anchor: float, rng: random.Random) -> float:
    return anchor * math.exp(rng.uniform(math.log(SCALE_LOW), math.log(SCALE_HIGH)))


def _number(name: str, attribute: Attribute, profile: TypeProfile, rng: random.Random, seed: Any) -> Any:
    examples = [
        float(v) for v in attribute.examples if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    anchors = [*examples, *profile.thresholds.get(name, [])]
    if isinstance(seed, int | float) and not isinstance(seed, bool):
        anchors = [float(seed)]  # the template's value, varied
    if not anchors:
        anchors = [10.0] if attribute.type == "integer" else [1000.0]
    value = _scaled(rng.choice(anchors), rng)
    if anchors and all(0 <= a <= 1 for a in anchors) and any(a != int(a) for a in anchors):
        value = min(value, 1.0)  # a score or ratio stays a ratio
    if name.endswith("Pct") and all(0 <= a <= 100 for a in anchors):
        value = min(value, 100.0)
    if attribute.type == "integer" or (abs(value) >= 10 and all(a.is_integer() for a in anchors)):
        return round(value)  # counts and whole amounts stay whole
    return round(value, 4 if abs(value) < 1 else 2)


def _identifier(example: str, rng: random.Random) -> str:
    """Another identifier of the same shape: the last run of digits redrawn."""
    match = _TRAILING_DIGITS.search(example)
    if match is None:
        return example
    digits = "".join(str(rng.randrange(10)) for _ in match.group(1))
    return example[: match.start()] + digits + example[match.end() :]


def _moment(attribute: Attribute, rng: random.Random) -> str:
    anchors = [str(v) for v in attribute.examples if fits(str(v), attribute)]
    if attribute.type == "date":
        base = date.fromisoformat(rng.choice(anchors)) if anchors else BASE_DATE
        return (base + timedelta(days=rng.randint(-10, 10))).isoformat()
    if anchors:
        moment = datetime.fromisoformat(rng.choice(anchors).replace("Z", "+00:00"))
    else:
        moment = datetime(BASE_DATE.year, BASE_DATE.month, BASE_DATE.day, 12)
    moment += timedelta(days=rng.randint(-10, 10), minutes=rng.randrange(0, 24 * 60, 15))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def draw(name: str, attribute: Attribute, profile: TypeProfile, rng: random.Random, seed: Any = None) -> Any:
    """A value for one attribute; ``seed`` is a template value that may be kept or varied."""
    if seed is not None and fits(seed, attribute):
        numeric = attribute.type in ("number", "integer")
        if numeric and rng.random() >= KEEP_TEMPLATE_VALUE:
            return _number(name, attribute, profile, rng, seed)
        if numeric or rng.random() < KEEP_TEMPLATE_VALUE:
            return seed
    if attribute.enum is not None:
        pool = [*attribute.enum, *(v for v in attribute.examples if v in attribute.enum)]
        return rng.choice(pool)
    kind = attribute.type
    if kind in ("number", "integer"):
        return _number(name, attribute, profile, rng, None)
    if kind in ("date", "datetime"):
        return _moment(attribute, rng)
    examples = [v for v in attribute.examples if fits(v, attribute)]
    if kind == "boolean":
        return rng.choice(examples) if examples else rng.random() < 0.5
    if kind in ("array", "object"):
        return plain(rng.choice(examples)) if examples else ([] if kind == "array" else {})
    pool = [*examples, *(v for v in profile.literals.get(name, []) if isinstance(v, str))]
    if not pool:
        return f"{name[:4].upper()}-{rng.randrange(100000, 1000000)}"
    value = str(rng.choice(pool))
    return _identifier(value, rng) if name.endswith(_ID_SUFFIXES) else value


def _value(name: str, profile: TypeProfile, rng: random.Random, seed: Any = None) -> Any:
    if name in profile.forced:
        return profile.forced[name]
    attribute = profile.attributes.get(name)
    if attribute is None:
        return seed  # a template field the entity does not describe: upstream payloads carry extras
    value = draw(name, attribute, profile, rng, seed)
    for _ in range(8):  # a value the detection rules say this type never has
        if value not in profile.avoided.get(name, []):
            break
        value = draw(name, attribute, profile, rng)
    return value


def payload(profile: TypeProfile, rng: random.Random) -> tuple[dict[str, Any], Template | None]:
    """A raw payload for the type, from one of its test-suite templates or from its entity alone."""
    musts = (profile.required | profile.signature) & (profile.attributes.keys() | profile.forced.keys())
    template = rng.choice(profile.templates) if profile.templates and rng.random() < TEMPLATE_SHARE else None
    values: dict[str, Any] = {}
    if template is not None:
        for name, seed in template.payload.items():
            values[name] = _value(name, profile, rng, seed)
        extra = [n for n in profile.attributes if n in profile.rule_fields and n not in values]
        chosen = {n for n in extra if n not in profile.excluded and rng.random() < EXTRA_RULE_FIELD_SHARE}
    else:
        chosen = {
            name
            for name in profile.attributes
            if name not in profile.excluded
            and rng.random() < (RULE_FIELD_SHARE if name in profile.rule_fields else OPTIONAL_SHARE)
        }
    for name in [*profile.attributes, *sorted(profile.forced)]:
        if name not in values and (name in musts or name in chosen):
            values[name] = _value(name, profile, rng)
    return values, template


def _respelled(name: str, rng: random.Random) -> str:
    words = name.lower().split("_")
    return rng.choice([" ".join(words), "-".join(words), " ".join(w.capitalize() for w in words)])


def _pick(weights: Mapping[str, float], rng: random.Random) -> str:
    names = list(weights)
    return rng.choices(names, weights=[weights[n] for n in names])[0]


def generate(
    domain: DomainPack,
    n: int,
    *,
    rng: random.Random,
    tenant_id: str,
    id_prefix: str = "SIM",
    first: int = 1,
) -> list[RawException]:
    """``n`` synthetic exceptions for ``tenant_id`` on ``domain``, ids ``<id_prefix>-<first..>``."""
    known = profiles(domain)
    by_name = {p.name: p for p in known}
    weights = {p.name: p.weight for p in known}
    default_source = f"{domain.domainName}-feed"
    made: list[RawException] = []
    for index in range(n):
        profile = by_name[_pick(weights, rng)]
        values, template = payload(profile, rng)
        label: str | None = profile.name
        roll = rng.random()
        if roll < UNLABELLED_SHARE:
            label = None
        elif roll < UNLABELLED_SHARE + RESPELLED_SHARE:
            label = _respelled(profile.name, rng)
        source = (template.source_system if template else None) or default_source
        context = dict(template.normalized_context) if template else {}
        if isinstance(context.get("slaMinutesRemaining"), int | float):
            context["slaMinutesRemaining"] = round(_scaled(float(context["slaMinutesRemaining"]), rng), 1)
        made.append(
            RawException(
                exceptionId=f"{id_prefix}-{first + index}",
                tenantId=tenant_id,
                sourceSystem=source,
                exceptionType=label,
                severity=template.severity if template else None,
                rawPayload=values,
                normalizedContext=context,
            )
        )
    return made


def type_mix(raws: Sequence[RawException], domain: DomainPack) -> dict[str, int]:
    """How many exceptions of each taxonomy type (respellings normalized, the rest ``UNLABELLED``)."""
    mix: dict[str, int] = {}
    for raw in raws:
        name = case_type(domain, None, raw.exceptionType) or "UNLABELLED"
        mix[name] = mix.get(name, 0) + 1
    return mix
