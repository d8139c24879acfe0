"""An OpenAI-compatible HTTP API over :class:`~assistant.service.PaperAssistant`.

``paper-assistant serve`` runs it (FastAPI on uvicorn, 127.0.0.1:8000 by default). Any
OpenAI-compatible client (the ``openai`` package, Open WebUI, LibreChat, ...) talks to it
unchanged: base URL ``http://127.0.0.1:8000/v1``, model ``paper-assistant``.

Routes: ``GET /v1/models``, ``POST /v1/chat/completions`` (whole or streamed as SSE),
``GET /v1/papers``, ``GET /v1/search``, ``POST /v1/ingest``, ``GET /healthz``, and
FastAPI's ``/openapi.json`` and ``/docs``.

Models. ``paper-assistant`` is the assistant with the configured model (and its
fallbacks); ``paper-assistant:MODEL`` pins the underlying LLM to ``MODEL``, which must be
the configured model, one of its fallbacks or an installed bundled local model (anything
else is 404 ``model_not_found``). One :class:`PaperAssistant` per variant is built on
first use and kept; all share one store and retriever, and the local model stays loaded.

Chat. The last user message is the question; earlier user and assistant messages are
the history, so follow-ups ("summarize the second one", "how do they differ?") work.
A follow-up needs to know which papers an earlier reply discussed, and a plain client
sends back only the reply's text; so the server remembers, per reply text, the papers and
sources it produced (an LRU of :data:`REMEMBERED_REPLIES`) and gives respond() that
turn instead of the bare text. A reply the server does not remember (another process,
a restart) is passed on as plain text: it is still history, but names no papers. System
messages are ignored for routing; ``temperature``, ``max_tokens`` and the like are
accepted and ignored (the assistant's settings decide them). Only ``n=1``.

The reply text carries the ``[n]`` citation markers. Extra top-level fields (clients
that do not know them ignore them; the ``openai`` client keeps them in
``model_extra``): ``citations`` [{n, paper_id, title, url}], ``unsupported`` (sentences the
support check could not ground), ``refused``, ``kind`` (answer, comparison, summary,
clarification, refusal), ``notices``, ``answered_by`` (the model that wrote it, which may be
a fallback), ``comparison`` (the table as JSON, for comparisons) and, when streamed,
``final_text`` and ``streamed_text_replaced`` (below). Streamed, they ride on the chunk
that carries ``finish_reason: "stop"``; with ``stream_options.include_usage`` OpenAI's usage
chunk (empty ``choices``) follows it, then ``data: [DONE]``.

How a stream ends: with the checked text. The model's words stream as it writes them, but
only afterwards is the reply checked (citations validated, each sentence compared with the
sources it cites), and the checked text can differ: a dangling ``[7]`` dropped, an echoed
prompt cut, or, when most of it is ungrounded, the whole text replaced by the abstracts'
own sentences. A stream cannot take back what it sent. Measured over this API with the
bundled SmolLM2-135M on the 30 dev questions (``python -m benchmarks.api_streaming``, a busy
2-core machine): the checked text differed from the streamed one in 27 of 30 replies and
replaced it wholesale in 21; waiting for the check cost 4.1 s at the median (0.2 to 23.7 s;
the first words came at 70 % of the time to the checked reply). Showing, in nine replies
of ten, text that is then withdrawn is worse than a few seconds' wait, so by default a
stream sends the role chunk at once, SSE keep-alive comments while it waits, then the
checked text in one piece: what any client shows, and the history it sends back, is the
checked reply, the same as the whole response. A client that wants the words as they are
written asks with ``"stream_unchecked": true``; when the checked text then differs, the last
content delta appends it under a rule and a note that the text above did not pass the
check (so even a plain chat client ends on the checked answer), and the extras say
``streamed_text_replaced: true``. Either way the last chunk carries the checked text alone
as ``final_text``.

Concurrency. Each reply is produced in a worker thread (``respond`` and its generator
block: retrieval, the model, the support check), never on the event loop, and hands its
pieces to the request through a queue; hosted models answer requests in parallel, the
local model queues them on its own lock. A client that disconnects mid-stream sets its
reply's stop flag: the worker stops at the next piece and closes the reply's generator,
which ends the model call and frees the local model's lock. A whole (non-streamed)
request whose client goes away is stopped the same way. The SSE framing is written here
(``data: {json}``, a blank line, as OpenAI sends it) on Starlette's StreamingResponse, which
under uvicorn listens for the disconnect and cancels the stream; sse-starlette adds nothing
needed (and its pings and CRLF framing differ from OpenAI's).

Errors come back in OpenAI's format ``{"error": {"message", "type", "code", "param"}}``
with the status :func:`assistant.errors.describe` gives (bad input 400, unknown model 404,
model or store unavailable 503), the same message the CLI prints, with secrets masked;
request validation errors are 400 in that format too, never a traceback. A failure
after a stream started is sent as one ``data: {"error": ...}`` event, then ``[DONE]``.

Authentication. With ``ASSISTANT_API_TOKEN`` set, every request but ``/healthz`` needs
``Authorization: Bearer <token>`` (compared in constant time), else 401.

Porting notes: every project name is imported in the one block below, and everything
read from a chat reply goes through :func:`_reply_facts` (and :func:`_close_reply`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import re
import sqlite3
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import FastAPI, File, Query, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

# --- the project: every name this module uses from it ----------------------------------------
from assistant.app_support import backend_for, read_uploads
from assistant.backend import LLMBackend
from assistant.conversations import ChatTurn
from assistant.errors import AssistantError, InvalidInput, LLMError, describe
from assistant.llm import LOCAL_MODELS, local_model_missing, provider_of, redact_secrets
from assistant.models import Comparison, Hit, IngestReport, Message, PaperStats, Problem, Source
from assistant.retrieval import Retriever
from assistant.service import PaperAssistant, Turn
from assistant.settings import Settings
from assistant.store import PaperStore
from ingestion.errors import IngestionError
from ingestion.pipeline import ingest_papers

# ---------------------------------------------------------------------------------------------

log = logging.getLogger("assistant.api")

MODEL_ID = "paper-assistant"
VARIANT_SEPARATOR = ":"
TOKEN_ENV = "ASSISTANT_API_TOKEN"
DEFAULT_PORT = 8000
DEFAULT_ADDRESS = "127.0.0.1"
REMEMBERED_REPLIES = 2048
"""Replies whose papers a follow-up can still find (per server process)."""
REPLY_WORKERS = 32
"""Replies produced at once; more wait for a worker (the local model serialises anyway)."""
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
"""As the app's upload limit (server.maxUploadSize = 50 MB)."""
CLIENT_GONE = 499
"""Status logged for a request whose client left before the reply (nginx's convention; never seen)."""
KEEP_ALIVE = ": keep-alive\n\n"
KEEP_ALIVE_S = 10.0
"""A stream that has sent nothing for this long sends an SSE comment (proxies drop idle streams)."""
REPLACED_NOTE = "The text above did not pass the check against the abstracts; the checked answer:"
UNAUTHENTICATED = ("/healthz",)
TOO_LARGE = f"the upload is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB: split it into smaller files and requests"


