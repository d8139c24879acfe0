"""The store against real Chroma: embedded on disk and as a `chroma run` server."""

from __future__ import annotations

import json

import pytest

from assistant.embeddings import MiniLMEmbeddingFunction
from assistant.errors import EmbedderMismatch, StoreUnavailable
from assistant.retrieval import Retriever
from assistant.schema import Paper, ReadResult
from assistant.settings import SAMPLE_COLLECTION, Settings
from assistant.store import PaperStore
from ingestion.pipeline import ingest_papers, ingest_paths


class _OtherEmbedder(MiniLMEmbeddingFunction):
    @property
    def identity(self) -> str:
        return "some/other-model"


def test_opening_with_another_embedder_fails_with_rebuild_advice(settings):
    ingest_papers(
        ReadResult(papers=[Paper(paper_id="p1", title="T", abstract="An abstract.")]), store=PaperStore(settings)
    )
    with pytest.raises(EmbedderMismatch, match="ingest --rebuild"):
        PaperStore(settings, embedder=_OtherEmbedder())


def test_rebuild_drops_the_collection(settings):
    store = PaperStore(settings)
    ingest_papers(ReadResult(papers=[Paper(paper_id="p1", title="T", abstract="An abstract.")]), store=store)
    store.drop()
    assert store.list_papers() == [] and store.count_chunks() == 0


def test_unwritable_store_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreUnavailable, match="ASSISTANT_STORE_DIR"):
        PaperStore(Settings(data_dir=tmp_path, store_dir=blocker / "store"))


def test_unreachable_server_is_a_clear_error(tmp_path):
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StoreUnavailable, match="chroma run"):
        PaperStore(Settings(data_dir=tmp_path, chroma_url=url))


@pytest.mark.slow
def test_server_mode_ingest_by_one_client_is_searchable_by_another(chroma_server, tmp_path):
    writer = Settings(data_dir=tmp_path / "writer", chroma_url=chroma_server.url)
    reader = Settings(data_dir=tmp_path / "reader", chroma_url=chroma_server.url)
    reader_retriever = Retriever(PaperStore(reader))
    assert reader_retriever.search("task vectors", 3) == []

    report = ingest_paths([SAMPLE_COLLECTION], store=PaperStore(writer))
    assert report.papers_added == 46
    hits = reader_retriever.search("model editing with notes in the prompt", 5)
    assert "Robust and Scalable Model Editing for Large Language Models" in [h.paper.title for h in hits]
    again = ingest_paths([SAMPLE_COLLECTION], store=PaperStore(writer))
    assert again.chunks_written == 0 and again.papers_unchanged == 46


@pytest.mark.slow
def test_server_restart_mid_session_recovers(chroma_server, tmp_path):
    settings = Settings(data_dir=tmp_path, chroma_url=chroma_server.url)
    store = PaperStore(settings)
    ingest_papers(ReadResult(papers=[Paper(paper_id="p1", title="Title", abstract="Abstract text.")]), store=store)
    chroma_server.stop()
    with pytest.raises(StoreUnavailable, match="chroma run"):
        store.list_papers()
    chroma_server.start()
    assert [s.paper.paper_id for s in store.list_papers()] == ["p1"]


# --- dates ---------------------------------------------------------------------------------------


def _dated(paper_id: str, **dates: str) -> Paper:
    from datetime import date

    return Paper(
        paper_id=paper_id,
        title=f"Paper {paper_id}",
        abstract=f"The abstract of {paper_id}.",
        **{name: date.fromisoformat(value) for name, value in dates.items()},
    )


def _ids_in(store: PaperStore, start: str, end: str) -> set[str]:
    from datetime import date

    from assistant.schema import DateRange, paper_id_of
    from assistant.store import date_filter

    where = date_filter(days=DateRange(start=date.fromisoformat(start), end=date.fromisoformat(end)))
    assert where is not None
    return {paper_id_of(chunk_id) for chunk_id in store.chunk_ids_where(where)}


