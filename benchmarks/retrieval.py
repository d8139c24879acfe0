"""Search latency at 1k / 10k / 50k papers: dense, BM25 and hybrid, against brute-force numpy.

    python -m benchmarks.retrieval                          # embedded store, 1k/10k/50k papers
    python -m benchmarks.retrieval --sizes 1000,10000       # quicker
    python -m benchmarks.retrieval --server                 # also against a `chroma run` it starts
    python -m benchmarks.retrieval --chroma-url http://127.0.0.1:8000   # also against a running server

The collection is synthetic (benchmarks/synthetic.py: sample sentences and titles recombined, seeded).
Its chunk vectors are made once and cached on disk (keyed by seed, chunking, embedder and mode), then
written with ``PaperStore.write_papers``, so later runs and smaller sizes embed nothing. By default
each chunk vector is composed from the real MiniLM embeddings of its title and sentences (minutes for
50k papers on 2 cores); ``--exact`` embeds every chunk as ingestion does (about 100,000 forward
passes for 50k papers: an hour or more on 2 cores, once). Queries are always embedded for real.

Rows, per size (milliseconds per query, p50 and p95 over queries x rounds):

* query embedding: ``Retriever.embed_query`` alone (MiniLM int8), part of every dense row;
* dense, Chroma: embedding + ``PaperStore.query`` for the candidate chunks (HNSW);
* dense, numpy: embedding + brute-force dot product over the same vectors + top candidates (the reference);
* dense search: ``Retriever.search(hybrid=False)``: Chroma query plus fetching the papers;
* BM25: the revision check (``Retriever.refresh``) plus bm25s top candidates;
* hybrid: ``Retriever.search`` as the assistant calls it (dense + BM25, fused, papers fetched).

HNSW recall is the share of the exact top-k papers (numpy) that Chroma's dense search also returns.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from benchmarks.synthetic import (  # noqa: E402
    DEFAULT_SEED,
    SyntheticCollection,
    format_table,
    machine_line,
    percentile,
    sample_queries,
    synthetic_vectors,
    write_collection,
)

TARGET_P95_MS = 50.0
TARGET_SIZE = 10_000
METHODS = [
    ("embed", "query embedding (MiniLM int8)"),
    ("chroma", "dense, Chroma HNSW (embed + query)"),
    ("numpy", "dense, numpy brute force (embed + dot)"),
    ("dense", "dense search (Retriever, hybrid=False)"),
    ("bm25", "BM25 (revision check + bm25s top)"),
    ("hybrid", "hybrid search (Retriever.search)"),
]


def _time(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function()
    return 1000 * (time.perf_counter() - started), result


def _exact_top_papers(
    matrix: np.ndarray, paper_ids: list[str], query: np.ndarray, candidates: int, k: int
) -> list[str]:
    scores = matrix @ query
    n = min(candidates, len(scores))
    best = np.argpartition(-scores, n - 1)[:n]
    best = best[np.argsort(-scores[best])]
    ranked: list[str] = []
    for index in best:
        if paper_ids[index] not in ranked:
            ranked.append(paper_ids[index])
    return ranked[:k]


def measure(
    collection: SyntheticCollection,
    data_dir: Path,
    queries: list[str],
    *,
    rounds: int,
    k: int,
    chroma_url: str | None = None,
    collection_name: str = "papers",
) -> dict[str, Any]:
    from assistant.retrieval import Retriever
    from assistant.settings import Settings
    from assistant.store import PaperStore

    settings = Settings(data_dir=data_dir, chroma_url=chroma_url, collection=collection_name, top_k=k)
    store = PaperStore(settings)
    store.drop()
    build_s = write_collection(store, collection)
    retriever = Retriever(store, settings)
    bm25_s, _ = _time(retriever.refresh)
    matrix, _, paper_ids = collection.matrix()
    candidates = retriever.fusion_depth(k)

    for query in queries[:5]:  # warm-up: model, caches, connections
        retriever.search(query, k)
    samples: dict[str, list[float]] = {name: [] for name, _ in METHODS}
    overlap: list[float] = []
    for _ in range(rounds):
        for query in queries:
            ms, _vector = _time(lambda query=query: retriever.embed_query(query))
            samples["embed"].append(ms)
            ms, _ = _time(lambda query=query: store.query(retriever.embed_query(query), candidates))
            samples["chroma"].append(ms)
            ms, exact = _time(
                lambda query=query: _exact_top_papers(matrix, paper_ids, retriever.embed_query(query), candidates, k)
            )
            samples["numpy"].append(ms)
            ms, hits = _time(lambda query=query: retriever.search(query, k, hybrid=False))
            samples["dense"].append(ms)
            ms, _ = _time(lambda query=query: retriever.refresh().top(query, candidates))
            samples["bm25"].append(ms)
            ms, _ = _time(lambda query=query: retriever.search(query, k))
            samples["hybrid"].append(ms)
            overlap.append(len(set(exact) & {hit.paper.paper_id for hit in hits}) / max(1, len(exact)))
    if chroma_url:
        store.drop()  # leave a shared server as it was found (an empty collection remains)
    return {
        "papers": len(collection.rows),
        "chunks": collection.chunk_count,
        "build_s": build_s,
        "bm25_s": bm25_s / 1000,
        "samples": samples,
        "recall": float(np.mean(overlap)),
    }


def print_results(title: str, results: list[dict[str, Any]], k: int) -> None:
    print(f"\n{title}")
    rows = []
    for result in results:
        first = True
        for name, label in METHODS:
            values = result["samples"][name]
            rows.append(
                [
                    f"{result['papers']:,}" if first else "",
                    f"{result['chunks']:,}" if first else "",
                    label,
                    f"{percentile(values, 50):.1f}",
                    f"{percentile(values, 95):.1f}",
                ]
            )
            first = False
        rows.append(["", "", f"build: write {result['build_s']:.1f} s, BM25 index {result['bm25_s']:.1f} s; "
                     f"HNSW recall@{k} vs exact {result['recall']:.3f}", "", ""])  # fmt: skip
    print(format_table(["papers", "chunks", "", "p50 ms", "p95 ms"], rows, left=(2,)))
    for result in results:
        if result["papers"] == TARGET_SIZE:
            p95 = percentile(result["samples"]["hybrid"], 95)
            verdict = "met" if p95 <= TARGET_P95_MS else "NOT met"
            print(f"hybrid p95 at {TARGET_SIZE:,} papers: {p95:.1f} ms (target <= {TARGET_P95_MS:.0f} ms) {verdict}")


def print_difference(embedded: list[dict[str, Any]], server: list[dict[str, Any]]) -> None:
    print("\nServer minus embedded (ms; positive = the server is slower)")
    rows = []
    for local, remote in zip(embedded, server, strict=True):
        for name, label in METHODS:
            a, b = local["samples"][name], remote["samples"][name]
            rows.append(
                [
                    f"{local['papers']:,}",
                    label,
                    f"{percentile(b, 50) - percentile(a, 50):+.1f}",
                    f"{percentile(b, 95) - percentile(a, 95):+.1f}",
                ]
            )
    print(format_table(["papers", "", "p50", "p95"], rows, left=(1,)))


class _Server:
    """`chroma run` on a free loopback port, in a temporary folder."""

    def __init__(self, path: Path) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        chroma = Path(sys.executable).with_name("chroma")
        executable = str(chroma) if chroma.exists() else (shutil.which("chroma") or "chroma")
        self.process = subprocess.Popen(
            [executable, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import socket as sockets

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chroma run exited with {self.process.returncode}")
            try:
                with sockets.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError("chroma run did not start listening within 60 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000", help="comma-separated paper counts")
    parser.add_argument(
        "--queries", type=int, default=40, help="distinct queries (dev questions, then sample sentences)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="times each query is run per method")
    parser.add_argument("-k", type=int, default=6, help="papers per search (the assistant's top_k)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    server = parser.add_mutually_exclusive_group()
    server.add_argument("--chroma-url", help="also measure against this Chroma server (a temporary collection)")
    server.add_argument("--server", action="store_true", help="also measure against a `chroma run` started here")
    parser.add_argument("--server-only", action="store_true", help="skip the embedded store")
    parser.add_argument("--exact", action="store_true", help="embed every synthetic chunk (slow) instead of composing")
    args = parser.parse_args(argv)
    sizes = sorted(int(size) for size in args.sizes.split(","))
    queries = sample_queries(args.queries)

    from assistant.settings import Settings

    print(machine_line())
    embedded: list[dict[str, Any]] = []
    remote: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as tmp:
        tmp_dir = Path(tmp)
        vector_settings = Settings(data_dir=tmp_dir / "vectors")
        synthetic_vectors(sizes[-1], vector_settings, seed=args.seed, exact=args.exact)  # once, then cached
        running = _Server(tmp_dir / "chroma-server") if args.server else None
        url = running.url if running else args.chroma_url
        try:
            for size in sizes:
                collection = synthetic_vectors(size, vector_settings, seed=args.seed, exact=args.exact)
                if not args.server_only:
                    print(f"building the embedded store of {size:,} papers ...", file=sys.stderr, flush=True)
                    embedded.append(
                        measure(collection, tmp_dir / f"embedded-{size}", queries, rounds=args.rounds, k=args.k)
                    )
                if url:
                    print(f"building the server collection of {size:,} papers ...", file=sys.stderr, flush=True)
                    remote.append(
                        measure(collection, tmp_dir / f"server-{size}", queries, rounds=args.rounds, k=args.k,
                                chroma_url=url, collection_name=f"bench-{args.seed}-{size}")
                    )  # fmt: skip
        finally:
            if running:
                running.stop()
    samples = f"{len(queries)} queries x {args.rounds} rounds, k={args.k}, {'exact' if args.exact else 'composed'} chunk vectors"
    if embedded:
        print_results(f"Embedded store (PersistentClient), {samples}", embedded, args.k)
    if remote:
        print_results(
            f"Chroma server at {url if args.chroma_url else 'chroma run (loopback)'}, {samples}", remote, args.k
        )
    if embedded and remote:
        print_difference(embedded, remote)


if __name__ == "__main__":
    main()
