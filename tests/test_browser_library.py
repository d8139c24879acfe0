"""The library of days in a real browser: what is new since the last visit, the day view, the Papers date filter.

`streamlit run` on a store of 240 synthetic papers listed over eight weekdays (title vectors:
``benchmarks/library.py``), driven by Playwright on Debian's chromium as in ``test_browser.py``.
A first visit leaves the browser its reader cookie; a day later (the visit log's clock moved back)
two more days of papers have been added, and the same browser, opening the bare URL again, lands
on those days.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from assistant.app import visits
from assistant.schema import Paper
from assistant.settings import Settings
from benchmarks.library import build_store
from benchmarks.synthetic import synthetic_papers
from tests.test_browser import (
    ARTIFACTS,
    STARTUP_TIMEOUT_S,
    AppServer,
    launched_chromium,
    report,
    start_server,
    stop_server,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

PAPERS_PER_DAY = 30
FIRST_DAY = date(2026, 8, 10)  # a Monday
DAYS = [FIRST_DAY + timedelta(days=n) for n in (0, 1, 2, 3, 4, 7, 8, 9)]  # weekdays: no papers on the weekend
SEEN_DAYS = 6
TIMEOUT_MS = 120_000


def dated(papers: list[Paper]) -> list[Paper]:
    return [paper.model_copy(update={"listed": DAYS[i // PAPERS_PER_DAY]}) for i, paper in enumerate(papers)]


@pytest.fixture(scope="module")
def library_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first six days of papers; the test adds the last two after the first visit."""
    store_dir = tmp_path_factory.mktemp("library-store") / "store"
    build_store(store_dir, dated(synthetic_papers(len(DAYS) * PAPERS_PER_DAY))[: SEEN_DAYS * PAPERS_PER_DAY])
    return store_dir


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture
def library_app(library_store: Path, tmp_path: Path) -> Iterator[AppServer]:
    server = start_server(Settings(store_dir=library_store), tmp_path / "data", "fake/quote", store=library_store)
    yield server
    stop_server(server.process)


def settle(page: Page) -> None:
    page.wait_for_timeout(300)
    page.get_by_test_id("stStatusWidget").wait_for(state="detached", timeout=TIMEOUT_MS)


def day_heading(page: Page, day: date) -> None:
    page.get_by_role("heading", name=f"{day.strftime('%A')} {day.isoformat()}: {PAPERS_PER_DAY} papers").wait_for(
        timeout=TIMEOUT_MS
    )
    settle(page)


def test_whats_new_day_view_and_the_papers_date_filter(
    browser: Browser, library_app: AppServer, capsys: pytest.CaptureFixture[str]
) -> None:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()

    # A first visit: the chat, and the browser gets its reader cookie.
    page.goto(library_app.url)
    page.get_by_role("heading", name="Chat with the papers").wait_for(timeout=STARTUP_TIMEOUT_S * 1000)
    settle(page)
    cookies = {cookie["name"]: cookie["value"] for cookie in context.cookies()}
    assert visits.valid_reader_id(cookies.get(visits.COOKIE)), cookies

    # The next morning (the visit moved back a day: a reload within the hour would continue it),
    # two more days of papers have arrived; the same browser comes back to the bare address.
    visits_file = library_app.log.parent / visits.VISITS_FILE
    readings = json.loads(visits_file.read_text())
    yesterday = datetime.now().astimezone() - timedelta(days=1)
    readings[cookies[visits.COOKIE]]["last"]["at"] = yesterday.isoformat()
    visits_file.write_text(json.dumps(readings))
    store_dir = Path(library_app.log.parent / "store")
    build_store(store_dir, dated(synthetic_papers(len(DAYS) * PAPERS_PER_DAY))[SEEN_DAYS * PAPERS_PER_DAY :])
    started = time.monotonic()
    page.goto(library_app.url)
    new = 2 * PAPERS_PER_DAY
    page.get_by_text(f"{new} papers listed since your last visit on {yesterday.date().isoformat()}").wait_for(
        timeout=TIMEOUT_MS
    )
    day_heading(page, DAYS[SEEN_DAYS])  # the first day not seen yet
    report(capsys, f"library: returning visit opened on what is new in {time.monotonic() - started:.1f} s")
    page.screenshot(path=str(ARTIFACTS / "library-01-whats-new.png"))

    # Previous and next day step over the weekend, which has no papers.
    page.get_by_role("button", name=f"Previous day ({DAYS[SEEN_DAYS - 1].isoformat()})").click()
    day_heading(page, DAYS[SEEN_DAYS - 1])
    assert DAYS[SEEN_DAYS - 1] - DAYS[SEEN_DAYS - 2] == timedelta(days=3)
    page.get_by_role("button", name=f"Previous day ({DAYS[SEEN_DAYS - 2].isoformat()})").click()
    day_heading(page, DAYS[SEEN_DAYS - 2])
    page.get_by_role("button", name=f"Next day ({DAYS[SEEN_DAYS - 1].isoformat()})").click()
    day_heading(page, DAYS[SEEN_DAYS - 1])
    page.get_by_text("Themes of the day").wait_for()

    # The Papers page, filtered on the new days, then on one day.
    page.get_by_role("button", name=f"Show the {new} new papers").click()
    page.get_by_text(f"{new} of {len(DAYS) * PAPERS_PER_DAY} papers").wait_for(timeout=TIMEOUT_MS)
    settle(page)
    first = page.get_by_test_id("stExpander").first
    first.locator("summary").click()
    assert f"listed {DAYS[-1].isoformat()}" in first.inner_text()  # newest first
    page.screenshot(path=str(ARTIFACTS / "library-02-papers-new.png"))

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Daily papers", exact=True).click()
    day_heading(page, DAYS[SEEN_DAYS - 1])
    page.get_by_role("button", name="Show this day on the Papers page").click()
    page.get_by_text(f"{PAPERS_PER_DAY} of {len(DAYS) * PAPERS_PER_DAY} papers").wait_for(timeout=TIMEOUT_MS)
    settle(page)
    context.close()
