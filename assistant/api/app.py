"""The HTTP server: routes, the bearer-token gate, and uvicorn.

See :mod:`assistant.api` for what it serves and why it streams the way it does.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import sqlite3
import time
import traceback
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, File, Query, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from assistant.api.chat import (
    ClientWatch,
    Event,
    Failed,
    Piece,
    ReplyMemory,
    ReplyRun,
    conversation,
    log,
    replacement_delta,
)
from assistant.api.variants import Assistants
from assistant.api.wire import (
    ERROR_RESPONSES,
    TOKEN_ENV,
    ApiError,
    ChatCompletion,
    ChatCompletionRequest,
    Health,
    ModelCard,
    ModelList,
    error_body,
    error_content,
    error_response,
    error_type,
    extras,
    sse,
    usage_out,
    validation_message,
)
from assistant.conversations import ChatTurn
from assistant.errors import AssistantError, InvalidInput
from assistant.redaction import redact_secrets
from assistant.retrieval import Retriever
from assistant.schema import DateRange, Message, PaperList, SearchResults
from assistant.service import Reply
from assistant.settings import Settings
from assistant.store import PaperStore
from ingestion.errors import IngestionError
from ingestion.pipeline import ingest_papers, read_uploads

DEFAULT_PORT = 8000
DEFAULT_ADDRESS = "127.0.0.1"
REPLY_WORKERS = 32
"""Replies produced at once; more wait for a worker (the local model serialises anyway)."""
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
"""As the app's upload limit (server.maxUploadSize = 50 MB)."""
CLIENT_GONE = 499
"""Status logged for a request whose client left before the reply (nginx's convention; never seen)."""
KEEP_ALIVE = ": keep-alive\n\n"
KEEP_ALIVE_S = 10.0
"""A stream that has sent nothing for this long sends an SSE comment (proxies drop idle streams)."""
UNAUTHENTICATED = ("/healthz",)
TOO_LARGE = (
    f"the upload is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB: split it into smaller files and requests"
)


# --- authentication: a pure ASGI layer, so streaming and disconnects pass through untouched ----
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


