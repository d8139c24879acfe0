"""Ingest progress: the event the pipeline reports, the slices it embeds in, and the command line's bar."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from assistant.embeddings import MiniLMEmbeddingFunction
from assistant.schema import Paper, ReadResult
from assistant.settings import Settings
from assistant.store import PaperStore
from ingestion import pipeline
from ingestion.progress import IngestProgress, duration
from tests.reliability_fixtures import REPO_ROOT, cli_env, run_cli


class HashingEmbedder(MiniLMEmbeddingFunction):
    """The local embedder's identity with vectors drawn from each text's hash: fast, and each text's own."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def __call__(self, input: Sequence[str]) -> list[np.ndarray]:
        self.calls.append(list(input))
        return [vector_of(text) for text in input]


def vector_of(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(MiniLMEmbeddingFunction.DIMENSION).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _papers(count: int) -> list[Paper]:
    """Abstracts of 1 to 40 sentences, shuffled in length, so that chunks differ in length."""
    return [
        Paper(
            paper_id=f"2402.{n:05d}",
            title=f"Study {n} of topic {n % 5}",
            abstract=" ".join(f"Finding {k} of study {n} concerns sparse attention at scale {k * n}." for k in range(1 + n * 7 % 40)),
            arxiv_id=f"2402.{n:05d}",
            source="test",
        )
        for n in range(count)
    ]  # fmt: skip


def test_chunks_are_embedded_in_slices_of_similar_length_and_each_vector_reaches_its_chunk(settings: Settings) -> None:
    embedder = HashingEmbedder()
    store = PaperStore(settings, embedder=embedder)
    report = pipeline.ingest_papers(ReadResult(papers=_papers(60)), store=store)

    assert len(embedder.calls) > 2 and all(len(call) <= pipeline.CHUNKS_PER_SLICE for call in embedder.calls)
    embedded = [text for call in embedder.calls for text in call]
    assert len(embedded) == report.chunks_written > pipeline.CHUNKS_PER_SLICE * 2
    assert [len(t) for t in embedded] == sorted(len(t) for t in embedded), "one group, embedded shortest first"

    stored = store._collection.get(include=["embeddings", "documents", "metadatas"])
    titles = {p.paper_id: p.title for p in _papers(60)}
    for metadata, document, vector in zip(stored["metadatas"], stored["documents"], stored["embeddings"], strict=True):
        expected = vector_of(f"{titles[metadata['paper_id']]}\n{document}")
        assert np.allclose(vector, expected, atol=1e-6), "a vector was written to another chunk"


def test_progress_events_count_slices_embedded_and_groups_written(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "PAPERS_PER_GROUP", 25)
    events: list[IngestProgress] = []
    report = pipeline.ingest_papers(
        ReadResult(papers=_papers(60)), store=PaperStore(settings, embedder=HashingEmbedder()), progress=events.append
    )

    first, last = events[0], events[-1]
    assert (first.papers_done, first.chunks_embedded, first.chunks_written) == (0, 0, 0)
    assert first.papers_per_s is None and first.seconds_left is None and not first.finished
    assert (last.papers_done, last.papers_total, last.chunks_written, last.chunks_total) == (60, 60) + (
        report.chunks_written,
    ) * 2
    assert last.finished and last.seconds_left == 0.0
    embedded = [e.chunks_embedded for e in events]
    assert embedded == sorted(embedded) and len(set(embedded)) > 3, "progress between the writes"
    # What is written moves in whole groups: 25, 50, then 60 papers.
    assert sorted({e.papers_done for e in events}) == [0, 25, 50, 60]
    assert all(e.chunks_written <= e.chunks_embedded for e in events)


def test_progress_line_tells_rate_and_time_left() -> None:
    event = IngestProgress(
        papers_done=0, papers_total=100, chunks_written=0, chunks_embedded=50, chunks_total=200, elapsed_s=10.0
    )
    assert event.fraction == 0.25 and event.papers_per_s == pytest.approx(2.5) and event.seconds_left == 30.0
    assert event.line() == "0/100 papers, 0/200 chunks, 2.5 papers/s, 30 s left"
    done = event.model_copy(
        update={"papers_done": 100, "chunks_written": 200, "chunks_embedded": 200, "elapsed_s": 400}
    )
    assert done.line() == "100/100 papers, 200/200 chunks, 0.2 papers/s, done in 6 min 40 s"
    assert [duration(s) for s in (0.4, 59, 60, 3599, 3725)] == [
        "0 s",
        "59 s",
        "1 min 00 s",
        "59 min 59 s",
        "1 h 02 min",
    ]


def _three_papers(tmp_path: Path) -> Path:
    source = tmp_path / "three.jsonl"
    source.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n" for p in _papers(3)))
    return source


def test_cli_draws_the_bar_only_on_a_terminal_also_with_json(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    command = [sys.executable, "-m", "assistant", "ingest", str(_three_papers(tmp_path)), "--json"]
    command += ["--store", str(tmp_path / "store")]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=cli_env(), cwd=REPO_ROOT
    )
    os.close(slave)
    terminal = bytearray()
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            terminal.extend(data)
        elif process.poll() is not None:
            break
    stdout = process.communicate(timeout=300)[0]
    os.close(master)
    assert process.returncode == 0, terminal.decode(errors="replace")
    assert json.loads(stdout)["papers_added"] == 3, "stdout stays pure JSON"
    drawn = terminal.decode(errors="replace")
    assert "embedding [" in drawn and "papers/s" in drawn and "3/3 papers" in drawn and "done in" in drawn, drawn

    # Stderr captured, not a terminal: no bar at all.
    result = run_cli("ingest", str(_three_papers(tmp_path)), "--json", "--store", str(tmp_path / "other"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["papers_added"] == 3
    assert "papers/s" not in result.stderr and "embedding [" not in result.stderr and "\r" not in result.stderr


def test_pipeline_vectors_are_the_models_own_text_by_text(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slices, length order and threads that sleep change no vector: each stored one is the text's own
    vector from a one-text pass with onnxruntime's default (spinning) threads, up to float noise."""
    store = PaperStore(settings)
    assert store.embedder.SPINNING is False  # type: ignore[attr-defined]
    papers = _papers(12)
    report = pipeline.ingest_papers(ReadResult(papers=papers), store=store)
    monkeypatch.setattr(MiniLMEmbeddingFunction, "SPINNING", True)
    reference = MiniLMEmbeddingFunction(batch_size=1)

    stored = store._collection.get(include=["embeddings", "documents", "metadatas"])
    assert len(stored["ids"]) == report.chunks_written > len(papers)
    titles = {p.paper_id: p.title for p in papers}
    texts = [f"{titles[m['paper_id']]}\n{d}" for m, d in zip(stored["metadatas"], stored["documents"], strict=True)]
    expected = np.array([reference([text])[0] for text in texts])
    assert np.abs(np.array(stored["embeddings"]) - expected).max() < 1e-5