def test_a_store_written_before_listed_days_is_backfilled_once_on_open(settings, monkeypatch):
    import assistant.store as store_module

    written_before = store_module._paper_metadata

    def old_metadata(paper, chunk, n_chunks):  # what a version-1 store wrote: no listed or day ordinals
        metadata = written_before(paper, chunk, n_chunks)
        metadata.pop("day_ordinal", None)
        metadata.pop("listed_ordinal", None)
        return metadata

    monkeypatch.setattr(store_module, "_paper_metadata", old_metadata)
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 1)
    old = PaperStore(settings)
    ingest_papers(ReadResult(papers=[_dated("p1", published="2025-06-09"), _dated("p2")]), store=old)
    assert _ids_in(old, "2025-06-01", "2025-06-30") == set()
    monkeypatch.undo()

    reopened = PaperStore(settings)
    assert _ids_in(reopened, "2025-06-01", "2025-06-30") == {"p1"}
    assert reopened._collection.metadata["schema_version"] == store_module.SCHEMA_VERSION
    assert reopened._backfill_days() == 0, "done once"


def test_dated_questions_filter_on_the_listed_day_else_the_publication_date(settings):
    store = PaperStore(settings)
    papers = [
        _dated("listed", published="2025-06-01", listed="2025-06-10"),
        _dated("published", published="2025-06-10"),
        _dated("undated"),
    ]
    ingest_papers(ReadResult(papers=papers), store=store)
    assert _ids_in(store, "2025-06-10", "2025-06-10") == {"listed", "published"}
    assert _ids_in(store, "2025-06-01", "2025-06-02") == set()


def test_ingesting_a_then_b_keeps_the_first_listed_day_like_ingesting_a_b(tmp_path):
    from ingestion.pipeline import read_sources

    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    record = {"id": "2202.06258", "title": "Flowformer", "abstract": "Linear attention."}
    a.write_text(json.dumps({**record, "date": "2025-08-21"}) + "\n")
    b.write_text(json.dumps({**record, "date": "2025-08-19", "authors": ["Haixu Wu"]}) + "\n")
    stored = {}
    for name, runs in {"a b": [[a, b]], "a, then b": [[a], [b]], "b, then a": [[b], [a]]}.items():
        store = PaperStore(Settings(data_dir=tmp_path / name.replace(" ", "_").replace(",", "")))
        for paths in runs:
            report = ingest_papers(read_sources(paths), store=store)
        (stats,) = store.list_papers()
        stored[name] = stats.paper
    assert {str(paper.listed) for paper in stored.values()} == {"2025-08-19"}
    assert stored["a b"] == stored["a, then b"]
    assert stored["b, then a"].model_copy(update={"source": str(a)}) == stored["a b"], "only the source differs"
    assert report.papers_unchanged == 1, "a later listing day changes nothing"


def test_fetched_days_are_recorded_in_the_store_and_go_with_a_rebuild(settings):
    from datetime import date

    store = PaperStore(settings)
    assert store.fetched_days() == set()
    store.record_fetched_days([date(2025, 6, 10), date(2025, 6, 9)])
    store.record_fetched_days([date(2025, 6, 9), date(2025, 6, 11)])
    assert PaperStore(settings).fetched_days() == {date(2025, 6, 9), date(2025, 6, 10), date(2025, 6, 11)}
    store.drop()
    assert store.fetched_days() == set()


def test_papers_list_shows_both_dates(settings):
    from assistant.schema import PaperList

    store = PaperStore(settings)
    ingest_papers(ReadResult(papers=[_dated("p1", published="2025-06-09", listed="2025-06-10")]), store=store)
    (entry,) = PaperList.of(store.list_papers()).model_dump(mode="json")["papers"]
    assert (entry["published"], entry["listed"]) == ("2025-06-09", "2025-06-10")
    assert store.newest_listed_day() is not None and str(store.newest_listed_day()) == "2025-06-10"
