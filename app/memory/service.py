"""Similar-case memory for every tenant: remembering finished cases, hybrid search, rebuilds, stats.

Remembering is durable and off the request path: the projection queues a finished case
(``memory_queue``) in the transaction that records it; this process's indexer (woken after each
job that finished a case, and by the periodic sweep) embeds the queued cases' documents, stores them
in the tenant's collection and deletes their queue rows. A crash in between leaves the rows, and the
next pass remembers them; storing a case twice replaces it (same id).

Search is hybrid: the tenant's chroma collection for vector similarity and a BM25 keyword index of
the same documents (``graph.memory.KeywordIndex``, kept in memory per tenant, loaded from the
collection on first use and refreshed from it, so every process sees what any process remembered),
fused by rank, each hit explained.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, func, select, update

from app.db.models import Approval, ExceptionCase, MemoryQueue, PlaybookState
from app.db.session import Database
from app.memory.embeddings import CachedEmbedder, Embedder, EmbeddingError, LocalEmbedder, OpenAIEmbedder
from app.memory.store import ChromaStore, ModelChanged
from app.runtime import tenant_secret
from app.settings import Settings

if TYPE_CHECKING:
    from app.runtime import PackLookup
from graph.memory import (
    Fused,
    KeywordIndex,
    MemoryFilters,
    Recall,
    SimilarCase,
    case_document,
    case_fields,
    entity_keys,
    explain,
    fuse,
)
from packs.common import FINISHED_STATUSES
from packs.domain import DomainPack
from packs.tenant import TenantPolicyPack
from tools.outbound import OutboundPolicy
from tools.secrets import SecretMissing

log = logging.getLogger("exops.memory")

OVERRIDES = ("reject", "edit", "takeover")
"""Approval decisions by which a person overrode what exops proposed."""
INDEX_BATCH = 64
CANDIDATES = 4
"""Each ranking brings ``CANDIDATES`` x k candidates to the fusion."""
KEY_PREFIX = "key_"
"""Metadata holding an entity key's value (``key_accountId``), for recurrence."""


class MemoryUnavailable(RuntimeError):
    """Memory cannot be used for this tenant now (off, a missing secret, a model change)."""


@dataclass(frozen=True)
class Remembered:
    """One case's document and metadata, built from the tables."""

    exception_id: str
    document: str
    metadata: dict[str, Any]


