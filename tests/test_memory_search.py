"""Similar-case memory, the pure parts: BM25, rank fusion, explanations, the confidence rule, names."""

from __future__ import annotations

import re

from app.memory.store import collection_name, where_of
from graph.memory import (
    ConfidenceRule,
    Fused,
    KeywordIndex,
    SimilarCase,
    case_document,
    case_fields,
    explain,
    fuse,
    memory_confidence,
    tokens,
)

CORPUS = {
    "C1": ("CASH_BREAK", "LOW", "RESOLVED", "nostro EUR break coupon payment missing from statement"),
    "C2": ("CASH_BREAK", "HIGH", "ESCALATED", "nostro USD break fx settlement booked twice"),
    "C3": ("SETTLEMENT_FAIL", "MEDIUM", "RESOLVED", "instruction failed ssi mismatch counterparty"),
    "C4": ("CASH_BREAK", "LOW", "RESOLVED", "fee charged by nostro bank not booked"),
    "C5": ("TRADE_MISMATCH", "LOW", "RESOLVED", "price mismatch on coupon bond trade"),
}


def index() -> KeywordIndex:
    keywords = KeywordIndex()
    for day, (case_id, (kind, severity, outcome, text)) in enumerate(CORPUS.items()):
        document = case_document({"type": kind, "severity": severity, "text": text})
        keywords.add(case_id, document, {"exceptionType": kind, "severity": severity, "outcome": outcome,
                                         "domain": "capital-markets", "finishedTs": 1000.0 + day, "remembered": day})  # fmt: skip
    return keywords


def test_tokens_keep_identifiers_whole_and_drop_stop_words() -> None:
    assert tokens("The break on ACC-1001 and US0378331005.") == ["break", "acc-1001", "us0378331005"]


def test_bm25_ranks_the_documents_with_the_rarer_words_first() -> None:
    keywords = index()
    ranked = [case_id for case_id, _ in keywords.search("coupon payment missing", {}, 10)]
    assert ranked[0] == "C1"  # three of the words, one of them (payment) in no other document
    assert set(ranked) == {"C1", "C5"}  # C5 has "coupon" only; no other document has any word
    assert keywords.search("nothing matches this", {}, 10) == []


def test_filters_by_type_severity_outcome_and_date() -> None:
    keywords = index()
    assert [c for c, _ in keywords.search("nostro", {"exceptionType": "CASH_BREAK"}, 10)] != []
    assert {c for c, _ in keywords.search("nostro", {}, 10)} == {"C1", "C2", "C4"}
    assert {c for c, _ in keywords.search("nostro", {"severity": "HIGH"}, 10)} == {"C2"}
    assert {c for c, _ in keywords.search("nostro", {"outcome": "RESOLVED"}, 10)} == {"C1", "C4"}
    assert {c for c, _ in keywords.search("nostro", {"since": 1001.0, "until": 1001.0}, 10)} == {"C2"}
    assert keywords.search("nostro", {"exceptionType": "UNKNOWN"}, 10) == []


def test_replaced_and_removed_cases_are_not_found() -> None:
    keywords = index()
    keywords.add("C1", "type: CASH_BREAK\ntext: something else entirely", {"exceptionType": "CASH_BREAK"})
    assert "C1" not in {c for c, _ in keywords.search("coupon payment", {}, 10)}
    keywords.remove("C4")
    assert {c for c, _ in keywords.search("nostro", {}, 10)} == {"C2"}
    assert len(keywords) == 4


def test_rank_fusion_rewards_agreement_and_keeps_order_on_ties() -> None:
    vector = [("A", 0.9), ("B", 0.8), ("C", 0.7)]
    keyword = [("C", 12.0), ("D", 3.0)]
    fused = fuse(vector, keyword, 4)
    assert [hit.case_id for hit in fused] == ["C", "A", "B", "D"]
    assert fused[0].vector_rank == 3 and fused[0].keyword_rank == 1
    assert fused[0].score == 1 / 63 + 1 / 61
    assert [hit.case_id for hit in fuse(vector, keyword, 2)] == ["C", "A"]


