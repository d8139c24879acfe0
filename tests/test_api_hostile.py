"""The HTTP API and the CLI under attack, round three: each case failed before its fix.

A real uvicorn server on loopback (``api_fixtures.running``), reached with the official
``openai`` client, httpx, and raw sockets where a client would not send what an attacker
does (a chunked body, an empty Host). Cross-site writes, DNS rebinding (a foreign Host),
oversized chunked bodies, a stream that stayed silent until the model's first word, lone
surrogates, blank tokens, an app whose Streamlit outlived it, and a closed pipe.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_fixtures import TOKEN, RunningServer, running

from assistant.api import app as api_app
from assistant.api import create_app
from assistant.cli import main
from assistant.llm import Completion, FakeLLM, inject
from assistant.schema import Message, Usage
from assistant.settings import Settings
from assistant.streaming import Streamed

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
ATLAS_QUESTION = "How does aTLAS combine task vectors?"
GROUNDED = "aTLAS linearly combines parameter blocks with different learned coefficients [1]."
FOREIGN_PAGE = "http://localhost:18300"


class SlowStartLLM(FakeLLM):
    """Thinks ``first_s`` before its first word, then writes one word every ``delay_s``."""

    def __init__(self, *, model: str, first_s: float = 0.0, delay_s: float = 0.0) -> None:
        super().__init__(model=model)
        self.first_s = first_s
        self.delay_s = delay_s

    def generate(self, messages: Sequence[Message], **options: Any) -> Streamed[Completion]:
        with self._lock:
            self.history.append(list(messages))
            reply = self._queue.popleft() if self._queue else self.default_reply

        def pieces() -> Generator[str, None, Completion]:
            if isinstance(reply, Exception):
                raise reply
            time.sleep(self.first_s)
            for word in str(reply).split(" "):
                yield word + " "
                time.sleep(self.delay_s)
            return Completion(text=str(reply), model=self.model, usage=Usage(completion_tokens=3))

        return Streamed(pieces())


MODELS = ("fake/echo", "fake/late")


@pytest.fixture(scope="module")
def models() -> Iterator[dict[str, FakeLLM]]:
    made = {"fake/echo": FakeLLM(model="fake/echo"), "fake/late": SlowStartLLM(model="fake/late")}
    for name, backend in made.items():
        inject(name, backend)
    yield made
    for name in made:
        inject(name, None)


@pytest.fixture(scope="module")
def server(sample_store, models: dict[str, FakeLLM]) -> Iterator[RunningServer]:
    settings = sample_store.settings.replace(model="fake/echo", fallback_models=list(MODELS))
    with running(create_app(settings, store=sample_store, token=TOKEN)) as running_server:
        yield running_server


@pytest.fixture
def echo(models: dict[str, FakeLLM]) -> Iterator[FakeLLM]:
    fake = models["fake/echo"]
    fake.clear()
    yield fake
    fake.clear()


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as client:
        yield client


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and "Traceback" not in response.text
    return error


def raw_request(port: int, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request written by hand on a socket; the status and the body of the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head.encode("latin-1") + b"\r\n" + body)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


# --- row 2: cross-site writes and DNS rebinding ----------------------------------------------
@pytest.fixture
def open_server(tmp_path: Path) -> Iterator[RunningServer]:
    """No token, as on loopback by default; an empty collection of its own."""
    with running(create_app(Settings(data_dir=tmp_path / "open"), token="")) as fresh:
        yield fresh


def papers_in(server: RunningServer) -> int:
    return int(httpx.get(server.url + "/healthz").json()["papers"])


def test_a_page_of_another_origin_cannot_upload_papers(open_server: RunningServer) -> None:
    upload = {"files": ("papers.jsonl", (FIXTURES / "papers.jsonl").read_bytes(), "application/json")}
    # What Chromium sends for fetch(..., {mode: "no-cors", method: "POST", body: formData}) from another page.
    for headers in (
        {"Origin": FOREIGN_PAGE, "Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"},
        {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},  # a sandboxed frame or a file:// page
        {"Sec-Fetch-Site": "cross-site"},
    ):
        refused = httpx.post(open_server.base_url + "/ingest", files=upload, headers=headers)
        assert "another site" in error_of(refused, 403, "cross_site_request")["message"]
    assert papers_in(open_server) == 0

    # A form posts text/plain or multipart to a JSON route without asking first.
    chat = json.dumps({"model": "paper-assistant", "messages": [user(ATLAS_QUESTION)]})
    for content_type in ("text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"):
        error = error_of(
            httpx.post(
                open_server.base_url + "/chat/completions", content=chat, headers={"Content-Type": content_type}
            ),
            415,
            "unsupported_media_type",
        )
        assert "application/json" in error["message"]

    # The same upload from this server's own page (Swagger's /docs), or from a program, lands.
    same = {"Origin": open_server.url, "Sec-Fetch-Site": "same-origin"}
    assert httpx.post(open_server.base_url + "/ingest", files=upload, headers=same, timeout=120).status_code == 200
    assert papers_in(open_server) > 0


def test_a_host_header_of_another_name_is_refused(open_server: RunningServer, tmp_path: Path) -> None:
    # DNS rebinding: evil.example resolves to 127.0.0.1, and its page reads the API as same-origin.
    for host in ("evil.example", f"evil.example:{open_server.port}", "127.0.0.1.evil.example"):
        response = httpx.get(open_server.base_url + "/papers", headers={"Host": host})
        assert "--allowed-host" in error_of(response, 403, "host_not_allowed")["message"]
    status, body = raw_request(open_server.port, "GET /v1/papers HTTP/1.1\r\nHost: \r\nConnection: close\r\n")
    assert status in (400, 403) and b'"papers"' not in body
    status, body = raw_request(open_server.port, "GET /v1/papers HTTP/1.0\r\n")  # no Host at all
    assert status in (400, 403) and b'"papers"' not in body

    for host in (f"127.0.0.1:{open_server.port}", f"localhost:{open_server.port}", "[::1]", "10.1.2.3:8000"):
        assert httpx.get(open_server.base_url + "/papers", headers={"Host": host}).status_code == 200, host

    named = Settings(data_dir=tmp_path / "named", allowed_hosts="papers.example.org")
    with running(create_app(named, token="", allowed_hosts=["chat.internal"])) as server:
        for host in ("papers.example.org", "chat.internal:8000"):
            assert httpx.get(server.base_url + "/papers", headers={"Host": host}).status_code == 200
        assert httpx.get(server.base_url + "/papers", headers={"Host": "evil.example"}).status_code == 403


# --- row 3: chunked bodies hold to the limit -------------------------------------------------
@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/ingest"])
def test_a_chunked_body_over_the_limit_is_413_before_it_is_read_whole(server: RunningServer, route: str) -> None:
    chunk = b"x" * (1024 * 1024)
    content_type = "application/json" if "chat" in route else "multipart/form-data; boundary=b"
    head = (
        f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n"
    )
    sent = 0
    reply = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(head.encode() + b"\r\n")
        if "ingest" in route:  # a valid form whose one file is too large
            part = b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n\r\n'
            connection.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        try:
            while sent < 60 * 1024 * 1024:  # 60 MB, more than any limit
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            connection.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed while we were still sending: what we want
        try:
            while part := connection.recv(65536):
                reply += part
        except OSError:
            pass
    assert reply.startswith(b"HTTP/1.1 413"), reply[:300]
    body = json.loads(reply.partition(b"\r\n\r\n")[2])
    assert body["error"]["code"] == "too_large" and "larger than" in body["error"]["message"]


# --- row 4: a stream opens at once and keeps the client informed ------------------------------
def test_a_stream_sends_headers_and_a_comment_before_the_model_writes(
    http: httpx.Client, models: dict[str, FakeLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    late: SlowStartLLM = models["fake/late"]  # type: ignore[assignment]
    monkeypatch.setattr(late, "first_s", 3.0)
    late.enqueue(GROUNDED)
    payload = {"model": "paper-assistant:fake/late", "messages": [user(ATLAS_QUESTION)], "stream": True}
    started = time.monotonic()
    with http.stream("POST", "/v1/chat/completions", json=payload) as response:
        headers_after = time.monotonic() - started
        parts = response.iter_raw()
        first = next(parts)
        first_after = time.monotonic() - started
        rest = b"".join(parts)
    assert headers_after < 1.5 and first_after < 1.5, (headers_after, first_after)
    assert first.startswith(b": ") and b'"role":"assistant"' in first
    assert b"[DONE]" in rest and b"aTLAS" in rest


def test_keep_alive_counts_the_silence_the_client_sees(
    http: httpx.Client, models: dict[str, FakeLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A model writing a word every 0.1 s: a checked stream holds the words back, so the client
    # sees nothing until the check; the keep-alive must still come every KEEP_ALIVE_S.
    monkeypatch.setattr(api_app, "KEEP_ALIVE_S", 0.5)
    late: SlowStartLLM = models["fake/late"]  # type: ignore[assignment]
    monkeypatch.setattr(late, "delay_s", 0.1)
    late.enqueue(" ".join([GROUNDED] * 4))  # 40 words, about 4 s
    payload = {"model": "paper-assistant:fake/late", "messages": [user(ATLAS_QUESTION)], "stream": True}
    arrivals: list[tuple[float, bytes]] = []
    with http.stream("POST", "/v1/chat/completions", json=payload) as response:
        for part in response.iter_raw():
            arrivals.append((time.monotonic(), part))
    body = b"".join(part for _, part in arrivals)
    assert body.count(b": keep-alive") >= 4, body[:400]
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(arrivals)]
    assert max(gaps) < 1.5, gaps


# --- row 5: text that is not text, and unexpected failures ----------------------------------
@pytest.mark.parametrize("stream", [False, True])
def test_a_lone_surrogate_is_400_naming_the_character(http: httpx.Client, echo: FakeLLM, stream: bool) -> None:
    body = json.dumps(  # json.dumps writes "\ud800" as the escape, as a hostile client does
        {"model": "paper-assistant", "messages": [user("What is \ud800 MUSCLE?")], "stream": stream}
    )
    response = http.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    error = error_of(response, 400, "invalid_input")
    assert "U+D800" in error["message"] and "messages[0]" in error["message"]
    assert echo.history == [], "the model is not called"


@pytest.mark.parametrize("stream", [False, True])
def test_an_unexpected_failure_is_500_and_its_traceback_is_logged_on_the_server(
    http: httpx.Client, echo: FakeLLM, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    echo.enqueue(TypeError("TextEncodeInput must be Union[TextInputSequence, Tuple[InputSequence, InputSequence]]"))
    payload = {"model": "paper-assistant", "messages": [user(ATLAS_QUESTION)], "stream": stream}
    with caplog.at_level(logging.ERROR, logger="assistant.api"):
        response = http.post("/v1/chat/completions", json=payload)
    if stream:
        events = [line for line in response.text.splitlines() if line.startswith('data: {"error"')]
        error = json.loads(events[0].removeprefix("data: "))["error"]
    else:
        error = error_of(response, 500, "internal")
    assert "TypeError" in error["message"] and "Traceback" not in response.text
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Traceback (most recent call last)" in logged and "TypeError: TextEncodeInput" in logged


# --- row 10: a blank token is an invalid setting ---------------------------------------------
@pytest.mark.parametrize("token", ["", "   ", " padded "])
def test_a_blank_or_padded_token_is_refused_at_start(
    token: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASSISTANT_API_TOKEN", token)
    with socket.socket() as busy:  # should the token pass, serving stops at the port, not forever
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["serve", "--address", "127.0.0.1", "--port", str(busy.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert "ASSISTANT_API_TOKEN" in err and "invalid setting" in err and "Traceback" not in err


def test_serve_passes_allowed_hosts_on_and_refuses_what_is_no_host_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASSISTANT_ALLOWED_HOSTS", "papers.example.org")
    served: list[dict[str, Any]] = []
    monkeypatch.setattr("assistant.api.serve", lambda *args, **kwargs: served.append(kwargs))
    port = str(free_port())
    argv = ["serve", "--address", "0.0.0.0", "--port", port, "--allowed-host", "Chat.Internal"]
    assert main(argv) == 0
    assert served[0]["allowed_hosts"] == ["chat.internal"]
    err = capsys.readouterr().err
    assert "answering to IP addresses and localhost, and to chat.internal, papers.example.org" in err
    assert main(["serve", "--port", port, "--allowed-host", "http://evil.example/x"]) == 2
    assert "not a host name" in capsys.readouterr().err


# --- row 11: stopping `paper-assistant app` stops Streamlit too -------------------------------
def test_sigterm_to_the_app_command_stops_the_child_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    child = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys; from assistant.cli import run_until_stopped; "
            f"sys.exit(run_until_stopped([sys.executable, '-c', {child!r}], dict(os.environ)))",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.05)
    child_pid = int(pid_file.read_text())
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(20) == 128 + signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(child_pid, 0)  # gone (reaped by its parent), not re-parented to PID 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_kill_of_paper_assistant_app_leaves_no_streamlit_answering(sample_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("ASSISTANT_")}
    env |= {"ASSISTANT_DATA_DIR": str(sample_settings.store.data_dir), "ASSISTANT_MODEL": "fake/quote"}
    env["PYTHONPATH"] = str(ROOT)
    app = subprocess.Popen(
        [sys.executable, "-m", "assistant", "app", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert app.poll() is None and time.monotonic() < deadline
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        app.send_signal(signal.SIGTERM)
        assert app.wait(30) == 128 + signal.SIGTERM
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
    finally:
        if app.poll() is None:
            app.kill()


# --- row 12: a closed pipe ends a command quietly ---------------------------------------------
@pytest.mark.parametrize("command", [["papers", "--json"], ["search", "task vectors", "--json", "-k", "20"]])
def test_a_closed_pipe_ends_the_command_quietly(sample_settings: Settings, command: list[str]) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ASSISTANT_")}
    env |= {"ASSISTANT_DATA_DIR": str(sample_settings.store.data_dir), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "assistant", *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    process.stdout.close()  # `| head -c 0`: the reader is gone before the first line
    _, err = process.communicate(timeout=120)
    assert process.returncode in (0, 141), err
    assert err.decode() == "", err


# --- tidy: what a reply and a listing show ------------------------------------------------------
def test_papers_name_their_source_file_not_a_path_of_the_server(http: httpx.Client) -> None:
    sources = {paper["source"] for paper in http.get("/v1/papers").json()["papers"]}
    assert sources == {"daily_papers_aug19.txt"}


def test_a_notice_says_what_was_removed_without_repeating_it(http: httpx.Client, echo: FakeLLM) -> None:
    echo.enqueue(f"{GROUNDED} <img src=x onerror=alert(1)> See [code](https://github.com/evil/atlas).")
    reply = http.post("/v1/chat/completions", json={"model": "paper-assistant", "messages": [user(ATLAS_QUESTION)]})
    notices = " ".join(reply.json()["notices"])
    assert "onerror" not in notices and "github.com/evil" not in notices and "<" not in notices
    assert "1 piece of HTML" in notices and "1 link" in notices


def test_citation_json_written_by_the_model_is_taken_out_of_the_text(http: httpx.Client, echo: FakeLLM) -> None:
    fake = '{"citations": [{"n": 1, "paper_id": "2407.99999", "title": "Invented"}]}'
    echo.enqueue(f"{GROUNDED}\n\n{fake}")
    reply = http.post("/v1/chat/completions", json={"model": "paper-assistant", "messages": [user(ATLAS_QUESTION)]})
    body = reply.json()
    content = body["choices"][0]["message"]["content"]
    assert "citations" not in content and "Invented" not in content and "aTLAS" in content
    assert not any("citations" in sentence for sentence in body["unsupported"])


def test_unchecked_stream_sends_images_and_links_inert(http: httpx.Client, echo: FakeLLM) -> None:
    echo.enqueue(f"{GROUNDED} ![pixel](http://evil.example/p.png) [click](javascript:alert(1)) <img src=x>")
    payload = {
        "model": "paper-assistant",
        "messages": [user(ATLAS_QUESTION)],
        "stream": True,
        "stream_unchecked": True,
    }
    with http.stream("POST", "/v1/chat/completions", json=payload) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: {")]
    content = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events if '"choices":[{' in e)
    live = content.split("---")[0]
    assert "![pixel](" not in live and "](javascript:" not in live and re.search(r"(?<!\\)<img", live) is None
    assert "!\\[pixel]\\(http://evil.example/p.png)" in live and "\\<img" in live
    final = json.loads(events[-1])["final_text"]
    assert "evil.example" not in final and "javascript" not in final


@pytest.mark.parametrize(
    ("pieces", "shown"),
    [
        (["a ![x](", "http://e/p.png) b"], "a !\\[x]\\(http://e/p.png) b"),
        (["a !", "[x]", "(y) <", "img> 3 < 4 [1]"], "a !\\[x]\\(y) \\<img> 3 < 4 [1]"),
        (["plain [1].", " more [2]"], "plain [1]. more [2]"),
    ],
)
def test_inert_markdown_escapes_across_piece_boundaries(pieces: list[str], shown: str) -> None:
    from assistant.api.chat import InertMarkdown

    inert = InertMarkdown()
    assert "".join(inert.feed(piece) for piece in pieces) + inert.flush() == shown
