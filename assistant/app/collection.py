"""The collection as the Collection and Papers pages show it: statistics, the paper map, text filtering."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from assistant.schema import Paper, Problem
from assistant.store import PaperRow, PaperStore
from assistant.themes import cluster_papers, project_2d, theme_keywords

UPLOAD_TYPES = ("txt", "json", "jsonl", "csv")


def plural(count: int, noun: str) -> str:
    """``1 chunk``, ``2 chunks`` (regular nouns only)."""
    return f"{count} {noun if count == 1 else noun + 's'}"


def problem_rows(problems: Sequence[Problem]) -> list[dict[str, str]]:
    return [{"file": p.source, "where": p.location or "whole file", "problem": p.reason} for p in problems]


@dataclass(frozen=True)
class CollectionStats:
    papers: int
    chunks: int
    sources: dict[str, int]
    days: int
    first_day: date | None
    last_day: date | None


def collection_stats(rows: Sequence[PaperRow], chunks: int) -> CollectionStats:
    """Counts for the Collection page from the papers' rows (``Library.rows``: no paper is parsed)."""
    days = sorted({row.day for row in rows if row.day is not None})
    return CollectionStats(
        papers=len(rows),
        chunks=chunks,
        sources=dict(Counter(row.source or "unknown" for row in rows).most_common()),
        days=len(days),
        first_day=days[0] if days else None,
        last_day=days[-1] if days else None,
    )


MAP_POINTS = 2500
"""Most dots the map draws; a larger collection shows a seeded sample and each theme's mark at its centre.
With all 9,872 dots the themes hid under each other, and a reload of the Collection page took 5.5 s at the
median in Chromium against 4.6 s with the sample (baseline of an empty page 2.7 s on the loaded 2-core box,
``benchmarks/app_pages.py``); the themes are still computed over every paper."""
MAP_PALETTE = 10
"""Colours a reader tells apart in a legend (Vega's ``tableau10``): the most themes a large map is given."""


def map_theme_range(papers: int) -> tuple[int, int]:
    """How many themes a map of ``papers`` papers may have: a day's batch 2 to 8 (by silhouette, as the
    digest); from 2,000 papers on at least one per thousand, up to the palette's 10 colours: over 10,000
    papers the silhouette prefers 2 (the map's two blobs), which says nothing to a reader."""
    low = min(MAP_PALETTE, max(2, papers // 1000))
    return low, max(8, low)


@dataclass(frozen=True)
class MapPoint:
    paper_id: str
    title: str
    x: float
    y: float
    theme: str
    day: date | None


@dataclass(frozen=True)
class MapTheme:
    name: str
    label: str  # drawn at the theme's centre: its number and first keyword (whole names overlap at 10 themes)
    papers: int
    x: float
    y: float


@dataclass(frozen=True)
class PaperMap:
    """The dots drawn (all papers, or a sample of ``MAP_POINTS``), every theme with its centre, and the total."""

    points: list[MapPoint]
    themes: list[MapTheme]
    papers: int

    @property
    def sampled(self) -> bool:
        return len(self.points) < self.papers


def paper_map(store: PaperStore, *, limit: int = MAP_POINTS, seed: int = 0) -> PaperMap:
    """Each paper on the first two principal components of its vector, labelled with its theme.

    Themes are named from the drawn papers only: keywords over 10,000 abstracts take seconds and
    a sample of thousands names them the same.
    """
    vectors = store.paper_vectors()
    if not vectors:
        return PaperMap(points=[], themes=[], papers=0)
    low, high = map_theme_range(len(vectors))
    clusters = cluster_papers(vectors, min_k=low, max_k=high, seed=seed)
    coordinates = project_2d(vectors)
    ids = list(vectors)
    if len(ids) > limit:
        chosen = np.random.default_rng(seed).choice(len(ids), limit, replace=False)
        ids = [ids[i] for i in sorted(chosen)]
    papers = store.get_papers(ids)
    keywords = theme_keywords(list(papers.values()), clusters, n=3)
    theme_of: dict[str, str] = {}
    themes: list[MapTheme] = []
    for number, (cluster, words) in enumerate(zip(clusters, keywords, strict=True), start=1):
        name = f"{number}. {', '.join(words) or 'miscellaneous'}"
        theme_of.update(dict.fromkeys(cluster, name))
        centre = np.mean([coordinates[pid] for pid in cluster], axis=0)
        label = f"{number}. {words[0]}" if words else str(number)
        themes.append(MapTheme(name=name, label=label, papers=len(cluster), x=float(centre[0]), y=float(centre[1])))
    points = [
        MapPoint(
            paper_id=pid,
            title=papers[pid].title,
            x=coordinates[pid][0],
            y=coordinates[pid][1],
            theme=theme_of[pid],
            day=papers[pid].day,
        )
        for pid in ids
        if pid in papers
    ]
    return PaperMap(points=points, themes=themes, papers=len(vectors))


def filter_papers(papers: Sequence[Paper], query: str) -> list[Paper]:
    """Papers whose title, authors, abstract or id contain every word of ``query`` (any case)."""
    words = query.casefold().split()
    if not words:
        return list(papers)

    def haystack(paper: Paper) -> str:
        return " ".join([paper.title, " ".join(paper.authors), paper.abstract, paper.paper_id]).casefold()

    return [paper for paper in papers if all(word in haystack(paper) for word in words)]