# --- the app -----------------------------------------------------------------------------------
def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def create_app(settings: Settings, *, store: PaperStore | None = None, token: str | None = None) -> FastAPI:
    """The API over one store; ``token`` defaults to ``ASSISTANT_API_TOKEN`` (empty or unset: no authentication)."""
    store = store or PaperStore(settings)
    assistants = Assistants(settings, store, Retriever(store, settings))
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
        return JSONResponse(
            error_body(message, type_="invalid_request_error", code="invalid_request", param=param), 400
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(str(exc.detail), type_=error_type(exc.status_code), code=code),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def _known_failure(_: Request, exc: Exception) -> JSONResponse:
        return error_response(exc)

    # The failures a user can act on (describe()'s table). Anything else is a bug: 500 in the
    # same format, and Starlette logs its traceback on the server, never to the client.
    for family in (
        ApiError,
        AssistantError,
        IngestionError,
        ValueError,
        LookupError,
        OSError,
        sqlite3.Error,
        Exception,
    ):
        app.add_exception_handler(family, _known_failure)

    # --- reply runs -----------------------------------------------------------------------
    def start_run(
        key: str, question: str, history: list[ChatTurn | Message], days: DateRange | None = None
    ) -> ReplyRun:
        run = ReplyRun(asyncio.get_running_loop())
        runs.add(run)

        def work() -> None:
            try:
                run.produce(lambda: assistants.get(key).respond(question, history, days=days))
            finally:
                runs.discard(run)

        executor.submit(work)
        return run

    def remember(reply: Reply, *shown: str) -> None:
        memory.remember([reply.text, *shown], reply.to_chat_turn())

    # --- routes ---------------------------------------------------------------------------
    @app.get("/healthz", response_model=Health, tags=["service"])
    def healthz() -> Health:
        """Up, and how many papers the collection holds (no token needed)."""
        return Health(papers=len(assistants.any().papers()))

    @app.get("/v1/models", response_model=ModelList, tags=["chat"])
    def list_models() -> ModelList:
        """The assistant as a model, and variants ``paper-assistant:MODEL`` that pick the underlying LLM."""
        return ModelList(
            data=[ModelCard(id=model_id, created=assistants.created) for model_id in assistants.model_ids()]
        )

    @app.get("/v1/models/{model_id:path}", response_model=ModelCard, tags=["chat"])
    def get_model(model_id: str) -> ModelCard:
        assistants.check(model_id)
        return ModelCard(id=model_id, created=assistants.created)

    @app.post(
        "/v1/chat/completions",
        response_model=ChatCompletion,
        tags=["chat"],
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE chunks when stream is true"}
        },
    )
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        """OpenAI's chat completions, whole or streamed; the reply cites the papers as [n]."""
        key = assistants.check(body.model)
        question, history = conversation(body.messages, memory)
        run = start_run(key, question, history, body.date_range.days if body.date_range else None)
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

    async def whole_reply(
        run: ReplyRun, event: Event, watch: ClientWatch, completion_id: str, created: int, model: str
    ) -> Any:
        next_one: Event | None = event
        while isinstance(next_one, Piece):
            next_one = await watch.next(run)
        if next_one is None:
            return Response(status_code=CLIENT_GONE)
        event = next_one
        if isinstance(event, Failed):
            return error_response(event.error)
        reply = event.reply
        remember(reply, event.streamed)
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.text},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": usage_out(reply),
                "system_fingerprint": None,
                **extras(reply),
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
            return sse({**body, **more})

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
                    yield sse(error)
                    yield sse("[DONE]")
                    return
                else:
                    reply = event.reply
                    if live:
                        appended = replacement_delta(event.streamed, reply.text)
                        if appended:
                            yield chunk({"content": appended})
                        remember(reply, event.streamed, event.streamed + appended)
                    else:
                        appended = ""
                        yield chunk({"content": reply.text})
                        remember(reply, event.streamed)
                    yield chunk(
                        {}, "stop", **extras(reply), streamed_text_replaced=bool(appended), final_text=reply.text
                    )
                    if include_usage:
                        yield sse(
                            {
                                "id": completion_id,
                                "object": "chat.completion.chunk",
                                "created": created,
                                "model": model,
                                "system_fingerprint": None,
                                "choices": [],
                                "usage": usage_out(reply),
                            }
                        )
                    yield sse("[DONE]")
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
        return PaperList.of(assistants.store.list_papers()).model_dump(mode="json")

    @app.get("/v1/search", tags=["collection"])
    def search(
        q: Annotated[str, Query(min_length=1, description="What to look for: words or a question")],
        k: Annotated[int, Query(ge=1, le=100, description="Number of papers")] = 5,
    ) -> dict[str, Any]:
        """Papers by meaning and keywords, as ``paper-assistant search --json``."""
        if not q.strip():
            raise InvalidInput("the query is empty")
        return SearchResults.of(q, assistants.retriever.search(q, k)).model_dump(mode="json")

    @app.post("/v1/ingest", tags=["collection"])
    def ingest(
        files: Annotated[
            list[UploadFile], File(description="Daily Papers scrape (.txt), JSON, JSON Lines or CSV files")
        ],
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
                "no valid paper to ingest" + "".join(f"\n  {problem.line}" for problem in read.problems),
                code="nothing_to_ingest",
                param="files",
                problems=[p.model_dump(mode="json") for p in read.problems],
            )
        return ingest_papers(read, store=assistants.store).model_dump(mode="json")

    return app


def serve(
    settings: Settings, *, address: str = DEFAULT_ADDRESS, port: int = DEFAULT_PORT, store: PaperStore | None = None
) -> None:
    """Run the API with uvicorn until interrupted."""
    import uvicorn

    app = create_app(settings, store=store)
    uvicorn.run(app, host=address, port=port, log_level="info", timeout_graceful_shutdown=5)
