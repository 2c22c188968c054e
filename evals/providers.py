"""Where an eval's LLM answers come from: replayed cassettes (default), a live endpoint, or both (record).

A cassette is one request and its response, stored as a JSON file named by the SHA-256 of the
request body written canonically (keys sorted, no spaces): the same prompt, model, schema and
temperature give the same key on any machine, and anything that changes what the model would see
(a prompt version, a pack's taxonomy in the schema, a model name) misses. Cassettes live in one
folder per dataset family (``evals/cassettes/``) and are committed, so CI replays real answers offline.

The providers are ``httpx`` transports plugged under ``graph.llm.LlmClient`` (its ``transport``):
the client, its parsing and its error handling are exactly production's.

- ``replay``: a request without a cassette is an error (``ReplayMiss``) that names the key and the
  prompt; nothing is ever sent. The miss is recorded on the transport, so the eval marks the case as
  a replay miss (not a model failure) even though the graph escalates it.
- ``live``: requests go to the endpoint (through the outbound policy, like every other call).
- ``record``: live, and every answer with HTTP 200 is written as a cassette.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

ProviderMode = Literal["replay", "live", "record"]
CASSETTES_DIR = Path(__file__).parent / "cassettes"
DECODED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
"""Headers that described the body as sent; the body handed on is already decoded."""


class ReplayMiss(Exception):
    """A request with no cassette in replay mode."""

    def __init__(self, key: str, what: str) -> None:
        super().__init__(
            f"replay miss: no cassette {key[:16]} for {what}; record it with --provider record "
            "against a live endpoint (docs/evals.md)"
        )
        self.key = key
        self.what = what


def canonical_body(content: bytes) -> bytes:
    """The request body as the key sees it: JSON re-written with sorted keys, or the bytes as sent."""
    try:
        return json.dumps(json.loads(content), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        return content


def request_key(content: bytes) -> str:
    return hashlib.sha256(canonical_body(content)).hexdigest()


def describe(content: bytes) -> str:
    """A short human name for a request: its model and schema (the prompt is behind the schema name)."""
    try:
        body = json.loads(content)
        schema = body.get("response_format", {}).get("json_schema", {}).get("name", "?")
        return f"model {body.get('model')!r}, output {schema}"
    except (ValueError, AttributeError):
        return "a non-JSON request"


@dataclass
class Usage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    replayed: int = 0

    def add(self, body: dict[str, Any]) -> None:
        self.calls += 1
        usage = body.get("usage") or {}
        self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.completion_tokens += int(usage.get("completion_tokens") or 0)


@dataclass
class CassetteStore:
    folder: Path

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.path(key)
        if not path.exists():
            return None
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return doc

    def put(self, key: str, request: bytes, status: int, body: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        doc = {"request": json.loads(canonical_body(request)), "status": status, "response": body}
        self.path(key).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")


@dataclass
class ProviderTransport(httpx.AsyncBaseTransport):
    """Replay, live or record, below the LLM client; ``usage`` and ``misses`` are per case (``reset``)."""

    mode: ProviderMode
    store: CassetteStore
    inner: httpx.AsyncBaseTransport | None = None
    usage: Usage = field(default_factory=Usage)
    misses: list[ReplayMiss] = field(default_factory=list)

    def reset(self) -> None:
        self.usage = Usage()
        self.misses = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        key = request_key(content)
        if self.mode == "replay":
            stored = self.store.get(key)
            if stored is None:
                miss = ReplayMiss(key, describe(content))
                self.misses.append(miss)
                raise miss
            body = stored["response"]
            if isinstance(body, dict):
                self.usage.add(body)
            self.usage.replayed += 1
            return httpx.Response(int(stored["status"]), json=body, request=request)
        inner = self.inner if self.inner is not None else httpx.AsyncHTTPTransport()
        self.inner = inner
        response = await inner.handle_async_request(request)
        raw = await response.aread()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict):
            self.usage.add(body)
            if self.mode == "record" and response.status_code == 200:
                self.store.put(key, content, response.status_code, body)
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in DECODED_HEADERS]
        return httpx.Response(response.status_code, headers=headers, content=raw, request=request)

    async def aclose(self) -> None:
        if self.inner is not None:
            await self.inner.aclose()
