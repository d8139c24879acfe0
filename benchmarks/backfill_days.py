"""Cost of backfilling ``day_ordinal`` into a store written before listed days (schema version 1).

Builds a version-1 store of N papers (the Daily Papers archive's when present, else synthetic
ones) with random vectors (embedding is not what is measured), then times opening it: the first
open backfills every chunk's metadata, the second is the reference (a store that needs nothing).

    python -m benchmarks.backfill_days [--papers 9872]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

import assistant.store as store_module
from assistant.schema import Paper
from assistant.settings import Settings
from ingestion.chunking import chunk_paper

ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "daily-papers-archive" / "papers.jsonl"


def _papers(count: int) -> list[Paper]:
    if ARCHIVE.is_file():
        from ingestion.readers import read_path

        papers = read_path(ARCHIVE).papers[:count]
        # A version-1 store read the archive's "date" as the publication date.
        return [paper.model_copy(update={"published": paper.listed, "listed": None}) for paper in papers]
    start = date(2024, 5, 27)
    return [
        Paper(
            paper_id=f"p{n}",
            title=f"Synthetic paper {n}",
            abstract=f"An abstract about topic {n % 97} with some words. " * 20,
            published=start + timedelta(days=n // 17),
        )
        for n in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=9872)
    args = parser.parse_args()
    papers = _papers(args.papers)
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder))
        written_now = store_module._paper_metadata

        def version_1(paper: Paper, chunk: object, n_chunks: int) -> dict:
            metadata = written_now(paper, chunk, n_chunks)  # type: ignore[arg-type]
            metadata.pop("day_ordinal", None)
            metadata.pop("listed_ordinal", None)
            return metadata

        store_module._paper_metadata = version_1  # type: ignore[assignment]
        store_module.SCHEMA_VERSION = 1
        store = store_module.PaperStore(settings)
        rng = np.random.default_rng(0)
        rows = []
        for paper in papers:
            chunks = chunk_paper(paper, settings.ingest.chunk_tokens, settings.ingest.chunk_overlap_tokens)
            rows.append((paper, chunks, list(rng.standard_normal((len(chunks), 384)).astype(np.float32))))
        store.write_papers(rows)
        chunks_written = store.count_chunks()
        del store
        store_module._paper_metadata = written_now
        store_module.SCHEMA_VERSION = 2

        started, cpu = time.perf_counter(), time.process_time()
        first = store_module.PaperStore(settings)
        backfill_s, backfill_cpu = time.perf_counter() - started, time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        store_module.PaperStore(settings)
        reference_s, reference_cpu = time.perf_counter() - started, time.process_time() - cpu
        assert first._backfill_days() == 0
    print(f"papers {len(papers):,}, chunks {chunks_written:,}")
    print(f"first open, backfilling day_ordinal: {backfill_s:.2f} s ({backfill_cpu:.2f} s CPU)")
    print(f"reference, opening it again:        {reference_s:.2f} s ({reference_cpu:.2f} s CPU)")


if __name__ == "__main__":
    main()
