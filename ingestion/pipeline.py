"""Read -> deduplicate -> chunk -> embed -> write, idempotently.

Unchanged papers (same content hash) are neither re-embedded nor rewritten; a changed
paper's old chunks are replaced; an interrupted earlier ingest is cleaned up first.
Papers are embedded and written in groups so that progress is visible and a kill
loses at most the group in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from filelock import FileLock, Timeout

from assistant.errors import StoreUnavailable
from assistant.schema import IngestReport, Paper, Problem, ReadResult
from assistant.settings import SAMPLE_COLLECTION, Settings
from assistant.store import INGEST_LOCK_FILE, PaperStore
from ingestion.chunking import chunk_paper
from ingestion.errors import IngestionError
from ingestion.normalize import deduplicate
from ingestion.readers import read_bytes, read_path

ProgressCallback = Callable[[int, int], None]
"""Called with (chunks embedded and written so far, chunks to write in all)."""

PAPERS_PER_GROUP = 256


def read_sources(paths: Iterable[Path | str]) -> ReadResult:
    """Read every path; a file that cannot be read at all raises IngestionError before anything is written."""
    combined = ReadResult()
    for path in paths:
        result = read_path(path)
        combined.papers.extend(result.papers)
        combined.problems.extend(result.problems)
    return combined


def ingest_lock(settings: Settings, timeout_s: float = 60.0) -> AbstractContextManager[object]:
    """Serialise writers of one embedded store: Chroma's on-disk store is not safe for two writing processes."""
    if settings.store.chroma_url_str:
        return nullcontext()
    store_dir = settings.store.resolved_store_dir
    try:
        store_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(f"cannot create the store folder {store_dir}: {exc.strerror}") from exc
    return FileLock(str(store_dir / INGEST_LOCK_FILE), timeout=timeout_s)


def ingest_papers(
    read: ReadResult,
    *,
    store: PaperStore,
    progress: ProgressCallback | None = None,
    lock_timeout_s: float = 60.0,
) -> IngestReport:
    """Write the papers of ``read`` into ``store``; the report lists what changed and every problem."""
    papers = deduplicate(read.papers)
    report = IngestReport(problems=list(read.problems))
    try:
        with ingest_lock(store.settings, lock_timeout_s):
            store.remove_incomplete_papers()
            stored = store.paper_index()
            added = [p for p in papers if p.paper_id not in stored]
            updated = [p for p in papers if p.paper_id in stored and stored[p.paper_id][0] != p.content_hash]
            report.papers_added = len(added)
            report.papers_updated = len(updated)
            report.papers_unchanged = len(papers) - len(added) - len(updated)
            report.chunks_written = _embed_and_write(added + updated, {p.paper_id for p in updated}, store, progress)
            report.total_papers = len(stored) + len(added)
    except Timeout as exc:
        raise StoreUnavailable(
            f"another ingest is writing to {store.settings.store.resolved_store_dir} (waited {lock_timeout_s:.0f} s for "
            f"{exc.lock_file}); try again when it has finished"
        ) from exc
    return report


def _embed_and_write(
    papers: Sequence[Paper], replaced: set[str], store: PaperStore, progress: ProgressCallback | None
) -> int:
    settings = store.settings
    chunked = [
        (paper, chunk_paper(paper, settings.ingest.chunk_tokens, settings.ingest.chunk_overlap_tokens))
        for paper in papers
    ]
    total = sum(len(chunks) for _, chunks in chunked)
    done = 0
    if progress is not None:
        progress(0, total)
    for start in range(0, len(chunked), PAPERS_PER_GROUP):
        group = chunked[start : start + PAPERS_PER_GROUP]
        texts = [chunk.embedding_text for _, chunks in group for chunk in chunks]
        vectors = iter(store.embedder(texts))
        rows = [(paper, chunks, [next(vectors) for _ in chunks]) for paper, chunks in group]
        done += store.write_papers(rows, replace=[paper.paper_id for paper, _ in group if paper.paper_id in replaced])
        if progress is not None:
            progress(done, total)
    return done


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


def ensure_sample(store: PaperStore, progress: Callable[[int, int], None] | None = None) -> IngestReport | None:
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
        combined.papers.extend(result.papers)
        combined.problems.extend(result.problems)
    return combined


def ingest_uploads(
    files: Iterable[tuple[str, bytes]], store: PaperStore, progress: Callable[[int, int], None] | None = None
) -> IngestReport:
    """Read and ingest uploads; the report lists every record that was skipped and why."""
    read = read_uploads(files)
    if not read.papers:
        return IngestReport(problems=read.problems, total_papers=len(store.paper_index()))
    return ingest_papers(read, store=store, progress=progress)
