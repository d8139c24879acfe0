from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from ingestion.errors import IngestionError
from ingestion.hf_feed import feed_url, fetch_daily_papers

FIXTURE = Path(__file__).parent / "fixtures" / "hf_daily_papers_sample.json"
DAY = date(2025, 8, 19)


class _Feed:
    """A local stand-in for the HF API: responses by path and date, and a path that never answers in time."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.release = threading.Event()
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                feed.paths.append(self.path)
                url = urlsplit(self.path)
                day = dict(parse_qsl(url.query)).get("date")
                if url.path == "/slow":
                    feed.release.wait(10)
                    self._send(200, b"[]")
                elif url.path == "/garbage":
                    self._send(200, b"<html>Service Unavailable</html>")
                elif url.path == "/error":
                    self._send(200, json.dumps({"error": "Invalid date"}).encode())
                elif url.path == "/junk-entries":
                    entries = [
                        {"paper": {"id": "2408.00001", "title": "Fine", "summary": "Fine."}},
                        {"paper": {"id": 5}},
                    ]
                    self._send(200, json.dumps(entries).encode())
                elif url.path == "/api/daily_papers" and day == DAY.isoformat():
                    self._send(200, FIXTURE.read_bytes())
                elif url.path == "/api/daily_papers" and day == "2025-08-17":
                    self._send(200, b"[]")
                else:
                    self._send(404, b'{"error": "Not Found"}')

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def feed(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Feed]:
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = _Feed()
    thread = threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.server.shutdown()
    server.server.server_close()


def test_fetches_and_parses_a_day(feed: _Feed) -> None:
    result = fetch_daily_papers(DAY, base_url=f"{feed.base}/api/daily_papers", timeout_s=5)
    assert feed.paths == ["/api/daily_papers?date=2025-08-19"]
    assert result.problems == []
    assert [paper.paper_id for paper in result.papers] == ["2305.12827", "2404.15574", "2410.23775", "2306.09479"]
    assert {paper.source for paper in result.papers} == {"hf:2025-08-19"}
    assert result.papers[1].url == "https://arxiv.org/abs/2404.15574"
    assert result.papers[1].authors[0] == "Wenhao Wu"


def test_bad_entries_are_problems_of_the_feed(feed: _Feed) -> None:
    result = fetch_daily_papers(DAY, base_url=f"{feed.base}/junk-entries", timeout_s=5)
    assert [paper.title for paper in result.papers] == ["Fine"]
    (problem,) = result.problems
    assert (problem.source, problem.location) == ("hf:2025-08-19", "record 2")
    assert problem.reason == "missing title"


def test_http_404_names_the_url_and_status(feed: _Feed) -> None:
    url = f"{feed.base}/api/daily_papers?date=2025-08-18"
    with pytest.raises(IngestionError, match=re.escape(f"could not fetch {url}: HTTP 404 Not Found")):
        fetch_daily_papers(date(2025, 8, 18), base_url=f"{feed.base}/api/daily_papers", timeout_s=5)


def test_connection_refused_names_the_url(feed: _Feed) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{closed_port}/api/daily_papers"
    with pytest.raises(IngestionError, match=rf"could not fetch {base}\?date=2025-08-19: connection refused"):
        fetch_daily_papers(DAY, base_url=base, timeout_s=5)


def test_timeout_names_the_limit(feed: _Feed) -> None:
    started = time.monotonic()
    with pytest.raises(
        IngestionError, match=r"could not fetch http://127\.0\.0\.1:\d+/slow\?date=2025-08-19: timed out after 0\.2 s"
    ):
        fetch_daily_papers(DAY, base_url=f"{feed.base}/slow", timeout_s=0.2)
    assert time.monotonic() - started < 3


def test_invalid_json_names_the_url(feed: _Feed) -> None:
    with pytest.raises(
        IngestionError, match=r"hf:2025-08-19: the response is not valid JSON .* \(fetched from http://127"
    ):
        fetch_daily_papers(DAY, base_url=f"{feed.base}/garbage", timeout_s=5)


def test_an_error_object_is_reported_with_its_message(feed: _Feed) -> None:
    with pytest.raises(IngestionError, match=r"expected a JSON list of daily papers: Invalid date"):
        fetch_daily_papers(DAY, base_url=f"{feed.base}/error", timeout_s=5)


def test_a_day_without_papers_is_an_error(feed: _Feed) -> None:
    with pytest.raises(IngestionError, match=r"the feed lists no papers .*weekends"):
        fetch_daily_papers(date(2025, 8, 17), base_url=f"{feed.base}/api/daily_papers", timeout_s=5)


def test_feed_url_keeps_an_existing_query_and_replaces_a_date() -> None:
    assert (
        feed_url("https://huggingface.co/api/daily_papers", DAY)
        == "https://huggingface.co/api/daily_papers?date=2025-08-19"
    )
    assert feed_url("http://h/api?limit=50&date=2020-01-01", DAY) == "http://h/api?limit=50&date=2025-08-19"


@pytest.mark.parametrize("base_url", ["file:///etc/passwd", "ftp://example.org/feed", "not a url"])
def test_only_http_feeds_are_fetched(base_url: str) -> None:
    with pytest.raises(IngestionError, match="must be an http"):
        fetch_daily_papers(DAY, base_url=base_url, timeout_s=1)


# --- many days: retries, ranges, resuming, update -----------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures"


def _entries(day: str, count: int = 2) -> bytes:
    """``count`` papers listed on ``day`` in the 2025 shape of the API."""
    return json.dumps(
        [
            {
                "paper": {
                    "id": f"{day[2:4]}{day[5:7]}.{int(day[8:]) * 100 + n:05d}",
                    "title": f"A paper of {day}, number {n}",
                    "summary": f"What paper {n} of {day} found about models.",
                    "authors": [{"name": "Ada Lovelace"}],
                    "publishedAt": f"{day}T00:00:00.000Z",
                    "submittedOnDailyAt": f"{day}T01:00:00.000Z",
                },
                "publishedAt": f"{day}T00:00:00.000Z",
            }
            for n in range(count)
        ]
    ).encode()


class _Days:
    """A stand-in for the feed over many days: each day answers from a queue of (status, body, headers).

    A day with nothing queued answers its two papers (or the archive's raw response, for its three days).
    """

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.queued: dict[str, list[tuple[int, bytes, dict[str, str]]]] = {}
        days = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                day = dict(parse_qsl(urlsplit(self.path).query))["date"]
                days.asked.append(day)
                queue = days.queued.get(day)
                if queue:
                    status, body, headers = queue.pop(0) if len(queue) > 1 else queue[0]
                elif (FIXTURES / f"hf_daily_papers_{day}.json").is_file():
                    status, body, headers = 200, (FIXTURES / f"hf_daily_papers_{day}.json").read_bytes(), {}
                else:
                    status, body, headers = 200, _entries(day), {}
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/daily_papers"


@pytest.fixture
def days(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Days]:
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = _Days()
    thread = threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_a_429_is_tried_again_after_the_wait_the_server_asks_for(days: _Days) -> None:
    days.queued["2025-06-09"] = [(429, b"slow down", {"Retry-After": "7"}), (200, _entries("2025-06-09"), {})]
    waits: list[float] = []
    result = fetch_daily_papers(date(2025, 6, 9), base_url=days.url, timeout_s=5, sleep=waits.append)
    assert len(result.papers) == 2 and days.asked == ["2025-06-09", "2025-06-09"]
    assert len(waits) == 1 and 7 <= waits[0] < 8


def test_5xx_backs_off_with_jitter_then_names_the_day_after_the_last_try(days: _Days) -> None:
    days.queued["2025-06-09"] = [(500, b"oops", {})]
    waits: list[float] = []
    with pytest.raises(IngestionError, match=r"date=2025-06-09: HTTP 500 Internal Server Error \(5 tries\)"):
        fetch_daily_papers(date(2025, 6, 9), base_url=days.url, timeout_s=5, sleep=waits.append, backoff_s=1.0)
    assert len(days.asked) == 5 and len(waits) == 4
    assert all(0 <= wait <= 2**n for n, wait in enumerate(waits)) and len(set(waits)) == 4


def test_a_wait_longer_than_the_limit_is_not_waited_for(days: _Days) -> None:
    days.queued["2025-06-09"] = [(503, b"", {"Retry-After": "3600"})]
    with pytest.raises(IngestionError, match=r"HTTP 503 .*asks to wait 3600 s: try again later"):
        fetch_daily_papers(date(2025, 6, 9), base_url=days.url, timeout_s=5, sleep=pytest.fail)
    assert len(days.asked) == 1


def test_the_archives_three_raw_days_are_listed_on_their_request_day(days: _Days) -> None:
    for day in ("2024-08-19", "2025-06-10", "2026-08-21"):
        papers = fetch_daily_papers(date.fromisoformat(day), base_url=days.url, timeout_s=5).papers
        assert {str(paper.listed) for paper in papers} == {day}
        assert all(paper.published is not None and paper.published < paper.listed for paper in papers)


def _ingest_days(days: _Days, settings: object, start: str, end: str, today: str = "2025-06-30", **options: object):
    from assistant.store import PaperStore
    from ingestion.hf_feed import ingest_feed_days

    return ingest_feed_days(
        date.fromisoformat(start),
        date.fromisoformat(end),
        store=PaperStore(settings),  # type: ignore[arg-type]
        base_url=days.url,
        timeout_s=5,
        today=date.fromisoformat(today),
        sleep=lambda seconds: None,
        **options,  # type: ignore[arg-type]
    )


def test_a_range_fetches_each_weekday_once_and_records_empty_days(days: _Days, settings: object) -> None:
    days.queued["2025-06-11"] = [(200, b"[]", {})]
    report = _ingest_days(days, settings, "2025-06-07", "2025-06-15")
    assert days.asked == ["2025-06-09", "2025-06-10", "2025-06-11", "2025-06-12", "2025-06-13"], "no weekend"
    assert [str(day) for day in report.days_fetched] == days.asked
    assert [str(day) for day in report.days_empty] == ["2025-06-11"]
    assert report.papers_added == report.total_papers == 2 + 2 + 0 + 2 + 2
    assert report.days_skipped == []

    days.asked.clear()
    again = _ingest_days(days, settings, "2025-06-09", "2025-06-16")
    assert days.asked == ["2025-06-16"], "only the day not held yet"
    assert [str(day) for day in again.days_skipped] == [
        "2025-06-09",
        "2025-06-10",
        "2025-06-11",
        "2025-06-12",
        "2025-06-13",
    ]
    assert again.papers_added == 2 and again.total_papers == 10


def test_today_is_fetched_but_not_held_and_the_future_not_asked(days: _Days, settings: object) -> None:
    _ingest_days(days, settings, "2025-06-12", "2025-06-20", today="2025-06-13")
    assert days.asked == ["2025-06-12", "2025-06-13"]
    days.asked.clear()
    _ingest_days(days, settings, "2025-06-12", "2025-06-20", today="2025-06-16")
    assert days.asked == ["2025-06-13", "2025-06-16"]


def test_a_failing_day_stops_the_run_naming_it_and_the_next_run_resumes_there(days: _Days, settings: object) -> None:
    days.queued["2025-06-11"] = [(500, b"", {})]
    with pytest.raises(IngestionError, match=r"stopped at 2025-06-11: .*HTTP 500.*the 2 days before it are stored"):
        _ingest_days(days, settings, "2025-06-09", "2025-06-13")
    days.queued.clear()
    days.asked.clear()
    report = _ingest_days(days, settings, "2025-06-09", "2025-06-13")
    assert days.asked == ["2025-06-11", "2025-06-12", "2025-06-13"]
    assert report.total_papers == 10


def test_a_killed_run_resumes_at_the_first_day_not_written(
    days: _Days, settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingestion.hf_feed as hf_feed

    monkeypatch.setattr(hf_feed, "PAPERS_PER_WRITE", 3)  # a write every second day

    def killed(done: int, total: int, day: date) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _ingest_days(days, settings, "2025-06-09", "2025-06-13", progress=killed)
    days.asked.clear()
    _ingest_days(days, settings, "2025-06-09", "2025-06-13")
    assert days.asked == ["2025-06-11", "2025-06-12", "2025-06-13"], "day 3 was fetched, not written: fetched again"


def test_the_listed_day_of_a_paper_seen_again_later_stays_the_first(days: _Days, settings: object) -> None:
    from assistant.store import PaperStore

    days.queued["2025-06-10"] = [(200, _entries("2025-06-09", 1), {})]  # June 9's paper, listed again on June 10
    _ingest_days(days, settings, "2025-06-10", "2025-06-10")
    _ingest_days(days, settings, "2025-06-09", "2025-06-09")
    listed = {stats.paper.paper_id: str(stats.paper.listed) for stats in PaperStore(settings).list_papers()}  # type: ignore[arg-type]
    assert listed == {"2506.00900": "2025-06-09", "2506.00901": "2025-06-09"}


@pytest.mark.slow
def test_cli_ingest_hf_since_and_update(days: _Days, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from ingestion.hf_feed import feed_today

    env = {**os.environ, "ASSISTANT_STORE_DIR": str(tmp_path / "store"), "ASSISTANT_HF_DAILY_PAPERS_URL": days.url}

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "assistant", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)

    nothing = cli("update")
    assert nothing.returncode == 2 and "ingest --hf-since" in nothing.stderr

    today = feed_today()
    start = today - timedelta(days=8)
    first = cli(
        "ingest", "--hf-since", start.isoformat(), "--hf-until", (today - timedelta(days=4)).isoformat(), "--json"
    )
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert {"days_fetched", "days_skipped", "days_empty", "papers_added", "problems"} <= set(report)
    fetched = report["days_fetched"]
    assert fetched and fetched[0] >= start.isoformat()

    days.asked.clear()
    updated = cli("update", "--json")
    assert updated.returncode == 0, updated.stderr
    asked = [day for day in days.asked]
    assert asked and asked[0] > fetched[-1] and asked[-1] <= today.isoformat()
    assert json.loads(updated.stdout)["days_fetched"] == asked
