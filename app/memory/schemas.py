"""What the similar-cases endpoint answers (camelCase on the wire)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from graph.memory import SimilarCase


class Explanation(BaseModel):
    vectorScore: float | None = Field(description="Cosine similarity of the embeddings (1: same meaning).")
    vectorRank: int | None = Field(description="Rank in the vector search (None: not among its candidates).")
    keywordScore: float | None = Field(description="BM25 score of the query's words in the case's document.")
    keywordRank: int | None = Field(description="Rank in the keyword search (None: no word matched).")
    fusedScore: float = Field(description="Reciprocal rank fusion: sum of 1 / (60 + rank).")
    matchedWords: list[str]
    matchedFields: dict[str, list[str]] = Field(description="Per document field, the query words in it.")


class SimilarHit(BaseModel):
    exceptionId: str
    exceptionType: str
    severity: str | None
    outcome: str | None = Field(description="The case's final status.")
    playbookId: str | None
    overridden: bool = Field(description="A person rejected, edited or took over what exops proposed.")
    decidedBy: str | None = Field(description="Who decided its approval, if anyone.")
    finishedAt: str | None
    summary: str
    score: float
    explanation: Explanation | None

    @classmethod
    def of(cls, case: SimilarCase) -> SimilarHit:
        return cls(
            exceptionId=case.exception_id, exceptionType=case.exception_type, severity=case.severity,
            outcome=case.outcome, playbookId=case.playbook_id, overridden=case.overridden,
            decidedBy=case.decided_by, finishedAt=case.finished_at, summary=case.summary, score=case.score,
            explanation=Explanation.model_validate(case.explanation) if case.explanation else None,
        )  # fmt: skip


class SimilarCases(BaseModel):
    tenantId: str
    exceptionId: str
    items: list[SimilarHit]
