"""Similar-case memory on real stores: tenant isolation (embedded chroma and a chroma server), hybrid
search with filters on a fixed corpus, recurrence, the durable queue, the cache, rebuild after a model
change, the OpenAI-compatible embedder through the outbound policy, and the real MiniLM offline."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import respx

from app.db.models import EmbeddingCache, MemoryQueue
from app.memory.embeddings import CachedEmbedder, EmbeddingError, LocalEmbedder
from app.memory.service import MemoryService
from app.memory.store import ModelChanged
from tests.api_helpers import Api, running_api
from tests.graph_helpers import PUBLIC_ONLY
from tests.memory_helpers import NOW, HashEmbedder, store_case
from tools.outbound import OutboundPolicy

A, B = "globex-markets", "acme-capital"
CORPUS: list[tuple[str, str, str, str, dict[str, Any], str]] = [
    ("CB-1", "CASH_BREAK", "LOW", "RESOLVED", {"cashAccountId": "NOSTRO-EUR-1"}, "coupon payment missing on nostro"),
    ("CB-2", "CASH_BREAK", "HIGH", "ESCALATED", {"cashAccountId": "NOSTRO-USD-2"}, "fx settlement booked twice"),
    ("CB-3", "CASH_BREAK", "LOW", "RESOLVED", {"cashAccountId": "NOSTRO-EUR-1"}, "bank fee not booked in ledger"),
    ("SF-1", "SETTLEMENT_FAIL", "MEDIUM", "RESOLVED", {"instructionId": "SI-9"}, "ssi mismatch counterparty"),
    ("TM-1", "TRADE_MISMATCH", "LOW", "RESOLVED", {"tradeId": "T-1"}, "price mismatch coupon bond"),
]  # fmt: skip


@pytest.fixture
async def memory_api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path, "sqlite", memory_enabled=True) as api:
        assert api.services.runtime.memory is not None
        api.services.runtime.memory.local = HashEmbedder()
        yield api


def memory(api: Api) -> MemoryService:
    assert api.services.runtime.memory is not None
    return api.services.runtime.memory


async def load_corpus(api: Api, tenant: str, prefix: str = "") -> None:
    for day, (case_id, kind, severity, status, attributes, text) in enumerate(CORPUS):
        await store_case(api.services.db, tenant, prefix + case_id, kind, severity=severity, status=status,
                         attributes=attributes, text=text, finished=NOW - timedelta(days=day))  # fmt: skip
    await memory(api).remember(tenant, [prefix + row[0] for row in CORPUS])


async def test_hybrid_search_ranks_filters_and_explains(memory_api: Api) -> None:
    await load_corpus(memory_api, A)
    service = memory(memory_api)
    found = await service.search(A, "coupon payment missing on nostro NOSTRO-EUR-1", k=3)
    assert found[0].exception_id == "CB-1"
    top = found[0].explanation
    assert top is not None and top["vectorRank"] == 1 and top["keywordRank"] == 1
    assert top["matchedFields"]["text"] == ["coupon", "missing", "nostro", "payment"]
    assert top["matchedFields"]["attributes"] == ["nostro-eur-1"]
    assert top["vectorScore"] is not None and top["vectorScore"] > 0.5
    cash = await service.search(A, "coupon", filters={"exceptionType": "CASH_BREAK"}, k=5)
    assert {c.exception_id for c in cash} <= {"CB-1", "CB-2", "CB-3"} and cash[0].exception_id == "CB-1"
    assert [c.exception_id for c in await service.search(A, "booked", filters={"severity": "HIGH"}, k=5)] == [
        "CB-2"
    ]
    escalated = await service.search(A, "nostro", filters={"outcome": "ESCALATED"}, k=5)
    assert [c.exception_id for c in escalated] == ["CB-2"]
    recent = await service.search(
        A, "nostro", filters={"since": (NOW - timedelta(hours=36)).timestamp()}, k=5
    )
    assert {c.exception_id for c in recent} == {"CB-1", "CB-2"}  # finished today and yesterday
    assert "CB-1" not in {c.exception_id for c in await service.search(A, "coupon", k=5, exclude={"CB-1"})}


async def test_a_tenant_never_finds_another_tenants_cases(memory_api: Api) -> None:
    await load_corpus(memory_api, A, "A-")
    await load_corpus(memory_api, B, "B-")
    service = memory(memory_api)
    for tenant, prefix in ((A, "A-"), (B, "B-")):
        for query in ("coupon payment missing on nostro", "ssi mismatch", "price mismatch coupon bond"):
            found = await service.search(tenant, query, k=10)
            assert found and all(case.exception_id.startswith(prefix) for case in found)
    response = await memory_api.client.get(
        f"/exceptions/{B}/A-CB-1/similar", headers=memory_api.as_("viewer", B)
    )
    assert response.status_code == 404  # the other tenant's case does not exist for B


async def test_the_similar_endpoint_explains_each_hit(memory_api: Api) -> None:
    await load_corpus(memory_api, A)
    url = f"/exceptions/{A}/CB-1/similar"
    response = await memory_api.client.get(
        url, params={"type": "CASH_BREAK"}, headers=memory_api.as_("viewer")
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert items and {item["exceptionId"] for item in items} <= {"CB-2", "CB-3"}  # never the case itself
    assert {"vectorScore", "keywordScore", "matchedFields", "fusedScore"} <= items[0]["explanation"].keys()
    bad = await memory_api.client.get(url, params={"k": 0}, headers=memory_api.as_("viewer"))
    assert bad.status_code == 422
    foreign = await memory_api.client.get(url, headers=memory_api.as_("viewer", B))
    assert foreign.status_code == 403


async def test_recurrence_finds_the_same_entity_within_the_window(memory_api: Api) -> None:
    await load_corpus(memory_api, A)
    service = memory(memory_api)
    recent = await service.recurrences(A, {"cashAccountId": "NOSTRO-EUR-1"}, NOW - timedelta(days=7))
    assert [case.exception_id for case in recent] == ["CB-1", "CB-3"]  # newest first
    assert [c.exception_id for c in await service.recurrences(A, {"cashAccountId": "NOSTRO-EUR-1"},
                                                              NOW - timedelta(hours=1))] == ["CB-1"]  # fmt: skip
    assert await service.recurrences(B, {"cashAccountId": "NOSTRO-EUR-1"}, NOW - timedelta(days=7)) == []


async def test_queued_cases_survive_until_remembered_and_the_cache_embeds_once(memory_api: Api) -> None:
    db, service = memory_api.services.db, memory(memory_api)
    await store_case(db, A, "Q-1", "CASH_BREAK", text="nostro coupon")
    async with db.session() as session:  # what the projection writes with a finished case
        session.add(MemoryQueue(tenant_id=A, exception_id="Q-1", queued_at=NOW, attempts=0))
    embedder = service.local
    assert isinstance(embedder, HashEmbedder)
    assert await service.drain() == 1
    assert await service.drain() == 0  # the row is gone once stored
    assert [c.exception_id for c in await service.search(A, "nostro coupon", k=3)] == ["Q-1"]
    calls = embedder.calls
    assert await service.rebuild(A) == 1
    await service.search(A, "nostro coupon", k=3)
    assert embedder.calls == calls  # the document and the query came from the cache
    cached = CachedEmbedder(HashEmbedder(), db, B)
    await cached.embed(["one text", "one text", "another"])
    assert (cached.hits, cached.misses) == (0, 3)
    await cached.embed(["another", "one text"])
    assert (cached.hits, cached.misses) == (2, 3)
    async with db.session() as session:
        assert {
            row.tenant_id for row in (await session.execute(EmbeddingCache.__table__.select())).all()
        } == {A, B}


async def test_a_model_change_waits_for_a_rebuild(memory_api: Api) -> None:
    await load_corpus(memory_api, A)
    service = memory(memory_api)
    service.local = HashEmbedder(64, name="other")  # the tenant's model changed
    with pytest.raises(ModelChanged, match="exops memory rebuild --tenant globex-markets"):
        await service.search(A, "coupon", k=3)
    await store_case(memory_api.services.db, A, "NEW-1", "CASH_BREAK", text="coupon")
    async with memory_api.services.db.session() as session:
        session.add(MemoryQueue(tenant_id=A, exception_id="NEW-1", queued_at=NOW, attempts=0))
    assert await service.remember_pending() == 0  # never mixed into the old vectors: kept queued
    [stats] = await service.stats([A])
    assert stats["needsRebuild"] and stats["queued"] == 1 and "rebuild" in stats["lastError"]
    assert await service.rebuild(A) == len(CORPUS) + 1
    [stats] = await service.stats([A])
    assert stats == {**stats, "needsRebuild": False, "queued": 0, "dimension": 64, "cases": len(CORPUS) + 1}
    assert (await service.search(A, "coupon payment missing", k=1))[0].exception_id == "CB-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Any:
    """A chroma server on loopback (the `chroma` command chromadb installs), stopped afterwards."""
    command = shutil.which("chroma", path=str(Path(sys.executable).parent))
    assert command is not None
    port = free_port()
    process = subprocess.Popen([command, "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1",
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "chroma server did not start"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)


async def test_isolation_holds_on_a_chroma_server(tmp_path: Path, chroma_server: str) -> None:
    async with running_api(tmp_path, "sqlite", memory_enabled=True, chroma_url=chroma_server) as api:
        memory(api).local = HashEmbedder()
        assert memory(api).store.where == chroma_server
        await load_corpus(api, A, "A-")
        await load_corpus(api, B, "B-")
        for tenant, prefix in ((A, "A-"), (B, "B-")):
            found = await memory(api).search(tenant, "coupon payment missing on nostro", k=10)
            assert found[0].exception_id == f"{prefix}CB-1"
            assert all(case.exception_id.startswith(prefix) for case in found)
        names = {c.name for c in memory(api).store.client.list_collections()}
        assert len(names) == 2


async def test_an_openai_compatible_endpoint_gets_the_tenants_own_key(tmp_path: Path) -> None:
    """Tenant B embeds through its endpoint with its own key; tenant A's key never goes there."""
    secrets = {"tenants": {B: {"EMBED_KEY": "b-key"}, A: {"EMBED_KEY": "a-key"}}}
    async with running_api(tmp_path, "sqlite", memory_enabled=True, secrets=secrets) as api:
        service = memory(api)
        tenant = service.tenant(B).model_copy(update={"embeddings": service.tenant(B).embeddings.model_validate(
            {"provider": "openai", "model": "embed-small", "baseUrl": "https://embed.example/v1", "apiKeyRef": "EMBED_KEY"})})  # fmt: skip
        service.packs = _Packs(service.packs, tenant)
        service.outbound = PUBLIC_ONLY  # embed.example resolves to a public address (no DNS in tests)
        keys: list[str] = []

        def answer(request: httpx.Request) -> httpx.Response:
            keys.append(request.headers["Authorization"])
            texts = __import__("json").loads(request.content)["input"]
            data = [
                {"object": "embedding", "index": i, "embedding": [1.0, float(len(t)), 0.5]}
                for i, t in enumerate(texts)
            ]
            return httpx.Response(200, json={"object": "list", "data": data, "model": "embed-small",
                                             "usage": {"prompt_tokens": 1, "total_tokens": 1}})  # fmt: skip

        with respx.mock(assert_all_called=True) as mock:
            mock.route(host="embed.example").mock(side_effect=answer)
            await store_case(api.services.db, B, "O-1", "CASH_BREAK", text="nostro")
            assert await service.remember(B, ["O-1"]) == 1
        assert keys and set(keys) == {"Bearer b-key"}
        [stats] = await service.stats([B])
        assert stats["model"] == "openai:https://embed.example/v1:embed-small" and stats["dimension"] == 3
        service.outbound = OutboundPolicy(resolver=PRIVATE_DNS)  # the endpoint turns out to be internal
        service._embedders.clear()
        await store_case(api.services.db, B, "O-2", "CASH_BREAK", text="nostro again")
        with pytest.raises(EmbeddingError, match="unreachable"):
            await service.remember(B, ["O-2"])


async def PRIVATE_DNS(host: str, port: int) -> list[str]:
    return ["10.0.0.7"]


class _Packs:
    def __init__(self, inner: Any, tenant: Any) -> None:
        self.inner, self.replaced = inner, tenant

    def tenant(self, tenant_id: str) -> Any:
        return self.replaced if tenant_id == self.replaced.tenantId else self.inner.tenant(tenant_id)

    def domain_of(self, tenant: Any) -> Any:
        return self.inner.domain_of(tenant)


async def test_the_real_minilm_loads_from_the_package_offline() -> None:
    """The shipped weights, no network (the autouse fixture refuses anything beyond loopback)."""
    vectors = await LocalEmbedder().embed(
        ["Cash break on the EUR nostro: coupon not received", "EUR nostro coupon payment missing",
         "TLS certificate expires in three days"]
    )  # fmt: skip
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.2
    await asyncio.sleep(0)
