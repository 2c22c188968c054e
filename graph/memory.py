"""Similar-case memory: the interface triage consults, and the pure parts of searching it.

The app supplies the adapter (``app/memory``: chromadb for vectors, embeddings local or from an
OpenAI-compatible endpoint, one collection per tenant). What lives here has no I/O, so it is tested
on small fixed corpora and shared by the adapter, the API and the bench:

* ``case_document``: the text a case is remembered (and searched) by, one ``field: value`` line per
  field, so a keyword hit can say which field matched;
* ``KeywordIndex``: BM25 (Okapi) over those documents with metadata filters. It is an inverted index
  kept in memory and updated case by case: rank-bm25 rescans every document for every query term and
  bm25s rebuilds its matrix on every addition, neither of which fits a memory that grows one finished
  case at a time and is searched on every triage (100,000 cases: a few milliseconds a query here);
* ``fuse``: reciprocal rank fusion of the vector and keyword rankings (scores of different kinds are
  not comparable; ranks are), with an explanation per hit;
* ``memory_confidence``: how what people did with similar cases moves a new case's confidence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypedDict

import numpy as np
import numpy.typing as npt

Outcome = Literal["RESOLVED", "ESCALATED", "REJECTED", "CLOSED_WITHOUT_ACTION", "OTHER"]
FILTER_FIELDS = ("exceptionType", "severity", "domain", "outcome")
"""Metadata a search can filter on, besides the date range (``since``/``until`` on the finish time)."""
RRF_K = 60
"""Reciprocal rank fusion's constant (Cormack et al. 2009): a hit's share is 1 / (RRF_K + rank)."""
BM25_K1 = 1.2
BM25_B = 0.75
TOKEN = re.compile(r"[a-z0-9][a-z0-9_.\-]*[a-z0-9]|[a-z0-9]")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
    ]
)


def tokens(text: str) -> list[str]:
    """Lower-cased words and identifiers (``ACC-1001``, ``US0378331005`` stay whole), no stop words."""
    return [word for word in TOKEN.findall(text.lower()) if word not in STOPWORDS]


# -- what is remembered ----------------------------------------------------------------------------
class MemoryFilters(TypedDict, total=False):
    exceptionType: str
    severity: str
    domain: str
    outcome: str
    since: float
    """Finished at or after (epoch seconds)."""
    until: float


class HitExplanation(TypedDict):
    vectorScore: float | None
    """Cosine similarity of the embeddings (1 is the same meaning), when the vector search found it."""
    vectorRank: int | None
    keywordScore: float | None
    """BM25 score of the query's words in the case's document, when the keyword search found it."""
    keywordRank: int | None
    fusedScore: float
    matchedWords: list[str]
    matchedFields: dict[str, list[str]]
    """Per document field, the query's words found in it."""


@dataclass(frozen=True)
class SimilarCase:
    exception_id: str
    exception_type: str
    score: float
    """The fused score (reciprocal rank fusion); ``explanation`` has the vector and keyword scores."""
    summary: str
    outcome: str | None = None
    severity: str | None = None
    playbook_id: str | None = None
    overridden: bool = False
    """A person rejected, edited, took over or escalated the case instead of letting it run."""
    decided_by: str | None = None
    finished_at: str | None = None
    explanation: HitExplanation | None = None


@dataclass(frozen=True)
class Recall:
    """What memory says about a new case: similar past cases, earlier cases of the same entity."""

    similar: list[SimilarCase] = field(default_factory=list)
    recurrences: list[SimilarCase] = field(default_factory=list)
    recurrence_keys: dict[str, str] = field(default_factory=dict)
    """The entity key values the recurrences share with the new case (``accountId: ACC-1``)."""
    unavailable: str | None = None
    """Why memory could not be consulted (a model change awaiting a rebuild, an embedding failure)."""


class SimilarCaseMemory(Protocol):
    """One tenant's memory of finished cases, as a run sees it (the app binds it to the run's tenant, so
    a run can reach no other tenant's collection)."""

    async def recall(
        self, exception: Mapping[str, Any], *, k: int, recurrence_since: datetime | None
    ) -> Recall: ...


