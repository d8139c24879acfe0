"""Helpers shared by the reliability and security tests (plain code, imported by the test modules).

:class:`FakeOpenAIServer` is a tiny OpenAI-compatible chat server on 127.0.0.1 built on
``http.server``: each request is answered by the next scripted behaviour (a streamed
reply, an HTTP error, an empty reply, a stream that breaks off, a stall, a slow first piece,
a reply that echoes the request's headers, one that drips a byte at a time, one that
ignores ``max_tokens`` and floods), and every request is recorded, so a test can count
retries, see the headers that were sent and how much of a flood was read. A new hostile
model is one more ``Reply(kind=...)``.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PLANTED_KEY = "sk-test-PLANTED-123456"
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Reply:
    """What the fake server does with one request.

    kind: ``stream`` (the text, word by word, then [DONE]), ``status`` (an HTTP error whose
    JSON body echoes the Authorization header, as careless servers do), ``empty`` (a
    stream with no text), ``cut`` (``pieces`` words, then the connection drops without
    finishing the chunked body), ``stall`` (``pieces`` words, then silence for
    ``delay_s``), ``slow`` (silence for ``delay_s`` before anything), ``echo`` (the text,
    then the request's Authorization header, in pieces of ``chunk_chars`` characters so
    that the key straddles them), ``drip`` (``pieces`` words, then the rest of the stream one byte every
    ``delay_s``: never silent long enough for a read timeout), ``flood`` (``size`` characters of text
    whatever ``max_tokens`` says, stopping only when the client closes).
    """

    kind: str = "stream"
    text: str = "The collection does not say."
    status: int = 200
    pieces: int = 3
    delay_s: float = 0.0
    chunk_chars: int = 5
    size: int = 6_000_000


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]
    received_at: float = field(default_factory=time.monotonic)
    """When the request arrived (``time.monotonic``): time a reply from here, not from a cold client."""
    sent_chars: int = 0
    """Characters of reply text written (for a flood: before the client closed)."""
    client_closed: bool = False
    """The client closed the connection before the reply was finished."""
    finished: threading.Event = field(default_factory=threading.Event)
    """Set when the server is done with the request (replied, or saw the client go)."""


class _Server(ThreadingHTTPServer):
    """A client that drops its keep-alive connection (a browser, a cancelled stream) is not an error."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class FakeOpenAIServer:
    """An OpenAI-compatible ``/v1/chat/completions`` on loopback, scripted reply by reply."""

    default: Reply = field(default_factory=Reply)
    replies: deque[Reply] = field(default_factory=deque)
    reply_for: Callable[[Recorded], Reply] | None = None
    """Decides a reply from the request, when none is queued (a model that obeys what it reads)."""
    requests: list[Recorded] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_base(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def enqueue(self, *replies: Reply) -> FakeOpenAIServer:
        with self._lock:
            self.replies.extend(replies)
        return self

    def _next(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            if self.replies:
                return self.replies.popleft()
        return self.reply_for(recorded) if self.reply_for is not None else self.default

    def start(self) -> FakeOpenAIServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:  # /v1/models, for probes
                self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                headers = {name.lower(): value for name, value in self.headers.items()}
                self.recorded = Recorded(self.path, headers, body)
                reply = owner._next(self.recorded)
                try:
                    self._reply(reply, body)
                except (BrokenPipeError, ConnectionResetError):
                    self.recorded.client_closed = True
                    self.close_connection = True
                finally:
                    self.recorded.finished.set()

            def _reply(self, reply: Reply, body: dict[str, Any]) -> None:
                if not body.get("stream") and reply.kind in ("stream", "empty", "slow"):
                    # litellm asks again without streaming when a stream brought no text.
                    time.sleep(reply.delay_s)
                    self._completion("" if reply.kind == "empty" else reply.text)
                elif reply.kind == "slow":
                    time.sleep(reply.delay_s)
                    self._stream(reply.text.split(" "), finish=True)
                elif reply.kind == "status":
                    credential = self.headers.get("Authorization", "")
                    message = {
                        401: f"Incorrect API key provided: {credential}",
                        429: "Rate limit reached for requests. Please try again in 20s.",
                    }.get(reply.status, f"upstream failure (auth was {credential})")
                    kind = {401: "invalid_request_error", 429: "rate_limit_error"}.get(reply.status, "server_error")
                    self._json(reply.status, {"error": {"message": message, "type": kind, "code": str(reply.status)}})
                elif reply.kind == "empty":
                    self._stream([], finish=True)
                elif reply.kind == "cut":
                    self._stream(reply.text.split(" ")[: reply.pieces], finish=False)
                elif reply.kind == "stall":
                    self._stream(reply.text.split(" ")[: reply.pieces], finish=False, close=False)
                    time.sleep(reply.delay_s)
                    self.close_connection = True
                elif reply.kind == "echo":
                    said = f"{reply.text} The request carried Authorization: {self.headers.get('Authorization', '')}."
                    size = reply.chunk_chars
                    self._stream([said[i : i + size] for i in range(0, len(said), size)], finish=True, spaced=False)
                elif reply.kind == "drip":
                    self._drip(reply)
                elif reply.kind == "flood":
                    self._flood(reply)
                else:
                    self._stream(reply.text.split(" "), finish=True)

            def _drip(self, reply: Reply) -> None:
                """The first ``pieces`` words at once, then the rest of a valid stream one byte every ``delay_s``."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake"}
                words = reply.text.split(" ")
                first, rest = " ".join(words[: reply.pieces]), " ".join(words[reply.pieces :])
                if first:
                    delta = {"content": first + " "}
                    event = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                event = {**base, "choices": [{"index": 0, "delta": {"content": rest}, "finish_reason": "stop"}]}
                data = f"data: {json.dumps(event)}\n\ndata: [DONE]\n\n"
                for byte in data.encode():
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(reply.delay_s)
                self.recorded.sent_chars = len(reply.text)

            def _flood(self, reply: Reply) -> None:
                """``size`` characters of text in pieces of 1,000, whatever max_tokens asked."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake"}
                words = (reply.text + " ") * (1000 // (len(reply.text) + 1) + 1)
                piece = words[:1000]
                while self.recorded.sent_chars < reply.size:
                    delta = {"content": piece}
                    self._event({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                    self.recorded.sent_chars += len(piece)
                self._event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                self._event("[DONE]")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _completion(self, text: str) -> None:
                self._json(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "fake",
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": len(text.split()), "total_tokens": 1},
                    },
                )

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _event(self, payload: dict[str, Any] | str) -> None:
                text = payload if isinstance(payload, str) else json.dumps(payload)
                self._chunk(f"data: {text}\n\n".encode())

            def _stream(self, words: Sequence[str], *, finish: bool, close: bool = True, spaced: bool = True) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake"}
                self._event({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]})
                for i, word in enumerate(words):
                    piece = word if i == len(words) - 1 or not spaced else word + " "
                    self._event({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                    self.recorded.sent_chars += len(piece)
                    time.sleep(0.01)
                if finish:
                    self._event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                    self._event("[DONE]")
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                elif close:
                    # The body is chunked and its last chunk never comes: the peer sees a broken stream.
                    self.close_connection = True
                    self.connection.shutdown(2)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@contextmanager
def fake_openai_server(*replies: Reply, default: Reply | None = None) -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer(default=default or Reply()).enqueue(*replies).start()
    try:
        yield server
    finally:
        server.stop()


# --- the CLI as a real subprocess -------------------------------------------------------------


def cli_env(**extra: str) -> dict[str, str]:
    """The current environment (already isolated by conftest) plus ``extra``."""
    env = dict(os.environ)
    env.update(extra)
    env.setdefault("PYTHONPATH", str(REPO_ROOT))
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        capture_output=True,
        text=True,
        env=env or cli_env(),
        timeout=timeout,
        cwd=REPO_ROOT,
    )


_PROGRESS = re.compile(r"(\d+)/(\d+) chunks")


@dataclass
class ProgressWatcher:
    """A CLI subprocess whose stderr is a terminal, so that it draws its progress bar."""

    process: subprocess.Popen[bytes]
    master: int
    output: bytearray = field(default_factory=bytearray)

    def read(self, timeout_s: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout_s)
        if ready:
            try:
                self.output.extend(os.read(self.master, 65536))
            except OSError:  # the child closed the terminal
                time.sleep(timeout_s)

    def progress(self) -> tuple[int, int] | None:
        found = _PROGRESS.findall(self.output.decode(errors="replace"))
        return (int(found[-1][0]), int(found[-1][1])) if found else None

    def wait_for_progress(self, minimum_done: int, timeout_s: float) -> tuple[int, int]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.read(0.2)
            seen = self.progress()
            if seen is not None and seen[0] >= minimum_done:
                return seen
            if self.process.poll() is not None:
                self.read(0.2)
                raise AssertionError(
                    f"the ingest exited ({self.process.returncode}) before writing; it said:\n"
                    + self.output.decode(errors="replace")[-3000:]
                )
        raise AssertionError("no progress within the time limit:\n" + self.output.decode(errors="replace")[-3000:])

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        os.close(self.master)

    def finish(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None and time.monotonic() < deadline:
            self.read(0.2)
        if self.process.poll() is None:
            self.process.kill()
        self.read(0.1)
        code = self.process.wait(30)
        os.close(self.master)
        return code


def start_with_terminal(command: Sequence[str], env: dict[str, str] | None = None) -> ProgressWatcher:
    master, slave = pty.openpty()
    process = subprocess.Popen(
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env=env or cli_env(),
        cwd=REPO_ROOT,
    )
    os.close(slave)
    return ProgressWatcher(process, master)


def synthetic_papers_jsonl(path: Path, count: int, *, start: int = 0, sentences: int = 6) -> list[str]:
    """``count`` distinct papers as JSON Lines; returns their titles."""
    topics = ["sparse attention", "task vectors", "data selection", "diffusion sampling", "code generation",
              "continual learning", "retrieval augmentation", "speech recognition", "graph networks", "robot control"]  # fmt: skip
    titles: list[str] = []
    with path.open("w", encoding="utf-8") as out:
        for number in range(start, start + count):
            topic = topics[number % len(topics)]
            title = f"Synthetic Study {number}: {topic.title()} at Scale {number * 7 % 1000}"
            abstract = " ".join(
                f"Finding {k} of study {number} shows that {topic} improves benchmark {number % 37} by {k + number % 11} points."
                for k in range(sentences)
            )
            out.write(json.dumps({"title": title, "abstract": abstract}) + "\n")
            titles.append(title)
    return titles