# =============================================================================================
# The one adapter to the chat reply's shape
# =============================================================================================
def _reply_facts(turn: Turn) -> dict[str, Any]:
    """Everything this module reads from a finished chat reply, by name.

    Today's reply is :class:`assistant.service.Turn`; the restructured one (``Reply``) has
    fields of the same names, so porting changes this function and :func:`_close_reply` only.
    """
    result = turn.result
    return {
        "kind": turn.kind,
        "text": turn.text,
        "citations": list(turn.citations),
        "sources": list(turn.sources),
        "papers": list(turn.papers),
        "unsupported": list(turn.unsupported),
        "notices": list(turn.notices),
        "model": turn.model,
        "result": result,
        "usage": getattr(result, "usage", None),
    }


def _close_reply(turn: Turn) -> None:
    """Abandon a reply half-way: close the generator under it, ending the model call (and so
    freeing the local model's lock) now rather than whenever the garbage collector runs."""
    close = getattr(turn, "close", None)
    if callable(close):
        close()
        return
    steps = getattr(getattr(turn, "_stream", None), "_steps", None)
    if steps is not None:
        steps.close()


# =============================================================================================
# JSON shapes shared with the CLI's --json output
# =============================================================================================
def papers_payload(stats: Sequence[PaperStats]) -> dict[str, Any]:
    """``paper-assistant papers --json`` (the CLI builds the same dict inline; it should call this)."""
    return {
        "total": len(stats),
        "papers": [
            {
                "paper_id": s.paper.paper_id,
                "title": s.paper.title,
                "authors": s.paper.authors,
                "published": s.paper.published.isoformat() if s.paper.published else None,
                "url": s.paper.link,
                "source": s.paper.source,
                "chunks": s.chunks,
            }
            for s in stats
        ],
    }


