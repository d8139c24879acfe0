"""Hybrid retrieval: BM25 over chunks fused with dense ranking by reciprocal rank fusion.

The BM25 index is derived from the store: it is rebuilt whenever the store's revision
changes (after an ingest here or in another process) and saved beside the store, so a
restart loads it instead of re-reading every chunk.

The index also keeps each chunk's day (``Paper.day``: the day it was listed, else published), so a
dated question ("last week", "in March 2026") filters keyword hits, counts the papers of its days
and finds the words its days use without reading the store. Filtering keyword hits by the chunk ids
the store pages out for the range instead (``chunk_ids_where``) added about 300 ms a question at
9,872 papers (18,704 chunks): 752 ms against 449 ms at the median for a ranged search, 90 ms without
a range, on a busy 2-core box (``benchmarks/dated_search.py``); Chroma's filtered vector search is
the rest of the cost.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
import tempfile
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

import bm25s
import numpy as np

from assistant.schema import DateRange, Hit
from assistant.settings import Settings
from assistant.store import PaperStore, date_filter
from assistant.text import QUESTION_WORDS, STOPWORDS, stem

_TOKEN = re.compile(r"\d+\.\d+|[a-z0-9]+(?:[-_^][a-z0-9]+)*")
_COMPOUND = re.compile(r"[-_^]")
_IGNORED = STOPWORDS | QUESTION_WORDS


def bm25_tokens(text: str) -> list[str]:
    """Stemmed word tokens; hyphenated names are kept whole *and* split ("ic-lora", "ic", "lora")."""
    tokens: list[str] = []
    for token in _TOKEN.findall(text.lower()):
        parts = re.split(r"[-_^]", token)
        if len(parts) > 1:
            tokens.append(token)
        tokens.extend(stem(part) for part in parts if part and part not in _IGNORED)
    return tokens


def simple_tokens(tokens: list[str]) -> list[str]:
    """The tokens that are single words: a hyphenated name's parts, not the whole name."""
    return [token for token in tokens if not _COMPOUND.search(token)]


TERMS_VERSION = 3
"""Bumped whenever ``bm25_terms`` changes: a saved index of other terms is rebuilt, not misread."""


def bm25_terms(text: str) -> list[str]:
    """What BM25 indexes and matches: the word tokens plus each pair of neighbouring words, unordered.

    A pair rewards a phrase over its words scattered through an abstract, and being unordered it
    matches across word order and stopwords: "generate code" finds "code generation", "knowledge
    distillation loss" finds "Knowledge Distillation' loss".
    """
    tokens = bm25_tokens(text)
    words = simple_tokens(tokens)
    pairs = [f"{min(a, b)}|{max(a, b)}" for a, b in itertools.pairwise(words) if a != b]
    return tokens + pairs


class Vocabulary:
    """The BM25 terms of a collection: exact lookup, and words by their first letters."""

    def __init__(self, terms: Collection[str]) -> None:
        self._terms = terms
        self._words = sorted(term for term in terms if "|" not in term)

    def __contains__(self, term: object) -> bool:
        return term in self._terms

    def words_starting(self, prefix: str) -> Iterator[str]:
        for word in self._words[bisect_left(self._words, prefix) :]:
            if not word.startswith(prefix):
                return
            yield word


NO_DAY = 0
"""The day ordinal of a chunk whose paper has no known day: outside every range."""
_RANGES_KEPT = 16
"""Vocabularies of date ranges kept per index (a conversation asks about a few ranges)."""


@dataclass(frozen=True)
class _Bm25Index:
    revision: str
    model: bm25s.BM25 | None
    chunk_ids: list[str]
    paper_ids: list[str]
    days: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    """Each chunk's day ordinal (``Paper.day``), NO_DAY when unknown."""
    _vocabularies: dict[DateRange, Vocabulary] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def vocabulary(self) -> Vocabulary:
        return Vocabulary(self.model.vocab_dict.keys() if self.model is not None else frozenset())

    def in_range(self, days: DateRange) -> np.ndarray:
        """A mask of the chunks whose day lies in ``days``."""
        return (self.days >= days.start.toordinal()) & (self.days <= days.end.toordinal())

    @cached_property
    def paper_days(self) -> dict[str, int]:
        """paper_id -> its day ordinal (NO_DAY when unknown)."""
        return dict(zip(self.paper_ids, self.days.tolist(), strict=True))

    def vocabulary_in(self, days: DateRange) -> Vocabulary:
        """The terms the chunks of ``days`` use: what "no abstract of those days mentions X" is checked against."""
        if days not in self._vocabularies:
            if len(self._vocabularies) >= _RANGES_KEPT:
                self._vocabularies.clear()
            self._vocabularies[days] = self._vocabulary_in(days)
        return self._vocabularies[days]

    def _vocabulary_in(self, days: DateRange) -> Vocabulary:
        if self.model is None:
            return Vocabulary(frozenset())
        indptr = np.asarray(self.model.scores["indptr"])
        indices = np.asarray(self.model.scores["indices"])
        token_of_entry = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        present = set(np.unique(token_of_entry[self.in_range(days)[indices]]).tolist())
        return Vocabulary(frozenset(term for term, token in self.model.vocab_dict.items() if token in present))

    def top(self, query: str, n: int, days: DateRange | None = None) -> list[tuple[int, float]]:
        if self.model is None or not self.chunk_ids:
            return []
        token_ids = self.model.get_tokens_ids(bm25_terms(query))
        if not token_ids:
            return []
        scores = self.model.get_scores(token_ids)
        if days is not None:
            scores = np.where(self.in_range(days), scores, 0.0)
        n = min(n, len(scores))
        best = np.argpartition(-scores, n - 1)[:n]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(int(i), float(scores[i])) for i in best if scores[i] > 0]


