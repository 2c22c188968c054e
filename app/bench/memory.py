"""Similar-case memory at scale: our hybrid search against a raw chroma query on the same collection.

One tenant's collection is filled with ``cases`` remembered cases (100,000 by default). Their vectors
are precomputed (random unit vectors, 384-d like MiniLM): embedding 100,000 documents on a CPU would
take the bench most of an hour and measures the model, not the search. Their documents are drawn from
a fixed vocabulary, so BM25 has realistic posting lists. Then, query by query and alternating:

* ours: ``MemoryService.search_vector`` with the type filter (the tenant is the collection): chroma's
  filtered vector query for 4 x k candidates, the BM25 keyword search, rank fusion, explanations;
* raw: ``collection.query`` with the same type filter and ``n_results=k``.

``memory_search_ratio`` is the median of ours over the median of raw (goal: at most 2.0);
``memory_p95_ms`` is ours at the 95th percentile. The keyword side is also timed against chroma's own
full-text filter (``where_document={"$contains": word}``, unranked), the alternative the issue asked
to measure. Triage's added latency is ``recall`` as triage calls it (real MiniLM embedding of a new,
uncached case document, hybrid search, recurrence lookup) on the same collection.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.db.migrate import upgrade
from app.db.session import Database
from app.memory.embeddings import LOCAL_DIMENSION
from app.memory.service import MemoryService
from app.settings import SAMPLE_PACKS_DIR, Settings
from graph.memory import KeywordIndex
from packs.registry import PackRegistry
from tools.outbound import OutboundPolicy

TENANT = "globex-markets"
TYPES = ("TRADE_MISMATCH", "FAILED_ALLOCATION", "POSITION_BREAK", "CASH_BREAK", "SETTLEMENT_FAIL",
         "REGULATORY_REPORT_REJECTED", "SEC_MASTER_MISMATCH", "SETTLEMENT_DELAY_NOTICE")  # fmt: skip
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
OUTCOMES = ("RESOLVED", "RESOLVED", "RESOLVED", "ESCALATED", "REJECTED")
K = 5


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _corpus(count: int, seed: int = 7) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    rng = random.Random(seed)
    vocabulary = [f"w{n}" for n in range(3000)] + ["nostro", "coupon", "ssi", "custodian", "fx", "fee"]
    ids, documents, metadatas = [], [], []
    now = time.time()
    for n in range(count):
        kind = rng.choice(TYPES)
        words = " ".join(rng.choices(vocabulary, k=20))
        account = f"ACC-{rng.randrange(5000)}"
        ids.append(f"B-{n}")
        documents.append(f"type: {kind}\nseverity: {rng.choice(SEVERITIES)}\nattributes: cashAccountId={account}"
                         f"\ntext: {words}")  # fmt: skip
        metadatas.append({"exceptionType": kind, "severity": rng.choice(SEVERITIES), "domain": "capital-markets",
                          "outcome": rng.choice(OUTCOMES), "finishedTs": now - rng.randrange(90 * 86400),
                          "remembered": float(n), "playbookId": "", "overridden": False, "decidedBy": "",
                          "summary": words[:80], "key_cashAccountId": account})  # fmt: skip
    return ids, documents, metadatas


async def measure_memory(
    root: Path, *, cases: int, queries: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    settings = Settings(data_dir=root / "memory-bench", packs_dir=SAMPLE_PACKS_DIR, memory_enabled=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(upgrade, settings.db_url)
    db = Database(settings.db_url)
    try:
        packs = PackRegistry.from_directory(SAMPLE_PACKS_DIR)
        service = MemoryService(settings, db, packs, outbound=OutboundPolicy())
        model = service.local.model_key
        ids, documents, metadatas = _corpus(cases)
        rng = np.random.default_rng(11)
        progress(f"memory: storing {cases} cases with precomputed vectors")
        started = time.perf_counter()
        for start in range(0, cases, 5000):
            vectors = rng.standard_normal((min(5000, cases - start), LOCAL_DIMENSION)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            end = start + len(vectors)
            await asyncio.to_thread(service.store.upsert, TENANT, model, ids[start:end], vectors,
                                    documents[start:end], metadatas[start:end])  # fmt: skip
        store_seconds = time.perf_counter() - started
        collection = service.store.collection(TENANT)
        started = time.perf_counter()
        await asyncio.to_thread(service._index, TENANT)  # the keyword index, loaded from the collection
        index_seconds = time.perf_counter() - started
        keywords: KeywordIndex = service._indexes[TENANT].keywords

        pick = random.Random(3)
        ours: list[float] = []
        raw: list[float] = []
        bm25: list[float] = []
        contains: list[float] = []
        progress(f"memory: {queries} queries, ours and raw alternating")
        for _ in range(queries):
            kind = pick.choice(TYPES)
            text = " ".join(pick.choice(documents).split("text: ")[1].split()[:4])
            vector = rng.standard_normal(LOCAL_DIMENSION).astype(np.float32)
            vector /= np.linalg.norm(vector)
            where = {"exceptionType": kind}
            t0 = time.perf_counter()
            service.search_vector(TENANT, model, vector, text, {"exceptionType": kind}, K)
            t1 = time.perf_counter()
            collection.query(query_embeddings=[vector], n_results=K, where=where)
            t2 = time.perf_counter()
            keywords.search(text, {"exceptionType": kind}, K * 4)
            t3 = time.perf_counter()
            collection.get(where=where, where_document={"$contains": text.split()[0]}, limit=K * 4)
            t4 = time.perf_counter()
            ours.append((t1 - t0) * 1000)
            raw.append((t2 - t1) * 1000)
            bm25.append((t3 - t2) * 1000)
            contains.append((t4 - t3) * 1000)

        progress("memory: triage's added latency (MiniLM embedding included)")
        tenant = packs.tenant(TENANT)
        assert tenant is not None
        domain = packs.domain_of(tenant)
        await service.local.embed(["warm-up: the model loads once per process"])
        added: list[float] = []
        for n in range(max(5, queries // 5)):
            exception = {"exceptionId": f"NEW-{n}", "exceptionType": "CASH_BREAK", "severity": "LOW",
                         "sourceSystem": "nostro-recon", "rawPayload": {"note": f"coupon {n} missing on nostro"},
                         "normalizedContext": {"attributes": {"cashAccountId": f"ACC-{n}"}}}  # fmt: skip
            t0 = time.perf_counter()
            await service.recall(tenant, domain, exception, k=K, recurrence_since=None)
            added.append((time.perf_counter() - t0) * 1000)
    finally:
        await db.close()
    ratio = statistics.median(ours) / statistics.median(raw)
    return {
        "memory_search_ratio": round(ratio, 3),
        "memory_p95_ms": round(_p(ours, 0.95), 2),
        "memory_triage_added_ms": round(statistics.median(added), 2),
        "memory": {
            "cases": cases, "queries": queries, "k": K, "vectors": "precomputed random unit vectors, 384-d",
            "ours_p50_ms": round(statistics.median(ours), 2), "raw_p50_ms": round(statistics.median(raw), 2),
            "raw_p95_ms": round(_p(raw, 0.95), 2), "triage_added_p95_ms": round(_p(added, 0.95), 2),
            "keyword": {"bm25_p50_ms": round(statistics.median(bm25), 2),
                        "chroma_contains_p50_ms": round(statistics.median(contains), 2)},
            "store_seconds": round(store_seconds, 1), "keyword_index_load_seconds": round(index_seconds, 2),
            "goal_ratio": 2.0, "met": ratio <= 2.0,
        },
    }  # fmt: skip
