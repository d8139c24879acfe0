"""The collection as a library of days: the Papers page's listing, the day view, what is new.

At 10,000 papers a page cannot load every paper on each run. A listing sorts and pages the
papers' rows (id, title, day, source: ``PaperStore.paper_rows``, read from chunk-0 metadata
without parsing the papers, and kept until the store's revision changes), and reads only the
papers it shows. A date range is a Chroma ``where`` on ``day_ordinal``. Only a text search
needs whole papers (title, authors, abstract): within a date range the store returns the
range's papers; over the whole collection it searches the catalog the assistant keeps for name
resolution anyway.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from assistant.app.collection import filter_papers
from assistant.app.visits import Visit, WhatsNew
from assistant.features.digest import keyword_name
from assistant.schema import DateRange, Paper
from assistant.store import PaperRow, PaperStore
from assistant.themes import cluster_papers, theme_keywords

Order = Literal["Newest first", "Oldest first", "Title (A–Z)", "Title (Z–A)", "Source file"]
ORDERS: tuple[Order, ...] = ("Newest first", "Oldest first", "Title (A–Z)", "Title (Z–A)", "Source file")
PAGE_SIZE = 20


def _title_key(row: PaperRow | Paper) -> str:
    return row.title.casefold()


def _newest(row: PaperRow | Paper) -> tuple[int, str]:
    return (-(row.day or date.min).toordinal(), row.title.casefold())


def _oldest(row: PaperRow | Paper) -> tuple[int, str]:
    return ((row.day or date.max).toordinal(), row.title.casefold())


def _by_source(row: PaperRow | Paper) -> tuple[str, str]:
    return (row.source.casefold(), row.title.casefold())


_SORT_KEYS: dict[Order, tuple[Callable[[PaperRow | Paper], object], bool]] = {
    "Newest first": (_newest, False),
    "Oldest first": (_oldest, False),
    "Title (A–Z)": (_title_key, False),
    "Title (Z–A)": (_title_key, True),
    "Source file": (_by_source, False),
}


def sort_rows(rows: Sequence[PaperRow | Paper], order: Order) -> list:
    key, reverse = _SORT_KEYS[order]
    return sorted(rows, key=key, reverse=reverse)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ListingPage:
    """One page of the Papers page: the papers shown, how many matched, of how many."""

    papers: list[Paper]
    matched: int
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class DayView:
    """One day's papers (by title) and the neighbouring days that have papers."""

    day: date
    papers: list[Paper]
    previous: date | None
    next: date | None


@dataclass(frozen=True)
class DayTheme:
    """A theme of one day's papers: named by its keywords (as the digest names a theme the model could not)."""

    name: str
    papers: list[Paper]


def day_themes(store: PaperStore, papers: Sequence[Paper]) -> list[DayTheme]:
    """The day's papers grouped by what they are about (the digest's clustering), largest group first."""
    vectors = store.paper_vectors([paper.paper_id for paper in papers])
    clusters = cluster_papers(vectors)
    by_id = {paper.paper_id: paper for paper in papers}
    keywords = theme_keywords(papers, clusters, n=3)
    return [
        DayTheme(name=keyword_name(words), papers=[by_id[pid] for pid in cluster if pid in by_id])
        for cluster, words in zip(clusters, keywords, strict=True)
    ]


class Library:
    """A store's papers by day, re-read only when the store's revision changes (an ingest anywhere)."""

    def __init__(self, store: PaperStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._cached: tuple[str, list[PaperRow], list[date], Counter[date]] | None = None

    def _current(self) -> tuple[list[PaperRow], list[date], Counter[date]]:
        revision = self.store.revision()
        with self._lock:
            if self._cached is None or self._cached[0] != revision:
                rows = self.store.paper_rows()
                counts = Counter(row.day for row in rows if row.day is not None)
                self._cached = (revision, rows, sorted(counts), counts)
            return self._cached[1], self._cached[2], self._cached[3]

    # --- the collection ---------------------------------------------------------------------
    def rows(self) -> list[PaperRow]:
        return list(self._current()[0])

    def days(self) -> list[date]:
        """Days with papers, oldest first."""
        return list(self._current()[1])

    def papers_per_day(self) -> Counter[date]:
        return Counter(self._current()[2])

    def newest_day(self) -> date | None:
        days = self._current()[1]
        return days[-1] if days else None

    def day_range(self) -> DateRange | None:
        days = self._current()[1]
        return DateRange(start=days[0], end=days[-1]) if days else None

    # --- the Papers page ----------------------------------------------------------------------
    def listing(
        self,
        *,
        text: str = "",
        days: DateRange | None = None,
        order: Order = "Newest first",
        page: int = 1,
        page_size: int = PAGE_SIZE,
        catalog: Callable[[], Sequence[Paper]],
    ) -> ListingPage:
        """Page ``page`` of the papers matching ``text`` (every word, any case) within ``days``.

        ``catalog`` gives every paper, for a text search over the whole collection (the assistant's
        cached catalog, ``PaperAssistant.papers``).
        """
        total = len(self._current()[0])
        if text.split():
            candidates = self.store.papers_in(days) if days is not None else catalog()
            matched: list = sort_rows(filter_papers(candidates, text), order)
        else:
            rows = self.store.paper_rows(days) if days is not None else self._current()[0]
            matched = sort_rows(rows, order)
        pages = max(1, math.ceil(len(matched) / page_size))
        page = min(max(page, 1), pages)
        shown = matched[(page - 1) * page_size : page * page_size]
        if shown and isinstance(shown[0], PaperRow):
            found = self.store.get_papers([row.paper_id for row in shown])
            papers = [found[row.paper_id] for row in shown if row.paper_id in found]
        else:
            papers = list(shown)
        return ListingPage(papers=papers, matched=len(matched), total=total, page=page, pages=pages)

    # --- the day view -----------------------------------------------------------------------
    def nearest_day(self, wanted: date | None) -> date | None:
        """``wanted`` when it has papers, else the closest earlier day with papers (else the first); None: no days."""
        days = self._current()[1]
        if not days:
            return None
        if wanted is None:
            return days[-1]
        position = bisect.bisect_right(days, wanted)
        return days[position - 1] if position else days[0]

    def day_view(self, day: date) -> DayView:
        days = self._current()[1]
        position = bisect.bisect_left(days, day)
        previous = days[position - 1] if position > 0 else None
        following = position + 1 if position < len(days) and days[position] == day else position
        papers = sorted(self.store.papers_in(DateRange(start=day, end=day)), key=_title_key)
        return DayView(
            day=day,
            papers=papers,
            previous=previous,
            next=days[following] if following < len(days) else None,
        )

    # --- what is new ------------------------------------------------------------------------
    def visit_now(self, at: datetime) -> Visit:
        """This visit, to record: its time and the newest day the collection holds now."""
        return Visit(at=at, newest_day=self.newest_day())

    def whats_new(self, previous: Visit | None) -> WhatsNew:
        """The papers listed after the newest day of ``previous`` (rows, newest first)."""
        if previous is None:
            return WhatsNew(previous=None, count=0, days=None)
        days = self._current()[1]
        seen = previous.newest_day
        fresh = [day for day in days if seen is None or day > seen]
        if not fresh:
            return WhatsNew(previous=previous, count=0, days=None)
        counts = self._current()[2]
        return WhatsNew(
            previous=previous,
            count=sum(counts[day] for day in fresh),
            days=DateRange(start=fresh[0], end=fresh[-1]),
        )
