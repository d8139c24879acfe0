"""The library of days: the store's dated listing, the Papers page's paging, the day view, what is new.

A collection of the sample's 46 papers listed over four days (with a day without papers between
them), ingested through the pipeline; the app's pages are driven by Streamlit's AppTest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from assistant import llm
from assistant.app import visits
from assistant.app.library import Library, day_themes
from assistant.app.visits import Visit, VisitLog
from assistant.llm import FakeLLM
from assistant.schema import DateRange, Paper, ReadResult
from assistant.settings import SAMPLE_COLLECTION, Settings
from assistant.store import PaperStore
from ingestion.pipeline import ingest_papers, read_sources

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "streamlit_app.py"
MODEL = "fake-library"
TIMEOUT_S = 120
DAYS = [date(2026, 8, 17), date(2026, 8, 18), date(2026, 8, 20), date(2026, 8, 21)]  # nothing on the 19th
READER = "reader-for-tests-1"


@pytest.fixture(scope="module")
def dated_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The sample's papers, the i-th listed on DAYS[i % 4], ingested through the pipeline."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("library-data"))
    read = read_sources([SAMPLE_COLLECTION])
    papers = [paper.model_copy(update={"listed": DAYS[i % 4]}) for i, paper in enumerate(read.papers)]
    ingest_papers(ReadResult(papers=papers, locations=read.locations), store=PaperStore(settings))
    return settings


@pytest.fixture(scope="module")
def dated_store(dated_settings: Settings) -> PaperStore:
    return PaperStore(dated_settings)


@pytest.fixture
def library(dated_store: PaperStore) -> Library:
    return Library(dated_store)


def listed_on(store: PaperStore, day: date) -> list[Paper]:
    return [p for p in (s.paper for s in store.list_papers()) if p.listed == day]


# --- the store --------------------------------------------------------------------------------
def test_paper_rows_filter_on_the_listing_day_in_chroma(dated_store: PaperStore) -> None:
    every = dated_store.paper_rows()
    assert len(every) == 46 and {row.day for row in every} == set(DAYS)
    thursday = dated_store.paper_rows(DateRange(start=DAYS[2], end=DAYS[2]))
    assert {row.paper_id for row in thursday} == {p.paper_id for p in listed_on(dated_store, DAYS[2])}
    assert len(dated_store.paper_rows(DateRange(start=date(2026, 8, 19), end=date(2026, 8, 19)))) == 0
    week = dated_store.papers_in(DateRange(start=DAYS[1], end=DAYS[2]))
    assert {p.listed for p in week} == {DAYS[1], DAYS[2]} and len(week) == 23
    assert all(p.abstract for p in week)


# --- the Papers page's listing ------------------------------------------------------------------
def test_listing_pages_newest_first_and_reads_only_the_page(
    library: Library, dated_store: PaperStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[int] = []
    get_papers = dated_store.get_papers
    monkeypatch.setattr(dated_store, "get_papers", lambda ids: read.append(len(ids)) or get_papers(ids))
    first = library.listing(page_size=5, catalog=lambda: pytest.fail("no text: the catalog is not read"))
    assert (first.matched, first.total, first.pages, first.page) == (46, 46, 10, 1)
    newest = sorted(listed_on(dated_store, DAYS[3]), key=lambda p: p.title.casefold())
    assert first.papers == newest[:5] and read == [5]
    last = library.listing(page=99, page_size=5, catalog=list)
    assert last.page == 10 and len(last.papers) == 1 and last.papers[0].listed == DAYS[0]
    by_title = library.listing(order="Title (A–Z)", page_size=46, catalog=list).papers
    assert [p.title.casefold() for p in by_title] == sorted(p.title.casefold() for p in by_title)


def test_listing_filters_by_days_and_text(library: Library, dated_store: PaperStore) -> None:
    monday = library.listing(days=DateRange(start=DAYS[0], end=DAYS[0]), page_size=50, catalog=list)
    assert monday.matched == 12 and {p.listed for p in monday.papers} == {DAYS[0]}
    catalog = [s.paper for s in dated_store.list_papers()]
    anywhere = library.listing(text="LoRA", page_size=50, catalog=lambda: catalog)
    assert anywhere.matched >= 2 and all("lora" in (p.title + p.abstract).casefold() for p in anywhere.papers)
    some_day = anywhere.papers[0].listed
    assert some_day is not None
    that_day = library.listing(
        text="LoRA", days=DateRange(start=some_day, end=some_day), page_size=50, catalog=lambda: pytest.fail("ranged")
    )
    assert {p.paper_id for p in that_day.papers} == {p.paper_id for p in anywhere.papers if p.listed == some_day}


# --- the day view ---------------------------------------------------------------------------------
def test_day_view_steps_over_days_without_papers(library: Library, dated_store: PaperStore) -> None:
    assert library.days() == DAYS and library.newest_day() == DAYS[3]
    tuesday = library.day_view(DAYS[1])
    assert (tuesday.previous, tuesday.next) == (DAYS[0], DAYS[2])  # the 19th has no papers
    assert {p.paper_id for p in tuesday.papers} == {p.paper_id for p in listed_on(dated_store, DAYS[1])}
    assert (library.day_view(DAYS[0]).previous, library.day_view(DAYS[3]).next) == (None, None)
    assert library.nearest_day(date(2026, 8, 19)) == DAYS[1]
    assert library.nearest_day(date(2020, 1, 1)) == DAYS[0] and library.nearest_day(None) == DAYS[3]


def test_day_themes_hold_every_paper_of_the_day(library: Library, dated_store: PaperStore) -> None:
    papers = library.day_view(DAYS[2]).papers
    themes = day_themes(dated_store, papers)
    assert sorted(p.paper_id for theme in themes for p in theme.papers) == sorted(p.paper_id for p in papers)
    assert all(theme.name for theme in themes)


# --- what is new ----------------------------------------------------------------------------------
def test_whats_new_counts_papers_listed_after_the_newest_day_seen(library: Library) -> None:
    seen_tuesday = Visit(at=datetime(2026, 8, 19, 8, 0, tzinfo=UTC), newest_day=DAYS[1])
    news = library.whats_new(seen_tuesday)
    assert news.count == 22 and news.days == DateRange(start=DAYS[2], end=DAYS[3])
    assert news.message() == "22 papers listed since your last visit on 2026-08-19."
    assert library.whats_new(Visit(at=seen_tuesday.at, newest_day=DAYS[3])).message() == (
        "Nothing new since your last visit on 2026-08-19."
    )
    assert library.whats_new(Visit(at=seen_tuesday.at, newest_day=None)).count == 46  # the collection was empty
    assert library.whats_new(None).count == 0
    assert library.visit_now(seen_tuesday.at).newest_day == DAYS[3]


def test_the_visit_log_returns_the_previous_visit_and_survives_damage(tmp_path: Path) -> None:
    log = VisitLog(tmp_path)
    first = Visit(at=datetime(2026, 8, 18, 9, tzinfo=UTC), newest_day=DAYS[1])
    second = Visit(at=datetime(2026, 8, 21, 9, tzinfo=UTC), newest_day=DAYS[3])
    assert log.arrive(READER, first) is None
    assert log.arrive("another-reader-9", second) is None
    assert log.arrive(READER, second) == first
    assert VisitLog(tmp_path).last(READER) == second
    reload = Visit(at=second.at + timedelta(minutes=20), newest_day=DAYS[3])
    assert log.arrive(READER, reload) == first  # a reload continues the visit: the same news
    assert log.arrive(READER, Visit(at=reload.at + timedelta(days=1), newest_day=DAYS[3])) == reload
    (tmp_path / visits.VISITS_FILE).write_text("{not json")
    assert log.arrive(READER, first) is None  # a damaged file forgets the visits, nothing worse


def test_readers_are_known_by_url_then_cookie_else_new() -> None:
    assert visits.choose_reader("cookie-reader-1", None) == visits.Reader(reader_id="cookie-reader-1", set_cookie=False)
    assert visits.choose_reader("cookie-reader-1", READER) == visits.Reader(reader_id=READER, set_cookie=True)
    fresh = visits.choose_reader('x"; alert(1)', "short")
    assert fresh.set_cookie and visits.valid_reader_id(fresh.reader_id) and fresh.reader_id != "short"
    assert f"{visits.COOKIE}={READER};" in visits.cookie_script(READER)
    with pytest.raises(ValueError):
        visits.cookie_script('x"; alert(1)')


# --- the pages ------------------------------------------------------------------------------------
@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, dated_settings: Settings, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASSISTANT_STORE_DIR", str(dated_settings.store.resolved_store_dir))
    monkeypatch.setenv("ASSISTANT_MODEL", MODEL)
    llm.inject(MODEL, FakeLLM(model=MODEL))
    yield tmp_path / "data"
    llm.inject(MODEL, None)


def returning_reader(data_dir: Path, newest_day: date) -> AppTest:
    data_dir.mkdir(parents=True, exist_ok=True)
    VisitLog(data_dir).arrive(READER, Visit(at=datetime(2026, 8, 19, 8, tzinfo=UTC), newest_day=newest_day))
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    app.query_params[visits.QUERY] = READER
    return app.run()


def headings(app: AppTest) -> list[str]:
    return [str(element.value) for element in app.subheader]


def test_a_returning_reader_opens_on_whats_new_and_steps_through_days(app_env: Path) -> None:
    app = returning_reader(app_env, newest_day=DAYS[1])
    assert not app.exception, [e.value for e in app.exception]
    assert app.title[0].value == "Daily papers"
    assert app.info[0].value == "22 papers listed since your last visit on 2026-08-19."
    assert headings(app)[0] == "Thursday 2026-08-20: 11 papers"  # the first day the reader has not seen
    assert VisitLog(app_env).last(READER).newest_day == DAYS[3]  # this visit is recorded

    app.button(key="previous-day").click().run()
    assert headings(app)[0] == "Tuesday 2026-08-18: 12 papers"  # the 19th had no papers
    assert app.info[0].value.startswith("22 papers listed")  # the same news for the whole session
    app.button(key="next-day").click().run()
    app.button(key="next-day").click().run()
    assert headings(app)[0] == "Friday 2026-08-21: 11 papers"
    assert app.button(key="next-day").disabled

    app.button(key="show-new").click().run()
    assert app.title[0].value == "Papers"
    assert app.caption[0].value == "22 of 46 papers"
    assert all(e.label for e in app.expander)
    assert len(app.expander) == 20  # one page


def test_a_first_visit_opens_on_the_chat(app_env: Path) -> None:
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S).run()
    assert not app.exception
    assert app.title[0].value != "Daily papers"
    assert len(json.loads((app_env / visits.VISITS_FILE).read_text())) == 1  # this browser is now known


def test_the_papers_page_filters_by_date_and_sorts_newest_first(app_env: Path) -> None:
    app = returning_reader(app_env, newest_day=DAYS[3])
    assert app.title[0].value != "Daily papers"  # nothing new: the chat, as on a first visit
    app.switch_page("app_pages/day.py").run()
    assert app.caption[0].value == "Nothing new since your last visit on 2026-08-19."
    assert headings(app)[0].startswith("Friday 2026-08-21")  # the newest day
    app.switch_page("app_pages/papers.py").run()
    assert app.caption[0].value == "46 of 46 papers"
    assert app.selectbox(key="paper_order").value == "Newest first"
    app.date_input(key="paper-days-0").set_value((DAYS[0], DAYS[1])).run()
    assert app.caption[0].value == "24 of 46 papers"
    app.text_input(key="paper_query").set_value("LoRA").run()
    assert not app.exception
    assert app.caption[0].value.endswith(" of 46 papers")


def test_the_day_view_writes_that_days_digest_from_its_papers_only(app_env: Path, library: Library) -> None:
    app = returning_reader(app_env, newest_day=DAYS[3])
    app.switch_page("app_pages/day.py").run()
    assert headings(app)[0] == "Friday 2026-08-21: 11 papers"
    app.button(key="day-digest").click().run()
    assert not app.exception, [e.value for e in app.exception]
    themes = [heading for heading in headings(app) if heading[:1].isdigit()]
    assert themes, headings(app)
    digest = next(iter(app.session_state["day_digests"].values()))
    day_ids = {paper.paper_id for paper in library.day_view(DAYS[3]).papers}
    assert {paper_id for theme in digest.themes for paper_id in theme.paper_ids} <= day_ids


def test_the_papers_page_offers_the_shown_papers_as_bibtex(app_env: Path) -> None:
    app = returning_reader(app_env, newest_day=DAYS[3])
    app.switch_page("app_pages/papers.py").run()
    labels = [element.proto.label for element in app.get("download_button")]
    assert "BibTeX of the 20 shown" in labels
