"""A seeded synthetic collection for the benchmarks, recombined from the bundled sample abstracts.

Paper ``i`` of seed ``s`` depends only on ``(s, i)``: the first 10,000 papers of a 50,000-paper
collection are the 10,000-paper collection, so embeddings computed once are reused for every
smaller size (:func:`synthetic_vectors` caches them on disk, keyed by seed, chunking and embedder).

Titles join the first half of one sample title to the second half of another; abstracts are 4-12
sentences drawn from all sample abstracts, so lengths, vocabulary and chunk counts (about 1.5 chunks
per paper with the default 200-token chunks) stay close to a real day of papers.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py` from anywhere
    sys.path.insert(0, str(ROOT))

from assistant.schema import Chunk, Paper  # noqa: E402
from assistant.settings import SAMPLE_COLLECTION, Settings  # noqa: E402

DEFAULT_SEED = 20250819
CACHE_ROOT = Path(os.environ.get("PAPER_ASSISTANT_BENCH_CACHE", Path(tempfile.gettempdir()) / "paper-assistant-bench"))


@lru_cache(maxsize=1)
def _material() -> tuple[list[str], list[str], list[int]]:
    """Sample titles, every sentence of every sample abstract, and the abstracts' sentence counts."""
    from assistant.text import split_sentences
    from ingestion.readers import read_path

    papers = read_path(SAMPLE_COLLECTION).papers
    titles = [paper.title for paper in papers]
    sentences: list[str] = []
    counts: list[int] = []
    for paper in papers:
        split = [s for s in split_sentences(paper.abstract) if len(s.split()) >= 4]
        sentences.extend(split)
        counts.append(len(split))
    return titles, sentences, counts


