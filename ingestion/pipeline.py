"""Read -> deduplicate -> chunk -> embed -> write, idempotently.

Unchanged papers (same content hash) are neither re-embedded nor rewritten; a changed
paper's old chunks are replaced; an interrupted earlier ingest is cleaned up first.
Papers are embedded and written in groups so that progress is visible and a kill
loses at most the group in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from filelock import FileLock, Timeout

from assistant.models import IngestReport, Paper, ReadResult
from assistant.settings import Settings
from assistant.store import INGEST_LOCK_FILE, PaperStore, StoreUnavailable, cannot_write, lock_file_error
from ingestion.chunking import chunk_paper
from ingestion.errors import IngestionError
from ingestion.normalize import deduplicate
from ingestion.readers import read_path

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
    """Serialise writers of one embedded store: Chroma's on-disk store is not safe for two writing processes.

    Entering raises filelock's Timeout when another writer held the lock for ``timeout_s``, and
    StoreUnavailable ("cannot write to DIR") at once when the lock file cannot be created at all
    (a read-only or foreign folder, ``/proc``, a directory in the lock file's place): that is no
    writer to wait for, and no ingest could write there anyway.
    """
    if settings.chroma_url_str:
        return nullcontext()
    store_dir = settings.resolved_store_dir
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
            f"another ingest is writing to {store.settings.resolved_store_dir} (waited {lock_timeout_s:.0f} s for "
            f"{exc.lock_file}); try again when it has finished"
        ) from exc
    return report


def _embed_and_write(
    papers: Sequence[Paper], replaced: set[str], store: PaperStore, progress: ProgressCallback | None
) -> int:
    settings = store.settings
    chunked = [(paper, chunk_paper(paper, settings.chunk_tokens, settings.chunk_overlap_tokens)) for paper in papers]
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
