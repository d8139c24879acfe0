"""LiteLLMBackend against a real OpenAI-compatible server: llama-cpp-python's, on 127.0.0.1.

Slow: each server loads SmolLM2-135M. The model is addressed as ``openai/smollm2`` with
``ASSISTANT_API_BASE``, exactly as a user would point the assistant at llama.cpp, vLLM
or LM Studio.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from llm_fixtures import local_model_unavailable, make_settings, smollm2_gguf

from assistant.errors import LLMError
from assistant.llm.litellm_backend import LiteLLMBackend
from assistant.schema import Message
from assistant.settings import Settings
from tests.conftest import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(local_model_unavailable() is not None, reason=str(local_model_unavailable())),
]

SERVER_CONTEXT = 2048
ALIAS = "smollm2"
QUESTION = [Message(role="user", content="What is the capital of France? Answer in one short sentence.")]
STORY = [Message(role="user", content="Write a long story about a robot who learns to paint. Use many paragraphs.")]


@dataclass
class LlamaServer:
    process: subprocess.Popen[bytes]
    api_base: str
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            # uvicorn's graceful shutdown waits for generations whose client already left.
            self.process.kill()
            self.process.wait(timeout=10)


def start_server(gguf: Path, log: Path) -> LlamaServer:
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf), "--model_alias", ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(SERVER_CONTEXT), "--n_threads", str(os.cpu_count() or 1),
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    server = LlamaServer(process=process, api_base=f"http://127.0.0.1:{port}/v1", log=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{server.api_base}/models", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"llama_cpp.server did not answer within 120 s:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return smollm2_gguf(tmp_path_factory.mktemp("gguf"))


@pytest.fixture(scope="module")
def server(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    running = start_server(gguf, tmp_path_factory.mktemp("server") / "server.log")
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def dummy_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-dummy-for-local-server")


def server_backend(tmp_path: Path, api_base: str, **overrides: object) -> LiteLLMBackend:
    settings: Settings = make_settings(tmp_path, model=f"openai/{ALIAS}", api_base=api_base, **overrides)
    return LiteLLMBackend.from_settings(settings, retry_delay_s=0.1)


def test_streamed_and_whole(server: LlamaServer, tmp_path: Path) -> None:
    backend = server_backend(tmp_path, server.api_base)
    streamed = backend.generate(QUESTION)
    pieces = list(streamed)
    assert len(pieces) > 1 and "Paris" in streamed.result.text
    assert streamed.result.model == "openai/smollm2" and streamed.error is None
    assert streamed.result.usage.prompt_tokens > 0 and streamed.result.usage.completion_tokens > 0

    whole = backend.generate(QUESTION).result
    assert "Paris" in whole.text and whole.usage.completion_tokens > 0


def test_without_any_key_the_placeholder_is_accepted(
    server: LlamaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    assert "Paris" in server_backend(tmp_path, server.api_base).generate(QUESTION).result.text


def test_prompt_longer_than_the_servers_context(server: LlamaServer, tmp_path: Path) -> None:
    """The server ends the stream silently; asked again unstreamed, it says why."""
    long_question = [Message(role="user", content="Task vectors compose knowledge. " * 600)]
    backend = server_backend(tmp_path, server.api_base)
    with pytest.raises(LLMError, match=r"too long for openai/smollm2's context window .* set ASSISTANT_CONTEXT_WINDOW"):
        _ = backend.generate(long_question).result.text


def test_tiny_timeout(server: LlamaServer, tmp_path: Path) -> None:
    slow_question = [Message(role="user", content="Summarise: " + "aTLAS scales parameter blocks. " * 150)]
    backend = server_backend(tmp_path, server.api_base, timeout_s=0.05)
    with pytest.raises(LLMError, match=r"no reply from openai/smollm2 within 0.05 s; raise ASSISTANT_TIMEOUT_S"):
        _ = backend.generate(slow_question).result.text


def test_wrong_port(tmp_path: Path) -> None:
    address = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(
        LLMError, match=rf"could not connect to {address} — is the server running\? set ASSISTANT_API_BASE"
    ):
        _ = server_backend(tmp_path, address).generate(QUESTION).result.text


def test_stopped_server_and_killed_mid_stream(gguf: Path, tmp_path: Path) -> None:
    own = start_server(gguf, tmp_path / "own-server.log")
    try:
        backend = server_backend(tmp_path, own.api_base, max_answer_tokens=400)
        generation = backend.generate(STORY)
        received: list[str] = []
        with pytest.raises(LLMError, match=f"lost the connection to {own.api_base} mid-reply") as excinfo:
            for piece in generation:
                received.append(piece)
                if len(received) == 3:
                    own.stop(signal.SIGKILL)
        assert len(received) >= 3
        assert generation.partial_text == "".join(received)
        assert excinfo.value.partial_text == generation.partial_text
    finally:
        own.stop(signal.SIGKILL)

    with pytest.raises(LLMError, match=f"could not connect to {own.api_base} — is the server running"):
        _ = server_backend(tmp_path, own.api_base).generate(QUESTION).result.text
