"""The store against real Chroma: embedded on disk and as a `chroma run` server."""

from __future__ import annotations

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
