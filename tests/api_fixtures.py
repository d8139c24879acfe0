"""Helpers for the HTTP API tests: a real uvicorn server in a thread, and scripted models."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

from assistant.errors import LLMError
from assistant.llm import Completion, FakeLLM, QuotingFakeLLM
from assistant.schema import Message, Usage
from assistant.streaming import Streamed

TOKEN = "test-token-7f3a91c2"


@dataclass
class RunningServer:
    app: FastAPI
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


@contextmanager
def running(app: FastAPI) -> Iterator[RunningServer]:
    """``app`` served by uvicorn on a free loopback port, in a thread, until the block ends."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningServer(app, port)
    finally:
        server.should_exit = True
        thread.join(10)


class SlowQuotingLLM(QuotingFakeLLM):
    """The quoting demo model, writing one word every ``delay_s``: streams that overlap in time."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    def generate(self, messages: Sequence[Message], **options: Any) -> Streamed[Completion]:
        inner = super().generate(messages, **options)

        def pieces() -> Generator[str, None, Completion]:
            for piece in inner:
                time.sleep(self.delay_s)
                yield piece
            return inner.result

        return Streamed(pieces())


class LockedSlowLLM(FakeLLM):
    """Like the local model: one reply at a time under a lock taken when the reply starts and
    released only when its generator ends (finished or closed); one word every ``delay_s``."""

    def __init__(self, *, model: str, delay_s: float = 0.05, busy_after_s: float = 5.0) -> None:
        super().__init__(model=model)
        self.model_lock = threading.Lock()
        self.delay_s = delay_s
        self.busy_after_s = busy_after_s
        self.words_written = 0
        self.closed = threading.Event()
        self.finished = threading.Event()

    def generate(self, messages: Sequence[Message], **options: Any) -> Streamed[Completion]:
        with self._lock:
            self.history.append(list(messages))
            reply = self._queue.popleft() if self._queue else self.default_reply
        self.closed.clear()
        self.finished.clear()

        def pieces() -> Generator[str, None, Completion]:
            if not self.model_lock.acquire(timeout=self.busy_after_s):
                raise LLMError(f"the model was busy with another reply for {self.busy_after_s:g} s", kind="timeout")
            try:
                for word in str(reply).split(" "):
                    time.sleep(self.delay_s)
                    self.words_written += 1
                    yield word + " "
                self.finished.set()
            except GeneratorExit:
                self.closed.set()
                raise
            finally:
                self.model_lock.release()
            return Completion(text=str(reply), model=self.model, usage=Usage(completion_tokens=len(str(reply).split())))

        return Streamed(pieces())


class BrokenMidStreamLLM(FakeLLM):
    """Writes a few words, then loses its connection."""

    def generate(self, messages: Sequence[Message], **options: Any) -> Streamed[Completion]:
        self.history.append(list(messages))

        def pieces() -> Generator[str, None, Completion]:
            yield "aTLAS combines "
            yield "parameter blocks "
            raise LLMError("lost the connection to the model mid-reply: check that Ollama is running")

        return Streamed(pieces())
