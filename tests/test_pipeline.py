"""Ingestion into a real on-disk Chroma store: idempotence, updates, restarts, interrupted writes."""

from __future__ import annotations

import json
from datetime import date

import pytest

from assistant.schema import Paper, ReadResult
from assistant.settings import SAMPLE_COLLECTION
from assistant.store import PaperStore
from ingestion.errors import IngestionError
from ingestion.pipeline import ingest_papers, ingest_paths


def _paper(n: int, abstract: str | None = None) -> Paper:
    return Paper(
        paper_id=f"2401.{n:05d}",
        title=f"Paper number {n} about topic {n % 7}",
        abstract=abstract or f"We study topic {n % 7} with method {n}. Results improve by {n}%. " * 3,
        arxiv_id=f"2401.{n:05d}",
        source="test",
    )


def test_sample_ingest_then_reingest_writes_nothing(settings):
    store = PaperStore(settings)
    first = ingest_paths([SAMPLE_COLLECTION], store=store)
    assert (first.papers_added, first.papers_updated, first.papers_unchanged) == (46, 0, 0)
    assert first.total_papers == 46
    assert first.chunks_written == store.count_chunks() >= 46
    revision = store.revision()

    again = ingest_paths([SAMPLE_COLLECTION], store=store)
    assert (again.papers_added, again.papers_updated, again.papers_unchanged, again.chunks_written) == (0, 0, 46, 0)
    assert store.revision() == revision, "an unchanged re-ingest must not touch the store"


def test_changed_abstract_replaces_its_chunks_without_orphans(settings):
    store = PaperStore(settings)
    long_abstract = " ".join(f"Sentence {i} describes a distinct finding about retrieval heads." for i in range(60))
    ingest_papers(ReadResult(papers=[_paper(1, long_abstract), _paper(2)]), store=store)
    before = store.paper_index()["2401.00001"][1]
    assert before > 1

    report = ingest_papers(ReadResult(papers=[_paper(1, "A much shorter abstract now.")]), store=store)
    assert (report.papers_updated, report.papers_added, report.total_papers) == (1, 0, 2)
    chunk_ids = [row[0] for row in store.all_chunks()]
    assert sorted(c for c in chunk_ids if c.startswith("2401.00001")) == ["2401.00001:0"]
    assert store.get_papers(["2401.00001"])["2401.00001"].abstract == "A much shorter abstract now."


def test_a_new_listing_day_keeps_the_vectors_and_a_new_abstract_is_embedded(settings):
    store = PaperStore(settings)
    ingest_papers(ReadResult(papers=[_paper(1), _paper(2)]), store=store)
    before = store.paper_vectors(["2401.00001"])["2401.00001"]
    embedded: list[str] = []
    embedder = store.embedder

    def counting(texts):
        embedded.extend(texts)
        return embedder(texts)

    store.embedder = counting
    listed = _paper(1).model_copy(update={"listed": date(2026, 8, 21)})
    report = ingest_papers(ReadResult(papers=[listed, _paper(2, "A new abstract of paper two.")]), store=store)
    assert (report.papers_updated, report.papers_unchanged) == (2, 0)
    assert embedded == ["Paper number 2 about topic 2\nA new abstract of paper two."], "only the changed text"
    assert store.get_papers(["2401.00001"])["2401.00001"].listed == date(2026, 8, 21)
    assert store.paper_vectors(["2401.00001"])["2401.00001"] == pytest.approx(before)
    assert store.chunk_ids_where({"day_ordinal": date(2026, 8, 21).toordinal()}) == {"2401.00001:0"}


def test_store_survives_a_restart(settings):
    ingest_papers(ReadResult(papers=[_paper(i) for i in range(5)]), store=PaperStore(settings))
    reopened = PaperStore(settings)
    assert len(reopened.list_papers()) == 5
    assert reopened.list_papers()[0].chunks >= 1


def test_interrupted_write_is_cleaned_up_before_the_next_ingest(settings):
    store = PaperStore(settings)
    paper = _paper(3, " ".join(f"Finding {i} is about sparse attention and memory." for i in range(80)))
    from ingestion.chunking import chunk_paper

    chunks = chunk_paper(paper, settings.ingest.chunk_tokens, settings.ingest.chunk_overlap_tokens)
    assert len(chunks) > 2
    # Simulate a kill after the non-marker chunks were written: chunk 0 (the marker) is missing.
    partial = [c for c in chunks if c.index != 0]
    store.write_papers([(paper, partial, store.embedder([c.embedding_text for c in partial]))])
    assert store.paper_index() == {}

    report = ingest_papers(ReadResult(papers=[paper]), store=store)
    assert report.papers_added == 1
    ids = sorted(row[0] for row in store.all_chunks())
    assert ids == sorted(c.chunk_id for c in chunks), "no duplicate and no orphan chunk"


def test_duplicates_across_files_become_one_paper(settings, tmp_path):
    record = {"title": "Set-Based Prompting", "abstract": "Order dependency is removed by set-based prompting."}
    (tmp_path / "a.json").write_text(json.dumps([record]))
    (tmp_path / "b.jsonl").write_text(json.dumps(record) + "\n")
    report = ingest_paths([tmp_path / "a.json", tmp_path / "b.jsonl"], store=PaperStore(settings))
    assert report.papers_added == 1 and report.total_papers == 1


def test_bad_records_are_reported_and_the_rest_ingested(settings, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        json.dumps({"title": "Good paper", "abstract": "A valid abstract about models."})
        + "\n"
        + json.dumps({"title": "No abstract"})
        + "\n"
    )
    report = ingest_paths([path], store=PaperStore(settings))
    assert report.papers_added == 1
    assert len(report.problems) == 1
    assert report.problems[0].source.endswith("mixed.jsonl") and "2" in report.problems[0].location


def test_a_file_with_no_valid_record_fails_and_keeps_what_is_stored(settings, tmp_path):
    store = PaperStore(settings)
    ingest_papers(ReadResult(papers=[_paper(7)]), store=store)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"title": "x"}]))
    with pytest.raises(IngestionError):
        ingest_paths([bad], store=store)
    with pytest.raises(IngestionError):
        ingest_paths([tmp_path / "missing.txt"], store=store)
    assert list(store.paper_index()) == ["2401.00007"]
