"""Read -> merge duplicates (with what is stored) -> chunk -> embed -> write, idempotently.

Records of one paper are merged by the rules of :mod:`ingestion.duplicates`, and the papers
already in the store take part as records read before this run: so ``ingest a b`` leaves the
store as ``ingest a`` then ``ingest b`` does, and re-ingesting what was ingested changes nothing.
Unchanged papers (same content hash) are neither re-embedded nor rewritten; a changed
paper's old chunks are replaced (also when it gains an arXiv id and so changes its id); an
interrupted earlier ingest is cleaned up first. Papers are embedded and written in groups so
that progress is visible and a kill loses at most the group in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from assistant.embeddings import EmbedFunction
from assistant.errors import StoreUnavailable
from assistant.instructions import instruction_sentences
from assistant.schema import AddressedAbstract, IngestReport, Paper, PaperStats, Problem, ReadResult
from assistant.settings import SAMPLE_COLLECTION, Settings
from assistant.store import INGEST_LOCK_FILE, PaperStore, cannot_write, lock_file_error
from ingestion.chunking import chunk_paper
from ingestion.duplicates import Merged, Merger, cap_problems, locations_of
from ingestion.errors import IngestionError
from ingestion.progress import IngestProgress, ProgressCallback
from ingestion.readers import MAX_PROBLEMS_PER_FILE, read_bytes, read_path

PAPERS_PER_GROUP = 256
"""Papers embedded, then written, together: a kill loses at most this many papers' work."""

CHUNKS_PER_SLICE = 64
"""Chunks per call of the embedder (and per progress event): ~2 s on 2 cores; MiniLM splits it into batches."""


def read_sources(paths: Iterable[Path | str]) -> ReadResult:
    """Read every path; a file that cannot be read at all raises IngestionError before anything is written."""
    combined = ReadResult()
    for path in paths:
        combined.extend(read_path(path))
    return combined


def merge_with_store(read: ReadResult, stored: Sequence[PaperStats]) -> Merged:
    """The papers of ``read`` merged with each other and with the ``stored`` ones, read before them."""
    merger = Merger()
    merger.add_stored(stats.paper for stats in stored)
    for paper, location in zip(read.papers, locations_of(read), strict=True):
        merger.add(paper, location)
    return merger.result()


def ingest_lock(settings: Settings, timeout_s: float = 60.0) -> AbstractContextManager[object]:
    """Serialise writers of one embedded store: Chroma's on-disk store is not safe for two writing processes.

    Entering raises filelock's Timeout when another writer held the lock for ``timeout_s``, and
    StoreUnavailable ("cannot write to DIR") at once when the lock file cannot be created at all
    (a read-only or foreign folder, ``/proc``, a directory in the lock file's place): that is no
    writer to wait for, and no ingest could write there anyway.
    """
    if settings.store.chroma_url_str:
        return nullcontext()
    store_dir = settings.store.resolved_store_dir
    try:
        store_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(f"cannot create the store folder {store_dir}: {exc.strerror}") from exc
    return _held(store_dir, timeout_s)


@contextmanager
def _held(store_dir: Path, timeout_s: float) -> Iterator[FileLock]:
    lock_path = store_dir / INGEST_LOCK_FILE
    hint = "Check that the folder is writable and has free space, or set ASSISTANT_STORE_DIR."
    error = lock_file_error(lock_path)
    if error is not None:
        raise cannot_write(store_dir, INGEST_LOCK_FILE, error, hint) from error
    lock = FileLock(str(lock_path), timeout=timeout_s)
    try:
        lock.acquire()
    except Timeout:
        raise
    except OSError as exc:  # created a moment ago, but the filesystem cannot lock it
        raise cannot_write(store_dir, INGEST_LOCK_FILE, exc, hint) from exc
    try:
        yield lock
    finally:
        lock.release()


def ingest_papers(
    read: ReadResult,
    *,
    store: PaperStore,
    progress: ProgressCallback | None = None,
    lock_timeout_s: float = 60.0,
) -> IngestReport:
    """Write the papers of ``read`` into ``store``; the report lists what changed and every problem."""
    report = IngestReport(problems=list(read.problems), duplicates_merged=read.duplicates_merged)
    try:
        with ingest_lock(store.settings, lock_timeout_s):
            store.remove_incomplete_papers()
            stored = store.list_papers()
            merged = merge_with_store(read, stored)
            stored_hashes = {stats.paper.paper_id: stats.paper.content_hash for stats in stored}
            papers_now = set(stored_hashes)
            added: list[Paper] = []
            updated: list[Paper] = []
            replaces: dict[str, list[str]] = {}
            for paper, stored_ids in zip(merged.papers, merged.stored_ids, strict=True):
                if stored_ids == [paper.paper_id] and stored_hashes[paper.paper_id] == paper.content_hash:
                    report.papers_unchanged += 1
                    continue
                (updated if stored_ids else added).append(paper)
                replaces[paper.paper_id] = stored_ids
                papers_now.difference_update(stored_ids)
                papers_now.add(paper.paper_id)
            report.papers_added = len(added)
            report.papers_updated = len(updated)
            report.problems.extend(cap_problems(merged.problems, MAX_PROBLEMS_PER_FILE))
            report.duplicates_merged += merged.duplicates_merged
            report.replaced = merged.replaced
            report.addressed_to_model = [
                AddressedAbstract(paper_id=paper.paper_id, title=paper.title, sentences=orders)
                for paper in added + updated
                if (orders := instruction_sentences(paper.abstract))
            ]
            report.chunks_written = _embed_and_write(added + updated, replaces, store, progress)
            report.total_papers = len(papers_now)
    except Timeout as exc:
        raise StoreUnavailable(
            f"another ingest is writing to {store.settings.store.resolved_store_dir} (waited {lock_timeout_s:.0f} s for "
            f"{exc.lock_file}); try again when it has finished"
        ) from exc
    return report


