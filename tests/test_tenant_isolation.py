"""Tenant isolation, swept from the app itself: every tenant-scoped API operation (from the OpenAPI
document) and every tenant page or form of the UI (from the app's routes) is called by tenant A
(globex-markets, its admin: the most it can be) against tenant B (acme-capital).

- B's path with A's credential is 403, the same answer as for a tenant that does not exist (so a
  refusal says nothing about B), and nothing of B is in it.
- B's ids (a case, an approval, a key, a pack version, a tool only B's domain has) under A's own
  path are 404, the same answer as for an id nobody has; with two ids, each one foreign in turn.
- The same request with A's own ids works (the control): it proves that the body, ids and form
  fields of the sweep are right, so a 403 or 404 above is the isolation rule and not a bad request.
  No control answer shows anything of B either.
- After all that, B's cases, approvals, events, keys, policy versions, tool switches, breakers and
  token revocations are exactly as before.

Nothing here lists routes by hand: a route added tomorrow is swept the day it is added, and the
guard test fails when a route has a parameter or form the sweep cannot fill, instead of skipping it.
"""

from __future__ import annotations

import copy
import html
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import cache
from itertools import product
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema
import pytest
import pytest_asyncio
import yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from app.admin.accounts import issue_key
from app.api.deps import require_platform_admin
from app.api.main import create_app
from app.db.models import Approval
from app.settings import Settings
from tests.api_helpers import POSTGRES_URL, SAMPLES, Api, running_api

A, B = "globex-markets", "acme-capital"
NOBODY = "no-such-tenant"
"""A tenant that does not exist: refusing B must look exactly like refusing it."""
MARKER = "ACME-CONFIDENTIAL-5f1c"
"""Written into B's case, pack, key and revocation: it must never reach A."""
B_DOMAIN, B_DOMAIN_VERSION, B_TOOL = "acme-markets", "3.0.0-acme", "acme_private_ledger"
EXAMPLES = {
    e["exceptionId"]: e
    for e in json.loads(
        (Path(__file__).parent.parent / "docs" / "examples" / "globex-markets-exceptions.json").read_text()
    )["exceptions"]
}
WAITS_FOR_APPROVAL, WAITS_ON_STEP = "GLX-1003", "GLX-1002"
"""Sample exceptions that stop at an approval, and (for globex) at manual step 4."""
TWIN = "SHARED-ID-1"
"""An exception id both tenants use (upstream systems choose ids): A's case, events, playbook and
approval under it must show nothing of B's twin (which carries ``MARKER``)."""
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

