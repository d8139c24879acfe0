"""Any litellm model — hosted, on a server, or ``local/`` — behind :class:`LLMBackend`.

``generate`` streams; models in ``ASSISTANT_FALLBACK_MODELS`` are tried in order when the model
fails before its first piece of text, and the :class:`Completion` names the one that answered.
A reply that breaks off mid-stream keeps its text (the error carries it) instead of being
silently restarted. Replies are scrubbed of secrets, piece by piece as they stream
(:class:`~assistant.redaction.StreamRedactor`) and whole: providers and local servers echo keys.

The call runs in a reader thread of its own, and the reply's generator waits on it, so that
three things a blocked read cannot do are done while it waits:

* a deadline on the whole reply: ``ASSISTANT_TIMEOUT_S`` bounds each read (httpx's timeout)
  and also the reply as a whole, from the moment the server answers with its stream, so a
  server that drips a byte a second (which no read timeout catches) is abandoned once the
  setting's seconds, plus :data:`DEADLINE_GRACE_S`, are up; the grace lets a silent server be
  reported by the read timeout first, which says that it was silent;
* a stop: a reader that left (an HTTP client, see :mod:`assistant.streaming`) is noticed
  within :data:`POLL_S`, not at the server's next piece;
* the answer budget: a server that ignores ``max_tokens`` is cut at
  :data:`MAX_CHARS_PER_TOKEN` characters a token, with a notice, and its connection closed
  instead of read to the end.

API keys are read only by litellm from the variables each provider expects (``OPENAI_API_KEY``...).
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from assistant.errors import LLMError
from assistant.llm.calls import (
    CONSERVATIVE_CONTEXT_WINDOW,
    NO_KEY_PLACEHOLDER,
    ModelCall,
    ModelFailure,
    call_with_retries,
    failure_kind,
    litellm_model_info,
)
from assistant.llm.litellm_setup import get_litellm
from assistant.llm.local import LOCAL_PROVIDER, LocalCallConfig, local_model, local_model_missing
from assistant.llm.protocol import Completion, JsonSchema
from assistant.redaction import StreamRedactor, redact_secrets
from assistant.schema import Message, Usage
from assistant.settings import LLMSettings, Settings
from assistant.streaming import Stopped, Streamed, add_notice, stop_requested
from assistant.tokens import count_tokens as count_cl100k_tokens

log = logging.getLogger(__name__)

POLL_S = 0.1
"""How often a reply waiting on its model checks for a stop and its deadline."""
DEADLINE_GRACE_S = 1.0
"""Added to ASSISTANT_TIMEOUT_S for the whole-reply deadline: a server that says nothing at all
is reported by the read timeout (at the setting's seconds) as silent, not as slow."""
MAX_CHARS_PER_TOKEN = 8
"""A reply is cut at ``max_tokens`` times this many characters. Abstracts run at 5.5 characters
a cl100k token at the median and 7.2 at most (the 9,872 of the Daily Papers archive; the sample:
5.55, at most 6.18), and a reply in plainer words at fewer, so only a server that ignores
``max_tokens`` comes near it."""
QUEUED_PIECES = 64
"""Pieces the reader thread may read ahead of the reply: a flood fills it and waits, unread."""


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


def _shown(text: str) -> Iterator[str]:
    """``text`` as a piece, unless it is empty (the masking held everything back)."""
    if text:
        yield text


@dataclass(frozen=True)
class _Attempt:
    """``call``'s server began to answer (its stream is open): the whole reply's deadline starts now."""

    call: ModelCall


@dataclass(frozen=True)
class _End:
    usage: Usage | None
    finish_reason: str | None


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class _Reader:
    """A model call (opened with retries and fallbacks, then read) in a daemon thread of its own.

    It hands on attempts, text pieces, the end or the failure through a bounded queue.
    :meth:`stop` closes an open HTTP stream at once (a read blocked on a dripping server fails
    at its next byte, and the server sees the connection go), and the thread then stops at its
    next piece, or before its next attempt; a local model's thread is waited for, so that its
    lock is free when ``stop`` returns.
    """

    def __init__(self, open_stream: Callable[[Callable[[_OpenStream], None]], _OpenStream]) -> None:
        self._queue: queue.Queue[_Attempt | str | _End | _Failed] = queue.Queue(maxsize=QUEUED_PIECES)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open: _OpenStream | None = None
        self._thread = threading.Thread(target=self._run, args=(open_stream,), name="model-reader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
            opened, self._open = self._open, None
        if opened is None:
            return
        if opened.call.provider == LOCAL_PROVIDER:
            # A local model's generator runs in the reading thread and cannot be closed from here; it
            # stops at its next piece, and is waited for, so that the model's lock is free on return.
            if threading.current_thread() is not self._thread:
                self._thread.join(opened.call.settings.timeout_s)
            return
        try:
            opened.close()
        except Exception:  # the reading thread meets the closed stream and ends; nothing to report
            log.debug("closing a model stream from the waiting side failed", exc_info=True)

    def next(self, timeout_s: float) -> _Attempt | str | _End | _Failed | None:
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def _put(self, event: _Attempt | str | _End | _Failed) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(event, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _answering(self, opened: _OpenStream) -> None:
        with self._lock:
            if self._stop.is_set():
                raise ModelFailure("the reply was stopped", "stopped")
            self._open = opened
        self._put(_Attempt(opened.call))

    def _run(self, open_stream: Callable[[Callable[[_OpenStream], None]], _OpenStream]) -> None:
        opened: _OpenStream | None = None
        try:
            opened = open_stream(self._answering)
            if not self._put(opened.first_piece):
                return
            for piece in opened.pieces:
                if not self._put(piece):
                    return
            self._put(_End(opened.usage, opened.finish_reason))
        except BaseException as exc:  # handed to the reply, which raises it where it is read
            self._put(_Failed(exc))
        finally:
            with self._lock:
                self._open = None
            if opened is not None:
                opened.close()


class LiteLLMBackend:
    """Any litellm model (hosted, server or ``local/``) as an :class:`LLMBackend`."""

    def __init__(
        self, settings: LLMSettings, models_dir: Path, *, model: str | None = None, retry_delay_s: float = 1.0
    ) -> None:
        self._settings = settings
        self._models_dir = models_dir
        self._model = model or settings.model
        self._retry_delay_s = retry_delay_s
        self._fallbacks = [m for m in settings.fallback_models if m != self._model]

    @classmethod
    def from_settings(
        cls, settings: Settings, *, model: str | None = None, retry_delay_s: float = 1.0
    ) -> LiteLLMBackend:
        """The backend for ``model`` (default: the configured one), with local models assembled in the data folder."""
        return cls(settings.llm, settings.store.models_dir, model=model, retry_delay_s=retry_delay_s)

    @property
    def model(self) -> str:
        return self._model

    def _plan(self, model: str) -> ModelCall:
        return ModelCall.plan(model, self._settings, self._models_dir, primary=self._model)

    def generate(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: JsonSchema | None = None,
    ) -> Streamed[Completion]:
        payload = [{"role": m.role, "content": m.content} for m in messages]
        answer_tokens = max_tokens or self._settings.max_answer_tokens
        sampling = self._settings.temperature if temperature is None else temperature
        return Streamed(self._steps(payload, max_tokens=answer_tokens, temperature=sampling, json_schema=json_schema))

    def _steps(
        self, payload: list[dict[str, str]], *, max_tokens: int, temperature: float, json_schema: JsonSchema | None
    ) -> Generator[str, None, Completion]:
        reader = _Reader(
            partial(self._open_stream, payload, max_tokens=max_tokens, temperature=temperature, json_schema=json_schema)
        )
        redactor = StreamRedactor()
        received: list[str] = []
        size, budget = 0, max_tokens * MAX_CHARS_PER_TOKEN
        call: ModelCall | None = None
        deadline = float("inf")
        end: _End | None = None
        try:
            while end is None:
                if stop_requested():
                    raise Stopped(redact_secrets("".join(received)))
                event = reader.next(POLL_S)
                if isinstance(event, _Attempt):
                    call, deadline = event.call, time.monotonic() + event.call.settings.timeout_s + DEADLINE_GRACE_S
                elif isinstance(event, _Failed):
                    failure = self._failure(event.error, call, "".join(received))
                    yield from _shown(redactor.flush())  # what arrived before the failure is shown whole
                    raise failure
                elif isinstance(event, _End):
                    end = event
                elif isinstance(event, str):
                    piece = event[: budget - size]
                    received.append(piece)
                    size += len(piece)
                    yield from _shown(redactor.feed(piece))
                    if len(piece) < len(event):
                        assert call is not None  # a piece comes after its attempt started
                        add_notice(
                            f"{call.model} wrote past its limit of {max_tokens} tokens (it ignored max_tokens): "
                            f"the reply was cut after {size:,} characters and the rest left unread."
                        )
                        end = _End(usage=None, finish_reason="length")
                if call is not None and time.monotonic() > deadline:
                    written = redact_secrets("".join(received))
                    yield from _shown(redactor.flush())
                    raise LLMError(call.overdue_message(len(written)), partial_text=written, kind="timeout")
        finally:
            reader.stop()
        yield from _shown(redactor.flush())
        assert call is not None  # the reply ended after its attempt started
        text = "".join(received)
        usage = end.usage or self._estimate_usage(call.model, payload, text)
        return Completion(text=redact_secrets(text), model=call.model, usage=usage, finish_reason=end.finish_reason)

    @staticmethod
    def _failure(error: BaseException, call: ModelCall | None, received: str) -> BaseException:
        """What to raise for the reader's failure: as it is before any text, a cut reply after."""
        if call is None or not received:
            return error
        partial = redact_secrets(received)
        message = f"{call.mid_stream_message(error)} (the reply was cut after {len(partial)} characters)"
        return LLMError(message, partial_text=partial, kind=failure_kind(error))

    def _open_stream(
        self,
        payload: list[dict[str, str]],
        answering: Callable[[_OpenStream], None],
        *,
        max_tokens: int,
        temperature: float,
        json_schema: JsonSchema | None,
    ) -> _OpenStream:
        """The first model (primary, then fallbacks) whose stream yields text; LLMError when none does."""
        failures: list[tuple[str, str, str]] = []
        for model in [self._model, *self._fallbacks]:
            try:
                call = self._plan(model)
                missing = call.missing_message()
                if missing:
                    raise ModelFailure(missing, "missing")
                return call_with_retries(
                    call,
                    partial(
                        self._first_text,
                        call,
                        payload,
                        answering,
                        max_tokens=max_tokens,
                        temperature=temperature,
                        json_schema=json_schema,
                    ),
                    delay_s=self._retry_delay_s,
                )
            except (ModelFailure, LLMError) as failure:
                failures.append((model, str(failure), failure.kind))
        _, primary_message, primary_kind = failures[0]
        if len(failures) == 1:
            raise LLMError(primary_message, kind=primary_kind)
        others = "; ".join(f"{model}: {message}" for model, message, _ in failures[1:])
        raise LLMError(f"{primary_message} (fallbacks failed too — {others})", kind=primary_kind)

    def _first_text(
        self,
        call: ModelCall,
        payload: list[dict[str, str]],
        answering: Callable[[_OpenStream], None],
        *,
        max_tokens: int,
        temperature: float,
        json_schema: JsonSchema | None,
    ) -> _OpenStream:
        # Providers differ in when a failure surfaces (at the request, or at the first
        # chunk), so the stream counts as open only once it has produced text.
        kwargs = call.completion_kwargs(
            payload, max_tokens=max_tokens, temperature=temperature, json_schema=json_schema
        )
        opened = _OpenStream(call=call, stream=get_litellm().completion(**kwargs))
        try:
            answering(opened)
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
            whole = get_litellm().completion(**unstreamed)
        except Exception as exc:
            if failure_kind(exc) != "connection":
                raise
            # Such a server also resets the connection the failed stream used, and the
            # client's pool may hand that dead connection out once more.
            whole = get_litellm().completion(**unstreamed)
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
            prompt_tokens = int(get_litellm().token_counter(model=model, messages=payload))
        except Exception:
            prompt_tokens = sum(count_cl100k_tokens(m["content"]) for m in payload)
        return Usage(prompt_tokens=prompt_tokens, completion_tokens=self.count_tokens(text))

    def count_tokens(self, text: str) -> int:
        """Exact for local models (their own tokenizer), litellm's count for models it knows, else cl100k.

        A local model's window is small, and its tokenizer differs from cl100k (SmolLM2
        needs ~3% more tokens on the sample abstracts): estimates there eat the margin.
        """
        try:
            spec = local_model(self._model)
            if spec is not None and local_model_missing(spec, self._models_dir) is None:
                loaded = LocalCallConfig.for_model(spec, self._settings, self._models_dir).load()
                return loaded.count_tokens(text)
        except LLMError:
            spec = None
        if spec is None and litellm_model_info(self._model) is not None:
            return int(get_litellm().token_counter(model=self._model, text=text))
        return count_cl100k_tokens(text)

    def context_window(self) -> int:
        """The primary model's input window: local n_ctx, litellm's figure, the setting, or 8192."""
        try:
            return self._plan(self._model).context_window()
        except LLMError:
            return self._settings.context_window or CONSERVATIVE_CONTEXT_WINDOW


def embed_texts(
    model: str, texts: list[str], settings: LLMSettings, *, batch_size: int, api_base: str | None = None
) -> list[list[float]]:
    """Embed ``texts`` with a litellm embedding model (e.g. openai/text-embedding-3-small), in order.

    ``api_base`` is where that model is served; by default ``ASSISTANT_API_BASE`` when the
    embedding model has the chat model's provider, else the provider's own address.
    """
    if not texts:
        return []
    call = ModelCall.plan(model, settings, Path(), primary=settings.model)
    if api_base is not None:
        call = replace(call, api_base=api_base.rstrip("/"))
    missing = call.missing_message()
    if missing:
        raise LLMError(missing, kind="missing")
    litellm = get_litellm()
    vectors: list[list[float]] = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        kwargs: dict[str, Any] = {"model": model, "input": batch, "timeout": settings.timeout_s, "num_retries": 0}
        if call.api_base:
            kwargs["api_base"] = call.api_base
        if call.keyless_server:
            kwargs["api_key"] = NO_KEY_PLACEHOLDER
        try:
            response = call_with_retries(call, partial(litellm.embedding, **kwargs), delay_s=1.0)
        except ModelFailure as failure:
            raise LLMError(str(failure), kind=failure.kind) from None
        rows = sorted(response.data, key=lambda row: _field(row, "index"))
        if len(rows) != len(batch):
            raise LLMError(f"{model} returned {len(rows)} embeddings for {len(batch)} texts")
        vectors.extend([float(x) for x in _field(row, "embedding")] for row in rows)
    return vectors


def _field(row: Any, name: str) -> Any:
    """A field of an embedding row: providers give dicts or litellm ``Embedding`` objects."""
    return row[name] if isinstance(row, dict) else getattr(row, name)


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


def litellm_requirements(model: str, settings: LLMSettings, models_dir: Path) -> str | None:
    """What choosing ``model`` needs that is missing (a key, a package, a server); None if nothing.

    Meant for a model picker: it reads the environment and probes only servers on this
    machine, and never calls a model.
    """
    try:
        call = ModelCall.plan(model, settings, models_dir, primary=settings.model)
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
