"""Where vectors live: chromadb, one collection per tenant.

Embedded (``PersistentClient`` under ``DATA_DIR/memory``) by default; a chroma server when
``EXOPS_CHROMA_URL`` is set, for many processes and at scale. Each tenant has its own collection,
named from its id (``collection_name``), so one tenant's search can never reach another's cases,
whatever filter a caller forgets. Collections are created with ``embedding_function=None`` (chroma's
default function would download a model) and cosine space; their metadata names the embedding model
and dimension, and a collection is never fed vectors of another model: ``ModelChanged`` until
``exops memory rebuild`` replaces it.

chromadb's client is synchronous: callers run these methods in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from graph.memory import FILTER_FIELDS, MemoryFilters

PREFIX = "exops-"
SAFE = re.compile(r"[^a-zA-Z0-9._-]")


class ModelChanged(RuntimeError):
    """The tenant's collection holds vectors of another model than its pack names now."""

    def __init__(self, tenant_id: str, stored: str, wanted: str) -> None:
        super().__init__(
            f"tenant {tenant_id}'s memory holds {stored} vectors but its pack names {wanted}: "
            f"run `exops memory rebuild --tenant {tenant_id}`"
        )
        self.stored = stored
        self.wanted = wanted


def collection_name(tenant_id: str) -> str:
    """A valid chroma name (3-512 of ``[a-zA-Z0-9._-]``, alphanumeric at both ends) for any tenant id,
    and a different one for every id: the readable part is the id with other characters replaced,
    the suffix a hash of the exact id (so ``a b`` and ``a_b``, or ``Acme`` and ``acme``, differ)."""
    readable = SAFE.sub("_", tenant_id)[:80]
    digest = hashlib.sha256(tenant_id.encode()).hexdigest()[:16]
    return f"{PREFIX}{readable}-{digest}"


def where_of(filters: MemoryFilters) -> dict[str, Any] | None:
    """The chroma ``where`` for ``filters`` (the same metadata the keyword index filters on)."""
    clauses: list[dict[str, Any]] = [
        {name: str(filters[name])}  # type: ignore[literal-required]
        for name in FILTER_FIELDS
        if filters.get(name) is not None
    ]
    if (since := filters.get("since")) is not None:
        clauses.append({"finishedTs": {"$gte": since}})
    if (until := filters.get("until")) is not None:
        clauses.append({"finishedTs": {"$lte": until}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class ChromaStore:
    def __init__(self, *, path: Path | None = None, url: str | None = None) -> None:
        """``url``: a chroma server (http://host:port); else an embedded store at ``path``."""
        import chromadb  # heavy (~1 s): imported only when memory is first used
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False)
        if url:
            parts = urlsplit(url)
            self.client: Any = chromadb.HttpClient(
                host=parts.hostname or "localhost",
                port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https",
                settings=settings,
            )
            self.where = url
        else:
            assert path is not None
            path.mkdir(parents=True, exist_ok=True)
            self.client = chromadb.PersistentClient(path=str(path), settings=settings)
            self.where = str(path)
        self._collections: dict[str, Any] = {}
        self._lock = threading.Lock()

    def collection(self, tenant_id: str, model: str | None = None, dimension: int | None = None) -> Any:
        """The tenant's collection; created for ``model`` when missing (None when missing and no model
        is given). ``ModelChanged`` when it holds another model's vectors."""
        name = collection_name(tenant_id)
        with self._lock:
            found = self._collections.get(name)
            if found is None:
                try:
                    found = self.client.get_collection(name, embedding_function=None)
                except Exception:  # chromadb raises NotFoundError (a ValueError on older clients)
                    if model is None:
                        return None
                    found = self.client.get_or_create_collection(
                        name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
                        metadata={"tenantId": tenant_id, "model": model, "dimension": dimension or 0},
                    )  # fmt: skip
                self._collections[name] = found
        stored = (found.metadata or {}).get("model")
        if model is not None and stored != model:
            raise ModelChanged(tenant_id, str(stored), model)
        return found

    def drop(self, tenant_id: str) -> None:
        name = collection_name(tenant_id)
        with self._lock:
            self._collections.pop(name, None)
            try:
                self.client.delete_collection(name)
            except Exception:  # not there: nothing to drop
                return

    def upsert(
        self, tenant_id: str, model: str, ids: Sequence[str], vectors: npt.NDArray[np.float32],
        documents: Sequence[str], metadatas: Sequence[Mapping[str, Any]],
    ) -> None:  # fmt: skip
        collection = self.collection(tenant_id, model, int(vectors.shape[1]) if len(vectors) else None)
        stored = int((collection.metadata or {}).get("dimension") or 0)
        if stored and len(vectors) and stored != vectors.shape[1]:
            raise ModelChanged(tenant_id, f"{model} ({stored}-d)", f"{model} ({vectors.shape[1]}-d)")
        for start in range(0, len(ids), 1000):
            end = start + 1000
            collection.upsert(ids=list(ids[start:end]), embeddings=vectors[start:end],
                              documents=list(documents[start:end]), metadatas=[dict(m) for m in metadatas[start:end]])  # fmt: skip

    def delete(self, tenant_id: str, ids: Sequence[str]) -> None:
        collection = self.collection(tenant_id)
        if collection is not None and ids:
            collection.delete(ids=list(ids))

    def query(
        self, tenant_id: str, model: str, vector: npt.NDArray[np.float32], filters: MemoryFilters, n: int
    ) -> list[tuple[str, float, str, dict[str, Any]]]:
        """The ``n`` nearest (id, cosine similarity, document, metadata) passing ``filters``."""
        collection = self.collection(tenant_id)
        if collection is None:
            return []
        stored = (collection.metadata or {}).get("model")
        if stored != model:
            raise ModelChanged(tenant_id, str(stored), model)
        found = collection.query(query_embeddings=[vector], n_results=n, where=where_of(filters),
                                 include=["distances", "documents", "metadatas"])  # fmt: skip
        return [
            (case_id, 1.0 - float(distance), document or "", dict(metadata or {}))
            for case_id, distance, document, metadata in zip(
                found["ids"][0],
                found["distances"][0],
                found["documents"][0],
                found["metadatas"][0],
                strict=True,
            )
        ]

    def get(
        self, tenant_id: str, *, ids: Sequence[str] | None = None, where: dict[str, Any] | None = None,
        embeddings: bool = False, limit: int | None = None, offset: int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        collection = self.collection(tenant_id)
        if collection is None:
            return {"ids": [], "documents": [], "metadatas": [], "embeddings": []}
        include = ["documents", "metadatas", *(["embeddings"] if embeddings else [])]
        found: dict[str, Any] = collection.get(
            ids=list(ids) if ids is not None else None,
            where=where,
            include=include,
            limit=limit,
            offset=offset,
        )
        return found

    def count(self, tenant_id: str) -> int:
        collection = self.collection(tenant_id)
        return 0 if collection is None else int(collection.count())

    def info(self, tenant_id: str) -> dict[str, Any] | None:
        collection = self.collection(tenant_id)
        if collection is None:
            return None
        metadata = collection.metadata or {}
        return {"collection": collection.name, "model": metadata.get("model"),
                "dimension": metadata.get("dimension"), "cases": int(collection.count())}  # fmt: skip
