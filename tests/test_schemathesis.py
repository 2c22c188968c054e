"""Schemathesis against the live app's OpenAPI document (issue 12).

Every documented operation is sent generated requests as three principals — an operator and a
tenant admin of ``globex-markets`` and the platform admin — and the pass condition is that none
answers 5xx and none breaks the document: the status is documented, the content type and headers
are the documented ones, the body matches its schema, and a method the path does not serve gets 405
with an ``Allow`` header naming every method it does serve.

What is sent:

* the platform admin, whom no role or tenant check stops, gets the schema's examples, schemathesis'
  coverage cases (boundary and invalid values of every parameter and body field, missing and wrong
  media types, undeclared methods) and ``FUZZED`` fuzzed cases per operation;
* the operator and the tenant admin get the examples and ``FUZZED`` fuzzed cases per operation, which
  is where their role and tenant refusals are exercised (the coverage cases would be the same ones
  again, refused at the role check).

The app is the real one (``create_app``) on a SQLite database with the sample packs; tenants, a key
per role and the example cases (two waiting for approval) are made first (``tests/api_helpers.py``),
then schemathesis sends its requests in-process. The run is deterministic (fixed seed, derandomized,
no example database, no shrinking) and offline: tools run dry, no LLM is configured, notifications
are recorded, respx answers any HTTP the app would still send, and the autouse network guard in
``conftest.py`` fails the test on any other connection.

Generated values rarely name something that exists, and a request refused with 403 or 404 tests
little beyond the refusal. So before each call the case gets the principal's key, and its path
values are pointed at real things (the principal's tenant, the seeded exceptions and approvals, the
domain packs, their version, the domain's tools) for 7 cases in 8; the 8th keeps what was generated.
Which ones keep theirs is decided by a hash of the generated value, so a run repeats exactly.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import respx
import schemathesis
from schemathesis.python import asgi

from app.api.main import create_app, open_services
from app.settings import Settings
from tests.api_helpers import JWT_SECRET, SAMPLES, TENANTS, running_api

pytestmark = pytest.mark.filterwarnings(
    # schemathesis' own strategies use `random`; nothing this suite can change
    "ignore::hypothesis.errors.HypothesisDeprecationWarning"
)

SEED = 20261201
FUZZED = 6
"""Fuzzed requests per operation and principal, on top of the examples (and the coverage cases)."""

PRINCIPALS = {
    "operator": ("globex-markets", "operator"),
    "tenant-admin": ("globex-markets", "admin"),
    "platform-admin": ("globex-markets", "platform_admin"),
}
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "unsupported_method",
    "allow_header_conformance",
)
PACK_UPLOADS = (
    "/admin/domain-packs",
    "/admin/domain-packs/validate",
    "/admin/{tenantId}/policy",
    "/admin/{tenantId}/policy/validate",
)
EXAMPLES = json.loads(
    (Path(__file__).parent.parent / "docs" / "examples" / "globex-markets-exceptions.json").read_text()
)["exceptions"]


def _config(*, coverage: bool, uploads: int) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "suppress-health-check": ["all"],
            "generation": {"max-examples": FUZZED, "deterministic": True, "no-shrink": True,
                           "database": "none"},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "phases": {"coverage": {"enabled": coverage, "unexpected-methods": ["put", "patch", "delete", "options"]}},
            "operations": [
                {
                    # A pack upload's body is a whole pack: the coverage phase enumerates ~1,600 cases
                    # per media type (minutes) and one fuzzed pack takes ~0.1 s to draw, so uploads
                    # are fuzzed only, with fewer cases.
                    "include-name": [f"POST {path}" for path in PACK_UPLOADS],
                    "phases": {"coverage": {"enabled": False}},
                    "generation": {"max-examples": uploads},
                }
            ],
        }
    )  # fmt: skip


def _document() -> dict[str, Any]:
    """The OpenAPI document, read at collection from an app that is built but not started (the
    ``live`` fixture checks that the started app serves the same one)."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), database_url=f"sqlite:///{folder}/exops.db",
                            packs_dir=SAMPLES, jwt_secret=JWT_SECRET)  # fmt: skip
        return create_app(settings).openapi()


DOCUMENT = _document()
every_case = schemathesis.openapi.from_dict(DOCUMENT, config=_config(coverage=True, uploads=3))
fuzzed_cases = schemathesis.openapi.from_dict(DOCUMENT, config=_config(coverage=False, uploads=1))
OPERATIONS = [result.ok().label for result in every_case.get_all_operations()]


