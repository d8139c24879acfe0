"""Dated questions on a store of the Daily Papers archive: retrieval before and after reading the dates, and their cost.

    python -m benchmarks.dated_search STORE_DIR [--set benchmarks/data/archive_dated.jsonl] [--rounds 5]

The store is one built by ``benchmarks/dated_archive.py`` (papers with their listed day); its BM25
index is kept in ``STORE_DIR/data``. For each ``dated`` item of the set:

* *before*: ``Retriever.search(question, 5)``, the whole question, no range (the code before dates);
* *after*: the range read by ``assistant.dates.find_days`` and ``search(rest, 5, days=range)``;

and prints recall@5 of the gold papers and the share of the top five listed outside the item's range.
Then the cost of the filter, milliseconds per search (median over items x rounds): no range; the
range as the BM25 index's day mask (what ``search`` does); and the range as the store's
``chunk_ids_where`` (paging every chunk id of the range out of Chroma, what keyword hits were filtered
by before), plus ``find_days`` per message.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from assistant.dates import find_days
from assistant.retrieval import Retriever
from assistant.schema import DateRange
from assistant.settings import Settings
from assistant.store import PaperStore, date_filter

SET = Path(__file__).resolve().parent / "data" / "archive_dated.jsonl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store_dir", type=Path)
    parser.add_argument("--set", type=Path, default=SET)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    settings = Settings(store_dir=args.store_dir, data_dir=args.store_dir / "data")
    retriever = Retriever(PaperStore(settings))
    newest = retriever.newest_day()
    assert newest is not None, "the store holds no dated paper"
    started = time.perf_counter()
    retriever.refresh()
    print(f"{sum(retriever.papers_by_day().values())} papers, newest day {newest}; index ready in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    titles = {paper.title.casefold(): paper.paper_id for paper in (s.paper for s in retriever.store.list_papers())}
    items = [json.loads(line) for line in args.set.read_text(encoding="utf-8").splitlines() if line.strip()]
    dated = [item for item in items if item["kind"] == "dated"]

    def measure(question: str, gold: set[str], days: DateRange, ranged: bool) -> tuple[float, float]:
        found = find_days(question, newest) if ranged else None
        query = found.message if found and found.message else question
        hits = retriever.search(query, 5, days=found.days if found else None)
        recall = len(gold & {hit.paper.paper_id for hit in hits}) / len(gold)
        outside = sum(1 for hit in hits if not days.contains(hit.paper.day)) / max(len(hits), 1)
        return recall, outside

    rows = {"before": [], "after": []}
    for item in dated:
        gold = {titles[t.casefold()] for t in item["gold_titles"] if t.casefold() in titles}
        days = DateRange.model_validate(item["range"])
        if not gold:
            continue
        rows["before"].append(measure(item["question"], gold, days, ranged=False))
        rows["after"].append(measure(item["question"], gold, days, ranged=True))
    for name, values in rows.items():
        print(f"{name:6}  recall@5 {statistics.mean(r for r, _ in values):.2f}  "
              f"top five outside the range {statistics.mean(o for _, o in values):.2f}  ({len(values)} items)")  # fmt: skip

    timings: dict[str, list[float]] = {"no range": [], "range, index mask": [], "range, chunk_ids_where": []}
    parse: list[float] = []
    for _ in range(args.rounds):
        for item in dated:
            started = time.perf_counter()
            found = find_days(item["question"], newest)
            parse.append(time.perf_counter() - started)
            if found is None:
                continue
            query = found.message or item["question"]
            for name in timings:
                started = time.perf_counter()
                if name == "no range":
                    retriever.search(query, 6)
                elif name == "range, index mask":
                    retriever.search(query, 6, days=found.days)
                else:
                    retriever.search(query, 6, days=found.days)
                    retriever.store.chunk_ids_where(date_filter(days=found.days))
                timings[name].append(time.perf_counter() - started)
    for name, values in timings.items():
        values.sort()
        print(f"{name:24} p50 {1000 * statistics.median(values):6.1f} ms  p95 "
              f"{1000 * values[int(0.95 * (len(values) - 1))]:6.1f} ms")  # fmt: skip
    print(f"find_days per message: {1000 * statistics.mean(parse):.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