def _flat(value: Any) -> str:
    if isinstance(value, Mapping):
        return " ".join(f"{key} {_flat(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return " ".join(_flat(item) for item in value)
    return str(value)


def case_fields(exception: Mapping[str, Any], outcome: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The document's fields, from the canonical record (and, for a finished case, its outcome):
    type, severity, source, the entity's attributes, the source's own text, and what was done."""
    context = exception.get("normalizedContext") or {}
    attributes = context.get("attributes") or {}
    raw = exception.get("rawPayload") or {}
    text = [str(value) for key, value in raw.items() if isinstance(value, str) and key not in attributes]
    fields = {
        "type": str(exception.get("exceptionType") or ""),
        "severity": str(exception.get("severity") or ""),
        "source": str(exception.get("sourceSystem") or ""),
        "attributes": " ".join(f"{key}={_flat(value)}" for key, value in attributes.items()),
        "text": " ".join(text),
    }
    if outcome:
        fields["outcome"] = str(outcome.get("status") or "")
        fields["playbook"] = str(outcome.get("playbookId") or "")
        fields["decision"] = " ".join(
            str(outcome.get(key) or "") for key in ("decision", "decidedBy", "comment", "reason")
        ).strip()
        fields["steps"] = " ".join(outcome.get("stepsDone") or [])
    return {key: value for key, value in fields.items() if value}


def case_document(fields: Mapping[str, str]) -> str:
    return "\n".join(f"{key}: {value}" for key, value in fields.items())


def document_fields(document: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in document.splitlines():
        key, _, value = line.partition(": ")
        if value:
            found[key] = value
    return found


def entity_keys(exception: Mapping[str, Any], keys: Iterable[str]) -> dict[str, str]:
    """The values of the domain's entity keys the case carries (for recurrence)."""
    attributes = (exception.get("normalizedContext") or {}).get("attributes") or {}
    return {
        key: str(attributes[key])
        for key in keys
        if isinstance(attributes.get(key), str | int) and str(attributes[key])
    }


# -- keyword search --------------------------------------------------------------------------------
class _Column:
    """A categorical metadata column as integer codes, so a filter is one vectorized comparison."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.values = np.zeros(1024, dtype=np.int32)

    def set(self, row: int, value: str) -> None:
        if row >= len(self.values):
            self.values = np.resize(self.values, max(row + 1, 2 * len(self.values)))
        self.values[row] = self.codes.setdefault(value, len(self.codes) + 1)

    def mask(self, value: str, rows: int) -> npt.NDArray[np.bool_]:
        code = self.codes.get(value)
        if code is None:
            return np.zeros(rows, dtype=bool)
        return np.asarray(self.values[:rows] == code)


class KeywordIndex:
    """BM25 over one tenant's remembered cases, with the same filters as the vector search.

    Rows are never reused: a replaced or forgotten case's row is marked dead (and its postings stay
    until the index is rebuilt), so readers holding row numbers never see another case's data."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.rows: dict[str, int] = {}
        self.postings: dict[str, dict[int, int]] = {}
        self._arrays: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
        self.lengths = np.zeros(1024, dtype=np.float64)
        self.alive = np.zeros(1024, dtype=bool)
        self.finished = np.zeros(1024, dtype=np.float64)
        self.columns = {name: _Column() for name in FILTER_FIELDS}
        self.total_length = 0.0
        self.count = 0
        self.newest = 0.0
        """The latest ``remembered`` stamp added: where an incremental refresh starts."""

    def __len__(self) -> int:
        return self.count

    def _grow(self, row: int) -> None:
        if row >= len(self.lengths):
            size = max(row + 1, 2 * len(self.lengths))
            self.lengths = np.resize(self.lengths, size)
            self.alive = np.resize(self.alive, size)
            self.finished = np.resize(self.finished, size)
            self.alive[row:] = False

    def add(self, case_id: str, document: str, metadata: Mapping[str, Any]) -> None:
        self.remove(case_id)
        row = len(self.ids)
        self.ids.append(case_id)
        self.rows[case_id] = row
        self._grow(row)
        words = tokens(document)
        for word in words:
            self.postings.setdefault(word, {})
            self.postings[word][row] = self.postings[word].get(row, 0) + 1
            self._arrays.pop(word, None)
        self.lengths[row] = len(words)
        self.alive[row] = True
        self.finished[row] = float(metadata.get("finishedTs") or 0.0)
        for name, column in self.columns.items():
            column.set(row, str(metadata.get(name) or ""))
        self.total_length += len(words)
        self.count += 1
        self.newest = max(self.newest, float(metadata.get("remembered") or 0.0))

    def remove(self, case_id: str) -> None:
        row = self.rows.pop(case_id, None)
        if row is not None and self.alive[row]:
            self.alive[row] = False
            self.total_length -= self.lengths[row]
            self.count -= 1

    def _posting(self, word: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        arrays = self._arrays.get(word)
        if arrays is None:
            found = self.postings.get(word, {})
            arrays = (
                np.fromiter(found.keys(), dtype=np.int64, count=len(found)),
                np.fromiter(found.values(), dtype=np.float64, count=len(found)),
            )
            self._arrays[word] = arrays
        return arrays

    def mask(self, filters: MemoryFilters) -> npt.NDArray[np.bool_]:
        rows = len(self.ids)
        mask = self.alive[:rows].copy()
        for name in FILTER_FIELDS:
            value = filters.get(name)
            if value is not None:
                mask &= self.columns[name].mask(str(value), rows)
        if (since := filters.get("since")) is not None:
            mask &= self.finished[:rows] >= since
        if (until := filters.get("until")) is not None:
            mask &= self.finished[:rows] <= until
        return mask

    def scores(self, query: str) -> npt.NDArray[np.float64]:
        """BM25 of every row for ``query`` (0 where no word matches)."""
        rows = len(self.ids)
        scores = np.zeros(rows, dtype=np.float64)
        if not self.count:
            return scores
        average = self.total_length / self.count
        for word in set(tokens(query)):
            where, frequency = self._posting(word)
            if not len(where):
                continue
            live = self.alive[where]
            documents = int(live.sum())
            if not documents:
                continue
            idf = math.log(1 + (self.count - documents + 0.5) / (documents + 0.5))
            norm = BM25_K1 * (1 - BM25_B + BM25_B * self.lengths[where] / average)
            scores[where] += live * idf * frequency * (BM25_K1 + 1) / (frequency + norm)
        return scores

    def search(self, query: str, filters: MemoryFilters, k: int) -> list[tuple[str, float]]:
        """The ``k`` best (id, BM25) with a positive score that pass the filters, best first."""
        scores = self.scores(query)
        if not len(scores):
            return []
        scores[~self.mask(filters)] = 0.0
        k = min(k, int(np.count_nonzero(scores)))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[row], float(scores[row])) for row in top]


