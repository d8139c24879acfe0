"""Ingestion throughput: the whole pipeline against the bare embedding forward pass, and re-ingest.

    python -m benchmarks.ingestion                      # 2,000 papers, then re-ingest of 10,000
    python -m benchmarks.ingestion --papers 500 --reingest-papers 1000   # a quick run

1. *Limit*: ``MiniLMEmbeddingFunction.tokenize`` + ``forward`` over ``length_sorted_batches`` of the
   very chunks the pipeline embeds, grouped as the pipeline groups them (``PAPERS_PER_GROUP`` papers):
   the fastest the pipeline could go with this model on this machine.
2. *Pipeline*: ``ingest_paths`` on a JSON Lines file into a fresh temporary store: read, deduplicate,
   chunk, embed, write to Chroma. Stages are timed by wrapping the pipeline's own functions.
3. sentence-transformers with PyTorch fp32 on the same texts, where installed; and the limit at a
   larger batch size (``--compare-batch``, default 64, the default before 16 was measured faster).
4. Re-ingest: a ``--reingest-papers`` collection ingested, then ingested again unchanged (nothing may
   be re-embedded: the second run must take seconds).

Figures are printed, never asserted; each is measured in the same run as its reference.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# `python benchmarks/ingestion.py` would otherwise put benchmarks/ first and shadow the `ingestion` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from benchmarks.synthetic import (  # noqa: E402
    DEFAULT_SEED,
    chunked,
    format_table,
    machine_line,
    synthetic_papers,
    write_jsonl,
)

TARGET_SHARE = 0.70


class StageTimer:
    """Exclusive seconds spent inside wrapped callables, by stage name (a nested stage is not counted twice)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._children: list[float] = []

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._children.append(0.0)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                nested = self._children.pop()
                self.seconds[name] = self.seconds.get(name, 0.0) + elapsed - nested
                if self._children:
                    self._children[-1] += elapsed

        return timed


@contextlib.contextmanager
def patched(target: Any, name: str, replacement: Any) -> Iterator[None]:
    original = getattr(target, name)
    setattr(target, name, replacement)
    try:
        yield
    finally:
        setattr(target, name, original)


def measure_limit(embedder: Any, groups: list[list[str]]) -> tuple[float, int, int]:
    """(seconds, tokens, padded tokens) of tokenize + forward over the pipeline's batches."""
    tokens = padded = 0
    started = time.perf_counter()
    for texts in groups:
        token_ids = embedder.tokenize(texts)
        for batch in embedder.length_sorted_batches(token_ids):
            rows = [token_ids[i] for i in batch]
            embedder.forward(rows)
            tokens += sum(len(r) for r in rows)
            padded += len(rows) * max(len(r) for r in rows)
    return time.perf_counter() - started, tokens, padded


def measure_pipeline(jsonl: Path, data_dir: Path) -> tuple[float, Any, dict[str, float]]:
    """(seconds, IngestReport, stage seconds) of ingest_paths into a fresh store in ``data_dir``."""
    import ingestion.pipeline as pipeline
    from assistant.settings import Settings
    from assistant.store import PaperStore

    settings = Settings(data_dir=data_dir)
    store = PaperStore(settings)
    timer = StageTimer()
    store.embedder = timer.wrap("embed (tokenize + forward)", store.embedder)  # type: ignore[assignment]
    store.write_papers = timer.wrap("write (Chroma add)", store.write_papers)  # type: ignore[method-assign]
    store.paper_index = timer.wrap("read stored index", store.paper_index)  # type: ignore[method-assign]
    store.list_papers = timer.wrap("read stored papers", store.list_papers)  # type: ignore[method-assign]
    store.remove_incomplete_papers = timer.wrap("clean up incomplete", store.remove_incomplete_papers)  # type: ignore[method-assign]
    with (
        patched(pipeline, "read_sources", timer.wrap("read file", pipeline.read_sources)),
        patched(pipeline, "chunk_paper", timer.wrap("chunk (tiktoken)", pipeline.chunk_paper)),
        patched(pipeline, "merge_with_store", timer.wrap("deduplicate", pipeline.merge_with_store)),
    ):
        started = time.perf_counter()
        report = pipeline.ingest_paths([jsonl], store=store)
        seconds = time.perf_counter() - started
    stages = dict(timer.seconds)
    stages["other"] = seconds - sum(stages.values())
    return seconds, report, stages


def measure_sentence_transformers(texts: list[str], batch_size: int) -> str | tuple[float, int]:
    if importlib.util.find_spec("sentence_transformers") is None:
        return "not installed"
    try:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2", device="cpu")
        model.encode(texts[:8])
        started = time.perf_counter()
        model.encode(texts, batch_size=batch_size, normalize_embeddings=True)
        return time.perf_counter() - started, len(texts)
    except Exception as exc:  # no weights offline, etc.: say so instead of failing the benchmark
        return f"unavailable ({type(exc).__name__}: {str(exc)[:80]})"


def rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "-"


