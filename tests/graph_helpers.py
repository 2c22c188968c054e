"""Shared pieces for graph tests: the mini packs, a fixed clock, contexts, and LLM replies on the wire."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import yaml

from graph.context import RunContext
from graph.inputs import RawException
from graph.llm import LlmClient, LlmConfig
from packs.domain import DomainPack
from packs.tenant import TenantPolicyPack
from tests.conftest import FIXTURES
from tools.outbound import OutboundPolicy

LLM_BASE = "https://llm.test/v1"
PUBLIC_ADDRESS = "52.20.1.10"


async def public_dns(host: str, port: int) -> list[str]:
    """A fake resolver: every name is one public address (tests never use DNS; respx answers)."""
    return [PUBLIC_ADDRESS]


PUBLIC_ONLY = OutboundPolicy(resolver=public_dns)
"""The outbound policy of an LLM client in tests: the default rule, fake DNS."""


def mini_packs(
    domain_edit: Callable[[dict[str, Any]], None] | None = None,
    tenant_edit: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[DomainPack, TenantPolicyPack]:
    domain_doc = yaml.safe_load((FIXTURES / "mini-domain.yaml").read_text())
    tenant_doc = yaml.safe_load((FIXTURES / "mini-tenant.yaml").read_text())
    if domain_edit:
        domain_edit(domain_doc)
    if tenant_edit:
        tenant_edit(tenant_doc)
    return DomainPack.model_validate(domain_doc), TenantPolicyPack.model_validate(tenant_doc)


class Clock:
    """A clock tests move by hand (deadlines and timings stay deterministic)."""

    def __init__(self, start: datetime = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


def context(
    domain: DomainPack | None = None,
    tenant: TenantPolicyPack | None = None,
    *,
    llm: bool = False,
    **extra: Any,
) -> RunContext:
    if domain is None or tenant is None:
        domain, tenant = mini_packs()
    client = (
        LlmClient(
            LlmConfig(base_url=LLM_BASE, api_key="k", model="test-model", timeout_seconds=2),
            outbound=PUBLIC_ONLY,
        )
        if llm
        else None
    )
    extra.setdefault("clock", Clock())
    return RunContext(tenant=tenant, domain=domain, llm=client, **extra)


def raw(exception_id: str, exception_type: str | None, **payload: Any) -> RawException:
    return RawException(
        exceptionId=exception_id, exceptionType=exception_type, sourceSystem="test", rawPayload=payload
    )


def completion(content: dict[str, Any] | str | None, *, refusal: str | None = None) -> httpx.Response:
    text = json.dumps(content) if isinstance(content, dict) else content
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "test-model",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text, "refusal": refusal},
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        },
    )


def schema_name(request: httpx.Request) -> str:
    body = json.loads(request.content)
    return str(body["response_format"]["json_schema"]["name"])