# -- what the sweep needs to know about parameters ---------------------------------------------------
ID_PARAMS = {"exceptionId", "approvalId", "keyId", "version", "from", "to", "tool", "jobId"}
"""Path or query parameters that name one tenant's object: each is filled with B's, then A's own, then
a made-up one. A new kind of id fails the guard test until it is added here and to ``Objects``."""
STEP_PARAMS = {"stepOrder", "order"}
"""A step's number: not an object of its own, it follows the case the request names."""
FIXED_VALUES: dict[str, tuple[str, ...]] = {"kind": ("policy", "domain")}
"""Other path parameters, each value swept."""
PUBLIC = {("GET", "/health")}
"""API operations without credentials; every other one is tenant-scoped or for the platform admin."""
UI_OUTSIDE_TENANT = {("GET", "/ui/login"), ("POST", "/ui/login"), ("POST", "/ui/logout"), ("GET", "/ui/")}
OTHER_ROUTES = {("GET", "/openapi.json"), ("HEAD", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/static/{name}")}  # fmt: skip
"""Served outside the OpenAPI document and the UI: the document itself and Swagger UI, no data."""
MIN_API_TENANT_OPERATIONS, MIN_UI_TENANT_ROUTES = 31, 21
"""What exists today (30 operations under ``{tenantId}`` plus ``POST /run``; 9 pages and 12 forms):
the sweep may grow, never shrink without someone noticing."""


@cache
def _sample_pack(relative: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((SAMPLES / relative).read_text())
    return document


def sample_pack(relative: str) -> dict[str, Any]:
    """A fresh copy of a sample pack under ``packs/samples`` (read once)."""
    return copy.deepcopy(_sample_pack(relative))


def policy_document(tenant: str, version: str = "9.9.9-sweep") -> dict[str, Any]:
    """A valid policy for ``tenant`` (Globex's sample, renamed): what an upload or a form would send."""
    document = sample_pack(f"tenants/{A}.yaml")
    document.update(tenantId=tenant, tenantName=f"{tenant} sweep", version=version)
    return document


BODIES: dict[tuple[str, str], Callable[[str], Any]] = {
    ("POST", "/admin/{tenantId}/policy"): policy_document,
    ("POST", "/admin/{tenantId}/policy/validate"): policy_document,
    ("POST", "/admin/{tenantId}/policy/whatif"): policy_document,
    ("POST", "/admin/domain-packs"): lambda _t: sample_pack("domains/capital-markets.yaml"),
    ("POST", "/admin/domain-packs/validate"): lambda _t: sample_pack("domains/capital-markets.yaml"),
}
"""Bodies the schema cannot give: a pack must also validate against its domain. Every other body is
derived from the operation's request schema (``minimal``)."""

UI_FORMS: dict[str, Callable[[str], dict[str, str]]] = {
    "/exceptions/{exceptionId}/steps/{order}/complete": lambda _t: {"notes": "done by the sweep"},
    "/exceptions/{exceptionId}/steps/{order}/skip": lambda _t: {"reason": "skipped by the sweep"},
    "/exceptions/{exceptionId}/recalculate": lambda _t: {},
    "/exceptions/{exceptionId}/approvals/{approvalId}/decide": lambda _t: {"decision": "reject", "reason": "sweep"},
    "/approvals/{approvalId}/decide": lambda _t: {"decision": "reject", "reason": "sweep"},
    "/packs/{kind}/validate": lambda t: {"document": yaml.safe_dump(policy_document(t))},
    "/packs/{kind}/upload": lambda t: {"document": yaml.safe_dump(policy_document(t))},
    "/packs/{kind}/rollback": lambda _t: {},
    "/packs/{kind}/{version}/activate": lambda _t: {},
    "/packs/{kind}/{version}/whatif": lambda _t: {"last": "5"},
    "/tools/{tool}/disable": lambda _t: {},
    "/tools/{tool}/enable": lambda _t: {},
    "/tools/{tool}/breaker/reset": lambda _t: {},
}  # fmt: skip
"""The fields of each UI form (after ``/ui/t/{tenantId}``), besides its CSRF token. Forms read their
fields by hand, so no schema says them; a new form fails the guard test until it is listed here."""


# -- the operations, derived from the app ------------------------------------------------------------
@dataclass(frozen=True)
class Operation:
    surface: str  # "api" or "ui"
    method: str
    path: str
    query_ids: tuple[str, ...] = ()
    body_schema: dict[str, Any] | None = None
    platform: bool = False  # its route depends on require_platform_admin

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def ids(self) -> list[str]:
        return [p for p in [*self.path_params, *self.query_ids] if p in ID_PARAMS]

    @property
    def tenant_in_body(self) -> bool:
        return bool(self.body_schema and "tenantId" in self.body_schema.get("required", []))

    @property
    def tenant_scoped(self) -> bool:
        """About one tenant: named in the path, or (``POST /run``) in the body of a tenant route."""
        return "tenantId" in self.path_params or (self.tenant_in_body and not self.platform)

    @property
    def form(self) -> str:
        return self.path.removeprefix("/ui/t/{tenantId}")

    def kinds(self) -> Iterator[dict[str, str]]:
        """Every combination of the fixed parameters' values (``kind``: policy, then domain)."""
        fixed = [p for p in self.path_params if p in FIXED_VALUES]
        for values in product(*(FIXED_VALUES[name] for name in fixed)):
            yield dict(zip(fixed, values, strict=True))


def build_app(tmp_path: Path) -> FastAPI:
    """The app as configured for the tests; its routes and OpenAPI document, not a running server."""
    return create_app(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'routes.db'}"))


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _depends_on(dependant: Any, call: Callable[..., Any]) -> bool:
    return any(sub.call is call or _depends_on(sub, call) for sub in dependant.dependencies)


def platform_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route that only the platform admin may call."""
    found = set()
    for route in iter_route_contexts(app.routes):
        original = route.original_route
        if isinstance(original, APIRoute) and _depends_on(original.dependant, require_platform_admin):
            found |= {(method, str(route.path)) for method in route.methods or ()}
    return found


def api_operations(app: FastAPI) -> list[Operation]:
    """Every operation of the app's OpenAPI document, with the query parameters that name objects."""
    spec, platform = app.openapi(), platform_routes(app)
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            query_ids = tuple(
                p["name"]
                for p in operation.get("parameters", [])
                if p["in"] == "query" and p["name"] in ID_PARAMS
            )
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            body = resolve(spec, schema) if schema is not None else None
            key = (method.upper(), path)
            found.append(Operation("api", *key, query_ids, body, platform=key in platform))
    return found


def _query_names(dependant: Any) -> list[str]:
    names = [f.alias for f in dependant.query_params]
    for sub in dependant.dependencies:
        names += _query_names(sub)
    return names


def ui_routes(app: FastAPI) -> list[Operation]:
    """Every UI route (``/ui/...``) with its method, from the app's router."""
    found = []
    for route in iter_route_contexts(app.routes):
        original = route.original_route
        if not isinstance(original, APIRoute) or not (route.path or "").startswith("/ui"):
            continue
        query_ids = tuple(n for n in _query_names(original.dependant) if n in ID_PARAMS)
        for method in sorted(route.methods or ()):
            found.append(Operation("ui", method, str(route.path), query_ids))
    return found


def other_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Routes that are neither in the OpenAPI document nor under ``/ui``."""
    found = set()
    for route in iter_route_contexts(app.routes):
        path = str(route.path)
        if path.startswith("/ui") or getattr(route, "include_in_schema", False):
            continue
        found |= {(method, path) for method in route.methods or ()}
    return found


# -- request bodies from the schema -------------------------------------------------------------------
def minimal(spec: dict[str, Any], schema: dict[str, Any], tenant: str, name: str = "") -> Any:
    """The smallest value the schema accepts: required properties only, the first branch of a union,
    the first enum value. A property called ``tenantId`` gets the tenant the request is about."""
    schema = resolve(spec, schema)
    if name == "tenantId":
        return tenant
    for word in ("const", "default"):
        if word in schema and schema[word] is not None:
            return schema[word]
    if "enum" in schema:
        return schema["enum"][0]
    for word in ("anyOf", "oneOf"):
        if word in schema:
            branches = [b for b in schema[word] if resolve(spec, b).get("type") != "null"]
            return minimal(spec, branches[0], tenant, name)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {key: minimal(spec, properties[key], tenant, key) for key in schema.get("required", [])}
    if kind == "array":
        return [minimal(spec, schema.get("items", {}), tenant) for _ in range(schema.get("minItems", 0))]
    if kind == "string" and name == "planDigest":  # a stale digest: the control is refused with a 409
        return "0" * 16
    if kind == "string":
        return "isolation-sweep"[: schema.get("maxLength", 200)].ljust(schema.get("minLength", 0), "x")
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    raise AssertionError(f"no minimal value for schema {schema}: give the operation a body in BODIES")


def body_for(spec: dict[str, Any], op: Operation, tenant: str) -> Any:
    if op.key in BODIES:
        return BODIES[op.key](tenant)
    if op.body_schema is None:
        return None
    return minimal(spec, op.body_schema, tenant)


# -- the objects each tenant has ---------------------------------------------------------------------
@dataclass
class Objects:
    """One tenant's ids, by parameter: what a request about that tenant's objects names."""

    tenant: str
    case: str
    approval_case: str
    approval: str
    step_case: str
    step_order: int
    key: str
    versions: dict[str, tuple[str, str]]  # kind -> (an older or active version, another)
    tool: str
    job: str  # the job of an answer to one of the tenant's approvals

    def value(self, op: Operation, param: str, kind: str) -> str:
        if param == "exceptionId":
            if any(p in STEP_PARAMS for p in op.path_params):
                return self.step_case
            return self.approval_case if "approvalId" in op.path_params else self.case
        if param == "approvalId":
            return self.approval
        if param == "keyId":
            return self.key
        if param == "tool":
            return self.tool
        if param == "jobId":
            return self.job
        if param in ("version", "from", "to"):
            older, newer = self.versions[kind]
            return older if param == "from" else newer
        raise AssertionError(f"no {param} in Objects: add it")

    def texts(self) -> list[str]:
        """The ids as they could appear in an answer (not the job's: on PostgreSQL it is a small
        number, which any answer may hold by chance; its answers are compared whole instead)."""
        versions = {v for pair in self.versions.values() for v in pair}
        return [self.case, self.approval_case, self.approval, self.step_case, self.key, self.tool, *versions]


MADE_UP = Objects(
    tenant=A, case="NOPE-CASE-404", approval_case="NOPE-CASE-404", approval="APR-NOPE-404-1",
    step_case="NOPE-STEP-404", step_order=1, key="nokey0000404",
    versions={"policy": ("0.0.1-nope", "0.0.2-nope"), "domain": ("0.0.1-nope", "0.0.2-nope")},
    tool="no_such_tool_404", job="987654321",
)  # fmt: skip
"""Ids nobody has: B's ids must be answered exactly as these are."""


def sample(exception_id: str, new_id: str, **payload: Any) -> dict[str, Any]:
    item = copy.deepcopy(EXAMPLES[exception_id])
    item["exceptionId"] = new_id
    item["rawPayload"] = {**item.get("rawPayload", {}), **payload}
    return item


async def ok(response: httpx.Response, *statuses: int) -> Any:
    assert response.status_code in (statuses or (200, 201)), f"{response.request.url}: {response.text}"
    return response.json()


async def answer_job(api: Api, tenant: str, approval_id: str) -> str:
    """The job of the last answer to ``approval_id`` (the one the approval's claim names)."""
    async with api.services.db.session() as session:
        row = await session.get(Approval, (tenant, approval_id))
    assert row is not None and row.claim_job is not None, approval_id
    return str(row.claim_job)


async def victim(api: Api) -> Objects:
    """Tenant B with one of everything, made through its own credentials: its own domain (with a tool
    no other domain has), an active policy and a draft, a case waiting for an approval, a case a
    person took over (waiting on its step), a key, a tool switched off, an open breaker and a token
    revocation. Most of them carry ``MARKER``."""
    admin, operator = api.as_("admin", B), api.as_("operator", B)
    domain = sample_pack("domains/capital-markets.yaml")
    domain.update(domainName=B_DOMAIN, version=B_DOMAIN_VERSION)
    domain["tools"][B_TOOL] = {
        **domain["tools"]["query_cash_ledger"],
        "description": f"B's own ledger {MARKER}",
    }
    await ok(
        await api.client.post(
            "/admin/domain-packs?activate=true", json=domain, headers=api.as_("platform_admin")
        )
    )
    policy = sample_pack(f"tenants/{B}.yaml")
    policy.update(domainName=B_DOMAIN, domainVersion=B_DOMAIN_VERSION, version="2.4.0-acme")
    policy["toolsAllowList"].append(B_TOOL)
    await ok(await api.client.post(f"/admin/{B}/policy?activate=true", json=policy, headers=admin))
    draft = {**policy, "version": "2.5.0-draft", "escalationQueue": f"queue-{MARKER}"}
    await ok(await api.client.post(f"/admin/{B}/policy", json=draft, headers=admin))
    cases = [sample(WAITS_FOR_APPROVAL, "ACM-ISO-APPROVAL", note=MARKER),
             sample(WAITS_FOR_APPROVAL, "ACM-ISO-STEP", note=MARKER), sample(WAITS_FOR_APPROVAL, TWIN, note=MARKER)]  # fmt: skip
    await ok(await api.post_and_settle(B, cases), 202)
    await ok(await api.client.post(f"/approvals/{B}/APR-ACM-ISO-STEP-1/takeover", json={}, headers=operator))
    step = await ok(await api.client.get(f"/exceptions/{B}/ACM-ISO-STEP/playbook", headers=operator))
    assert step["waitingFor"] == "manual_step", step
    key = await ok(await api.client.post(f"/admin/{B}/keys", json={"role": "viewer", "name": f"feed-{MARKER}"}, headers=admin))  # fmt: skip
    await ok(await api.client.post(f"/admin/{B}/tools/get_trade_details/disable", headers=admin))
    breaker = api.services.runtime.breakers.breaker(f"{B}/{B_DOMAIN}/query_cash_ledger")
    for _ in range(api.settings.tool_breaker_failures):
        breaker.record_failure()
    revocation = {"subject": f"someone-{MARKER}", "reason": MARKER}
    await ok(await api.client.post(f"/admin/{B}/token-revocations", json=revocation, headers=admin))
    return Objects(
        tenant=B, case="ACM-ISO-APPROVAL", approval_case="ACM-ISO-APPROVAL", approval="APR-ACM-ISO-APPROVAL-1",
        step_case="ACM-ISO-STEP", step_order=step["currentStep"], key=key["keyId"],
        versions={"policy": ("2.4.0-acme", "2.5.0-draft"), "domain": (B_DOMAIN_VERSION, B_DOMAIN_VERSION)},
        tool=B_TOOL, job=await answer_job(api, B, "APR-ACM-ISO-STEP-1"),
    )  # fmt: skip


@dataclass
class Attacker:
    """Tenant A's own objects for the controls. A control that decides an approval, answers a step or
    revokes a key uses up its object, so each such control gets a fresh one."""

    api: Api
    base: Objects = field(init=False)
    unused: dict[str, list[str]] = field(default_factory=lambda: {WAITS_FOR_APPROVAL: [], WAITS_ON_STEP: []})
    made: int = 0

    async def start(self) -> None:
        """A's case the read-only controls use has the id of one of B's (``TWIN``)."""
        await ok(await self.api.post_and_settle(A, [sample(WAITS_FOR_APPROVAL, TWIN),
                                                    sample(WAITS_FOR_APPROVAL, "GLX-ISO-JOB")]), 202)  # fmt: skip
        await ok(
            await self.api.client.post(
                f"/approvals/{A}/APR-GLX-ISO-JOB-1/takeover", json={}, headers=self.api.as_("operator", A)
            )
        )  # a job of A's own
        self.base = Objects(
            tenant=A, case=TWIN, approval_case=TWIN, approval=f"APR-{TWIN}-1", step_case="", step_order=0,
            key="", versions={"policy": ("1.4.0", "1.4.0"), "domain": ("1.0.0", "1.0.0")},
            tool="get_trade_details", job=await answer_job(self.api, A, "APR-GLX-ISO-JOB-1"),
        )  # fmt: skip

    async def _case(self, example: str) -> str:
        """A new case of A's made from ``example``; made four at a time (one batch, one settle)."""
        unused = self.unused[example]
        if not unused:
            unused += [f"GLX-ISO-{self.made + i}" for i in range(1, 5)]
            self.made += 4
            await ok(await self.api.post_and_settle(A, [sample(example, i) for i in unused]), 202)
        return unused.pop(0)

    async def fresh(self, op: Operation) -> Objects:
        """A's objects for one control: new ones where the request uses them up."""
        objects = replace(self.base)
        params = op.path_params
        if any(p in STEP_PARAMS for p in params):
            objects.step_case = await self._case(WAITS_ON_STEP)
            view = await ok(await self.api.client.get(f"/exceptions/{A}/{objects.step_case}/playbook", headers=self.api.as_("viewer", A)))  # fmt: skip
            assert view["waitingFor"] == "manual_step", view
            objects.step_order = view["currentStep"]
        if "approvalId" in params and op.method == "POST":
            case = await self._case(WAITS_FOR_APPROVAL)
            objects.approval_case, objects.approval = case, f"APR-{case}-1"
        if "keyId" in params:
            async with self.api.services.db.session() as session:
                objects.key = (await issue_key(session, tenant_id=A, role="viewer", name="sweep")).key_id
        return objects


# -- requests -------------------------------------------------------------------------------------
def every_id(op: Operation, objects: Objects) -> dict[str, Objects]:
    return dict.fromkeys([*op.ids, "exceptionId"], objects)


def url_of(op: Operation, tenant: str, ids: dict[str, Objects], kind: dict[str, str]) -> str:
    """The operation's URL for ``tenant``, each id parameter filled from the objects chosen for it."""
    chosen_kind = kind.get("kind", "policy")
    values: dict[str, str] = {"tenantId": tenant, **kind}
    for param in op.ids:
        values[param] = ids[param].value(op, param, chosen_kind)
    for param in op.path_params:
        if param in STEP_PARAMS:
            values[param] = str(ids["exceptionId"].step_order)
    missing = [p for p in op.path_params if p not in values]
    assert not missing, f"{op.method} {op.path}: the sweep cannot fill {missing}"
    path = op.path.format(**{k: quote(v, safe="") for k, v in values.items() if k in op.path_params})
    query = {q: values[q] for q in op.query_ids}
    return str(httpx.URL(path, params=query)) if query else path


def named(op: Operation, ids: dict[str, Objects], kind: dict[str, str]) -> list[str]:
    """The ids a request names (read as ``<id>`` when two answers are compared)."""
    chosen_kind = kind.get("kind", "policy")
    return [ids[p].value(op, p, chosen_kind) for p in op.ids]


def readable(response: httpx.Response) -> str:
    return html.unescape(response.text)


def blank(text: str, words: list[str]) -> str:
    """``text`` with each word read as ``<id>``; a number (a job id) only where it stands alone, not
    inside another number (job 4 is not the 4 of a 404)."""
    for word in sorted({w for w in words if w}, key=len, reverse=True):
        pattern = rf"(?<!\d){word}(?!\d)" if word.isdigit() else re.escape(word)
        text = re.sub(pattern, "<id>", text)
    return text


def same_answer(first: httpx.Response, second: httpx.Response, first_ids: list[str], second_ids: list[str]) -> bool:  # fmt: skip
    """Whether two answers are the same once the ids each request named are blanked out."""
    return (first.status_code, first.headers.get("content-type"), blank(readable(first), first_ids)) == (
        second.status_code, second.headers.get("content-type"), blank(readable(second), second_ids),
    )  # fmt: skip


@dataclass
class World:
    """One running API (per backend) with B's objects and A's, shared by the module's tests."""

    api: Api
    app: FastAPI
    victim: Objects
    attacker: Attacker

    @property
    def spec(self) -> dict[str, Any]:
        return self.app.openapi()


@dataclass
class Sweep:
    """Sends the requests as A's admin and collects every violation (all of them, not the first)."""

    world: World
    csrf: str = ""
    problems: list[str] = field(default_factory=list)
    swept: set[tuple[str, str]] = field(default_factory=set)
    requests: int = 0

    async def send(self, op: Operation, url: str, tenant: str) -> httpx.Response:
        """``op`` at ``url`` with a valid body or form for ``tenant``: with A's admin key (API) or A's
        admin session and its own CSRF token (UI), so nothing but the isolation rule can refuse it."""
        api = self.world.api
        self.requests += 1
        api.client.cookies.delete("exops_flash")
        if op.surface == "ui":
            data = {"csrf_token": self.csrf, **UI_FORMS[op.form](tenant)} if op.method == "POST" else None
            return await api.client.request(op.method, url, data=data)
        body = body_for(self.world.spec, op, tenant)
        return await api.client.request(op.method, url, json=body, headers=api.as_("admin", A))

    def check(self, condition: bool, op: Operation, url: str, response: httpx.Response, why: str) -> None:
        if not condition:
            self.problems.append(f"{op.method} {url}: {why} — got {response.status_code} {readable(response)[:300]!r}")  # fmt: skip

    def shows_nothing_of_b(self, op: Operation, url: str, response: httpx.Response, sent: list[str]) -> None:
        """Nothing of B in the answer besides what the request itself named (a problem repeats its
        URL as ``instance``, a 404 names the id it did not find)."""
        text = readable(response)
        for word in sorted(sent, key=len, reverse=True):
            text = text.replace(word, "")
        b_words = [MARKER, B_DOMAIN, "Acme Capital", *self.world.victim.texts()]
        leaked = sorted({w for w in b_words if w in text})
        self.check(not leaked, op, url, response, f"shows B's {leaked}")

    def passed(self, expected: set[tuple[str, str]]) -> None:
        assert self.swept == expected, f"not swept: {expected - self.swept}"
        assert not self.problems, f"{len(self.problems)} problem(s):\n" + "\n".join(self.problems)

    async def refused_for_b(self, op: Operation, kind: dict[str, str], refusal: str) -> None:
        """B's path with B's real ids: refused with ``refusal``, exactly as for a tenant that does not
        exist, and nothing of B in the answer."""
        victim = self.world.victim
        ids = every_id(op, victim)
        url, nobody_url = url_of(op, B, ids, kind), url_of(op, NOBODY, ids, kind)
        refused = await self.send(op, url, B)
        nobody = await self.send(op, nobody_url, NOBODY)
        self.check(refused.status_code == 403, op, url, refused, "expected 403")
        self.check(
            refusal in readable(refused), op, url, refused, f"refused for another reason than {refusal!r}"
        )
        if op.surface == "api":
            problem = refused.headers.get("content-type") == "application/problem+json"
            self.check(problem, op, url, refused, "not application/problem+json")
        self.check(same_answer(refused, nobody, [B], [NOBODY]), op, url, refused,
                   f"differs from a tenant that does not exist ({nobody.status_code} {readable(nobody)[:200]!r})")  # fmt: skip
        self.shows_nothing_of_b(op, url, refused, [B, *named(op, ids, kind)])

    async def foreign_ids(self, op: Operation, kind: dict[str, str]) -> None:
        """B's ids under A's own path (all of them, then each alone among A's own ids) against ids
        nobody has; then the control with A's own ids, which must go through."""
        attacker, victim = self.world.attacker, self.world.victim
        own = attacker.base
        variants = [(every_id(op, victim), every_id(op, MADE_UP))] if op.ids else []
        if len(op.ids) > 1:
            for param in op.ids:
                variants.append(({**every_id(op, own), param: victim}, {**every_id(op, own), param: MADE_UP}))
        own_names = named(op, every_id(op, own), kind)
        for foreign, nobody in variants:
            url, nobody_url = url_of(op, A, foreign, kind), url_of(op, A, nobody, kind)
            answer = await self.send(op, url, A)
            baseline = await self.send(op, nobody_url, A)
            foreign_names = [i for i in named(op, foreign, kind) if i not in own_names]
            nobody_names = [i for i in named(op, nobody, kind) if i not in own_names]
            # A role check before the lookup (the domain pack's forms are the platform admin's) refuses
            # B's id and a made-up one alike: that says nothing either.
            role_first = answer.status_code == baseline.status_code == 403 and "platform admin" in readable(
                answer
            )
            self.check(answer.status_code == 404 or role_first, op, url, answer, "expected 404")
            self.check(same_answer(answer, baseline, foreign_names, nobody_names), op, url, answer,
                       f"differs from an id nobody has ({baseline.status_code} {readable(baseline)[:200]!r})")  # fmt: skip
            if op.surface == "api":
                problem = answer.headers.get("content-type") == "application/problem+json"
                self.check(problem, op, url, answer, "not application/problem+json")
            self.shows_nothing_of_b(op, url, answer, foreign_names)
        objects = await attacker.fresh(op)
        url = url_of(op, A, every_id(op, objects), kind)
        control = await self.send(op, url, A)
        refused_by_role = control.status_code == 403 and "platform admin" in readable(control)
        exercised = control.status_code < 400 or control.status_code == 409 or refused_by_role
        self.check(
            exercised, op, url, control, "the control with A's own ids did not go through: fix the sweep"
        )
        self.shows_nothing_of_b(op, url, control, [])


# -- B's state, before and after ---------------------------------------------------------------------
def stable(value: Any, parent: str = "") -> Any:
    """``value`` without what changes by itself: a key's last use (B's own reads touch it) and a
    breaker's state (open turns half-open by the clock); its failures and opening time are kept."""
    if isinstance(value, dict):
        drop = {"lastUsedAt"} | ({"state", "retryAt"} if parent == "breaker" else set())
        return {k: stable(v, k) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


async def state_of(api: Api, tenant: str) -> dict[str, Any]:
    """Everything B's own admin can read about B through the API, each case in full."""
    headers = api.as_("admin", tenant)
    reads = [f"/exceptions/{tenant}?limit=200", f"/approvals/{tenant}?status=ALL&limit=200", f"/admin/{tenant}/keys",
             f"/admin/{tenant}/policy", f"/admin/{tenant}/tools", f"/admin/{tenant}/token-revocations",
             f"/metrics/{tenant}"]  # fmt: skip
    state = {url: await ok(await api.client.get(url, headers=headers)) for url in reads}
    for case in state[reads[0]]["items"]:
        for part in ("", "/events?limit=500", "/playbook"):
            url = f"/exceptions/{tenant}/{case['exceptionId']}{part}"
            response = await api.client.get(url, headers=headers)
            state[url] = (response.status_code, response.json())
    return stable(state)


# -- one running API per backend ---------------------------------------------------------------------
def _backends() -> list[Any]:
    postgres = pytest.param("postgres", marks=[
        pytest.mark.postgres, pytest.mark.skipif(POSTGRES_URL is None, reason="EXOPS_TEST_POSTGRES_URL not set"),
    ])  # fmt: skip
    return ["sqlite", postgres]


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=_backends())
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """Built once per backend: B's objects and A's take most of the module's time (a domain pack
    upload, policy activations, graph runs), and every test leaves B as it found it (it checks)."""
    tmp = tmp_path_factory.mktemp(f"isolation-{request.param}")
    async with running_api(tmp, request.param) as api:
        b = await victim(api)
        attacker = Attacker(api)
        await attacker.start()
        yield World(api, build_app(tmp_path_factory.mktemp("routes")), b, attacker)


module_loop = pytest.mark.asyncio(loop_scope="module")


# -- the guard ---------------------------------------------------------------------------------------
def test_the_sweep_covers_every_route_and_can_fill_each_one(tmp_path: Path) -> None:
    """Every route is tenant-scoped (swept), the platform admin's, or listed as public; every
    parameter, body and form of a tenant route can be filled; and the counts never shrink."""
    app = build_app(tmp_path)
    spec = app.openapi()
    operations, pages = api_operations(app), ui_routes(app)
    tenant_ops = [op for op in operations if op.tenant_scoped]
    assert len(tenant_ops) >= MIN_API_TENANT_OPERATIONS, [op.key for op in tenant_ops]
    assert ("POST", "/run") in {op.key for op in tenant_ops}  # scoped by its body's tenantId
    unclassified = {op.key for op in operations if not op.tenant_scoped and not op.platform} - PUBLIC
    assert not unclassified, f"neither tenant-scoped nor the platform admin's: {unclassified}"

    tenant_pages = [op for op in pages if op.path.startswith("/ui/t/{tenantId}/")]
    assert len(tenant_pages) >= MIN_UI_TENANT_ROUTES, [op.key for op in tenant_pages]
    assert {op.key for op in pages} - {op.key for op in tenant_pages} == UI_OUTSIDE_TENANT
    assert other_routes(app) == OTHER_ROUTES, "a route outside the API and the UI: sweep it or list it"

    for op in [*tenant_ops, *tenant_pages]:
        unknown = [
            p for p in op.path_params if p not in {"tenantId", *ID_PARAMS, *STEP_PARAMS, *FIXED_VALUES}
        ]
        assert not unknown, f"{op.method} {op.path}: add {unknown} to ID_PARAMS (and Objects) or FIXED_VALUES"
        for kind in op.kinds():
            url_of(op, B, every_id(op, MADE_UP), kind)
    for op in operations:  # a derived body must fit its schema (the packs in BODIES are checked by the app)
        for tenant in (A, B):
            if op.body_schema is not None and op.key not in BODIES:
                jsonschema.validate(
                    body_for(spec, op, tenant), {**op.body_schema, "components": spec["components"]}
                )
    forms = {op.form for op in tenant_pages if op.method == "POST"}
    assert forms == set(UI_FORMS), (
        f"forms without fields: {forms - set(UI_FORMS)}; gone: {set(UI_FORMS) - forms}"
    )


# -- API ---------------------------------------------------------------------------------------------
@module_loop
async def test_api_another_tenants_paths_are_403_and_say_nothing(world: World) -> None:
    """A's admin key on each of B's operations (B's real ids, valid bodies for B): 403, the same
    problem as for a tenant that does not exist, nothing of B in it; B unchanged."""
    before = await state_of(world.api, B)
    sweep = Sweep(world)
    ops = [op for op in api_operations(world.app) if op.tenant_scoped]
    for op in ops:
        for kind in op.kinds():
            await sweep.refused_for_b(op, kind, f"this credential is not for tenant {B}")
        sweep.swept.add(op.key)
    sweep.passed({op.key for op in ops})
    assert await state_of(world.api, B) == before


@module_loop
async def test_api_another_tenants_ids_under_ones_own_path_are_404(world: World) -> None:
    """Every tenant operation on A's own path: with B's ids (each in turn when there are two) 404,
    the same as for ids nobody has; with A's own ids it goes through and shows nothing of B;
    B unchanged."""
    before = await state_of(world.api, B)
    sweep = Sweep(world)
    ops = [op for op in api_operations(world.app) if op.tenant_scoped]
    for op in ops:
        for kind in op.kinds():
            await sweep.foreign_ids(op, kind)
        sweep.swept.add(op.key)
    await world.api.settle()
    sweep.passed({op.key for op in ops})
    assert await state_of(world.api, B) == before


# -- UI ----------------------------------------------------------------------------------------------
async def sign_in(api: Api, tenant: str, role: str = "admin") -> str:
    """Sign the client in to the UI with the role's key; the session's CSRF token."""
    api.client.cookies.clear()
    response = await api.client.post("/ui/login", data={"credential": api.as_(role, tenant)["X-API-KEY"], "next": "/ui/"})  # fmt: skip
    assert response.status_code == 303, response.text
    found = CSRF.search((await api.client.get(f"/ui/t/{tenant}/tools")).text)
    assert found is not None
    return found.group(1)


def tenant_pages(app: FastAPI) -> list[Operation]:
    return [op for op in ui_routes(app) if op.path.startswith("/ui/t/{tenantId}/")]


@module_loop
async def test_ui_another_tenants_pages_are_403_and_show_nothing(world: World) -> None:
    """Signed in as A's admin, every page and form of B (B's real ids, A's own valid CSRF token):
    403, the same page as for a tenant that does not exist, nothing of B on it; B unchanged."""
    before = await state_of(world.api, B)
    sweep = Sweep(world, csrf=await sign_in(world.api, A))
    pages = tenant_pages(world.app)
    for op in pages:
        for kind in op.kinds():
            await sweep.refused_for_b(op, kind, f"you are signed in for {A}, not {B}")
        sweep.swept.add(op.key)
    sweep.passed({op.key for op in pages})
    assert await state_of(world.api, B) == before


@module_loop
async def test_ui_another_tenants_ids_under_ones_own_pages_are_404(world: World) -> None:
    """Every page and form of A with B's ids: 404, the same page as for ids nobody has; with A's own
    ids each goes through and shows nothing of B; B unchanged."""
    before = await state_of(world.api, B)
    sweep = Sweep(world, csrf=await sign_in(world.api, A))
    pages = tenant_pages(world.app)
    for op in pages:
        for kind in op.kinds():
            await sweep.foreign_ids(op, kind)
        sweep.swept.add(op.key)
    await world.api.settle()
    sweep.passed({op.key for op in pages})
    assert await state_of(world.api, B) == before


# -- outside any tenant ------------------------------------------------------------------------------
@module_loop
async def test_routes_outside_a_tenant_refuse_or_redirect_a_tenant_admin(world: World) -> None:
    """The platform admin's operations answer A's admin 403 ("platform admin only"), whatever they
    name; the UI home sends A to A's own pages, never to the tenant list."""
    real = {"name": "capital-markets", "version": "1.0.0", "from": "1.0.0", "to": "1.0.0"}
    sweep = Sweep(world)
    platform = [op for op in api_operations(world.app) if op.platform]
    for op in platform:
        path = op.path.format(**{p: real[p] for p in op.path_params})
        query = {q: real[q] for q in op.query_ids}
        url = str(httpx.URL(path, params=query)) if query else path
        response = await sweep.send(op, url, NOBODY)
        sweep.swept.add(op.key)
        refused = response.status_code == 403 and response.json()["detail"] == "platform admin only"
        sweep.check(refused, op, url, response, "expected 403 platform admin only")
    sweep.passed({op.key for op in platform})
    await sign_in(world.api, A)
    home = await world.api.client.get("/ui/")
    assert home.status_code == 303 and home.headers["location"] == f"/ui/t/{A}/exceptions"