def run(papers: int, reingest_papers: int, seed: int, compare_batch: int | None = 64) -> None:
    from assistant.embeddings import build_embedder
    from assistant.settings import Settings
    from ingestion.pipeline import PAPERS_PER_GROUP

    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        tmp_dir = Path(tmp)
        settings = Settings(data_dir=tmp_dir / "limit")
        collection = synthetic_papers(papers, seed)
        jsonl = write_jsonl(collection, tmp_dir / "papers.jsonl")
        rows = chunked(collection, settings)
        groups = [
            [chunk.embedding_text for _, chunks in rows[start : start + PAPERS_PER_GROUP] for chunk in chunks]
            for start in range(0, len(rows), PAPERS_PER_GROUP)
        ]
        texts = [text for group in groups for text in group]
        embedder = build_embedder(settings)
        embedder(texts[:16])  # load the model outside the timings

        limit_s, tokens, padded = measure_limit(embedder, groups)
        small = None
        if compare_batch and compare_batch != embedder.batch_size:
            from assistant.embeddings import MiniLMEmbeddingFunction

            other = MiniLMEmbeddingFunction(batch_size=compare_batch, threads=settings.ingest.embedding_threads)
            other(texts[:16])
            small = measure_limit(other, groups)[0]
        pipeline_s, report, stages = measure_pipeline(jsonl, tmp_dir / "pipeline")
        if report.chunks_written != len(texts):
            print(f"warning: the pipeline wrote {report.chunks_written} chunks, the limit embedded {len(texts)}")
        st = measure_sentence_transformers(texts, embedder.batch_size)

        print(
            f"\nIngestion of {papers:,} synthetic papers (seed {seed}): {len(texts):,} chunks, {tokens:,} MiniLM tokens "
            f"({tokens / len(texts):.0f} per chunk, {100 * (1 - tokens / padded):.1f}% padding), batch size "
            f"{embedder.batch_size}, {PAPERS_PER_GROUP} papers per group"
        )
        table = [
            ["limit: tokenize + forward (int8 onnxruntime)", f"{limit_s:.1f}", rate(len(texts), limit_s), rate(tokens, limit_s), "100%"],
            ["pipeline: read -> chunk -> embed -> write", f"{pipeline_s:.1f}", rate(len(texts), pipeline_s),
             rate(tokens, pipeline_s), f"{100 * limit_s / pipeline_s:.0f}%"],
        ]  # fmt: skip
        if small is not None:
            table.append([f"limit at batch size {compare_batch} (reference)", f"{small:.1f}", rate(len(texts), small),
                          rate(tokens, small), f"{100 * limit_s / small:.0f}%"])  # fmt: skip
        if isinstance(st, str):
            table.append(["sentence-transformers fp32 (PyTorch)", st, "", "", ""])
        else:
            table.append(["sentence-transformers fp32 (PyTorch), encode only", f"{st[0]:.1f}", rate(st[1], st[0]),
                          rate(tokens, st[0]), f"{100 * limit_s / st[0]:.0f}%"])  # fmt: skip
        print(format_table(["", "seconds", "chunks/s", "tokens/s", "of limit"], table))
        share = limit_s / pipeline_s
        verdict = "met" if share >= TARGET_SHARE else "NOT met"
        print(f"pipeline at {100 * share:.0f}% of the limit: target >= {100 * TARGET_SHARE:.0f}% {verdict}")
        print("\nWhere the pipeline's time goes")
        print(
            format_table(
                ["stage", "seconds", "share"],
                [
                    [name, f"{s:.2f}", f"{100 * s / pipeline_s:.0f}%"]
                    for name, s in sorted(stages.items(), key=lambda kv: -kv[1])
                ],
            )
        )

        if reingest_papers:
            reingest(reingest_papers, seed, tmp_dir)


def reingest(n: int, seed: int, tmp_dir: Path) -> None:
    from assistant.settings import Settings
    from assistant.store import PaperStore
    from ingestion.pipeline import ingest_paths

    jsonl = write_jsonl(synthetic_papers(n, seed), tmp_dir / f"reingest-{n}.jsonl")
    settings = Settings(data_dir=tmp_dir / "reingest")
    store = PaperStore(settings)
    started = time.perf_counter()
    first = ingest_paths([jsonl], store=store)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    again = ingest_paths([jsonl], store=PaperStore(settings))
    again_s = time.perf_counter() - started
    print(f"\nRe-ingesting an unchanged {n:,}-paper collection")
    print(
        format_table(
            ["run", "seconds", "added", "unchanged", "chunks written"],
            [
                ["first ingest", f"{first_s:.1f}", first.papers_added, first.papers_unchanged, first.chunks_written],
                [
                    "re-ingest, unchanged",
                    f"{again_s:.1f}",
                    again.papers_added,
                    again.papers_unchanged,
                    again.chunks_written,
                ],
            ],
        )
    )
    print(
        f"re-ingest: {again.chunks_written} chunks re-embedded, {again_s:.1f} s ({100 * again_s / first_s:.1f}% of the first)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--papers", type=int, default=2000, help="papers for the throughput run (default 2000)")
    parser.add_argument("--reingest-papers", type=int, default=10000, help="papers for the re-ingest run; 0 skips it")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--compare-batch", type=int, default=64, help="also time the limit at this batch size; 0 skips")
    args = parser.parse_args(argv)
    run(args.papers, args.reingest_papers, args.seed, args.compare_batch or None)


if __name__ == "__main__":
    main()
