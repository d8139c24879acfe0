"""Build a store of the Daily Papers archive with each paper's listed day, for dated questions.

    python -m benchmarks.dated_archive STORE_DIR [--archive PATH] [--limit N] [--days START:END ...]

Reads ``papers.jsonl`` of the archive (``../shared/corpus/daily-papers-archive/`` by default) with
the project's JSON Lines reader, gives every paper the day it was listed on (the record's
``date``: the Daily Papers day, not the arXiv date) and ingests them through the pipeline into
``STORE_DIR`` (the BM25 index goes to ``STORE_DIR/data``). Re-running adds only what is missing.
``--days`` ingests only the papers of those days first (newest first), for when embedding all
18,704 chunks is too slow: on the shared 2-core box it ran at about 95 chunks a minute (3 hours).
Then measure with ``ASSISTANT_STORE_DIR=STORE_DIR ASSISTANT_DATA_DIR=STORE_DIR/data paper-assistant
eval benchmarks/data/archive_dated.jsonl``. Prints papers, days and seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

from assistant.schema import DateRange, ReadResult
from assistant.settings import Settings
from assistant.store import PaperStore
from ingestion.pipeline import ingest_papers
from ingestion.readers import read_path

ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "daily-papers-archive" / "papers.jsonl"


def _range(text: str) -> DateRange:
    start, _, end = text.partition(":")
    return DateRange(start=date.fromisoformat(start), end=date.fromisoformat(end or start))


def listed_archive(path: Path, limit: int | None = None, ranges: list[DateRange] | None = None) -> ReadResult:
    """The archive's papers as the reader reads them, each with ``listed`` set to its Daily Papers day."""
    days = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            days[record["id"]] = date.fromisoformat(record["date"])
    read = read_path(path)
    kept = [
        (paper.model_copy(update={"listed": days[paper.arxiv_id], "published": None}), location)
        for paper, location in zip(read.papers, read.locations, strict=True)
        if paper.arxiv_id in days and (not ranges or any(span.contains(days[paper.arxiv_id]) for span in ranges))
    ][:limit]
    if ranges:
        kept.sort(key=lambda pair: pair[0].listed or date.min, reverse=True)
    return ReadResult(
        papers=[paper for paper, _ in kept], locations=[location for _, location in kept], problems=read.problems
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store_dir", type=Path)
    parser.add_argument("--archive", type=Path, default=ARCHIVE)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--days", type=_range, action="append", help="START:END (inclusive); repeatable")
    args = parser.parse_args(argv)
    if not args.archive.exists():
        print(f"no archive at {args.archive}", file=sys.stderr)
        return 2
    settings = Settings(store_dir=args.store_dir, data_dir=args.store_dir / "data")
    started = time.perf_counter()
    read = listed_archive(args.archive, args.limit, args.days)
    report = ingest_papers(
        read,
        store=PaperStore(settings),
        progress=lambda done, total: print(f"\r{done}/{total} chunks", end="", file=sys.stderr, flush=True),
    )
    days = {paper.listed for paper in read.papers}
    print(
        f"\n{report.total_papers} papers over {len(days)} days ({report.papers_added} added) "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
