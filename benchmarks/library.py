"""A collection of real daily papers with their listing days, for the app benchmark and the browser test.

    python -m benchmarks.library --store /work/stores/app-10k              # all 9,872 papers, title vectors
    python -m benchmarks.library --store /tmp/slice --papers 300 --exact   # the first 300, ingested as usual

Reads the Daily Papers archive (``papers.jsonl``: one paper a line with the ``date`` it was listed
on) into ``Paper`` objects with ``listed`` set. ``--exact`` ingests them through the pipeline
(``ingestion.pipeline.ingest_papers``: every chunk embedded); a store that already holds them is
reused, since ingestion skips unchanged papers. That took 200 s for the first 481 of 18,704 chunks
on the shared 2-core box (load 11): two hours for the whole archive. By default each paper's title
is embedded once and every chunk of the paper gets that vector (chunked and written as ingestion
does, ``chunk_paper`` + ``PaperStore.write_papers``): real MiniLM vectors that place papers by
topic, which is what the app's pages and map need, in minutes. Answers' quality needs ``--exact``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from assistant.schema import Paper, ReadResult  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from assistant.store import PaperStore  # noqa: E402
from ingestion.chunking import chunk_paper  # noqa: E402
from ingestion.normalize import build_paper  # noqa: E402
from ingestion.pipeline import ingest_papers  # noqa: E402

WRITE_GROUP = 500

ARCHIVE = Path(
    os.environ.get("ASSISTANT_DAILY_ARCHIVE", str(ROOT.parent / "shared/corpus/daily-papers-archive/papers.jsonl"))
)
if not ARCHIVE.is_file():  # the worktrees' shared folder
    ARCHIVE = Path("/work/shared/corpus/daily-papers-archive/papers.jsonl")


def archive_papers(path: Path = ARCHIVE, limit: int | None = None) -> list[Paper]:
    """The archive's papers in its order (by listing day), each with ``listed`` = the day it was listed."""
    papers: list[Paper] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            paper = build_paper(
                title=record["title"],
                abstract=record["abstract"],
                authors=record["authors"],
                url=record["url"],
                arxiv_id=record["id"],
                source=path.name,
            )
            papers.append(paper.model_copy(update={"listed": date.fromisoformat(record["date"])}))
            if limit is not None and len(papers) >= limit:
                break
    return papers


def store_settings(store_dir: Path, data_dir: Path | None = None) -> Settings:
    return Settings(store_dir=store_dir, data_dir=data_dir or store_dir.parent / f"{store_dir.name}-data")


def build_store(store_dir: Path, papers: list[Paper], *, exact: bool = False, verbose: bool = True) -> PaperStore:
    """``papers`` in the embedded store in ``store_dir``: ingested (``exact``) or with title vectors."""
    store = PaperStore(store_settings(store_dir))
    if not exact:
        return _write_with_title_vectors(store, papers, verbose=verbose)
    started = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if verbose and (time.perf_counter() - last[0] > 30 or done == total):
            last[0] = time.perf_counter()
            print(f"  {done} of {total} chunks, {time.perf_counter() - started:.0f} s", flush=True)

    report = ingest_papers(ReadResult(papers=papers, locations=[""] * len(papers)), store=store, progress=progress)
    if verbose:
        print(
            f"store {store_dir}: {report.total_papers} papers ({report.papers_added} added, "
            f"{report.papers_unchanged} unchanged) in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return store


def _write_with_title_vectors(store: PaperStore, papers: list[Paper], *, verbose: bool) -> PaperStore:
    stored = store.paper_index()
    missing = [paper for paper in papers if stored.get(paper.paper_id, ("",))[0] != paper.content_hash]
    started = time.perf_counter()
    settings = store.settings.ingest
    for start in range(0, len(missing), WRITE_GROUP):
        group = missing[start : start + WRITE_GROUP]
        vectors = store.embedder([paper.title for paper in group])
        rows = []
        for paper, vector in zip(group, vectors, strict=True):
            chunks = chunk_paper(paper, settings.chunk_tokens, settings.chunk_overlap_tokens)
            rows.append((paper, chunks, [vector] * len(chunks)))
        store.write_papers(rows)
        if verbose:
            print(f"  {start + len(group)} of {len(missing)} papers, {time.perf_counter() - started:.0f} s", flush=True)
    if verbose:
        print(f"store {store.settings.store.resolved_store_dir}: {len(store.paper_index())} papers", flush=True)
    return store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True, help="store folder (created or reused)")
    parser.add_argument("--papers", type=int, default=None, help="the first N papers of the archive (default: all)")
    parser.add_argument("--archive", type=Path, default=ARCHIVE)
    parser.add_argument("--exact", action="store_true", help="ingest through the pipeline (every chunk embedded)")
    args = parser.parse_args(argv)
    if not args.archive.is_file():
        print(f"{args.archive} is missing: set ASSISTANT_DAILY_ARCHIVE to the archive's papers.jsonl")
        return 2
    build_store(args.store, archive_papers(args.archive, args.papers), exact=args.exact)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