def test_an_explanation_names_the_words_fields_and_scores() -> None:
    fields = case_fields(
        {"exceptionType": "CASH_BREAK", "severity": "LOW", "sourceSystem": "recon",
         "rawPayload": {"cashAccountId": "NOSTRO-EUR-1", "note": "coupon missing"},
         "normalizedContext": {"attributes": {"cashAccountId": "NOSTRO-EUR-1"}}},
        {"status": "RESOLVED", "playbookId": "cash-break-small-writeoff", "decidedBy": "ana", "stepsDone": []},
    )  # fmt: skip
    document = case_document(fields)
    hit = Fused("C1", 0.03, 1, 0.87654, 2, 4.2)
    explanation = explain(hit, "coupon break on NOSTRO-EUR-1 small-writeoff", document)
    assert explanation["matchedFields"] == {"attributes": ["nostro-eur-1"], "text": ["coupon"]}
    assert explanation["vectorScore"] == 0.8765 and explanation["keywordScore"] == 4.2
    assert explanation["matchedWords"] == ["coupon", "nostro-eur-1"]
    assert "playbook: cash-break-small-writeoff" in document and "outcome: RESOLVED" in document


RULE = ConfidenceRule(min_similarity=0.5, override_penalty=0.3, raise_enabled=False, raise_by=0.1, cap=0.9,
                      raise_min_cases=3)  # fmt: skip


def case(
    case_id: str, similarity: float, *, overridden: bool = False, outcome: str = "RESOLVED"
) -> SimilarCase:
    explanation = {"vectorScore": similarity, "vectorRank": 1, "keywordScore": None, "keywordRank": None,
                   "fusedScore": 0.01, "matchedWords": [], "matchedFields": {}}  # fmt: skip
    return SimilarCase(case_id, "CASH_BREAK", 0.01, "", outcome=outcome, overridden=overridden,
                       explanation=explanation)  # type: ignore[arg-type]  # fmt: skip


def test_memory_lowers_confidence_by_the_share_people_overrode() -> None:
    similar = [case("A", 0.9), case("B", 0.8, overridden=True), case("C", 0.7, outcome="ESCALATED"),
               case("D", 0.6), case("FAR", 0.2, overridden=True)]  # fmt: skip
    confidence, why = memory_confidence(0.9, similar, RULE)
    assert confidence == 0.9 - 0.3 * 2 / 4  # FAR is not close enough to count
    assert why is not None and "2 of 4 similar cases (B, C)" in why
    assert memory_confidence(0.9, [case("FAR", 0.2, overridden=True)], RULE) == (0.9, None)


def test_memory_raises_only_when_enabled_and_never_above_the_cap() -> None:
    agreeing = [case("A", 0.9), case("B", 0.8), case("C", 0.7)]
    assert memory_confidence(0.6, agreeing, RULE) == (0.6, None)  # off by default
    enabled = ConfidenceRule(**{**RULE.__dict__, "raise_enabled": True})
    raised, why = memory_confidence(0.6, agreeing, enabled)
    assert raised == 0.7 and why is not None and "cap 0.90" in why
    assert memory_confidence(0.85, agreeing, enabled)[0] == 0.9  # capped
    assert memory_confidence(0.95, agreeing, enabled) == (0.95, None)  # above the cap: left alone
    assert memory_confidence(0.6, agreeing[:2], enabled) == (0.6, None)  # too few cases


def test_collection_names_are_valid_and_one_per_tenant_id() -> None:
    ids = ["acme-capital", "TENANT_FINANCE_001", "Acme-Capital", "a b", "a_b", "ü-tenant", "x" * 64, "ab"]
    names = [collection_name(tenant) for tenant in ids]
    assert len(set(names)) == len(ids)
    for name in names:
        assert 3 <= len(name) <= 512 and re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9._-]*[a-zA-Z0-9]", name), name


def test_filters_become_one_chroma_where() -> None:
    assert where_of({}) is None
    assert where_of({"exceptionType": "CASH_BREAK"}) == {"exceptionType": "CASH_BREAK"}
    assert where_of({"severity": "LOW", "since": 5.0}) == {
        "$and": [{"severity": "LOW"}, {"finishedTs": {"$gte": 5.0}}]
    }