class ServicesOnce:
    """The app, with its services opened once on the loop that serves its requests and kept open.

    Schemathesis' in-process client starts an app's lifespan on first use and its pytest plugin ends
    it after every test item, which would open the services again (migrations, packs, workers) for
    each of the ~130 items. Here the first lifespan startup opens them, a shutdown leaves them open,
    and ``close`` ends them on their own loop once the module is done.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stack = AsyncExitStack()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.loop is None:
                    self.app.state.services = await self.stack.enter_async_context(
                        open_services(self.settings)
                    )
                    self.loop = asyncio.get_running_loop()
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close(self) -> None:
        if self.loop is not None:
            asyncio.run_coroutine_threadsafe(self.stack.aclose(), self.loop).result()


@dataclass
class Live:
    """The running app and what exists in it, and what the run did."""

    app: ServicesOnce
    keys: dict[str, str]
    known: dict[str, list[str]]
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)


async def _seed(tmp_path: Path) -> tuple[Settings, dict[str, str], dict[str, list[str]]]:
    """Tenants, a key per principal and the example cases in a fresh database; returns the settings
    to start the app with, the keys and the names of things that exist."""
    async with running_api(tmp_path, "sqlite", rate=1_000_000) as api:
        for tenant in TENANTS:
            await api.client.post(f"/exceptions/{tenant}", json=EXAMPLES, headers=api.as_("operator", tenant))
        await api.settle()
        admin = api.as_("admin")
        approvals = (await api.client.get("/approvals/globex-markets", headers=admin)).json()["items"]
        tools = (await api.client.get("/admin/globex-markets/tools", headers=admin)).json()["items"]
        keys = {name: api.as_(role, tenant)["X-API-KEY"] for name, (tenant, role) in PRINCIPALS.items()}
        known = {
            "exceptionId": [e["exceptionId"] for e in EXAMPLES],
            "approvalId": [a["approvalId"] for a in approvals],
            "tool": [t["name"] for t in tools],
            "name": ["capital-markets", "healthcare-claims"],
            "version": ["1.0.0"],
        }
        assert known["approvalId"] and known["tool"], "the seeded data has no approval or no tool"
        return api.settings, keys, known


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    settings, keys, known = asyncio.run(_seed(tmp_path_factory.mktemp("schemathesis")))
    app = ServicesOnce(settings)
    try:
        with respx.mock(assert_all_called=False) as outside:
            outside.route().respond(503, json={"error": "nothing leaves a test"})
            with asgi.get_client(app) as client:
                served = client.get("/openapi.json").json()
            assert served == DOCUMENT, "the started app serves another document than the one collected"
            yield Live(app, keys, known)
    finally:
        app.close()


SERVED = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allow_names_every_method_of_the_path(ctx: Any, response: Any, case: Any) -> None:
    """A 405 names exactly the methods the document gives the path. (Schemathesis' own checks
    accept any ``Allow``, an empty one included, except in answer to ``OPTIONS``.)"""
    if response.status_code != 405:
        return
    allow = ",".join(response.headers.get("allow", []))
    named = {method.strip().upper() for method in allow.split(",") if method.strip()} - {"HEAD", "OPTIONS"}
    documented = {method.upper() for method in DOCUMENT["paths"][case.operation.path]} & set(SERVED)
    assert named == documented, f"405 with Allow: {allow!r}; the path serves {sorted(documented)}"


def _hash(value: Any) -> int:
    return zlib.crc32(repr(value).encode())


def _send(case: Any, live: Live, principal: str) -> None:
    """Point the case at real things (7 in 8), send it with the principal's key, check the answer."""
    tenant, _role = PRINCIPALS[principal]
    parameters = case.path_parameters or {}
    for name, value in list(parameters.items()):
        if _hash(value) % 8 == 0:
            continue
        if name == "tenantId":
            parameters[name] = tenant
        elif name in live.known:
            parameters[name] = live.known[name][_hash(value) % len(live.known[name])]
    response = case.call_and_validate(
        headers={"X-API-KEY": live.keys[principal]},
        app=live.app,
        additional_checks=[allow_names_every_method_of_the_path],
    )
    live.calls[(principal, case.operation.label)] += 1
    live.statuses[response.status_code] += 1


SETTINGS = hypothesis.settings(deadline=None, database=None, derandomize=True)


@pytest.fixture(params=["platform-admin"])
def platform_admin(request: pytest.FixtureRequest) -> str:
    """A parameter, if a single one: it puts the operation and the principal in each test's id."""
    return str(request.param)


@pytest.fixture(params=["operator", "tenant-admin"])
def tenant_principal(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@every_case.parametrize()
@SETTINGS
def test_the_platform_admin_gets_documented_answers_only(case: Any, live: Live, platform_admin: str) -> None:
    _send(case, live, platform_admin)


@fuzzed_cases.parametrize()
@SETTINGS
def test_tenant_principals_get_documented_answers_only(case: Any, live: Live, tenant_principal: str) -> None:
    _send(case, live, tenant_principal)


def test_every_operation_was_called_for_every_principal(live: Live) -> None:
    """The runs above cannot pass by testing nothing: each documented operation was called, for each
    principal (this test runs after them, in file order)."""
    assert len(OPERATIONS) >= 40
    missing = [
        f"{who}: {label}" for who in PRINCIPALS for label in OPERATIONS if not live.calls[(who, label)]
    ]
    assert not missing, f"never called (run the whole module): {missing}"
    print(
        f"\nschemathesis: {len(OPERATIONS)} operations, {sum(live.calls.values())} requests, "
        f"statuses {dict(sorted(live.statuses.items()))}"
    )