def _epoch(value: datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


def outcome_of(
    case: ExceptionCase, playbook: PlaybookState | None, approval: Approval | None
) -> dict[str, Any]:
    """What was done with a finished case: status, playbook, steps done, who decided and how, time to
    resolve. An approval a person rejected, edited or took over is a human override."""
    steps = [
        f"{step.get('name')} {str(step.get('status', '')).lower()}"
        for step in (playbook.steps if playbook is not None else []) or []
        if step.get("status") not in (None, "PENDING")
    ]
    decision = approval.decision if approval is not None else None
    human = approval is not None and approval.decided_by not in (None, "deadline-sweeper")
    resolved = case.resolved_at or case.updated_at
    return {
        "status": case.status,
        "playbookId": case.playbook_id,
        "stepsDone": steps,
        "decision": decision,
        "decidedBy": approval.decided_by if approval is not None else None,
        "comment": approval.comment if approval is not None else None,
        "reason": approval.reason if approval is not None else None,
        "overridden": bool(human and decision in OVERRIDES),
        "secondsToResolve": max(0.0, _epoch(resolved) - _epoch(case.received_at)),
    }


def remembered(
    case: ExceptionCase, playbook: PlaybookState | None, approval: Approval | None,
    domain: DomainPack | None, now: float,
) -> Remembered:  # fmt: skip
    record = dict(case.record or case.raw)
    record.setdefault("exceptionType", case.exception_type)
    record.setdefault("severity", case.severity)
    outcome = outcome_of(case, playbook, approval)
    document = case_document(case_fields(record, outcome))
    metadata: dict[str, Any] = {
        "exceptionType": case.exception_type or "", "severity": case.severity or "",
        "domain": domain.domainName if domain is not None else "", "outcome": case.status,
        "finishedTs": _epoch(case.resolved_at or case.updated_at), "remembered": now,
        "playbookId": case.playbook_id or "", "overridden": outcome["overridden"],
        "decidedBy": outcome["decidedBy"] or "", "summary": (case.summary or "")[:500],
        "secondsToResolve": outcome["secondsToResolve"],
    }  # fmt: skip
    if domain is not None and case.exception_type in domain.exceptionTypes:
        for key, value in entity_keys(record, keys_of(domain, case.exception_type)).items():
            metadata[KEY_PREFIX + key] = value
    return Remembered(case.exception_id, document, metadata)


def keys_of(domain: DomainPack, exception_type: str) -> list[str]:
    """The entity keys of the entity an exception type describes."""
    definition = domain.exceptionTypes.get(exception_type)
    entity = domain.entities.get(definition.entity) if definition and definition.entity else None
    return list(entity.identifiers) if entity is not None else []


def similar_case(
    case_id: str, metadata: Mapping[str, Any], score: float, explanation: Any = None
) -> SimilarCase:
    return SimilarCase(
        exception_id=case_id, exception_type=str(metadata.get("exceptionType") or ""), score=score,
        summary=str(metadata.get("summary") or ""), outcome=str(metadata.get("outcome") or "") or None,
        severity=str(metadata.get("severity") or "") or None,
        playbook_id=str(metadata.get("playbookId") or "") or None,
        overridden=bool(metadata.get("overridden")), decided_by=str(metadata.get("decidedBy") or "") or None,
        finished_at=datetime.fromtimestamp(float(metadata.get("finishedTs") or 0.0)).astimezone().isoformat()
        if metadata.get("finishedTs") else None,
        explanation=explanation,
    )  # fmt: skip


class _TenantIndex:
    def __init__(self) -> None:
        self.keywords = KeywordIndex()
        self.lock = threading.Lock()
        self.synced = 0.0
        self.loaded = False


class MemoryService:
    """One per process: the store, embedders, keyword indexes and the indexer."""

    def __init__(
        self, settings: Settings, db: Database, packs: Any, *, outbound: OutboundPolicy,
        local: Embedder | None = None,
    ) -> None:  # fmt: skip
        """``packs``: a ``PackLookup`` (tenant, domain_of). ``local``: the embedder for the local
        provider (MiniLM by default; tests and the bench give a small deterministic one)."""
        self.settings = settings
        self.db = db
        self.packs: PackLookup = packs
        self.outbound = outbound
        self.local: Embedder = local or LocalEmbedder()
        self._store: ChromaStore | None = None
        self._store_lock = threading.Lock()
        self._indexes: dict[str, _TenantIndex] = {}
        self._embedders: dict[tuple[str, str], CachedEmbedder] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.refresh_seconds = settings.shared_poll_seconds

    # -- parts -----------------------------------------------------------------------------
    @property
    def store(self) -> ChromaStore:
        with self._store_lock:
            if self._store is None:
                self._store = ChromaStore(path=self.settings.memory_path, url=self.settings.chroma_url)
            return self._store

    def tenant(self, tenant_id: str) -> TenantPolicyPack:
        tenant: TenantPolicyPack | None = self.packs.tenant(tenant_id)
        if tenant is None:
            raise MemoryUnavailable(f"tenant {tenant_id!r} has no policy pack")
        return tenant

    def embedder(self, tenant: TenantPolicyPack) -> CachedEmbedder:
        """The tenant's embedder (its pack's ``embeddings``), behind the cache. An OpenAI-compatible
        endpoint's key resolves in the tenant's own secret namespace only."""
        config = tenant.embeddings
        if config.provider == "local":
            inner: Embedder = self.local
        else:
            key = None
            if config.apiKeyRef:
                try:
                    key = tenant_secret(self.settings, tenant.tenantId, config.apiKeyRef)
                except SecretMissing as exc:
                    raise MemoryUnavailable(f"$.embeddings.apiKeyRef: {exc}") from None
            inner = OpenAIEmbedder(base_url=config.endpoint, model=config.model_name, api_key=key,
                                   outbound=self.outbound, timeout_seconds=self.settings.llm_timeout_seconds)  # fmt: skip
        cache_key = (tenant.tenantId, f"{inner.model_key}|{config.apiKeyRef}")
        found = self._embedders.get(cache_key)
        if found is None or found.inner.model_key != inner.model_key:
            found = self._embedders[cache_key] = CachedEmbedder(inner, self.db, tenant.tenantId)
        return found

    # -- the keyword index -----------------------------------------------------------------
    def _index(self, tenant_id: str) -> _TenantIndex:
        """The tenant's keyword index, brought up to date with its collection (call in a thread)."""
        index = self._indexes.setdefault(tenant_id, _TenantIndex())
        with index.lock:
            now = time.monotonic()
            if index.loaded and now - index.synced < self.refresh_seconds:
                return index
            store = self.store
            if not index.loaded or store.count(tenant_id) < len(index.keywords):
                index.keywords = KeywordIndex()
                self._load(tenant_id, index.keywords, None)
            else:
                self._load(tenant_id, index.keywords, {"remembered": {"$gt": index.keywords.newest}})
                if store.count(tenant_id) != len(index.keywords):  # cases replaced or forgotten elsewhere
                    index.keywords = KeywordIndex()
                    self._load(tenant_id, index.keywords, None)
            index.loaded, index.synced = True, now
        return index

    def _load(self, tenant_id: str, keywords: KeywordIndex, where: dict[str, Any] | None) -> None:
        offset = 0
        while True:
            page = self.store.get(tenant_id, where=where, limit=5000, offset=offset)
            for case_id, document, metadata in zip(
                page["ids"], page["documents"], page["metadatas"], strict=True
            ):
                keywords.add(case_id, document or "", metadata or {})
            if len(page["ids"]) < 5000:
                return
            offset += 5000

    def _add_to_index(self, tenant_id: str, items: Sequence[Remembered]) -> None:
        index = self._indexes.get(tenant_id)
        if index is None or not index.loaded:
            return  # loaded from the collection (with these) on first search
        with index.lock:
            for item in items:
                index.keywords.add(item.exception_id, item.document, item.metadata)

    # -- remembering -----------------------------------------------------------------------
    async def _rows(
        self, tenant_id: str, exception_ids: Sequence[str]
    ) -> list[tuple[ExceptionCase, PlaybookState | None, Approval | None]]:
        async with self.db.session() as session:
            cases = (
                await session.execute(
                    select(ExceptionCase).where(
                        ExceptionCase.tenant_id == tenant_id, ExceptionCase.exception_id.in_(exception_ids)
                    )
                )
            ).scalars()
            playbooks = {
                row.exception_id: row
                for row in (
                    await session.execute(
                        select(PlaybookState).where(
                            PlaybookState.tenant_id == tenant_id,
                            PlaybookState.exception_id.in_(exception_ids),
                        )
                    )
                ).scalars()
            }
            approvals: dict[str, Approval] = {}
            for row in (
                await session.execute(
                    select(Approval)
                    .where(
                        Approval.tenant_id == tenant_id,
                        Approval.exception_id.in_(exception_ids),
                        Approval.decision.is_not(None),
                    )
                    .order_by(Approval.decided_at)
                )
            ).scalars():
                approvals[row.exception_id] = row  # the latest decision wins
            return [
                (case, playbooks.get(case.exception_id), approvals.get(case.exception_id)) for case in cases
            ]

    async def remember(self, tenant_id: str, exception_ids: Sequence[str]) -> int:
        """Store the cases' vectors and documents (finished ones only); how many were stored."""
        tenant = self.tenant(tenant_id)
        domain = self.packs.domain_of(tenant)
        rows = await self._rows(tenant_id, exception_ids)
        now = time.time()
        items = [
            remembered(case, playbook, approval, domain, now)
            for case, playbook, approval in rows
            if case.status in FINISHED_STATUSES and case.processing == "done"
        ]
        if not items:
            return 0
        embedder = self.embedder(tenant)
        vectors = await embedder.embed([item.document for item in items])
        await asyncio.to_thread(
            self.store.upsert, tenant_id, embedder.model_key, [i.exception_id for i in items], vectors,
            [i.document for i in items], [i.metadata for i in items],
        )  # fmt: skip
        await asyncio.to_thread(self._add_to_index, tenant_id, items)
        return len(items)

    async def remember_pending(self, limit: int = 500) -> int:
        """Remember queued cases (oldest first, up to ``limit``); how many were stored. A tenant whose
        cases cannot be remembered now (model changed, endpoint down) keeps its rows, with the error."""
        async with self.db.session() as session:
            rows = (
                await session.execute(
                    select(MemoryQueue.tenant_id, MemoryQueue.exception_id)
                    .order_by(MemoryQueue.queued_at)
                    .limit(limit)
                )
            ).all()
        by_tenant: dict[str, list[str]] = {}
        for tenant_id, exception_id in rows:
            by_tenant.setdefault(tenant_id, []).append(exception_id)
        stored = 0
        for tenant_id, ids in by_tenant.items():
            for start in range(0, len(ids), INDEX_BATCH):
                batch = ids[start : start + INDEX_BATCH]
                try:
                    stored += await self.remember(tenant_id, batch)
                except (MemoryUnavailable, ModelChanged, EmbeddingError) as exc:
                    await self._failed(tenant_id, batch, str(exc))
                    break
                except Exception as exc:
                    log.exception("remembering %s cases of %s failed", len(batch), tenant_id)
                    await self._failed(tenant_id, batch, f"{type(exc).__name__}: {exc}")
                    break
                async with self.db.session() as session:
                    await session.execute(
                        delete(MemoryQueue).where(
                            MemoryQueue.tenant_id == tenant_id, MemoryQueue.exception_id.in_(batch)
                        )
                    )
        return stored

    async def _failed(self, tenant_id: str, ids: Sequence[str], error: str) -> None:
        log.warning("memory: %d case(s) of %s not remembered yet: %s", len(ids), tenant_id, error)
        async with self.db.session() as session:
            await session.execute(
                update(MemoryQueue)
                .where(MemoryQueue.tenant_id == tenant_id, MemoryQueue.exception_id.in_(ids))
                .values(attempts=MemoryQueue.attempts + 1, last_error=error[:1000])
            )

    async def drain(self) -> int:
        """Remember everything queued now (tests, the CLI)."""
        total = 0
        while stored := await self.remember_pending():
            total += stored
        return total

    async def rebuild(self, tenant_id: str) -> int:
        """Replace the tenant's collection with one of its pack's current model, from the tables: every
        finished case, embedded again (through the cache). How many cases it holds now."""
        tenant = self.tenant(tenant_id)
        self.embedder(tenant)  # refuses a missing key before anything is dropped
        await asyncio.to_thread(self.store.drop, tenant_id)
        self._indexes.pop(tenant_id, None)
        async with self.db.session() as session:
            ids = list(
                (
                    await session.execute(
                        select(ExceptionCase.exception_id)
                        .where(
                            ExceptionCase.tenant_id == tenant_id,
                            ExceptionCase.status.in_(sorted(FINISHED_STATUSES)),
                            ExceptionCase.processing == "done",
                        )
                        .order_by(ExceptionCase.received_at)
                    )
                ).scalars()
            )
        stored = 0
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            stored += await self.remember(tenant_id, batch)
            async with self.db.session() as session:
                await session.execute(
                    delete(MemoryQueue).where(
                        MemoryQueue.tenant_id == tenant_id, MemoryQueue.exception_id.in_(batch)
                    )
                )
        return stored

    async def forget(self, tenant_id: str, exception_ids: Sequence[str]) -> None:
        """Delete cases' vectors (a deleted case takes its memory with it)."""
        await asyncio.to_thread(self.store.delete, tenant_id, exception_ids)
        index = self._indexes.get(tenant_id)
        if index is not None:
            with index.lock:
                for exception_id in exception_ids:
                    index.keywords.remove(exception_id)

    # -- searching -------------------------------------------------------------------------
    async def search(
        self, tenant_id: str, text: str, *, filters: MemoryFilters | None = None, k: int = 5,
        exclude: Iterable[str] = (), cached_only: bool = False,
    ) -> list[SimilarCase]:  # fmt: skip
        """The tenant's ``k`` past cases most like ``text`` (hybrid, filtered, explained).
        ``cached_only``: never embed (a page must not wait for a model); ``MemoryUnavailable`` when the
        text was never embedded (triage embeds a case's text, so a case's page finds it cached)."""
        tenant = self.tenant(tenant_id)
        embedder = self.embedder(tenant)
        if cached_only:
            cached = await embedder.cached([text])
            if cached is None:
                raise MemoryUnavailable("this case's text has not been embedded yet")
            vector = cached[0]
        else:
            vector = (await embedder.embed([text]))[0]
        return await asyncio.to_thread(
            self.search_vector, tenant_id, embedder.model_key, vector, text, filters or {}, k, set(exclude)
        )

    def search_vector(
        self, tenant_id: str, model: str, vector: npt.NDArray[np.float32], text: str,
        filters: MemoryFilters, k: int, exclude: set[str] | None = None,
    ) -> list[SimilarCase]:  # fmt: skip
        """The search with the query already embedded (call in a thread; the bench times this)."""
        exclude = exclude or set()
        wanted = k * CANDIDATES + len(exclude)
        store = self.store
        hits = store.query(tenant_id, model, vector, filters, wanted)
        if not hits and store.collection(tenant_id) is None:
            return []
        index = self._index(tenant_id)
        with index.lock:
            keyword = index.keywords.search(text, filters, wanted)
        vector_ranked = [(case_id, score) for case_id, score, _, _ in hits if case_id not in exclude]
        keyword_ranked = [(case_id, score) for case_id, score in keyword if case_id not in exclude]
        fused = fuse(vector_ranked, keyword_ranked, k)
        known: dict[str, tuple[float | None, str, dict[str, Any]]] = {
            case_id: (score, document, metadata) for case_id, score, document, metadata in hits
        }
        missing = [hit.case_id for hit in fused if hit.case_id not in known]
        if missing:  # found by words only: read them from the collection (no vector score: not a neighbour)
            found = store.get(tenant_id, ids=missing)
            for case_id, document, metadata in zip(
                found["ids"], found["documents"], found["metadatas"], strict=True
            ):
                known[case_id] = (None, document or "", dict(metadata or {}))
        results = []
        for hit in fused:
            if hit.case_id not in known:
                continue  # forgotten meanwhile
            similarity, document, metadata = known[hit.case_id]
            full = Fused(
                hit.case_id, hit.score, hit.vector_rank, similarity, hit.keyword_rank, hit.keyword_score
            )
            results.append(similar_case(hit.case_id, metadata, hit.score, explain(full, text, document)))
        return results

    async def recurrences(
        self, tenant_id: str, keys: Mapping[str, str], since: datetime, exclude: Iterable[str] = ()
    ) -> list[SimilarCase]:
        """Cases finished since ``since`` that share an entity key value with ``keys``, newest first."""
        if not keys:
            return []
        same = [{KEY_PREFIX + key: value} for key, value in keys.items()]
        where = {
            "$and": [
                same[0] if len(same) == 1 else {"$or": same},
                {"finishedTs": {"$gte": since.timestamp()}},
            ]
        }
        found = await asyncio.to_thread(self.store.get, tenant_id, where=where, limit=50)
        skip = set(exclude)
        cases = [
            similar_case(case_id, metadata or {}, 1.0)
            for case_id, metadata in zip(found["ids"], found["metadatas"], strict=True)
            if case_id not in skip
        ]
        return sorted(cases, key=lambda case: case.finished_at or "", reverse=True)

    async def recall(
        self, tenant: TenantPolicyPack, domain: DomainPack, exception: Mapping[str, Any], *, k: int,
        recurrence_since: datetime | None,
    ) -> Recall:  # fmt: skip
        """What memory says about a new case (``graph.memory.SimilarCaseMemory.recall``)."""
        own = str(exception.get("exceptionId") or "")
        text = case_document(case_fields(exception))
        try:
            similar = await self.search(tenant.tenantId, text, filters={"domain": domain.domainName}, k=k,
                                        exclude={own})  # fmt: skip
            keys = entity_keys(exception, keys_of(domain, str(exception.get("exceptionType") or "")))
            recurrences = (
                await self.recurrences(tenant.tenantId, keys, recurrence_since, {own})
                if recurrence_since is not None
                else []
            )
        except (MemoryUnavailable, ModelChanged, EmbeddingError) as exc:
            return Recall(unavailable=str(exc))
        return Recall(similar=similar, recurrences=recurrences, recurrence_keys=keys if recurrences else {})

    # -- stats -----------------------------------------------------------------------------
    async def stats(self, tenant_ids: Sequence[str]) -> list[dict[str, Any]]:
        async with self.db.session() as session:
            queued = dict(
                (
                    await session.execute(
                        select(MemoryQueue.tenant_id, func.count()).group_by(MemoryQueue.tenant_id)
                    )
                ).all()
            )
            errors = dict(
                (
                    await session.execute(
                        select(MemoryQueue.tenant_id, func.max(MemoryQueue.last_error))
                        .where(MemoryQueue.last_error.is_not(None))
                        .group_by(MemoryQueue.tenant_id)
                    )
                ).all()
            )
        rows = []
        for tenant_id in tenant_ids:
            info = await asyncio.to_thread(self.store.info, tenant_id)
            tenant = self.packs.tenant(tenant_id)
            wanted = None
            if tenant is not None:
                with contextlib.suppress(MemoryUnavailable):
                    wanted = self.embedder(tenant).model_key
            stored = (info or {}).get("model")
            rows.append({
                "tenantId": tenant_id, "collection": (info or {}).get("collection"), "cases": (info or {}).get("cases", 0),
                "model": stored, "dimension": (info or {}).get("dimension"), "packModel": wanted,
                "needsRebuild": bool(stored and wanted and stored != wanted), "queued": int(queued.get(tenant_id, 0)),
                "lastError": errors.get(tenant_id),
            })  # fmt: skip
        return rows

    def for_run(self, tenant: TenantPolicyPack, domain: DomainPack) -> TenantMemory:
        return TenantMemory(self, tenant, domain)

    # -- the indexer -----------------------------------------------------------------------
    def nudge(self) -> None:
        """A case finished: remember it soon (without waiting for it here)."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="exops-memory-indexer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.deadline_sweep_seconds)
            self._wake.clear()
            try:
                await self.remember_pending()
            except Exception:  # the rows stay queued: the next pass tries again
                log.exception("memory indexer pass failed")


@dataclass(frozen=True)
class TenantMemory:
    """The memory a run sees: one tenant's, bound at construction (``graph.memory.SimilarCaseMemory``)."""

    service: MemoryService
    tenant: TenantPolicyPack
    domain: DomainPack

    async def recall(
        self, exception: Mapping[str, Any], *, k: int, recurrence_since: datetime | None
    ) -> Recall:
        return await self.service.recall(
            self.tenant, self.domain, exception, k=k, recurrence_since=recurrence_since
        )