def synthetic_paper(index: int, seed: int = DEFAULT_SEED) -> Paper:
    titles, sentences, counts = _material()
    rng = random.Random(f"{seed}:{index}")
    first, second = rng.sample(titles, 2)
    head = first.split()[: max(2, len(first.split()) // 2)]
    tail = second.split()[len(second.split()) // 2 :]
    title = " ".join(head + tail) + f" ({index})"  # unique: deduplication goes by title
    n_sentences = min(max(4, rng.choice(counts) + rng.randint(-2, 2)), 12)
    abstract = " ".join(rng.sample(sentences, n_sentences))
    year_day = 1 + index % 365
    return Paper(
        paper_id=f"syn{seed % 100000:05d}-{index:06d}",
        title=title,
        abstract=abstract,
        authors=[f"Author {rng.randint(1, 5000)}", f"Author {rng.randint(1, 5000)}"],
        published=f"2025-{1 + (year_day - 1) // 31 % 12:02d}-{1 + (year_day - 1) % 28:02d}",  # type: ignore[arg-type]
        source="synthetic",
    )


def synthetic_papers(n: int, seed: int = DEFAULT_SEED) -> list[Paper]:
    return [synthetic_paper(i, seed) for i in range(n)]


def write_jsonl(papers: Sequence[Paper], path: Path) -> Path:
    """The papers as a JSON Lines file the ingestion readers accept (title, abstract, authors, published)."""
    with path.open("w", encoding="utf-8") as out:
        for paper in papers:
            record = {
                "title": paper.title,
                "abstract": paper.abstract,
                "authors": paper.authors,
                "published": paper.published.isoformat() if paper.published else None,
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def chunked(papers: Sequence[Paper], settings: Settings) -> list[tuple[Paper, list[Chunk]]]:
    from ingestion.chunking import chunk_paper

    return [
        (paper, chunk_paper(paper, settings.ingest.chunk_tokens, settings.ingest.chunk_overlap_tokens))
        for paper in papers
    ]


@dataclass
class SyntheticCollection:
    """Papers with their chunks and chunk vectors, ready for ``PaperStore.write_papers``."""

    seed: int
    rows: list[tuple[Paper, list[Chunk], list[np.ndarray]]]

    @property
    def chunk_count(self) -> int:
        return sum(len(chunks) for _, chunks, _ in self.rows)

    def matrix(self) -> tuple[np.ndarray, list[str], list[str]]:
        """All chunk vectors as one (n_chunks, dim) array, with chunk ids and paper ids in the same order."""
        vectors = [vector for _, _, vectors in self.rows for vector in vectors]
        chunk_ids = [chunk.chunk_id for _, chunks, _ in self.rows for chunk in chunks]
        paper_ids = [chunk.paper_id for _, chunks, _ in self.rows for chunk in chunks]
        return np.asarray(vectors, dtype=np.float32), chunk_ids, paper_ids


def _cache_dir(seed: int, settings: Settings, identity: str, mode: str) -> Path:
    key = f"{seed}|{settings.ingest.chunk_tokens}|{settings.ingest.chunk_overlap_tokens}|{identity}|{mode}"
    return CACHE_ROOT / f"vectors-{mode}-{seed}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def synthetic_vectors(
    n: int,
    settings: Settings | None = None,
    *,
    seed: int = DEFAULT_SEED,
    exact: bool = True,
    log: Callable[[str], None] = _log,
) -> SyntheticCollection:
    """``n`` synthetic papers, chunked and embedded; vectors are cached on disk and extended as needed.

    ``exact``: every chunk's ``embedding_text`` goes through the embedder, as ingestion does (about
    2 chunks per paper: 100,000 forward passes for 50,000 papers). Otherwise each chunk vector is
    *composed*: the token-weighted, normalised sum of the real embeddings of its title and of each
    of its sentences. Every synthetic chunk reuses the same few thousand sentences and titles, so
    composing embeds those once (a minute) and yields vectors in the model's own space, clustered by
    topic like real ones: what search latency and HNSW recall depend on. Use exact vectors when
    retrieval *quality* on the synthetic collection matters.
    """
    from assistant.embeddings import build_embedder

    settings = settings or Settings()
    embedder = build_embedder(settings)
    folder = _cache_dir(seed, settings, embedder.identity, "exact" if exact else "composed")
    folder.mkdir(parents=True, exist_ok=True)
    vectors_file, counts_file = folder / "vectors.npy", folder / "chunk_counts.npy"
    have = vectors_file.exists() and counts_file.exists()
    cached_vectors = np.load(vectors_file) if have else np.zeros((0, 384), np.float32)
    cached_counts = np.load(counts_file) if have else np.zeros(0, np.int64)

    rows = chunked(synthetic_papers(n, seed), settings)
    if len(cached_counts) < n:
        missing = rows[len(cached_counts) :]
        started = time.perf_counter()
        new_vectors = _embed_exact(embedder, missing, log) if exact else _compose(embedder, missing, log)
        log(f"  {len(new_vectors)} chunk vectors in {time.perf_counter() - started:.0f} s")
        cached_vectors = np.concatenate([cached_vectors.reshape(-1, new_vectors.shape[1]), new_vectors])
        cached_counts = np.concatenate([cached_counts, np.asarray([len(c) for _, c in missing], dtype=np.int64)])
        np.save(vectors_file, cached_vectors)
        np.save(counts_file, cached_counts)

    out: list[tuple[Paper, list[Chunk], list[np.ndarray]]] = []
    position = 0
    for (paper, chunks), count in zip(rows, cached_counts[:n], strict=True):
        if count != len(chunks):
            raise RuntimeError(f"vector cache in {folder} does not match the generator: delete it and run again")
        out.append((paper, chunks, list(cached_vectors[position : position + count])))
        position += count
    return SyntheticCollection(seed=seed, rows=out)


def _embed_exact(
    embedder: Callable, rows: Sequence[tuple[Paper, list[Chunk]]], log: Callable[[str], None]
) -> np.ndarray:
    texts = [chunk.embedding_text for _, chunks in rows for chunk in chunks]
    log(f"embedding {len(texts)} chunks of {len(rows)} synthetic papers ...")
    started = time.perf_counter()
    fresh: list[np.ndarray] = []
    step = 2048
    for start in range(0, len(texts), step):
        fresh.extend(embedder(texts[start : start + step]))
        log(f"  {min(start + step, len(texts))}/{len(texts)} chunks, {time.perf_counter() - started:.0f} s")
    return np.asarray(fresh, dtype=np.float32).reshape(len(texts), -1)


_TITLE_SUFFIX = re.compile(r" \(\d+\)$")


def _compose(embedder: Callable, rows: Sequence[tuple[Paper, list[Chunk]]], log: Callable[[str], None]) -> np.ndarray:
    from assistant.text import split_sentences
    from assistant.tokens import count_tokens

    parts: list[tuple[list[str], list[int]]] = []
    unique: dict[str, int] = {}
    tokens: dict[str, int] = {}
    for paper, chunks in rows:
        title = _TITLE_SUFFIX.sub("", paper.title)
        for chunk in chunks:
            pieces = [title, *split_sentences(chunk.text)]
            for piece in pieces:
                if piece not in unique:
                    unique[piece] = len(unique)
                    tokens[piece] = max(1, count_tokens(piece))
            parts.append((pieces, [tokens[piece] for piece in pieces]))
    texts = list(unique)
    log(f"composing {len(parts)} chunk vectors of {len(rows)} synthetic papers from {len(texts)} embedded pieces ...")
    embedded = np.asarray(embedder(texts), dtype=np.float32).reshape(len(texts), -1)
    vectors = np.empty((len(parts), embedded.shape[1]), dtype=np.float32)
    for row, (pieces, weights) in enumerate(parts):
        combined = np.asarray(weights, dtype=np.float32) @ embedded[[unique[piece] for piece in pieces]]
        vectors[row] = combined / max(float(np.linalg.norm(combined)), 1e-12)
    return vectors


def write_collection(store: object, collection: SyntheticCollection, group: int = 2000) -> float:
    """Write precomputed papers into a PaperStore; returns seconds."""
    started = time.perf_counter()
    for start in range(0, len(collection.rows), group):
        store.write_papers(collection.rows[start : start + group])  # type: ignore[attr-defined]
    return time.perf_counter() - started


def sample_queries(limit: int = 40) -> list[str]:
    """Questions of the dev set when present, topped up with sample sentences: realistic query lengths."""
    queries: list[str] = []
    dev = ROOT.parent / "shared" / "eval" / "dev.jsonl"
    if dev.exists():
        for line in dev.read_text(encoding="utf-8").splitlines():
            if line.strip():
                queries.append(json.loads(line)["question"])
    _, sentences, _ = _material()
    rng = random.Random(7)
    while len(queries) < limit:
        words = rng.choice(sentences).split()
        queries.append(" ".join(words[: rng.randint(5, 14)]))
    return queries[:limit]


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def machine_line() -> str:
    load = os.getloadavg()
    return f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min)"


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]], left: Sequence[int] = (0,)) -> str:
    """A plain-text table; columns in ``left`` are left-aligned, the others (numbers) right-aligned."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i in left else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=False))
        ).rstrip()
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
