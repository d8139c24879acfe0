"""The bundled offline model, run in-process by llama-cpp-python, through LiteLLMBackend.

Slow: loads SmolLM2-135M (and Gemma 3 270M once). Replies are capped at a few tokens
and decoding is greedy (temperature 0), so answers are repeatable.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from llm_fixtures import GEMMA3, SMOLLM2, local_model_unavailable, make_settings

from assistant.errors import LLMError
from assistant.llm import local
from assistant.llm.litellm_backend import LiteLLMBackend
from assistant.llm.litellm_setup import get_litellm
from assistant.llm.local import LocalCallConfig, load_local_model
from assistant.schema import Message
from assistant.settings import Settings
from assistant.tokens import count_tokens as cl100k_tokens

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(local_model_unavailable() is not None, reason=str(local_model_unavailable())),
]

COLOR_QUESTION = [
    Message(role="system", content="You are a concise assistant."),
    Message(role="user", content="Name one primary colour. Answer with one word."),
]
CAPITAL_QUESTION = [Message(role="user", content="What is the capital of France? Answer in one short sentence.")]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("local"), model=SMOLLM2.model_string, max_answer_tokens=16)


@pytest.fixture(scope="module")
def backend(settings: Settings) -> LiteLLMBackend:
    return LiteLLMBackend.from_settings(settings)


def test_streamed_reply(backend: LiteLLMBackend, settings: Settings) -> None:
    generation = backend.generate(COLOR_QUESTION)
    pieces = list(generation)
    assert pieces and "".join(pieces).strip()
    assert generation.result.model == "local/smollm2-135m-instruct"
    assert generation.error is None
    usage = generation.result.usage
    assert usage.prompt_tokens > sum(cl100k_tokens(m.content) for m in COLOR_QUESTION) // 2
    assert 0 < usage.completion_tokens <= settings.llm.max_answer_tokens + 1


def test_tokens_are_sent_on_in_timed_pieces(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first piece goes out at once; later ones gather the tokens of each flush interval."""
    config = LocalCallConfig.for_model(SMOLLM2, settings.llm, settings.store.models_dir)
    params = {**config.as_params(), "max_tokens": 24, "temperature": 0.0}
    messages = [m.model_dump() for m in COLOR_QUESTION]

    def pieces_with(flush_s: float) -> tuple[list[str], int]:
        monkeypatch.setattr(local, "LOCAL_STREAM_FLUSH_S", flush_s)
        chunks = list(local.local_stream(SMOLLM2.name, messages, params, 60))
        assert chunks[-1]["is_finished"]
        return [chunk["text"] for chunk in chunks[:-1]], chunks[-1]["usage"]["completion_tokens"]

    every_token, tokens = pieces_with(0.0)
    assert len(every_token) >= tokens - 1 > 2  # one piece a token (the count re-tokenizes the text)
    first_then_rest, _ = pieces_with(3600.0)
    assert len(first_then_rest) == 2 and "".join(first_then_rest) == "".join(every_token)


def test_whole_reply(backend: LiteLLMBackend) -> None:
    completion = backend.generate(CAPITAL_QUESTION).result
    assert "Paris" in completion.text
    assert completion.usage.completion_tokens > 0


