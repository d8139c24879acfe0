from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
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
