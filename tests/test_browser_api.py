"""The HTTP API against a real browser: a page of another origin, and DNS rebinding.

``paper-assistant serve`` on loopback with no token (the default there) is reachable from
any web page the user opens: browsers send a ``no-cors`` upload to any address without
asking, and DNS rebinding makes a name the attacker owns resolve to 127.0.0.1, so their
page becomes same-origin with the API. Headless Chromium (Debian's, as in
``tests/test_browser.py``) opens a page served from another loopback origin that tries the
upload and a JSON post, then a page on a rebound name (Chromium's ``--host-resolver-rules``
maps ``rebind.test`` to 127.0.0.1) that reads and writes as same-origin. Nothing lands.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from api_fixtures import RunningServer, running
from starlette.types import ASGIApp, Receive, Scope, Send

from assistant.api import create_app
from assistant.settings import Settings
from tests.test_browser import launched_chromium

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures"
REBOUND = "rebind.test"


class Recorder:
    """Outermost layer: every request that reached the server, with the status it got."""

    def __init__(self, app: ASGIApp, seen: list[tuple[str, str, int]]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def recorded(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, recorded)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[RunningServer, list[tuple[str, str, int]]]]:
    seen: list[tuple[str, str, int]] = []
    app = create_app(Settings(data_dir=tmp_path / "api"), token="")
    app.add_middleware(Recorder, seen=seen)
    with running(app) as server:
        yield server, seen


@pytest.fixture
def foreign_page() -> Iterator[str]:
    """A page server on another port: another origin (http://localhost:PORT) on the same machine."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>another site</title><p>nothing to see</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium(f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1") as chromium:
        yield chromium


ATTACK = """
async ([api, papers]) => {
  const form = new FormData();
  form.append("files", new File([papers], "papers.jsonl", {type: "application/json"}));
  await fetch(api + "/v1/ingest", {method: "POST", mode: "no-cors", body: form});
  const chat = JSON.stringify({model: "paper-assistant", messages: [{role: "user", content: "hi"}]});
  await fetch(api + "/v1/chat/completions", {method: "POST", mode: "no-cors", body: chat});
  let read = "blocked";
  try { read = await (await fetch(api + "/v1/papers")).text(); } catch (e) { read = "blocked"; }
  return read;
}
"""


def papers_in(server: RunningServer) -> int:
    return int(httpx.get(server.url + "/healthz").json()["papers"])


def test_a_page_of_another_origin_cannot_upload_or_read(
    browser: Browser, api: tuple[RunningServer, list[tuple[str, str, int]]], foreign_page: str
) -> None:
    server, seen = api
    page = browser.new_page()
    try:
        page.goto(foreign_page)
        read = page.evaluate(ATTACK, [server.url, (FIXTURES / "papers.jsonl").read_text()])
    finally:
        page.close()
    assert read == "blocked", "CORS keeps the collection from the page"
    posts = [(path, status) for method, path, status in seen if method == "POST"]
    assert ("/v1/ingest", 403) in posts and ("/v1/chat/completions", 403) in posts, seen
    assert papers_in(server) == 0, "the upload did not land"


def test_a_rebound_name_can_neither_read_nor_write(
    browser: Browser, api: tuple[RunningServer, list[tuple[str, str, int]]]
) -> None:
    server, seen = api
    page = browser.new_page()
    try:
        # The attacker's page, now on 127.0.0.1 under their name: same-origin with the API.
        landing = page.goto(f"http://{REBOUND}:{server.port}/healthz")
        assert landing is not None and landing.status == 403
        result = page.evaluate(
            """async (papers) => {
                const form = new FormData();
                form.append("files", new File([papers], "papers.jsonl"));
                const upload = await fetch("/v1/ingest", {method: "POST", body: form});
                const read = await fetch("/v1/papers");
                return [upload.status, read.status, await read.text()];
            }""",
            (FIXTURES / "papers.jsonl").read_text(),
        )
    finally:
        page.close()
    assert result[0] == 403 and result[1] == 403 and "host_not_allowed" in result[2]
    assert all(status == 403 for _, _, status in seen), seen
    assert papers_in(server) == 0
