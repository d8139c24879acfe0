"""The collection as the Collection and Papers pages show it: statistics, the paper map, sorting and filtering."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from assistant.schema import Paper, Problem
from assistant.store import PaperStore
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
    first_published: date | None
    last_published: date | None
    with_links: int


def collection_stats(papers: Sequence[Paper], chunks: int) -> CollectionStats:
    dates = sorted(paper.published for paper in papers if paper.published is not None)
    return CollectionStats(
        papers=len(papers),
        chunks=chunks,
        sources=dict(Counter(paper.source or "unknown" for paper in papers).most_common()),
        first_published=dates[0] if dates else None,
        last_published=dates[-1] if dates else None,
        with_links=sum(1 for paper in papers if paper.link),
    )


@dataclass(frozen=True)
class MapPoint:
    paper_id: str
    title: str
    x: float
    y: float
    theme: str


def paper_map(store: PaperStore) -> list[MapPoint]:
    """Each paper on the first two principal components of its vector, labelled with its theme."""
    vectors = store.paper_vectors()
    if not vectors:
        return []
    clusters = cluster_papers(vectors)
    papers = store.get_papers(list(vectors))
    keywords = theme_keywords(list(papers.values()), clusters, n=3)
    theme_of = {
        paper_id: f"{number}. {', '.join(words) or 'miscellaneous'}"
        for number, (cluster, words) in enumerate(zip(clusters, keywords, strict=True), start=1)
        for paper_id in cluster
    }
    coordinates = project_2d(vectors)
    return [
        MapPoint(paper_id=pid, title=papers[pid].title, x=x, y=y, theme=theme_of[pid])
        for pid, (x, y) in coordinates.items()
        if pid in papers
    ]


SORT_ORDERS: dict[str, Callable[[Sequence[Paper]], list[Paper]]] = {
    "Title (A–Z)": lambda papers: sorted(papers, key=lambda p: p.title.casefold()),
    "Title (Z–A)": lambda papers: sorted(papers, key=lambda p: p.title.casefold(), reverse=True),
    "Newest first": lambda papers: sorted(
        papers, key=lambda p: (p.published or date.min, p.title.casefold()), reverse=True
    ),
    "Oldest first": lambda papers: sorted(papers, key=lambda p: (p.published or date.max, p.title.casefold())),
    "Source file": lambda papers: sorted(papers, key=lambda p: (p.source.casefold(), p.title.casefold())),
}


def filter_papers(papers: Sequence[Paper], query: str) -> list[Paper]:
    """Papers whose title, authors, abstract or id contain every word of ``query`` (any case)."""
    words = query.casefold().split()
    if not words:
        return list(papers)

    def haystack(paper: Paper) -> str:
        return " ".join([paper.title, " ".join(paper.authors), paper.abstract, paper.paper_id]).casefold()

    return [paper for paper in papers if all(word in haystack(paper) for word in words)]
