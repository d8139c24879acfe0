"""The OpenAI-compatible HTTP API, served for real by uvicorn on loopback.

The server runs over the sample collection with scripted models: ``fake/quote`` (answers
by quoting its first source, cited; slowed to one word per 10 ms so streams overlap),
``fake/echo`` (a FakeLLM whose replies a test queues and whose prompts it reads),
``fake/slow`` (one reply at a time under a lock, like the local model) and
``fake/broken`` (fails mid-reply). Clients are the official ``openai`` package and raw
httpx, with the bearer token the server was started with.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from api_fixtures import TOKEN, BrokenMidStreamLLM, LockedSlowLLM, RunningServer, SlowQuotingLLM, running
from llm_fixtures import SMOLLM2, local_model_unavailable

from assistant.api import REPLACED_NOTE, create_app
from assistant.api import app as api_app
from assistant.cli import main
from assistant.errors import LLMError
from assistant.llm import FakeLLM, inject
from assistant.llm.local import LocalCallConfig, local_model
from assistant.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
ATLAS = "Knowledge Composition using Task Vectors with Learned Anisotropic Scaling"
ATLAS_QUESTION = "How does aTLAS combine task vectors?"
GROUNDED = "aTLAS linearly combines parameter blocks with different learned coefficients [1]."
VARIANTS = ("fake/echo", "fake/slow", "fake/broken")


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    return {
        "fake/quote": SlowQuotingLLM(delay_s=0.01),
        "fake/echo": FakeLLM(model="fake/echo"),
        "fake/slow": LockedSlowLLM(model="fake/slow"),
        "fake/broken": BrokenMidStreamLLM(model="fake/broken"),
    }


@pytest.fixture(scope="module")
def server(sample_store, models: dict[str, Any]) -> Iterator[RunningServer]:
    settings = sample_store.settings.replace(model="fake/quote", fallback_models=list(VARIANTS))
    for name, backend in models.items():
        inject(name, backend)
    try:
        with running(create_app(settings, store=sample_store, token=TOKEN)) as running_server:
            yield running_server
    finally:
        for name in models:
            inject(name, None)


@pytest.fixture
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=TOKEN, max_retries=0, timeout=60)


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as http_client:
        yield http_client


@pytest.fixture
def echo(models: dict[str, Any]) -> Iterator[FakeLLM]:
    fake: FakeLLM = models["fake/echo"]
    fake.clear()
    yield fake
    fake.clear()


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def sse_events(body: str) -> list[str]:
    """The data of each SSE event, checking that every event is exactly one ``data:`` line
    (comments, ``: keep-alive``, are not events)."""
    assert body.endswith("\n\n")
    events = [event for event in body[:-2].split("\n\n") if not event.startswith(":")]
    for event in events:
        assert event.startswith("data: ") and "\n" not in event, event
    return [event.removeprefix("data: ") for event in events]


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code", "param"} and error["message"]
    assert "Traceback" not in response.text
    if code is not None:
        assert error["code"] == code, error
    return error


# --- models -----------------------------------------------------------------------------------
def test_models_lists_the_assistant_and_its_allowed_variants(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert ids[0] == "paper-assistant"
    assert {f"paper-assistant:{m}" for m in ("fake/quote", *VARIANTS)} <= set(ids)
    assert all(model_id == "paper-assistant" or model_id.startswith("paper-assistant:") for model_id in ids)
    assert client.models.retrieve("paper-assistant:fake/echo").id == "paper-assistant:fake/echo"

    with pytest.raises(openai.NotFoundError) as unknown:
        client.models.retrieve("paper-assistant:openai/gpt-4o")
    assert unknown.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError, match="GET /v1/models lists them"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[user(ATLAS_QUESTION)])


# --- chat -------------------------------------------------------------------------------------
def test_whole_answer_carries_citations_and_extras(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="paper-assistant", messages=[user(ATLAS_QUESTION)])
    assert completion.id.startswith("chatcmpl-") and completion.object == "chat.completion"
    assert completion.model == "paper-assistant" and completion.created > 0
    choice = completion.choices[0]
    assert choice.index == 0 and choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert "task vector" in choice.message.content and "[1]" in choice.message.content
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens

    extra = completion.model_extra
    assert extra["kind"] == "answer" and extra["refused"] is False and extra["unsupported"] == []
    assert extra["answered_by"] == "fake/quote" and extra["comparison"] is None
    first = extra["citations"][0]
    assert first["n"] == 1 and first["title"] == ATLAS and "url" in first and first["paper_id"]


def test_streamed_answer_follows_openais_chunks_and_ends_with_the_extras(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="paper-assistant", messages=[user(ATLAS_QUESTION)], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert len({chunk.id for chunk in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert all(chunk.object == "chat.completion.chunk" and chunk.model == "paper-assistant" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    content = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) == 1, "by default the checked text comes in one piece"

    finish, usage = chunks[-2], chunks[-1]
    assert finish.choices[0].finish_reason == "stop" and finish.choices[0].delta.content is None
    assert [c.choices[0].finish_reason for c in chunks[:-2]] == [None] * (len(chunks) - 2)
    assert finish.model_extra["kind"] == "answer" and finish.model_extra["citations"][0]["title"] == ATLAS
    assert finish.model_extra["streamed_text_replaced"] is False and finish.model_extra["final_text"] == content[0]
    assert usage.choices == [] and usage.usage.completion_tokens > 0

    whole = client.chat.completions.create(model="paper-assistant", messages=[user(ATLAS_QUESTION)])
    assert whole.choices[0].message.content == content[0]


def test_stream_unchecked_sends_the_words_as_written(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="paper-assistant", messages=[user(ATLAS_QUESTION)], stream=True, extra_body={"stream_unchecked": True}
        )
    )
    content = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) > 5, "the words arrive as they are written"
    extra = chunks[-1].model_extra
    assert extra["streamed_text_replaced"] is False and extra["final_text"] == "".join(content)
    assert extra["citations"][0]["title"] == ATLAS


def test_a_follow_up_reaches_the_model_with_the_earlier_turn(client: openai.OpenAI, echo: FakeLLM) -> None:
    echo.enqueue(GROUNDED)
    first = client.chat.completions.create(model="paper-assistant:fake/echo", messages=[user(ATLAS_QUESTION)])
    assert first.choices[0].message.content == GROUNDED
    assert first.model_extra["citations"][0]["title"] == ATLAS

    echo.history.clear()
    echo.enqueue("How is aTLAS evaluated?", "It is evaluated on few-shot recognition and test-time adaptation [1].")
    history = [
        {"role": "system", "content": "You are a helpful assistant."},
        user(ATLAS_QUESTION),
        {"role": "assistant", "content": GROUNDED},
        user("and how is it evaluated?"),
    ]
    follow_up = client.chat.completions.create(model="paper-assistant:fake/echo", messages=history)
    rewrite_prompt = echo.history[0][-1].content
    assert ATLAS_QUESTION in rewrite_prompt and ATLAS in rewrite_prompt, "the earlier turn reached the model"
    assert "aTLAS" in echo.history[-1][-1].content
    assert follow_up.model_extra["citations"][0]["title"] == ATLAS
    assert "few-shot recognition" in follow_up.choices[0].message.content

    # A follow-up that names the papers of the earlier reply by position is routed like in the app.
    echo.enqueue("Too short.")
    summary = client.chat.completions.create(
        model="paper-assistant:fake/echo", messages=[*history[:3], user("summarize the first one")]
    )
    assert summary.model_extra["kind"] == "summary" and summary.model_extra["citations"][0]["title"] == ATLAS


def test_a_comparison_carries_its_table(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="paper-assistant", messages=[user("compare ZIP-FIT and Bonito")], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("| Aspect |")
    extra = chunks[-1].model_extra
    assert extra["kind"] == "comparison" and [c["n"] for c in extra["citations"]] == [1, 2]
    table = extra["comparison"]
    assert table["papers"][0]["title"].startswith("ZIP-FIT")
    assert len(table["aspects"]) >= 3
    assert all(set(aspect["cells"]) == {p["paper_id"] for p in table["papers"]} for aspect in table["aspects"])


def test_an_unanswerable_question_is_declined(client: openai.OpenAI, echo: FakeLLM) -> None:
    completion = client.chat.completions.create(
        model="paper-assistant:fake/echo", messages=[user("federated learning with differential privacy")]
    )
    assert completion.model_extra["refused"] is True and completion.model_extra["kind"] == "refusal"
    assert completion.model_extra["outcome"] == "decline"
    assert completion.model_extra["reason"] in ("no_close_paper", "uncovered_word")  # declined before any model
    assert "does not cover" in completion.choices[0].message.content
    assert completion.model_extra["citations"] == [] and echo.history == []


def test_a_checked_text_that_differs_from_the_live_stream_is_appended_and_sent_as_final_text(
    client: openai.OpenAI, echo: FakeLLM
) -> None:
    ungrounded = "Bananas are yellow and grow in tropical clusters of forty [1]."
    echo.enqueue(ungrounded)
    chunks = list(
        client.chat.completions.create(
            model="paper-assistant:fake/echo",
            messages=[user(ATLAS_QUESTION)],
            stream=True,
            extra_body={"stream_unchecked": True},
        )
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    extra = chunks[-1].model_extra
    assert extra["streamed_text_replaced"] is True
    assert content.startswith(ungrounded) and REPLACED_NOTE in content
    assert content.endswith(extra["final_text"]) and "Bananas" not in extra["final_text"]
    assert "aTLAS" in extra["final_text"] and any("not grounded" in notice for notice in extra["notices"])

    # By default the stream waits for the check: the unchecked text is never sent.
    echo.enqueue(ungrounded)
    chunks = list(
        client.chat.completions.create(model="paper-assistant:fake/echo", messages=[user(ATLAS_QUESTION)], stream=True)
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == chunks[-1].model_extra["final_text"] and "Bananas" not in content
    assert chunks[-1].model_extra["streamed_text_replaced"] is False


def test_a_long_wait_sends_keep_alive_comments_that_clients_skip(
    client: openai.OpenAI, http: httpx.Client, models: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_app, "KEEP_ALIVE_S", 0.05)
    slow: LockedSlowLLM = models["fake/slow"]
    slow.enqueue(GROUNDED)
    payload = {"model": "paper-assistant:fake/slow", "messages": [user(ATLAS_QUESTION)], "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=payload) as response:
        body = response.read().decode()
    assert ": keep-alive\n\n" in body
    assert sse_events(body)[-1] == "[DONE]"
    slow.enqueue(GROUNDED)
    chunks = list(client.chat.completions.create(**payload))
    assert chunks[-1].model_extra["final_text"] == GROUNDED


def test_bad_requests_are_400_in_openais_format(client: openai.OpenAI, http: httpx.Client) -> None:
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model="paper-assistant", messages=[])
    assert empty.value.body["type"] == "invalid_request_error" and empty.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError, match="The message is empty"):
        client.chat.completions.create(model="paper-assistant", messages=[user("   ")])
    with pytest.raises(openai.BadRequestError, match="the last message must be the user's question"):
        client.chat.completions.create(
            model="paper-assistant", messages=[user("hi"), {"role": "assistant", "content": "yes"}]
        )

    error = assert_error(http.post("/v1/chat/completions", json={"model": "paper-assistant", "messages": "hi"}), 400)
    assert error["param"] == "messages" and error["type"] == "invalid_request_error"
    assert_error(
        http.post("/v1/chat/completions", json={"model": "paper-assistant", "messages": [user("x")], "n": 2}), 400
    )
    assert_error(
        http.post("/v1/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"}), 400
    )
    assert_error(http.get("/v1/search", params={"q": "", "k": 3}), 400)
    assert_error(http.get("/v1/search", params={"q": "task vectors", "k": 0}), 400)
    assert_error(http.get("/v1/nowhere"), 404, "not_found")


def test_a_model_failure_is_503_with_the_clis_message_and_no_key(client: openai.OpenAI, echo: FakeLLM) -> None:
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
    echo.enqueue(LLMError(f"openai/gpt-4o-mini rejected the API key {key}: set OPENAI_API_KEY", kind="auth"))
    with pytest.raises(openai.InternalServerError) as failure:
        client.chat.completions.create(model="paper-assistant:fake/echo", messages=[user(ATLAS_QUESTION)])
    assert failure.value.status_code == 503
    body = failure.value.body
    assert body["code"] == "llm_error" and "set OPENAI_API_KEY" in body["message"]
    assert key not in json.dumps(body) and "[redacted]" in body["message"]


def test_a_failure_mid_stream_is_an_error_event(client: openai.OpenAI, http: httpx.Client) -> None:
    payload = {"model": "paper-assistant:fake/broken", "messages": [user(ATLAS_QUESTION)], "stream": True}
    for live, pieces in ((False, []), (True, ["aTLAS combines ", "parameter blocks "])):
        with http.stream("POST", "/v1/chat/completions", json={**payload, "stream_unchecked": live}) as response:
            assert response.status_code == 200
            events = sse_events(response.read().decode())
        assert events[-1] == "[DONE]"
        error = json.loads(events[-2])["error"]
        assert error["code"] == "llm_error" and "check that Ollama is running" in error["message"]
        assert [json.loads(event)["choices"][0]["delta"]["content"] for event in events[1:-2]] == pieces

    with pytest.raises(openai.APIError, match="check that Ollama is running"):
        list(client.chat.completions.create(**payload))


def test_a_wrong_or_missing_token_is_401(server: RunningServer) -> None:
    wrong = openai.OpenAI(base_url=server.base_url, api_key="not-the-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        wrong.models.list()
    assert refused.value.body["type"] == "authentication_error" and refused.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="paper-assistant", messages=[user(ATLAS_QUESTION)])
    for path in ("/v1/models", "/v1/papers", "/openapi.json", "/docs"):
        response = httpx.get(server.url + path)
        assert_error(response, 401, "invalid_api_key")
        assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok", "papers": 46}


def test_without_a_token_the_api_is_open_and_the_env_var_turns_it_on(
    sample_store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with running(create_app(sample_store.settings, store=sample_store, token="")) as open_server:
        assert httpx.get(open_server.base_url + "/models").status_code == 200
    monkeypatch.setenv("ASSISTANT_API_TOKEN", "from-the-environment")
    given = ("store", "ingest", "retrieval", "answer", "llm", "prompts")  # the server section read anew
    settings = Settings(**{name: getattr(sample_store.settings, name) for name in given})
    with running(create_app(settings, store=sample_store)) as guarded:
        assert httpx.get(guarded.base_url + "/models").status_code == 401
        headers = {"Authorization": "Bearer from-the-environment"}
        assert httpx.get(guarded.base_url + "/models", headers=headers).status_code == 200


# --- raw HTTP: SSE framing --------------------------------------------------------------------
def test_sse_framing_is_data_lines_of_json_ending_with_done(http: httpx.Client) -> None:
    payload = {
        "model": "paper-assistant",
        "messages": [user(ATLAS_QUESTION)],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with http.stream("POST", "/v1/chat/completions", json=payload) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    events = sse_events(body)
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(set(c) >= {"id", "object", "created", "model", "choices", "usage"} for c in chunks)
    assert chunks[0]["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None, "logprobs": None}
    ]
    assert [c["usage"] for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


# --- concurrency ------------------------------------------------------------------------------
PARALLEL_QUESTIONS = {
    "How does aTLAS combine task vectors?": ATLAS,
    "How does ZIP-FIT select training data?": "ZIP-FIT: Embedding-Free Data Selection via Compression-Based Alignment",
    "How does MUSCLE reduce negative flips?": "MUSCLE: A Model Update Strategy for Compatible LLM Evolution",
    "What data does Bonito generate?": "Learning to Generate Instruction Tuning Datasets for Zero-Shot Task Adaptation",
    "How does Rep-MTL use task saliency?": "Rep-MTL: Unleashing the Power of Representation-level Task Saliency for Multi-Task Learning",
    "How does TRAD retrieve thoughts?": "TRAD: Enhancing LLM Agents with Step-Wise Thought Retrieval and Aligned Decision",
}


def test_six_parallel_streams_each_get_their_own_answer(
    server: RunningServer, models: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models["fake/quote"], "delay_s", 0.05)  # about 2 s a reply: long enough to overlap
    results: dict[str, dict[str, Any]] = {}

    def ask(question: str) -> None:
        client = openai.OpenAI(base_url=server.base_url, api_key=TOKEN, max_retries=0, timeout=120)
        first: float | None = None
        text: list[str] = []
        stream = client.chat.completions.create(
            model="paper-assistant", messages=[user(question)], stream=True, extra_body={"stream_unchecked": True}
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                first = first or time.monotonic()
                text.append(chunk.choices[0].delta.content)
        results[question] = {
            "text": "".join(text),
            "extra": chunk.model_extra,
            "first": first,
            "done": time.monotonic(),
        }

    threads = [threading.Thread(target=ask, args=(question,)) for question in PARALLEL_QUESTIONS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert set(results) == set(PARALLEL_QUESTIONS)
    for question, title in PARALLEL_QUESTIONS.items():
        extra = results[question]["extra"]
        assert extra["kind"] == "answer" and extra["citations"][0]["title"] == title, question
        assert results[question]["text"] == extra["final_text"]
    runs = sorted(results.values(), key=lambda r: r["first"])
    assert runs[1]["first"] < runs[0]["done"], "the streams ran at the same time, not one after another"


@pytest.mark.parametrize("live", [True, False], ids=["stream_unchecked", "checked"])
def test_a_client_that_disconnects_mid_stream_stops_its_generation(
    server: RunningServer, http: httpx.Client, models: dict[str, Any], live: bool
) -> None:
    slow: LockedSlowLLM = models["fake/slow"]
    long_reply = " ".join(["aTLAS linearly combines parameter blocks with different learned coefficients [1]."] * 20)
    slow.enqueue(long_reply)
    slow.words_written = 0
    payload = {
        "model": "paper-assistant:fake/slow",
        "messages": [user(ATLAS_QUESTION)],
        "stream": True,
        "stream_unchecked": live,
    }
    received = 0
    with http.stream("POST", "/v1/chat/completions", json=payload) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                received += 1
                # A checked stream opens with its role chunk before the model writes: leave once
                # the model is writing, so that a generation is under way when the client goes.
                if received >= (4 if live else 1) and _writing(slow):
                    break  # leaving the block closes the connection mid-stream
    assert slow.closed.wait(5), "the reply's generator was closed"
    assert slow.model_lock.acquire(timeout=2), "the model's lock was freed"
    slow.model_lock.release()
    assert not slow.finished.is_set() and slow.words_written < len(long_reply.split()) // 2

    slow.enqueue(GROUNDED)
    after = http.post("/v1/chat/completions", json={**payload, "stream": False})
    assert after.status_code == 200 and after.json()["choices"][0]["message"]["content"] == GROUNDED
    assert http.get("/healthz").json()["status"] == "ok"


def test_a_whole_request_whose_client_leaves_stops_too(server: RunningServer, models: dict[str, Any]) -> None:
    slow: LockedSlowLLM = models["fake/slow"]
    slow.enqueue(" ".join(["aTLAS scales parameter blocks [1]."] * 40))
    payload = {"model": "paper-assistant:fake/slow", "messages": [user(ATLAS_QUESTION)]}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            server.base_url + "/chat/completions",
            json=payload,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=1.5,
        )
    assert slow.closed.wait(5) and not slow.finished.is_set()
    assert slow.model_lock.acquire(timeout=2)
    slow.model_lock.release()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(local_model_unavailable() is not None, reason=str(local_model_unavailable()))
def test_the_local_models_lock_is_freed_when_a_client_disconnects(sample_store) -> None:
    settings = sample_store.settings.replace(model=SMOLLM2.model_string, max_answer_tokens=400, timeout_s=300)
    model = local_model(SMOLLM2.model_string)
    assert model is not None
    loaded = LocalCallConfig.for_model(model, settings.llm, settings.store.models_dir).load()
    question = "Describe in detail how aTLAS composes task vectors, and what it was evaluated on."
    payload = {"model": "paper-assistant", "messages": [user(question)], "stream": True, "stream_unchecked": True}
    with (
        running(create_app(settings, store=sample_store, token="")) as local,
        httpx.Client(base_url=local.url, timeout=300) as http_client,
    ):
        with http_client.stream("POST", "/v1/chat/completions", json=payload) as response:
            assert response.status_code == 200
            pieces = 0
            for line in response.iter_lines():
                if line.startswith("data: ") and '"content":"' in line and '"content":""' not in line:
                    pieces += 1
                    if pieces == 2:
                        assert loaded.lock.locked(), "the model is writing"
                        break
        assert loaded.lock.acquire(timeout=5), "the lock was freed when the client left"
        loaded.lock.release()
        after = http_client.post("/v1/chat/completions", json={**payload, "stream": False})
        assert after.status_code == 200, after.text
        assert after.json()["choices"][0]["message"]["content"]


# --- the collection ---------------------------------------------------------------------------
def cli_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, settings: Settings, *args: str
) -> Any:
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(settings.store.data_dir))
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_papers_and_search_match_the_clis_json(
    http: httpx.Client,
    sample_store,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    papers = http.get("/v1/papers").json()
    assert papers["total"] == 46 and papers == cli_json(capsys, monkeypatch, sample_store.settings, "papers")
    found = http.get("/v1/search", params={"q": "compression-based data selection", "k": 3}).json()
    assert found["hits"][0]["title"].startswith("ZIP-FIT") and len(found["hits"]) == 3
    assert found == cli_json(
        capsys, monkeypatch, sample_store.settings, "search", "compression-based data selection", "-k", "3"
    )


def test_ingest_uploads_like_the_cli_and_lists_skipped_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "api")
    bad_line = b'{"title": "No abstract here"}\n'
    upload = (FIXTURES / "papers.jsonl").read_bytes() + bad_line
    (tmp_path / "upload.jsonl").write_bytes(upload)
    with running(create_app(settings, token="")) as fresh:
        response = httpx.post(
            fresh.base_url + "/ingest",
            files=[
                ("files", ("upload.jsonl", upload, "application/json")),
                ("files", ("notes.pdf", b"%PDF-1.4", "application/pdf")),
            ],
            timeout=120,
        )
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["papers_added"] >= 2 and report["total_papers"] == report["papers_added"]
        assert {p["source"] for p in report["problems"]} == {"upload.jsonl", "notes.pdf"}
        assert httpx.get(fresh.base_url + "/papers").json()["total"] == report["total_papers"]

        again = httpx.post(fresh.base_url + "/ingest", files={"files": ("upload.jsonl", upload)}, timeout=120).json()
        assert again["papers_unchanged"] == report["papers_added"] and again["chunks_written"] == 0

        nothing = httpx.post(fresh.base_url + "/ingest", files={"files": ("notes.pdf", b"%PDF-1.4")})
        error = assert_error(nothing, 400, "nothing_to_ingest")
        assert "no valid paper to ingest" in error["message"] and error["problems"][0]["source"] == "notes.pdf"
        assert_error(httpx.post(fresh.base_url + "/ingest"), 400)

    cli_report = cli_json(
        capsys, monkeypatch, Settings(data_dir=tmp_path / "cli"), "ingest", str(tmp_path / "upload.jsonl")
    )
    assert {k: v for k, v in cli_report.items() if k != "problems"} == {
        k: v for k, v in report.items() if k != "problems"
    }
    # The CLI names the file by its path, an upload by its name; the rest is the same.
    cli_problems = [{**p, "source": Path(p["source"]).name} for p in cli_report["problems"]]
    assert cli_problems == [p for p in report["problems"] if p["source"] == "upload.jsonl"]


def test_openapi_lists_every_route(server: RunningServer, http: httpx.Client) -> None:
    schema = http.get("/openapi.json").json()
    routes = {route.path_format for route in server.app.routes if getattr(route, "include_in_schema", False)}
    assert routes == set(schema["paths"])
    assert {
        "/healthz", "/v1/models", "/v1/models/{model_id}", "/v1/chat/completions", "/v1/papers", "/v1/search", "/v1/ingest"
    } == set(schema["paths"])  # fmt: skip
    assert "ChatCompletionRequest" in schema["components"]["schemas"]


# --- the command ------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]


def test_serve_refuses_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert f"error: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.slow
def test_paper_assistant_serve_answers_an_openai_client(sample_settings: Settings, tmp_path: Path) -> None:
    shutil.copytree(sample_settings.store.resolved_store_dir, tmp_path / "store")
    env = {name: value for name, value in os.environ.items() if not name.startswith("ASSISTANT_")}
    env |= {
        "ASSISTANT_DATA_DIR": str(tmp_path),
        "ASSISTANT_MODEL": "fake/quote",
        "ASSISTANT_API_TOKEN": TOKEN,
        "PYTHONPATH": str(ROOT),
    }
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "serve.log"
    started = time.monotonic()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "assistant", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() - started < 120, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=TOKEN, max_retries=0)
        completion = client.chat.completions.create(model="paper-assistant", messages=[user(ATLAS_QUESTION)])
        assert completion.model_extra["citations"][0]["title"] == ATLAS
        assert completion.model_extra["answered_by"] == "fake/quote"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    output = log.read_text()
    assert process.returncode == 0, output
    assert f"Paper Assistant API on http://127.0.0.1:{port}/v1" in output and "Traceback" not in output


def _writing(slow: LockedSlowLLM, timeout_s: float = 10.0) -> bool:
    """Whether ``slow`` has written a word, waiting up to ``timeout_s`` for it."""
    deadline = time.monotonic() + timeout_s
    while slow.words_written == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    return slow.words_written > 0
