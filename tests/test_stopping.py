"""A reader that leaves stops a comparison, a summary and a digest, between model calls and inside one.

A comparison reads each paper's reply whole (``.result``): no piece reaches the reader until
the table is done, so a stop checked only between the pieces the reader sees came three
model calls late (issue 19: a client that left 2 s into a four-paper comparison, and the
local model's next question waited 25.9 s). Here a stop is asked while the first model call
is being written (the fake model) or still waited for (a loopback server), at the feature
level, through ``respond`` and through the HTTP API, and no further model call may start.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from api_fixtures import RunningServer, SlowQuotingLLM, running
from reliability_fixtures import PLANTED_KEY, Reply, fake_openai_server

from assistant.api import create_app
from assistant.llm import inject
from assistant.llm.litellm_backend import LiteLLMBackend
from assistant.service import PaperAssistant
from assistant.streaming import Stopped, Streamed

COMPARE = "Compare MUSCLE, aTLAS, ZIP-FIT and Bonito"
PAPERS = ["MUSCLE", "aTLAS", "ZIP-FIT", "Bonito"]
AFTER_A_PAPER_S = 12.0
"""Long enough for a comparison that was not stopped to ask for its second paper after the first
one's reply came (its cells are checked against the abstract in between: 4.7 s on a busy machine)."""


@pytest.fixture(autouse=True)
def planted_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)


def stop_once_asked(stream: Streamed[object], asked: Callable[[], int]) -> tuple[BaseException | None, float]:
    """Read ``stream`` in a thread, stop it once the model was asked once; what it raised, and how fast."""
    raised: list[BaseException] = []

    def read() -> None:
        try:
            _ = stream.result
        except BaseException as exc:
            raised.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while asked() < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert asked() == 1, "the model was asked"
    stopped_at = time.monotonic()
    stream.stop()
    reader.join(30)
    assert not reader.is_alive()
    return (raised[0] if raised else None), time.monotonic() - stopped_at


@pytest.fixture
def slow_fake(sample_store, tmp_path) -> Iterator[tuple[PaperAssistant, SlowQuotingLLM]]:
    fake = SlowQuotingLLM(delay_s=0.05)
    settings = sample_store.settings.replace(data_dir=tmp_path)  # no summary cached by other tests
    yield PaperAssistant(settings, store=sample_store, backend=fake), fake


@pytest.mark.parametrize("feature", ["comparison", "summary", "digest"])
def test_a_stopped_feature_asks_the_model_no_more(slow_fake, feature: str) -> None:
    assistant, fake = slow_fake
    fake.default_reply = " ".join(["aTLAS scales parameter blocks [1]."] * 30)  # also for prompts without sources
    start = {
        "comparison": lambda: assistant.stream_comparison([assistant.paper(name) for name in PAPERS]),
        "summary": lambda: assistant.stream_summary(assistant.paper("aTLAS")),
        "digest": assistant.stream_digest,
    }[feature]
    error, took = stop_once_asked(start(), lambda: len(fake.history))
    assert isinstance(error, Stopped), error
    assert took < 2, took
    time.sleep(0.3)
    assert len(fake.history) == 1, "no model call after the stop"


@pytest.mark.slow
def test_a_stopped_comparison_stops_inside_a_call_to_a_slow_server(sample_store) -> None:
    with fake_openai_server(default=Reply("slow", delay_s=3)) as server:
        settings = sample_store.settings.replace(model="openai/fake", api_base=server.api_base, max_retries=0)
        assistant = PaperAssistant(settings, store=sample_store, backend=LiteLLMBackend.from_settings(settings))
        turn = assistant.respond(COMPARE)
        error, took = stop_once_asked(turn, lambda: len(server.requests))
        assert isinstance(error, Stopped), error
        assert took < 1.5, "stopped while the server was still silent"
        time.sleep(3.5)  # the first reply comes and is dropped; no other is asked for
        assert len(server.requests) == 1


def _leave_once_asked(api: RunningServer, asked: Callable[[], int], *, stream: bool) -> None:
    """Ask for the comparison over a raw connection and close it once the model was asked once."""
    body = json.dumps(
        {"model": "paper-assistant", "messages": [{"role": "user", "content": COMPARE}], "stream": stream}
    ).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{api.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", api.port), timeout=60) as connection:
        connection.sendall(head.encode() + body)
        deadline = time.monotonic() + 60
        while asked() < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert asked() == 1, "the model was asked"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_a_client_leaving_a_comparison_stops_the_model_calls(sample_store, stream: bool) -> None:
    with fake_openai_server(default=Reply("slow", delay_s=2, text='{"problem": "Data selection."}')) as server:
        settings = sample_store.settings.replace(model="openai/fake", api_base=server.api_base, max_retries=0)
        with running(create_app(settings, store=sample_store, token="")) as api:
            _leave_once_asked(api, lambda: len(server.requests), stream=stream)
            # Were it not stopped, the second paper's request would come once the first reply (2 s) is
            # checked: 6.9 s after the first was asked, measured on a busy 2-core machine.
            time.sleep(AFTER_A_PAPER_S)
            assert len(server.requests) == 1, [r.body.get("max_tokens") for r in server.requests]
            assert httpx.get(api.url + "/healthz").json()["status"] == "ok"


@pytest.mark.slow
def test_a_client_leaving_a_comparison_stops_the_fake_model_too(sample_store) -> None:
    fake = SlowQuotingLLM(delay_s=0.01)
    fake.enqueue(" ".join(['{"problem": "Model updates."}'] * 100))  # the first paper's reply: about 3 s
    inject("fake/slow-compare", fake)
    try:
        settings = sample_store.settings.replace(model="fake/slow-compare")
        with running(create_app(settings, store=sample_store, token="")) as api:
            _leave_once_asked(api, lambda: len(fake.history), stream=True)
            time.sleep(3 + AFTER_A_PAPER_S)  # the first reply (3 s), then its cells checked
            assert len(fake.history) == 1
    finally:
        inject("fake/slow-compare", None)
