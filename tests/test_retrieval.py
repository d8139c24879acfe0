"""Hybrid retrieval on the real sample collection and the dev set."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from assistant.retrieval import TERMS_VERSION, Retriever, bm25_terms, bm25_tokens, cache_dir_for
from assistant.schema import Paper, ReadResult
from assistant.store import PaperStore
from ingestion.pipeline import ingest_papers
from tests.conftest import DEV_SET


def test_bm25_tokens_keep_hyphenated_names_whole_and_split():
    tokens = bm25_tokens("IC-LoRA beats the ICM-LoRA baseline")
    assert {"ic-lora", "ic", "lora", "icm-lora"} <= set(tokens)
    assert "the" not in tokens


def test_bm25_tokens_match_inflections_and_acronym_plurals():
    assert bm25_tokens("refusals of LLMs") == bm25_tokens("refusal LLM")
    assert bm25_tokens("Which papers are about distillation?") == bm25_tokens("distillation")
    assert bm25_tokens("99.2% on 16.59") == ["99.2", "16.59"]


def test_bm25_terms_pair_neighbouring_words_in_any_order():
    assert "code|generat" in bm25_terms("improve how LLMs generate code")
    assert "code|generat" in bm25_terms("on Python code generation")
    assert "distil|knowledg" in bm25_terms("a 'Configuration-Invariant Knowledge Distillation' loss")
    # Compound names pair through their parts, never as a whole.
    assert not any("|" in term and "-" in term for term in bm25_terms("IC-LoRA beats ICM-LoRA"))
    assert set(bm25_tokens("a phrase of words")) <= set(bm25_terms("a phrase of words"))


def test_a_phrase_outranks_its_words_scattered(settings):
    store = PaperStore(settings)
    papers = [
        Paper(paper_id="scattered", title="Images", abstract="We generate images. Code is open."),
        Paper(
            paper_id="phrase",
            title="Program synthesis",
            abstract="Code generation with small language models, careful sampling strategies and verification by unit tests.",
        ),
    ]
    ingest_papers(ReadResult(papers=papers), store=store)
    hits = {hit.paper.paper_id: hit for hit in Retriever(store).search("generate code", 2)}
    assert hits["phrase"].bm25_rank == 1


def test_an_index_saved_with_other_terms_is_rebuilt(settings):
    store = PaperStore(settings)
    ingest_papers(
        ReadResult(papers=[Paper(paper_id="a", title="Zebra stripes", abstract="Zebras use stripes.")]), store=store
    )
    Retriever(store).refresh()
    saved = cache_dir_for(settings) / "chunks.json"
    payload = json.loads(saved.read_text())
    assert payload["terms_version"] == TERMS_VERSION
    payload["terms_version"] = TERMS_VERSION - 1
    saved.write_text(json.dumps(payload))
    rebuilt = Retriever(PaperStore(settings))
    rebuilt.refresh()
    assert json.loads(saved.read_text())["terms_version"] == TERMS_VERSION
    assert rebuilt.search("zebra stripes", 1)[0].bm25_rank == 1


def test_a_paper_deep_in_one_list_still_counts_in_the_fusion(sample_retriever):
    """Each list reaches past the first few papers, so a paper first by keywords but far down by
    meaning keeps its dense share and is not beaten by one that is middling in both."""
    depth = sample_retriever.settings.retrieval.fusion_depth
    hits = sample_retriever.search("knowledge distillation loss used in training", 10)
    assert depth >= 100
    assert all(hit.dense_rank is not None for hit in hits)


def test_mirrored_ranks_tie_break_on_meaning(sample_retriever):
    hits = sample_retriever.search("Is there work on erasing concepts from text-to-image models?", 3)
    tied = [hit for hit in hits if abs(hit.score - hits[0].score) < 1e-12]
    assert [hit.similarity for hit in tied] == sorted((hit.similarity for hit in tied), reverse=True)


def test_one_hit_per_paper_with_metadata(sample_retriever):
    hits = sample_retriever.search("in-context learning", 8)
    assert len(hits) == 8
    assert len({h.paper.paper_id for h in hits}) == 8
    assert all(h.text and h.paper.title and h.similarity is not None for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_keyword_only_query_is_found_by_bm25(sample_retriever):
    hits = sample_retriever.search("FTRI", 3)
    assert hits[0].paper.title.startswith("Mixture of Tunable Experts")
    assert hits[0].bm25_rank == 1


def test_dense_only_mode(sample_retriever):
    hits = sample_retriever.search("replay-free continual learning with prototypes", 3, hybrid=False)
    assert hits[0].paper.title.startswith("Prototype-Sample Relation Distillation")
    assert all(h.bm25_rank is None for h in hits)


def test_bm25_index_follows_ingests_and_restarts(settings):
    store = PaperStore(settings)
    retriever = Retriever(store)
    ingest_papers(
        ReadResult(papers=[Paper(paper_id="a", title="Zebra stripes", abstract="Zebras use stripes.")]), store=store
    )
    assert retriever.search("zebra", 1)[0].paper.paper_id == "a"
    ingest_papers(
        ReadResult(papers=[Paper(paper_id="b", title="Quokka smiles", abstract="Quokkas smile a lot.")]), store=store
    )
    assert retriever.search("quokka", 1)[0].bm25_rank == 1

    restarted = Retriever(PaperStore(settings))
    index = restarted.refresh()
    assert sorted(set(index.paper_ids)) == ["a", "b"]


def test_date_and_source_filters(settings):
    store = PaperStore(settings)
    papers = [
        Paper(
            paper_id="old",
            title="Graph nets",
            abstract="Graph neural networks.",
            published=date(2024, 1, 5),
            source="x",
        ),
        Paper(
            paper_id="new",
            title="Graph nets two",
            abstract="Graph neural networks again.",
            published=date(2025, 8, 19),
            source="y",
        ),
    ]
    ingest_papers(ReadResult(papers=papers), store=store)
    retriever = Retriever(store)
    assert [h.paper.paper_id for h in retriever.search("graph", 5, since=date(2025, 1, 1))] == ["new"]
    assert [h.paper.paper_id for h in retriever.search("graph", 5, until=date(2024, 12, 31))] == ["old"]
    assert [h.paper.paper_id for h in retriever.search("graph", 5, source="x")] == ["old"]


def test_empty_collection_returns_no_hits(settings):
    assert Retriever(PaperStore(settings)).search("anything", 5) == []


HELDOUT_SET = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "heldout.jsonl"


def _items(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize(
    "eval_set",
    [
        pytest.param(DEV_SET, id="dev"),
        # Questions written for this project in other words than the dev set, with questions
        # the collection cannot answer: a check that retrieval was not fitted to the dev set.
        pytest.param(HELDOUT_SET, id="held-out"),
    ],
)
def test_recall_at_5(sample_retriever, eval_set: Path):
    answerable = [item for item in _items(eval_set) if item["gold_titles"]]
    per_question = []
    reciprocal_ranks = []
    for item in answerable:
        titles = [h.paper.title for h in sample_retriever.search(item["question"], 5)]
        per_question.append(sum(gold in titles for gold in item["gold_titles"]) / len(item["gold_titles"]))
        ranks = [titles.index(g) + 1 for g in item["gold_titles"] if g in titles]
        reciprocal_ranks.append(1 / min(ranks) if ranks else 0.0)
    recall = sum(per_question) / len(per_question)
    mrr = sum(reciprocal_ranks) / len(reciprocal_ranks)
    print(f"\n{eval_set.name} retrieval: recall@5 = {recall:.3f} over {len(answerable)} questions, MRR = {mrr:.3f}")
    # Issue #6's bar. Measured 1.00 on both sets (dev was 0.963 before word pairs and deeper fusion).
    assert recall >= 0.98
    assert mrr >= 0.95
