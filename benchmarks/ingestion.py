"""Ingestion throughput: the whole pipeline against the bare embedding forward pass, and re-ingest.

    python -m benchmarks.ingestion                      # 2,000 papers, then re-ingest of 10,000
    python -m benchmarks.ingestion --papers 500 --reingest-papers 1000   # a quick run
    python -m benchmarks.ingestion --archive PATH/papers.jsonl [--limit N] [--variants new,old] [--store DIR]

With ``--archive`` it ingests real papers instead (the first ``--limit`` of a JSON Lines file, e.g.
the Daily Papers archive), each variant in its own child process so that its peak memory is its
own: *new* is the code as it is; *old* the pipeline before the speed work (onnxruntime threads
spinning while idle, each group of papers embedded in one call), everything else the same. Each
child times the bare forward pass on a ``--forward-share`` of the same groups, half before and
half after its ingest (so a change in the machine's load between them averages out), and prints
where the time went (read, deduplicate, chunk, tokenize, forward, write).

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


def measure_pipeline(
    jsonl: Path,
    settings: Any,
    embedder: Any = None,
    timer: StageTimer | None = None,
    progress: Callable[..., None] | None = None,
) -> tuple[float, Any, dict[str, float]]:
    """(seconds, IngestReport, stage seconds) of ingest_paths into a fresh store of ``settings``."""
    import ingestion.pipeline as pipeline
    from assistant.store import PaperStore

    store = PaperStore(settings, embedder=embedder)
    timer = timer or StageTimer()
    store.embedder = timer.wrap(
        "embed (tokenize + forward)" if embedder is None else "embed: batching, pooling", store.embedder
    )  # type: ignore[assignment]
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
        report = pipeline.ingest_paths([jsonl], store=store, progress=progress)
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
        pipeline_s, report, stages = measure_pipeline(jsonl, Settings(data_dir=tmp_dir / "pipeline"))
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


VARIANTS = ("new", "old")


def _archive_child(
    variant: str, jsonl: str, store_dir: str, forward_share: float, log_every_s: float
) -> dict[str, Any]:
    """One variant's ingest of ``jsonl`` into a fresh store in ``store_dir``, in this (child) process."""
    import resource

    import ingestion.pipeline as pipeline
    from assistant.embeddings import MiniLMEmbeddingFunction
    from assistant.settings import Settings
    from ingestion.chunking import chunk_paper
    from ingestion.progress import IngestProgress

    if variant == "old":
        MiniLMEmbeddingFunction.SPINNING = True
        pipeline.CHUNKS_PER_SLICE = 1 << 30  # a whole group per embedder call, as before
    settings = Settings(data_dir=Path(store_dir) / "data", store_dir=Path(store_dir))
    merged = pipeline.merge_with_store(pipeline.read_sources([jsonl]), [])
    rows = [
        (p, chunk_paper(p, settings.ingest.chunk_tokens, settings.ingest.chunk_overlap_tokens)) for p in merged.papers
    ]
    groups = [
        [chunk.embedding_text for _, chunks in rows[start : start + pipeline.PAPERS_PER_GROUP] for chunk in chunks]
        for start in range(0, len(rows), pipeline.PAPERS_PER_GROUP)
    ]
    step = max(1, round(1 / forward_share)) if forward_share > 0 else 0
    sampled = groups[::step] if step else []
    embedder = MiniLMEmbeddingFunction(threads=settings.ingest.embedding_threads)
    embedder(groups[0][:16])  # load the model outside the timings
    before = measure_limit(embedder, sampled[: len(sampled) // 2])
    if before[1]:
        print(
            f"[{variant}] bare forward before the ingest: {before[1] / before[0]:,.0f} tokens/s",
            file=sys.stderr,
            flush=True,
        )

    last_log = [time.monotonic()]

    def log(event: IngestProgress) -> None:
        if log_every_s and (time.monotonic() - last_log[0] >= log_every_s or event.finished):
            last_log[0] = time.monotonic()
            print(f"[{variant}] {event.line()}", file=sys.stderr, flush=True)

    counted = {"tokens": 0, "padded": 0}
    forward = embedder.forward

    def counting_forward(token_ids: Any) -> Any:
        counted["tokens"] += sum(len(ids) for ids in token_ids)
        counted["padded"] += len(token_ids) * max(len(ids) for ids in token_ids)
        return forward(token_ids)

    timer = StageTimer()
    embedder.forward = timer.wrap("forward (onnxruntime)", counting_forward)  # type: ignore[method-assign]
    embedder.tokenize = timer.wrap("tokenize", embedder.tokenize)  # type: ignore[method-assign]
    seconds, report, stages = measure_pipeline(Path(jsonl), settings, embedder, timer, log)
    del embedder.forward, embedder.tokenize  # the class's own methods again, untimed
    after = measure_limit(embedder, sampled[len(sampled) // 2 :])
    return {
        "variant": variant,
        "seconds": seconds,
        "papers": report.papers_added,
        "chunks": report.chunks_written,
        "tokens": counted["tokens"],
        "padded": counted["padded"],
        "stages": stages,
        "forward_s": before[0] + after[0],
        "forward_tokens": before[1] + after[1],
        "forward_groups": len(sampled),
        "groups": len(groups),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "duplicates_merged": report.duplicates_merged,
    }


def run_archive(
    archive: Path, limit: int | None, variants: list[str], store: Path | None, forward_share: float, log_every_s: float
) -> None:
    import multiprocessing

    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp:
        jsonl = Path(tmp) / "slice.jsonl"
        with archive.open(encoding="utf-8") as source, jsonl.open("w", encoding="utf-8") as out:
            for number, line in enumerate(source):
                if limit is not None and number >= limit:
                    break
                out.write(line)
        results = []
        context = multiprocessing.get_context("spawn")
        for variant in variants:
            store_dir = store if (store is not None and variant == variants[0]) else Path(tmp) / f"store-{variant}"
            with context.Pool(1) as pool:
                result = pool.apply(_archive_child, (variant, str(jsonl), str(store_dir), forward_share, log_every_s))
            results.append(result)
            print(f"{variant}: {result['seconds']:.1f} s", file=sys.stderr, flush=True)
    first = results[0]
    print(
        f"\nIngestion of {first['papers']:,} real papers from {archive} ({first['duplicates_merged']} duplicates merged): "
        f"{first['chunks']:,} chunks, {first['tokens']:,} MiniLM tokens ({first['tokens'] / max(first['chunks'], 1):.0f} "
        f"per chunk, {100 * (1 - first['tokens'] / max(first['padded'], 1)):.1f}% padding in the passes)"
    )
    table = []
    for r in results:
        forward_rate = r["forward_tokens"] / r["forward_s"] if r["forward_s"] else 0.0
        pipeline_rate = r["tokens"] / r["seconds"]
        table.append([
            r["variant"], f"{r['seconds']:.1f}", rate(r["papers"], r["seconds"]), f"{r['chunks'] / r['seconds']:.1f}",
            rate(r["tokens"], r["seconds"]), f"{r['peak_rss_mb']:,.0f}", f"{forward_rate:,.0f}",
            f"{100 * pipeline_rate / forward_rate:.0f}%" if forward_rate else "-",
        ])  # fmt: skip
    print(
        format_table(
            ["", "wall s", "papers/s", "chunks/s", "tokens/s", "peak RSS MB", "bare forward tokens/s", "of bare"], table
        )
    )
    print(
        f"bare forward: tokenize + forward over {first['forward_groups']} of {first['groups']} groups, "
        "half before and half after each ingest, in the same child process"
    )
    for r in results:
        print(f"\nWhere the time goes ({r['variant']})")
        print(format_table(["stage", "seconds", "share"], [
            [name, f"{s:.1f}", f"{100 * s / r['seconds']:.0f}%"] for name, s in sorted(r["stages"].items(), key=lambda kv: -kv[1])
        ]))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, help="ingest real papers from this JSON Lines file instead")
    parser.add_argument("--limit", type=int, help="with --archive: its first N records only")
    parser.add_argument("--variants", default="new,old", help="with --archive: new, old or both (default new,old)")
    parser.add_argument("--store", type=Path, help="with --archive: keep the first variant's store in this folder")
    parser.add_argument(
        "--forward-share", type=float, default=1.0, help="with --archive: share of the groups the bare pass runs over"
    )
    parser.add_argument("--log-every", type=float, default=0.0, help="with --archive: progress on stderr every S s")
    parser.add_argument("--papers", type=int, default=2000, help="papers for the throughput run (default 2000)")
    parser.add_argument("--reingest-papers", type=int, default=10000, help="papers for the re-ingest run; 0 skips it")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--compare-batch", type=int, default=64, help="also time the limit at this batch size; 0 skips")
    args = parser.parse_args(argv)
    if args.archive is not None:
        variants = [v for v in args.variants.split(",") if v]
        if not variants or set(variants) - set(VARIANTS):
            parser.error(f"--variants: choose from {', '.join(VARIANTS)}")
        run_archive(args.archive, args.limit, variants, args.store, args.forward_share, args.log_every)
        return
    run(args.papers, args.reingest_papers, args.seed, args.compare_batch or None)


if __name__ == "__main__":
    main()