class Retriever:
    """Finds the papers that best match a query, one hit per paper."""

    def __init__(self, store: PaperStore, settings: Settings | None = None) -> None:
        self.store = store
        self.settings = settings or store.settings
        self._index: _Bm25Index | None = None
        self._lock = threading.Lock()
        self._cache_dir = cache_dir_for(self.settings)

    # --- BM25 index -----------------------------------------------------------------
    def refresh(self, revision: str | None = None) -> _Bm25Index:
        """The BM25 index for the store's current revision (loaded, or rebuilt and saved)."""
        revision = self.store.revision() if revision is None else revision
        with self._lock:
            if self._index is not None and self._index.revision == revision:
                return self._index
            self._index = self._load(revision) or self._rebuild(revision)
            return self._index

    def _load(self, revision: str) -> _Bm25Index | None:
        try:
            ids = json.loads((self._cache_dir / "chunks.json").read_text())
            if ids["revision"] != revision or ids.get("terms_version") != TERMS_VERSION:
                return None
            model = bm25s.BM25.load(str(self._cache_dir / "bm25"), show_progress=False) if ids["chunk_ids"] else None
            documents = int(model.scores["num_docs"]) if model is not None else 0
            days = np.asarray(ids["days"], dtype=np.int32)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        # Another process may swap the folder between the two reads above: a model whose
        # rows are not these chunk ids would map hits to the wrong chunks, or past the list.
        if documents != len(ids["chunk_ids"]) or not len(ids["paper_ids"]) == len(days) == len(ids["chunk_ids"]):
            return None
        return _Bm25Index(revision, model, ids["chunk_ids"], ids["paper_ids"], days)

    def _rebuild(self, revision: str) -> _Bm25Index:
        rows = self.store.all_chunks()
        chunk_ids = [row[0] for row in rows]
        paper_ids = [row[1] for row in rows]
        day_of = {
            stats.paper.paper_id: stats.paper.day.toordinal() for stats in self.store.list_papers() if stats.paper.day
        }
        days = np.asarray([day_of.get(paper_id, NO_DAY) for paper_id in paper_ids], dtype=np.int32)
        model = None
        if rows:
            model = bm25s.BM25()
            model.index([bm25_terms(f"{title}\n{text}") for _, _, title, text in rows], show_progress=False)
        index = _Bm25Index(revision, model, chunk_ids, paper_ids, days)
        self._save(index)
        return index

    def _save(self, index: _Bm25Index) -> None:
        # Written to a fresh folder of this writer's own (other sessions and processes may be
        # saving the same index at once) and swapped in, so a reader never sees half an index.
        staging: Path | None = None
        try:
            self._cache_dir.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f"{self._cache_dir.name}.tmp-", dir=self._cache_dir.parent))
            if index.model is not None:
                index.model.save(str(staging / "bm25"), show_progress=False)
            payload = {
                "revision": index.revision,
                "terms_version": TERMS_VERSION,
                "chunk_ids": index.chunk_ids,
                "paper_ids": index.paper_ids,
                "days": index.days.tolist(),
            }
            (staging / "chunks.json").write_text(json.dumps(payload))
            shutil.rmtree(self._cache_dir, ignore_errors=True)
            staging.rename(self._cache_dir)
        except OSError:
            # A read-only data folder only costs a rebuild at the next start.
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)

    def vocabulary(self, days: DateRange | None = None) -> Vocabulary:
        """Every BM25 term (stemmed word or word pair) some chunk of the collection, or of ``days``, has."""
        index = self.refresh()
        return index.vocabulary if days is None else index.vocabulary_in(days)

    def papers_by_day(self, days: DateRange | None = None) -> dict[date, int]:
        """How many papers each day holds (``Paper.day``), oldest first; only the days of ``days`` when given."""
        index = self.refresh()
        lowest, highest = (
            (days.start.toordinal(), days.end.toordinal()) if days is not None else (1, date.max.toordinal())
        )
        counts = Counter(day for day in index.paper_days.values() if day != NO_DAY and lowest <= day <= highest)
        return {date.fromordinal(day): counts[day] for day in sorted(counts)}

    def paper_ids_in(self, days: DateRange) -> list[str]:
        """The papers whose day lies in ``days``, oldest day first."""
        lowest, highest = days.start.toordinal(), days.end.toordinal()
        in_range = [(day, pid) for pid, day in self.refresh().paper_days.items() if lowest <= day <= highest]
        return [pid for _, pid in sorted(in_range)]

    def newest_day(self) -> date | None:
        """The newest day a paper of the collection has: what "today" and "last week" count from."""
        index = self.refresh()
        newest = int(index.days.max()) if len(index.days) else NO_DAY
        return date.fromordinal(newest) if newest != NO_DAY else None

    # --- search ---------------------------------------------------------------------
    def fusion_depth(self, k: int) -> int:
        """Chunks taken from each ranked list for ``k`` papers.

        A paper missing from one list gets nothing from it, so both lists must reach deep enough
        that a paper strong in one and middling in the other is still in both.
        """
        return max(self.settings.retrieval.fusion_depth, k * 20)

    def embed_query(self, query: str) -> np.ndarray:
        return np.asarray(self.store.embedder([query])[0], dtype=np.float32)

    def search(
        self,
        query: str,
        k: int,
        *,
        since: date | None = None,
        until: date | None = None,
        source: str | None = None,
        hybrid: bool | None = None,
        days: DateRange | None = None,
    ) -> list[Hit]:
        """The top-k papers for ``query``: best chunk text, fused score, cosine similarity, metadata.

        ``days``: only papers whose day (``Paper.day``) lies in the range, for dense and keyword
        search alike (the keyword index keeps each chunk's day, so this reads nothing more).
        """
        use_bm25 = self.settings.retrieval.hybrid if hybrid is None else hybrid
        candidates = self.fusion_depth(k)
        where = date_filter(since, until, source, days=days)
        other_filters = date_filter(since, until, source)
        revision = self.store.revision()  # read once: the dense search and the BM25 index both follow it
        dense = self.store.query(self.embed_query(query), candidates, where, revision=revision)
        similarity: dict[str, float] = {}
        dense_ranking = _paper_ranking((chunk_id, paper_id) for chunk_id, paper_id, _ in dense)
        for _, paper_id, sim in dense:
            similarity.setdefault(paper_id, sim)

        bm25_ranking: dict[str, tuple[int, str]] = {}
        if use_bm25:
            index = self.refresh(revision)
            allowed = None if other_filters is None else self.store.chunk_ids_where(other_filters)
            bm25_ranking = _paper_ranking(
                (index.chunk_ids[position], index.paper_ids[position])
                for position, _ in index.top(query, candidates, days)
                if allowed is None or index.chunk_ids[position] in allowed
            )
            # Papers are fused by their rank in each list (one entry per paper), so a paper
            # with two matching chunks does not push others out of a list twice.
            scores = {
                paper_id: sum(
                    weight / (self.settings.retrieval.rrf_k + ranking[paper_id][0])
                    for weight, ranking in (
                        (self.settings.retrieval.dense_weight, dense_ranking),
                        (self.settings.retrieval.bm25_weight, bm25_ranking),
                    )
                    if paper_id in ranking
                )
                for paper_id in dense_ranking.keys() | bm25_ranking.keys()
            }
        else:
            scores = dict(similarity)

        # Mirrored ranks (1st and 2nd against 2nd and 1st) tie exactly; meaning breaks the tie.
        ranked = sorted(scores, key=lambda pid: (-scores[pid], -similarity.get(pid, -1.0), pid))[:k]
        # The passage shown is the one closest in meaning, else the best keyword match.
        best_chunk = {pid: (dense_ranking.get(pid) or bm25_ranking[pid])[1] for pid in ranked}
        papers, texts = self.store.papers_and_texts(ranked, list(best_chunk.values()))
        return [
            Hit(
                paper=papers[paper_id],
                chunk_id=best_chunk[paper_id],
                text=texts.get(best_chunk[paper_id], ""),
                score=scores[paper_id],
                similarity=similarity.get(paper_id),
                dense_rank=dense_ranking[paper_id][0] if paper_id in dense_ranking else None,
                bm25_rank=bm25_ranking[paper_id][0] if paper_id in bm25_ranking else None,
            )
            for paper_id in ranked
            if paper_id in papers
        ]


def _paper_ranking(chunks: Iterable[tuple[str, str]]) -> dict[str, tuple[int, str]]:
    """paper_id -> (rank of the paper, its best chunk) from chunks in rank order."""
    ranking: dict[str, tuple[int, str]] = {}
    for chunk_id, paper_id in chunks:
        if paper_id not in ranking:
            ranking[paper_id] = (len(ranking) + 1, chunk_id)
    return ranking


def cache_dir_for(settings: Settings) -> Path:
    """Where the BM25 index of these settings' store is kept (used by tests and `ingest --rebuild`)."""
    location = settings.store.chroma_url_str or str(settings.store.resolved_store_dir.resolve())
    key = hashlib.sha256(f"{location}|{settings.store.collection}".encode()).hexdigest()[:12]
    return settings.store.data_dir / "bm25" / f"{settings.store.collection}-{key}"