def test_two_threads_at_once_both_get_their_own_answer(backend: LiteLLMBackend) -> None:
    results: dict[str, str] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def ask(label: str, question: list[Message]) -> None:
        try:
            start.wait()
            results[label] = "".join(backend.generate(question))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [
        threading.Thread(target=ask, args=("color", COLOR_QUESTION)),
        threading.Thread(target=ask, args=("capital", CAPITAL_QUESTION)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors
    # One generation at a time per model: interleaved decoding would garble these.
    assert "Paris" in results["capital"]
    assert any(colour in results["color"].lower() for colour in ("red", "blue", "yellow", "green"))


def test_a_reply_dropped_half_read_frees_the_model(backend: LiteLLMBackend, settings: Settings) -> None:
    story = [Message(role="user", content="Write a long story about a robot who learns to paint.")]
    generation = backend.generate(story, max_tokens=200)
    pieces = iter(generation)
    assert next(pieces)
    del pieces, generation
    config = LocalCallConfig.for_model(SMOLLM2, settings.llm, settings.store.models_dir)
    assert not load_local_model(config.path, n_ctx=config.n_ctx, n_threads=config.n_threads).lock.locked()
    assert "Paris" in backend.generate(CAPITAL_QUESTION).result.text


def test_count_tokens_uses_the_models_own_tokenizer(backend: LiteLLMBackend, settings: Settings) -> None:
    text = "We reach 87.3% accuracy on ImageNet-1K with 1,234,567 parameters."
    config = LocalCallConfig.for_model(SMOLLM2, settings.llm, settings.store.models_dir)
    loaded = load_local_model(config.path, n_ctx=config.n_ctx, n_threads=config.n_threads)
    assert backend.count_tokens(text) == len(loaded.llama.tokenize(text.encode(), add_bos=False))
    assert backend.count_tokens(text) != cl100k_tokens(text)


def test_prompt_longer_than_the_window(tmp_path: Path) -> None:
    small = LiteLLMBackend.from_settings(make_settings(tmp_path, model=SMOLLM2.model_string, local_context_tokens=512))
    long_question = [Message(role="user", content="aTLAS composes task vectors. " * 200)]
    with pytest.raises(LLMError, match=r"too long .* raise ASSISTANT_LOCAL_CONTEXT_TOKENS"):
        _ = small.generate(long_question).result.text


def test_timeout(tmp_path: Path) -> None:
    hurried = LiteLLMBackend.from_settings(make_settings(tmp_path, model=SMOLLM2.model_string, timeout_s=0.001))
    with pytest.raises(LLMError, match=r"no reply from local/smollm2-135m-instruct within 0\.001 s"):
        _ = hurried.generate(COLOR_QUESTION).result.text


def test_plain_litellm_completion_whole_and_streamed(settings: Settings) -> None:
    """The provider works for any litellm caller, not only LiteLLMBackend (benchmarks use this)."""
    litellm: Any = get_litellm()
    messages = [m.model_dump() for m in CAPITAL_QUESTION]
    whole = litellm.completion(model=SMOLLM2.model_string, messages=messages, max_tokens=12, temperature=0.0)
    assert "Paris" in whole.choices[0].message.content
    assert whole.usage.prompt_tokens > 0 and 0 < whole.usage.completion_tokens <= 12

    stream = litellm.completion(
        model=SMOLLM2.model_string, messages=messages, max_tokens=12, temperature=0.0, stream=True
    )
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert "Paris" in streamed


def test_gemma3_base_model_answers_from_a_plain_transcript(tmp_path: Path) -> None:
    if missing := local.local_model_missing(GEMMA3, tmp_path / "models"):
        pytest.skip(missing)
    gemma_settings = make_settings(tmp_path, model=GEMMA3.model_string, max_answer_tokens=16)
    completion = LiteLLMBackend.from_settings(gemma_settings).generate(CAPITAL_QUESTION).result
    assert completion.text.strip()
    assert completion.model == "local/gemma3-270m"
    assert (tmp_path / "models" / "gemma-3-270m-q4_k_m.gguf").is_file()

    gemma_config = LocalCallConfig.for_model(GEMMA3, gemma_settings.llm, gemma_settings.store.models_dir)
    gemma = load_local_model(gemma_config.path, n_ctx=gemma_config.n_ctx, n_threads=gemma_config.n_threads)
    assert not gemma.has_chat_template
    prompt_tokens, stop, _ = gemma.encode([m.model_dump() for m in CAPITAL_QUESTION])
    assert gemma.llama.detokenize(prompt_tokens).decode().endswith("Answer in one short sentence.\n\nAssistant:")
    assert "\nUser:" in stop


def test_smollm2_uses_its_own_chat_template(settings: Settings) -> None:
    config = LocalCallConfig.for_model(SMOLLM2, settings.llm, settings.store.models_dir)
    smollm2 = load_local_model(config.path, n_ctx=config.n_ctx, n_threads=config.n_threads)
    assert smollm2.has_chat_template
    prompt_tokens, _, _ = smollm2.encode([m.model_dump() for m in COLOR_QUESTION])
    prompt = smollm2.llama.detokenize(prompt_tokens, special=True).decode()
    assert prompt.startswith("<|im_start|>system\nYou are a concise assistant.<|im_end|>")
    assert prompt.endswith("<|im_start|>assistant\n")