def _embed_and_write(
    papers: Sequence[Paper], replaces: dict[str, list[str]], store: PaperStore, progress: ProgressCallback | None
) -> int:
    """Embed and write ``papers``; ``replaces[paper_id]`` are the stored papers each one replaces.

    Papers go in groups of ``PAPERS_PER_GROUP``, written once each group is embedded (a kill loses
    at most the group in flight). Within a group the chunks are embedded ``CHUNKS_PER_SLICE`` at a
    time, longest last, so that a slice holds texts of similar length (little padding) and progress
    is reported after every slice.
    """
    settings = store.settings
    chunked = [
        (paper, chunk_paper(paper, settings.ingest.chunk_tokens, settings.ingest.chunk_overlap_tokens))
        for paper in papers
    ]
    tracker = _Tracker(len(chunked), sum(len(chunks) for _, chunks in chunked), progress)
    written = 0
    for start in range(0, len(chunked), PAPERS_PER_GROUP):
        group = chunked[start : start + PAPERS_PER_GROUP]
        # A paper that replaces only itself keeps the vectors of chunks whose text and title are unchanged.
        kept = store.stored_vectors(
            [chunk for paper, chunks in group if replaces.get(paper.paper_id) == [paper.paper_id] for chunk in chunks]
        )
        fresh = [chunk for _, chunks in group for chunk in chunks if chunk.chunk_id not in kept]
        if kept:
            tracker.chunks_embedded(len(kept))
        embedded = dict(
            zip(
                (chunk.chunk_id for chunk in fresh),
                _embed_by_length([chunk.embedding_text for chunk in fresh], store.embedder, tracker),
                strict=True,
            )
        )
        vector_of = kept | embedded
        rows = [(paper, chunks, [vector_of[chunk.chunk_id] for chunk in chunks]) for paper, chunks in group]
        count = store.write_papers(
            rows, replace=[old for paper, _ in group for old in replaces.get(paper.paper_id, [])]
        )
        written += count
        tracker.papers_written(len(group), count)
    return written


def _embed_by_length(texts: Sequence[str], embed: EmbedFunction, tracker: _Tracker) -> list[np.ndarray]:
    """Vectors of ``texts`` in their order, embedded in slices of similar length (by characters)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors: list[np.ndarray] = [_NO_VECTOR] * len(texts)
    for start in range(0, len(order), CHUNKS_PER_SLICE):
        indices = order[start : start + CHUNKS_PER_SLICE]
        for index, vector in zip(indices, embed([texts[i] for i in indices]), strict=True):
            vectors[index] = vector
        tracker.chunks_embedded(len(indices))
    return vectors


_NO_VECTOR = np.empty(0, dtype=np.float32)


class _Tracker:
    """Counts what is done and tells ``progress`` (when given) after each step, with the time since the start."""

    def __init__(self, papers: int, chunks: int, progress: ProgressCallback | None) -> None:
        self._progress = progress
        self._started = time.monotonic()
        self._event = IngestProgress(
            papers_done=0, papers_total=papers, chunks_written=0, chunks_embedded=0, chunks_total=chunks, elapsed_s=0
        )
        self._tell()

    def chunks_embedded(self, count: int) -> None:
        self._event.chunks_embedded += count
        self._tell()

    def papers_written(self, papers: int, chunks: int) -> None:
        self._event.papers_done += papers
        self._event.chunks_written += chunks
        self._tell()

    def _tell(self) -> None:
        if self._progress is not None:
            self._event.elapsed_s = time.monotonic() - self._started
            self._progress(self._event.model_copy())


def ingest_paths(
    paths: Sequence[Path | str],
    *,
    store: PaperStore,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Read files or folders and ingest them; a source with no valid record is an IngestionError."""
    read = read_sources(paths)
    if not read.papers:
        raise IngestionError(
            "no valid paper in " + ", ".join(str(p) for p in paths) + _first_problems(read),
        )
    return ingest_papers(read, store=store, progress=progress)


def _first_problems(read: ReadResult, limit: int = 3) -> str:
    if not read.problems:
        return ""
    shown = "; ".join(f"{p.source} {p.location}: {p.reason}".strip() for p in read.problems[:limit])
    return f" ({shown})"


_first_start_lock = threading.Lock()


def ensure_sample(store: PaperStore, progress: ProgressCallback | None = None) -> IngestReport | None:
    """Ingest the bundled sample when the store is empty; None when it already holds papers.

    Serialised in the process: two first visits at once ingest the sample once, the
    second waits and finds it there.
    """
    with _first_start_lock:
        if store.count_chunks() > 0:
            return None
        return ingest_paths([SAMPLE_COLLECTION], store=store, progress=progress)


def read_uploads(files: Iterable[tuple[str, bytes]]) -> ReadResult:
    """Papers and per-record problems of uploaded files; a file that cannot be read at all is one problem."""
    combined = ReadResult()
    for name, data in files:
        try:
            result = read_bytes(data, name)
        except IngestionError as exc:
            reason = str(exc).removeprefix(f"{name}: ")
            combined.problems.append(Problem(source=name, location="", reason=reason))
            continue
        combined.extend(result)
    return combined


def ingest_uploads(
    files: Iterable[tuple[str, bytes]], store: PaperStore, progress: ProgressCallback | None = None
) -> IngestReport:
    """Read and ingest uploads; the report lists every record that was skipped and why."""
    read = read_uploads(files)
    if not read.papers:
        return IngestReport(problems=read.problems, total_papers=len(store.paper_index()))
    return ingest_papers(read, store=store, progress=progress)
