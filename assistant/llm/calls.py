"""How one model call is made, and what a failed one means, in words the user can act on.

:class:`ModelCall` plans a call under the settings (provider, server address, keys, the
arguments litellm takes); :func:`failure_kind` reads litellm's exception classes and their
causes into one word; :meth:`ModelCall.failure_message` turns that word into a sentence that
names the setting, variable or server to fix, with no secret in it.

Retries are done here, not by litellm: litellm's synchronous retries re-send a 401 at once
without backoff, and its ``fallbacks=`` goes through the async path and re-raises every
failure as a bare ``Exception``, losing what went wrong.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from assistant.errors import LLMError
from assistant.llm.litellm_setup import get_litellm
from assistant.llm.local import LOCAL_PROVIDER, LocalCallConfig, local_model, local_model_missing
from assistant.redaction import redact_secrets
from assistant.settings import DEFAULT_LOCAL_MODEL, LLMSettings

R = TypeVar("R")

CONSERVATIVE_CONTEXT_WINDOW = 8192
EXAMPLE_MODELS = (
    "openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, ollama/llama3.2, openai/NAME with ASSISTANT_API_BASE"
)
# Sent as the key to OpenAI-compatible servers at ASSISTANT_API_BASE when OPENAI_API_KEY is
# unset: llama.cpp, vLLM and LM Studio ignore it, but the OpenAI client refuses to send none.
NO_KEY_PLACEHOLDER = "no-key-required"
MAX_RETRY_DELAY_S = 20.0
_LITELLM_PREFIX = re.compile(r"^(?:litellm\.\w+:|\w+Error:|\w+Exception\s*-)\s*")
_CONTEXT_OVERFLOW_TEXT = re.compile(
    r"context (window|length)|maximum context|too many tokens|exceeds? (the )?(context|max)", re.IGNORECASE
)


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
    litellm = get_litellm()
    errors = litellm.exceptions
    cause = _llm_error_cause(exc)
    if cause is not None:  # raised by the local provider, which says what kind it is
        return cause.kind if cause.kind in {"context", "timeout"} else "llm_error"
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
        return dict(get_litellm().get_model_info(model))
    except Exception:
        return None


def unknown_model_message(model: str) -> str:
    return f"unknown model string '{model}' — use e.g. {EXAMPLE_MODELS}, or {DEFAULT_LOCAL_MODEL}; see ASSISTANT_MODEL"


def provider_of(model: str) -> str:
    """litellm's provider for a model string; LLMError for a string it cannot place."""
    if model.partition("/")[0] == LOCAL_PROVIDER:
        return LOCAL_PROVIDER
    try:
        return get_litellm().get_llm_provider(model)[1]
    except Exception:
        raise LLMError(unknown_model_message(model), kind="unknown_model") from None


@dataclass(frozen=True)
class ModelCall:
    """How one model is called under the current settings."""

    model: str
    provider: str
    api_base: str | None
    settings: LLMSettings
    models_dir: Path

    @classmethod
    def plan(cls, model: str, settings: LLMSettings, models_dir: Path, *, primary: str | None = None) -> ModelCall:
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
        return cls(model=model, provider=provider, api_base=api_base, settings=settings, models_dir=models_dir)

    @property
    def address(self) -> str:
        if self.api_base:
            return self.api_base
        if self.provider == LOCAL_PROVIDER:
            return "the in-process local model"
        try:
            base = get_litellm().get_api_base(self.model, {})
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
        result = get_litellm().validate_environment(model=self.model, api_base=self.api_base)
        return [key for key in result.get("missing_keys", []) if "API_BASE" not in key]

    def missing(self) -> str | None:
        """What this call needs that is not there (a key, a package), as a short phrase."""
        spec = local_model(self.model)
        if spec is not None:
            return local_model_missing(spec, self.models_dir)
        keys = self.missing_keys()
        return f"needs {' and '.join(keys)}" if keys else None

    def missing_message(self) -> str | None:
        """Why this call cannot be made as things are, and what to do; None when it can."""
        spec = local_model(self.model)
        if spec is not None:
            missing = local_model_missing(spec, self.models_dir)
            return f"the offline model {self.model} {missing}" if missing else None
        keys = self.missing_keys()
        if not keys:
            return None
        return (
            f"{self.model} needs an API key: set {' and '.join(keys)} in the environment "
            f"(or choose the offline model {DEFAULT_LOCAL_MODEL})"
        )

    def key_variables(self) -> str:
        result = get_litellm().validate_environment(model=self.model)
        missing = result.get("missing_keys") or []
        return " / ".join(missing) if missing else f"{self.provider.upper()}_API_KEY"

    def completion_kwargs(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, json_schema: dict[str, Any] | None
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
        spec = local_model(self.model)
        if spec is not None:
            kwargs.update(LocalCallConfig.for_model(spec, self.settings, self.models_dir).as_params())
            if json_schema is not None:
                kwargs["local_json_schema"] = json_schema  # a llama.cpp grammar holds the reply to it
        else:
            kwargs["drop_params"] = True  # e.g. stream_options or temperature a provider refuses
            if json_schema is not None and self.supports_json_schema():
                kwargs["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "reply", "schema": json_schema},
                }
        return kwargs

    def supports_json_schema(self) -> bool:
        """The provider can be held to a JSON schema (``response_format``); others are parsed as they answer."""
        try:
            return bool(get_litellm().supports_response_schema(model=self.model))
        except Exception:
            return False

    def context_window(self) -> int:
        if local_model(self.model) is not None:
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

    def overdue_message(self, received_chars: int) -> str:
        """The whole-reply deadline passed: nothing written yet, or a reply still being written."""
        limit = f"{self.settings.timeout_s:g} s; raise ASSISTANT_TIMEOUT_S"
        if not received_chars:
            return f"no reply from {self.model} within {limit}"
        return (
            f"{self.model} was still writing its reply after {limit} "
            f"(the reply was cut after {received_chars} characters)"
        )

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