def search_payload(query: str, hits: Sequence[Hit]) -> dict[str, Any]:
    """``paper-assistant search --json`` (the CLI builds the same dict inline; it should call this)."""
    return {
        "query": query,
        "hits": [
            {
                "paper_id": h.paper.paper_id,
                "title": h.paper.title,
                "score": round(h.score, 6),
                "similarity": None if h.similarity is None else round(h.similarity, 4),
                "text": h.text,
            }
            for h in hits
        ],
    }


def ingest_payload(report: IngestReport) -> dict[str, Any]:
    """``paper-assistant ingest --json``."""
    return report.model_dump(mode="json")


def problem_lines(problems: Sequence[Problem]) -> str:
    """The CLI's list of skipped records (``cli._problem_lines``), one per line."""
    return "".join(f"\n  {' '.join(part for part in (p.source, p.location) if part)}: {p.reason}" for p in problems)


# =============================================================================================
# Errors in OpenAI's format
# =============================================================================================
class ApiError(Exception):
    """A failure of the HTTP layer itself (unknown model, bad token, bad upload)."""

    def __init__(
        self, status: int, message: str, *, code: str, type_: str | None = None, param: str | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.type = type_ or _error_type(status)
        self.param = param
        self.extra = extra


def _error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status < 500:
        return "invalid_request_error"
    return "server_error"


def _snake(name: str) -> str:
    """``StoreUnavailable`` -> ``store_unavailable``, ``LLMError`` -> ``llm_error``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def error_body(message: str, *, type_: str, code: str | None, param: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": redact_secrets(message), "type": type_, "code": code, "param": param, **extra}}


def error_content(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """HTTP status and OpenAI error body for any exception; the message is the CLI's, secrets masked."""
    if isinstance(exc, ApiError):
        return exc.status, error_body(str(exc), type_=exc.type, code=exc.code, param=exc.param, **exc.extra)
    report = describe(exc)
    code = "internal" if report.kind == "internal" else _snake(report.error_type)
    if isinstance(exc, LLMError) and exc.kind == "unknown_model":
        code = "model_not_found"
    return report.http_status, error_body(report.message, type_=_error_type(report.http_status), code=code)


def error_response(exc: BaseException, headers: Mapping[str, str] | None = None) -> JSONResponse:
    status, body = error_content(exc)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _location(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
    return ".".join(parts)


def validation_message(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    shown = [f"{_location(e.get('loc', ())) or 'request'}: {e.get('msg', 'invalid')}" for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    param = _location(errors[0].get("loc", ())) if errors else None
    return "invalid request: " + "; ".join(shown) + more, param or None


# =============================================================================================
# Request and response bodies
# =============================================================================================
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if part.type == "text" and part.text)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat request; sampling options are accepted and left to the assistant's settings."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(description=f"'{MODEL_ID}' or '{MODEL_ID}{VARIANT_SEPARATOR}MODEL' (see GET /v1/models)")
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation; the last message is the question")
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only one choice is generated")
    temperature: float | None = Field(default=None, description="Accepted, not used: ASSISTANT_TEMPERATURE decides")
    max_tokens: int | None = Field(default=None, description="Accepted, not used: ASSISTANT_MAX_ANSWER_TOKENS decides")
    stream_unchecked: bool = Field(
        default=False,
        description="Streamed only: send the model's words as it writes them, before the support check; the last "
        "chunk's final_text is then the checked reply, also appended to the content when it differs",
    )


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = MODEL_ID


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class CitationOut(BaseModel):
    n: int
    paper_id: str
    title: str
    url: str | None = None


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatCompletionChoice(BaseModel):
    index: int = 0
    message: ChatCompletionMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class UsageOut(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletion(BaseModel):
    """OpenAI's ``chat.completion`` plus the assistant's extras (streamed: on the last chunk)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatCompletionChoice]
    usage: UsageOut
    system_fingerprint: str | None = None
    kind: str = Field(description="answer, comparison, summary, clarification or refusal")
    citations: list[CitationOut] = Field(description="What the [n] markers in the text point to")
    unsupported: list[str] = Field(description="Sentences the support check could not ground in the cited abstracts")
    refused: bool = Field(description="The collection does not cover the question")
    notices: list[str]
    answered_by: str = Field(description="The model that wrote the reply (a fallback, if the first failed)")
    comparison: dict[str, Any] | None = Field(default=None, description="For comparisons: the table (Comparison) as JSON")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    papers: int


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": text}
    for status, text in (
        (400, "Bad request (also what a request that fails validation gets)"),
        (401, f"Missing or wrong bearer token ({TOKEN_ENV} is set)"),
        (404, "Unknown model or paper"),
        (503, "The model or the store is unavailable"),
    )
}


# =============================================================================================
# Chat: messages in, extras out
# =============================================================================================
def _normalized(text: str) -> str:
    return " ".join(text.split())


class ReplyMemory:
    """What earlier replies discussed, found by their text: a follow-up's history names papers again."""

    def __init__(self, capacity: int = REMEMBERED_REPLIES) -> None:
        self._capacity = capacity
        self._turns: OrderedDict[str, ChatTurn] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, texts: Iterable[str], turn: ChatTurn) -> None:
        with self._lock:
            for text in texts:
                key = _normalized(text)
                if key:
                    self._turns[key] = turn
                    self._turns.move_to_end(key)
            while len(self._turns) > self._capacity:
                self._turns.popitem(last=False)

    def recall(self, text: str) -> ChatTurn | None:
        key = _normalized(text)
        with self._lock:
            turn = self._turns.get(key)
            if turn is not None:
                self._turns.move_to_end(key)
            return turn


def conversation(messages: Sequence[ChatMessage], memory: ReplyMemory) -> tuple[str, list[ChatTurn | Message]]:
    """The question (last user message) and the history before it, as respond() takes them."""
    spoken = [m for m in messages if m.role in ("user", "assistant")]
    if not spoken or spoken[-1].role != "user":
        raise InvalidInput("the last message must be the user's question (role 'user')")
    question = spoken[-1].text
    history: list[ChatTurn | Message] = []
    for message in spoken[:-1]:
        text = message.text
        if message.role == "assistant":
            remembered = memory.recall(text)
            if remembered is not None:
                history.append(remembered.model_copy(update={"content": text}))
                continue
        history.append(Message(role=message.role, content=text))
    return question, history


def chat_turn(facts: Mapping[str, Any]) -> ChatTurn:
    result = facts["result"]
    return ChatTurn(
        role="assistant",
        content=facts["text"],
        kind=facts["kind"],
        papers=facts["papers"],
        sources=facts["sources"],
        result=result.model_dump(mode="json") if isinstance(result, BaseModel) else None,
    )


def citations_out(facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    links = {(s.n, s.paper_id): s.link for s in facts["sources"] if isinstance(s, Source)}
    return [{"n": c.n, "paper_id": c.paper_id, "title": c.title, "url": links.get((c.n, c.paper_id))} for c in facts["citations"]]


def usage_out(facts: Mapping[str, Any]) -> dict[str, int]:
    usage = facts.get("usage")
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage, "completion_tokens", 0) or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def extras(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The assistant's fields beside OpenAI's."""
    result = facts["result"]
    return {
        "kind": facts["kind"],
        "citations": citations_out(facts),
        "unsupported": list(facts["unsupported"]),
        "refused": facts["kind"] == "refusal",
        "notices": list(facts["notices"]),
        "answered_by": facts["model"],
        "comparison": result.model_dump(mode="json") if isinstance(result, Comparison) else None,
    }


def replacement_delta(streamed: str, final: str) -> str:
    """What a stream appends when the checked text is not what it streamed ("" when it is)."""
    if _normalized(streamed) == _normalized(final):
        return ""
    return f"\n\n---\n\n*{REPLACED_NOTE}*\n\n{final}"


# =============================================================================================
# Producing a reply off the event loop
# =============================================================================================
@dataclass(frozen=True)
class Piece:
    text: str


@dataclass(frozen=True)
class Done:
    facts: dict[str, Any]
    streamed: str


@dataclass(frozen=True)
class Failed:
    error: BaseException


Event = Piece | Done | Failed


class ReplyRun:
    """One chat reply made in a worker thread; the request reads its events from a queue.

    ``stop()`` (client gone) makes the worker drop the reply at its next piece and close
    the reply's generator, which ends the model call and frees the local model's lock.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    async def next(self) -> Event:
        return await self._queue.get()

    def _emit(self, event: Event) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)
        except RuntimeError:  # the loop is closed: the server is shutting down
            self._stop.set()

    def produce(self, start: Callable[[], Turn]) -> None:
        """Run in a worker thread: start the reply, pass its pieces on, then its facts."""
        turn: Turn | None = None
        completed = False
        try:
            if self.stopped:
                return
            turn = start()
            streamed: list[str] = []
            for piece in turn:
                if self.stopped:
                    return
                streamed.append(piece)
                self._emit(Piece(piece))
            facts = _reply_facts(turn)
            completed = True
            self._emit(Done(facts, "".join(streamed)))
        except Exception as exc:  # noqa: BLE001 - every failure goes to the client, in OpenAI's format
            self._emit(Failed(exc))
        finally:
            if turn is not None and not completed:
                try:
                    _close_reply(turn)
                except Exception:  # closing must never hide what happened
                    log.debug("closing an abandoned reply failed", exc_info=True)


class ClientWatch:
    """Notices the client leaving while a request waits for its reply (before a response starts)."""

    def __init__(self, request: Request) -> None:
        self._left = asyncio.ensure_future(self._listen(request.receive))

    @staticmethod
    async def _listen(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def next(self, run: ReplyRun) -> Event | None:
        """The run's next event; None, with the run stopped, when the client has gone."""
        getter = asyncio.ensure_future(run.next())
        try:
            done, _ = await asyncio.wait({getter, self._left}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                return getter.result()
            run.stop()
            return None
        finally:
            if not getter.done():
                getter.cancel()  # a cancelled Queue.get takes nothing from the queue

    def close(self) -> None:
        self._left.cancel()


# =============================================================================================
# Models: the assistant and its variants
# =============================================================================================
def allowed_models(settings: Settings) -> list[str]:
    """Model strings a variant may pin: the configured one, its fallbacks, installed local models."""
    models = [settings.model, *settings.fallback_models]
    models += [spec.model_string for spec in LOCAL_MODELS.values() if local_model_missing(spec) is None]
    return list(dict.fromkeys(models))


def _variant_settings(settings: Settings, model: str) -> Settings:
    """``settings`` answering with ``model`` alone (no fallbacks: the client pinned it)."""
    api_base = settings.api_base
    if api_base is not None and model != settings.model:
        # ASSISTANT_API_BASE is the configured model's server; it serves only models of its provider.
        try:
            same_provider = provider_of(model) == provider_of(settings.model)
        except LLMError:
            same_provider = False
        api_base = api_base if same_provider else None
    return Settings.model_validate({**settings.model_dump(), "model": model, "fallback_models": [], "api_base": api_base})


class Assistants:
    """One PaperAssistant per model variant, built on first use and kept; all share one store."""

    def __init__(
        self,
        settings: Settings,
        store: PaperStore,
        retriever: Retriever,
        backends: Mapping[str, LLMBackend] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.retriever = retriever
        self._backends = dict(backends or {})
        self._built: dict[str, PaperAssistant] = {}
        self._lock = threading.Lock()
        self.created = int(time.time())

        self.allowed = allowed_models(settings)  # installed local models do not change while serving

    def model_ids(self) -> list[str]:
        return [MODEL_ID, *(f"{MODEL_ID}{VARIANT_SEPARATOR}{model}" for model in self.allowed)]

    def check(self, requested: str) -> str:
        """The variant key of a requested model id; ApiError 404 for an unknown one."""
        if requested == MODEL_ID:
            return ""
        prefix = MODEL_ID + VARIANT_SEPARATOR
        if requested.startswith(prefix) and requested[len(prefix) :] in self.allowed:
            return requested[len(prefix) :]
        raise ApiError(
            404,
            f"the model {requested!r} does not exist here: use {MODEL_ID!r} or one of {', '.join(self.model_ids()[1:])} "
            f"(GET /v1/models lists them; a variant must be ASSISTANT_MODEL, one of ASSISTANT_FALLBACK_MODELS "
            "or an installed bundled local model)",
            code="model_not_found",
            param="model",
        )

    def get(self, key: str) -> PaperAssistant:
        """The assistant for a variant key ("" for the configured model with its fallbacks)."""
        with self._lock:
            assistant = self._built.get(key)
            if assistant is None:
                settings = self.settings if not key else _variant_settings(self.settings, key)
                backend = self._backends.get(settings.model) or backend_for(settings)
                assistant = PaperAssistant(settings, store=self.store, retriever=self.retriever, backend=backend)
                self._built[key] = assistant
            return assistant

    def any(self) -> PaperAssistant:
        return self.get("")


# =============================================================================================
# Authentication: a pure ASGI layer, so streaming and disconnects pass through untouched
# =============================================================================================
class RequestGate:
    """The bearer token (when one is set) and the upload size limit, before any route runs."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self._token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        refusal: JSONResponse | None = None
        if self._token is not None and scope.get("path") not in UNAUTHENTICATED:
            scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
            if not (scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self._token)):
                refusal = JSONResponse(
                    error_body(
                        "missing or wrong bearer token: send the header 'Authorization: Bearer <token>' "
                        f"with the value of {TOKEN_ENV}",
                        type_="authentication_error",
                        code="invalid_api_key",
                    ),
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        length = headers.get(b"content-length", b"")
        if refusal is None and length.isdigit() and int(length) > MAX_UPLOAD_BYTES + 1024 * 1024:
            refusal = JSONResponse(error_body(TOO_LARGE, type_="invalid_request_error", code="too_large"), 413)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


# =============================================================================================
# The app
# =============================================================================================
def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _sse(data: Mapping[str, Any] | str) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {payload}\n\n"


def create_app(
    settings: Settings | None = None,
    *,
    store: PaperStore | None = None,
    backends: Mapping[str, LLMBackend] | None = None,
    token: str | None = None,
) -> FastAPI:
    """The API over one store. ``backends`` serves model strings with given backends (tests);
    ``token`` defaults to ``ASSISTANT_API_TOKEN`` (empty or unset: no authentication)."""
    settings = settings or (store.settings if store is not None else Settings())
    store = store or PaperStore(settings)
    assistants = Assistants(settings, store, Retriever(store, settings), backends)
    memory = ReplyMemory()
    executor = ThreadPoolExecutor(max_workers=REPLY_WORKERS, thread_name_prefix="paper-assistant-reply")
    runs: set[ReplyRun] = set()
    token = os.environ.get(TOKEN_ENV) if token is None else token

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        for run in list(runs):
            run.stop()
        executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="Paper Assistant",
        version="1",
        summary="Chat with a day's paper abstracts through OpenAI's API: cited answers, comparisons, summaries.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.assistants = assistants
    app.state.memory = memory
    app.state.runs = runs
    app.add_middleware(RequestGate, token=token or None)

    # --- errors ---------------------------------------------------------------------------
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(exc.errors())
        return JSONResponse(error_body(message, type_="invalid_request_error", code="invalid_request", param=param), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(str(exc.detail), type_=_error_type(exc.status_code), code=code),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def _known_failure(_: Request, exc: Exception) -> JSONResponse:
        return error_response(exc)

    # The failures a user can act on (describe()'s table). Anything else is a bug: 500 in the
    # same format, and Starlette logs its traceback on the server, never to the client.
    for family in (ApiError, AssistantError, IngestionError, ValueError, LookupError, OSError, sqlite3.Error, Exception):
        app.add_exception_handler(family, _known_failure)

    # --- reply runs -----------------------------------------------------------------------
    def start_run(key: str, question: str, history: list[ChatTurn | Message]) -> ReplyRun:
        run = ReplyRun(asyncio.get_running_loop())
        runs.add(run)

        def work() -> None:
            try:
                run.produce(lambda: assistants.get(key).respond(question, history))
            finally:
                runs.discard(run)

        executor.submit(work)
        return run

    def remember(facts: Mapping[str, Any], *shown: str) -> None:
        memory.remember([facts["text"], *shown], chat_turn(facts))

    # --- routes ---------------------------------------------------------------------------
    @app.get("/healthz", response_model=Health, tags=["service"])
    def healthz() -> Health:
        """Up, and how many papers the collection holds (no token needed)."""
        return Health(papers=len(assistants.any().papers()))

    @app.get("/v1/models", response_model=ModelList, tags=["chat"])
    def list_models() -> ModelList:
        """The assistant as a model, and variants ``paper-assistant:MODEL`` that pick the underlying LLM."""
        return ModelList(data=[ModelCard(id=model_id, created=assistants.created) for model_id in assistants.model_ids()])

    @app.get("/v1/models/{model_id:path}", response_model=ModelCard, tags=["chat"])
    def get_model(model_id: str) -> ModelCard:
        assistants.check(model_id)
        return ModelCard(id=model_id, created=assistants.created)

    @app.post(
        "/v1/chat/completions",
        response_model=ChatCompletion,
        tags=["chat"],
        responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE chunks when stream is true"}},
    )
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        """OpenAI's chat completions, whole or streamed; the reply cites the papers as [n]."""
        key = assistants.check(body.model)
        question, history = conversation(body.messages, memory)
        run = start_run(key, question, history)
        watch = ClientWatch(request)
        try:
            first = await watch.next(run)
            if first is None:
                return Response(status_code=CLIENT_GONE)
            if isinstance(first, Failed):
                return error_response(first.error)
            completion_id, created = _completion_id(), int(time.time())
            if not body.stream:
                return await whole_reply(run, first, watch, completion_id, created, body.model)
        except BaseException:
            run.stop()
            raise
        finally:
            watch.close()  # from here on StreamingResponse listens for the client leaving
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            streamed_reply(run, first, completion_id, created, body.model, include_usage, body.stream_unchecked),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def whole_reply(run: ReplyRun, event: Event, watch: ClientWatch, completion_id: str, created: int, model: str) -> Any:
        next_one: Event | None = event
        while isinstance(next_one, Piece):
            next_one = await watch.next(run)
        if next_one is None:
            return Response(status_code=CLIENT_GONE)
        event = next_one
        if isinstance(event, Failed):
            return error_response(event.error)
        facts = event.facts
        remember(facts, event.streamed)
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": facts["text"]},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": usage_out(facts),
                "system_fingerprint": None,
                **extras(facts),
            }
        )

    async def streamed_reply(
        run: ReplyRun, first: Event, completion_id: str, created: int, model: str, include_usage: bool, live: bool
    ) -> AsyncIterator[str]:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None, **more: Any) -> str:
            body: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            }
            if include_usage:
                body["usage"] = None
            return _sse({**body, **more})

        event: Event | None = first
        try:
            yield chunk({"role": "assistant", "content": ""})
            while True:
                if event is None:
                    yield KEEP_ALIVE  # an SSE comment: clients skip it, proxies see the stream is alive
                elif isinstance(event, Piece):
                    if live:
                        yield chunk({"content": event.text})
                elif isinstance(event, Failed):
                    _, error = error_content(event.error)
                    if error["error"]["code"] == "internal":
                        log.error("reply failed: %s", redact_secrets("".join(traceback.format_exception(event.error))))
                    yield _sse(error)
                    yield _sse("[DONE]")
                    return
                else:
                    facts = event.facts
                    if live:
                        appended = replacement_delta(event.streamed, facts["text"])
                        if appended:
                            yield chunk({"content": appended})
                        remember(facts, event.streamed, event.streamed + appended)
                    else:
                        appended = ""
                        yield chunk({"content": facts["text"]})
                        remember(facts, event.streamed)
                    yield chunk({}, "stop", **extras(facts), streamed_text_replaced=bool(appended), final_text=facts["text"])
                    if include_usage:
                        yield _sse(
                            {
                                "id": completion_id,
                                "object": "chat.completion.chunk",
                                "created": created,
                                "model": model,
                                "system_fingerprint": None,
                                "choices": [],
                                "usage": usage_out(facts),
                            }
                        )
                    yield _sse("[DONE]")
                    return
                try:
                    event = await asyncio.wait_for(run.next(), KEEP_ALIVE_S)
                except TimeoutError:
                    event = None
        finally:
            # Reached on normal ends too; after a disconnect it is what stops the model.
            run.stop()

    @app.get("/v1/papers", tags=["collection"])
    def list_papers() -> dict[str, Any]:
        """The collection, as ``paper-assistant papers --json``."""
        return papers_payload(assistants.store.list_papers())

    @app.get("/v1/search", tags=["collection"])
    def search(
        q: Annotated[str, Query(min_length=1, description="What to look for: words or a question")],
        k: Annotated[int, Query(ge=1, le=100, description="Number of papers")] = 5,
    ) -> dict[str, Any]:
        """Papers by meaning and keywords, as ``paper-assistant search --json``."""
        if not q.strip():
            raise InvalidInput("the query is empty")
        return search_payload(q, assistants.retriever.search(q, k))

    @app.post("/v1/ingest", tags=["collection"])
    def ingest(
        files: Annotated[list[UploadFile], File(description="Daily Papers scrape (.txt), JSON, JSON Lines or CSV files")],
    ) -> dict[str, Any]:
        """Add papers from uploaded files, as ``paper-assistant ingest --json``; skipped records are listed."""
        uploads: list[tuple[str, bytes]] = []
        total = 0
        for upload in files:
            data = upload.file.read(MAX_UPLOAD_BYTES + 1 - total)
            total += len(data)
            if total > MAX_UPLOAD_BYTES:
                raise ApiError(413, TOO_LARGE, code="too_large")
            uploads.append((upload.filename or "upload", data))
        read = read_uploads(uploads)
        if not read.papers:
            raise ApiError(
                400,
                "no valid paper to ingest" + problem_lines(read.problems),
                code="nothing_to_ingest",
                param="files",
                problems=[p.model_dump(mode="json") for p in read.problems],
            )
        return ingest_payload(ingest_papers(read, store=assistants.store))

    return app


# =============================================================================================
# Serving
# =============================================================================================
def serve(
    settings: Settings, *, address: str = DEFAULT_ADDRESS, port: int = DEFAULT_PORT, store: PaperStore | None = None
) -> None:
    """Run the API with uvicorn until interrupted."""
    import uvicorn

    app = create_app(settings, store=store)
    uvicorn.run(app, host=address, port=port, log_level="info", timeout_graceful_shutdown=5)


__all__ = [
    "MODEL_ID",
    "TOKEN_ENV",
    "create_app",
    "papers_payload",
    "search_payload",
    "serve",
]
