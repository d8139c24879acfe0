"""False positives of the injected-instruction detector on real abstracts.

    python -m benchmarks.instructions_fp            # the sample and the shared archive
    python -m benchmarks.instructions_fp --archive PATH/papers.jsonl

Every abstract of the 46-paper sample and of the Daily Papers archive (9,872 real arXiv
abstracts, read from ``../shared/corpus/daily-papers-archive/``, skipped when absent) is
checked with :func:`assistant.instructions.instruction_sentences`. None of them addresses a
model, so every flagged sentence is a false positive; each is printed with its paper.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from assistant.instructions import instruction_sentences
from assistant.settings import SAMPLE_COLLECTION
from ingestion.readers import read_path

DEFAULT_ARCHIVE = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "daily-papers-archive" / "papers.jsonl"


def flagged(papers: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], float]:
    """(title, flagged sentence) for every flagged sentence, and the seconds it took."""
    started = time.perf_counter()
    found = [(title, sentence) for title, abstract in papers for sentence in instruction_sentences(abstract)]
    return found, time.perf_counter() - started


def report(name: str, papers: list[tuple[str, str]]) -> None:
    found, seconds = flagged(papers)
    titles = {title for title, _ in found}
    print(
        f"{name}: {len(papers):,} abstracts, {len(titles)} flagged ({len(found)} sentences), "
        f"{seconds * 1000 / max(len(papers), 1):.2f} ms an abstract"
    )
    for title, sentence in found:
        print(f"  - {title[:70]}: {sentence[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    args = parser.parse_args()
    sample = [(paper.title, paper.abstract) for paper in read_path(SAMPLE_COLLECTION).papers]
    report("sample", sample)
    if args.archive.exists():
        with args.archive.open(encoding="utf-8") as lines:
            archive = [(row["title"], row["abstract"]) for row in map(json.loads, lines)]
        report("archive", archive)
    else:
        print(f"archive: {args.archive} not found, skipped")


if __name__ == "__main__":
    main()