# -- fusion and explanations -----------------------------------------------------------------------
@dataclass(frozen=True)
class Fused:
    case_id: str
    score: float
    vector_rank: int | None
    vector_score: float | None
    keyword_rank: int | None
    keyword_score: float | None


def fuse(vector: Sequence[tuple[str, float]], keyword: Sequence[tuple[str, float]], k: int) -> list[Fused]:
    """Reciprocal rank fusion of two rankings (each best first, with its own scores), the ``k`` best.
    Ties keep the vector ranking's order, then the keyword ranking's."""
    found: dict[str, dict[str, Any]] = {}
    for rank, (case_id, score) in enumerate(vector, start=1):
        found.setdefault(case_id, {})["vector"] = (rank, score)
    for rank, (case_id, score) in enumerate(keyword, start=1):
        found.setdefault(case_id, {})["keyword"] = (rank, score)
    fused = []
    for order, (case_id, parts) in enumerate(found.items()):
        v_rank, v_score = parts.get("vector", (None, None))
        w_rank, w_score = parts.get("keyword", (None, None))
        score = sum(1.0 / (RRF_K + rank) for rank in (v_rank, w_rank) if rank is not None)
        fused.append((score, -order, Fused(case_id, score, v_rank, v_score, w_rank, w_score)))
    fused.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [item[2] for item in fused[:k]]


def explain(hit: Fused, query: str, document: str) -> HitExplanation:
    """Which of the query's words the hit's document holds, and in which fields; the scores."""
    wanted = set(tokens(query))
    matched: dict[str, list[str]] = {}
    for name, value in document_fields(document).items():
        words = sorted(wanted & set(tokens(value)))
        if words:
            matched[name] = words
    return {
        "vectorScore": None if hit.vector_score is None else round(hit.vector_score, 4),
        "vectorRank": hit.vector_rank,
        "keywordScore": None if hit.keyword_score is None else round(hit.keyword_score, 4),
        "keywordRank": hit.keyword_rank,
        "fusedScore": round(hit.score, 6),
        "matchedWords": sorted({word for words in matched.values() for word in words}),
        "matchedFields": matched,
    }


# -- what memory does to confidence ----------------------------------------------------------------
@dataclass(frozen=True)
class ConfidenceRule:
    """The tenant pack's ``memory`` settings that move confidence (``packs.tenant.MemorySettings``)."""

    min_similarity: float
    override_penalty: float
    raise_enabled: bool
    raise_by: float
    cap: float
    raise_min_cases: int


def counts_against(case: SimilarCase) -> bool:
    """A similar case people did not let run as exops proposed: overridden, rejected or escalated."""
    return case.overridden or case.outcome in ("REJECTED", "ESCALATED")


def memory_confidence(
    confidence: float, similar: Sequence[SimilarCase], rule: ConfidenceRule
) -> tuple[float, str | None]:
    """The new confidence and why it moved (None: it did not).

    Lowered by ``override_penalty`` x the share of close cases (vector similarity at least
    ``min_similarity``) that people overrode, rejected or escalated: more such cases go to a person.
    Raised only when the tenant turns it on, by ``raise_by``, when at least ``raise_min_cases`` close
    cases all ran as proposed, and never above ``cap`` (nor lowered by the raise)."""
    close = [
        case
        for case in similar
        if case.explanation is not None and (case.explanation["vectorScore"] or 0.0) >= rule.min_similarity
    ]
    if not close:
        return confidence, None
    against = [case for case in close if counts_against(case)]
    if against:
        lowered = max(0.0, confidence - rule.override_penalty * len(against) / len(close))
        ids = ", ".join(case.exception_id for case in against)
        why = (
            f"lowered from {confidence:.2f} to {lowered:.2f}: people overrode, rejected or escalated "
            f"{len(against)} of {len(close)} similar cases ({ids})"
        )
        return lowered, why
    if rule.raise_enabled and len(close) >= rule.raise_min_cases and confidence < rule.cap:
        raised = min(rule.cap, confidence + rule.raise_by)
        return raised, (
            f"raised from {confidence:.2f} to {raised:.2f} (cap {rule.cap:.2f}): {len(close)} similar "
            "cases all ran as proposed"
        )
    return confidence, None
