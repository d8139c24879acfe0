"""The HTTP server: routes, the bearer-token gate, and uvicorn.

See :mod:`assistant.api` for what it serves and why it streams the way it does.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import sqlite3
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import FastAPI, File, Query, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api.chat import (
    ClientWatch,
    Event,
    Failed,
    InertMarkdown,
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
from assistant.errors import AssistantError, InvalidInput, describe
from assistant.redaction import redact_secrets
from assistant.retrieval import Retriever
from assistant.schema import DateRange, PaperList, SearchResults
from assistant.schema import Message as ChatMessage
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
MAX_JSON_BYTES = 8 * 1024 * 1024
"""The largest JSON body (a chat request). A 100,000-character question is 0.1 MB and is cut to the
model's window anyway; a 200 MB chunked body used to be read whole, taking the server to 3.9 GB."""
CLIENT_GONE = 499
"""Status logged for a request whose client left before the reply (nginx's convention; never seen)."""
KEEP_ALIVE = ": keep-alive\n\n"
STREAM_OPENED = ": paper-assistant is reading the papers\n\n"
"""Sent with the headers as soon as a stream is asked for, before the model writes anything."""
KEEP_ALIVE_S = 10.0
"""A stream the client has seen nothing of for this long gets an SSE comment (proxies drop idle streams)."""
UNAUTHENTICATED = ("/healthz",)
UPLOAD_ROUTES = ("/v1/ingest",)
JSON_ROUTES = ("/v1/chat/completions",)
SIMPLE_CONTENT_TYPES = (b"text/plain", b"multipart/form-data", b"application/x-www-form-urlencoded")
"""The types a browser sends from any page without asking the server first (a CORS "simple" request)."""
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
SAFE_FETCH_SITES = (b"same-origin", b"none")
"""Sec-Fetch-Site values of a request from this server's own pages or typed by the user."""


def too_large(limit: int) -> str:
    return f"the request body is larger than {limit / (1024 * 1024):g} MB: split it into smaller files and requests"


TOO_LARGE = too_large(MAX_UPLOAD_BYTES)


class BodyTooLarge(StarletteHTTPException):
    """Raised while a body is read, once it passes its limit: chunked bodies carry no Content-Length."""

    def __init__(self, limit: int) -> None:
        # Closing the connection is what stops the rest of the body: kept alive, uvicorn would
        # read it all (and the client would keep sending) before the next request.
        super().__init__(413, too_large(limit), headers={"Connection": "close"})


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether a request's Host header names this server (see :class:`RequestGate`)."""
    try:
        name = urlsplit("//" + host).hostname
    except ValueError:
        return False
    if not name:
        return False
    if name in LOOPBACK_NAMES or name.endswith(".localhost") or "*" in allowed or name in allowed:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True  # an address, not a name: a browser that sends it was pointed at that address itself


def _refusal(status: int, message: str, code: str, **headers: str) -> JSONResponse:
    return JSONResponse(error_body(message, type_=error_type(status), code=code), status, headers=headers or None)


# --- the gate: a pure ASGI layer, so streaming and disconnects pass through untouched ----------
class RequestGate:
    """Everything refused before any route runs, and every unexpected failure logged.

    - the Host header must name this server: a loopback name, an IP address, the bound
      address or one of ``allowed_hosts``. DNS rebinding points a name the attacker owns
      at 127.0.0.1, so a page of theirs becomes "same origin" with the API and can read
      papers and answers; its requests carry that name as Host, and are refused (403).
    - a request a browser sends from another page is refused (403): an ``Origin`` that is
      not this server, or ``Sec-Fetch-Site`` cross-site or same-site (another port of
      localhost is same-site). Browsers send a form or ``no-cors`` upload to any address
      without asking, so without this any web page could add papers to a loopback server.
      Clients that are not browsers (the ``openai`` package, curl) send neither header.
    - a JSON route refuses the content types a browser may send without asking (415).
    - the bearer token, when one is set (401).
    - the body limit (413), counted while the body is read, so chunked bodies hold to it too.
    """

    def __init__(
        self, app: ASGIApp, token: str | None, allowed_hosts: Sequence[str] = (), bound_address: str | None = None
    ) -> None:
        self.app = app
        self._token = token.encode() if token else None
        self._allowed = [host.lower() for host in allowed_hosts] + ([bound_address.lower()] if bound_address else [])

    def _refused(self, scope: Scope, headers: dict[bytes, bytes]) -> JSONResponse | None:
        path = scope.get("path", "")
        host = headers.get(b"host", b"").decode("latin-1")
        if not host_allowed(host, self._allowed):
            return _refusal(
                403,
                f"this server does not answer to the host name {host.strip()!r}: reach it as 127.0.0.1 or localhost, "
                "or start it with --allowed-host NAME (ASSISTANT_ALLOWED_HOSTS) for the name clients use",
                "host_not_allowed",
            )
        origin = headers.get(b"origin")
        site = headers.get(b"sec-fetch-site")
        foreign_origin = origin is not None and urlsplit(origin.decode("latin-1")).netloc.lower() != host.lower()
        if foreign_origin or (site is not None and site not in SAFE_FETCH_SITES):
            return _refusal(
                403,
                "a request from a page of another site is refused (a web page must not use this API in your name); "
                "call the API from a program, or open the page from this server",
                "cross_site_request",
            )
        if self._token is not None and path not in UNAUTHENTICATED:
            scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
            if not (scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self._token)):
                return _refusal(
                    401,
                    "missing or wrong bearer token: send the header 'Authorization: Bearer <token>' "
                    f"with the value of {TOKEN_ENV}",
                    "invalid_api_key",
                    **{"WWW-Authenticate": "Bearer"},
                )
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if path in JSON_ROUTES and scope.get("method") == "POST" and content_type in SIMPLE_CONTENT_TYPES:
            return _refusal(
                415,
                f"this route reads JSON: send 'Content-Type: application/json', not {content_type.decode('latin-1')!r}",
                "unsupported_media_type",
            )
        limit = self.limit(path)
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            return _refusal(413, too_large(limit), "too_large", Connection="close")
        return None

    @staticmethod
    def limit(path: str) -> int:
        return MAX_UPLOAD_BYTES + 1024 * 1024 if path in UPLOAD_ROUTES else MAX_JSON_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refused(scope, dict(scope.get("headers") or []))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        limit, read, started = self.limit(scope.get("path", "")), 0, False

        async def counted() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except Exception as exc:  # a bug: logged here with its traceback, never sent to the client
            log_unexpected(exc)
            if not started:
                await error_response(exc)(scope, receive, send)


def log_unexpected(exc: BaseException) -> None:
    """An unexpected failure (a bug) on the server's log, with its traceback, secrets masked."""
    log.error("unexpected error: %s", redact_secrets("".join(traceback.format_exception(exc))).rstrip())


def failure_response(exc: BaseException) -> JSONResponse:
    """Any failure as OpenAI's error; an unexpected one (500) is logged with its traceback first."""
    status, _ = error_content(exc)
    if status >= 500 and describe(exc).kind == "internal":
        log_unexpected(exc)
    return error_response(exc)


# --- the app -----------------------------------------------------------------------------------
def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def create_app(
    settings: Settings,
    *,
    store: PaperStore | None = None,
    token: str | None = None,
    allowed_hosts: Sequence[str] = (),
    bound_address: str | None = None,
) -> FastAPI:
    """The API over one store.

    ``token`` defaults to ``ASSISTANT_API_TOKEN`` (``settings.server``; "" here: no authentication);
    the Host names it answers to are loopback names, IP addresses, ``bound_address``,
    ``ASSISTANT_ALLOWED_HOSTS`` and ``allowed_hosts``.
    """
    store = store or PaperStore(settings)
    assistants = Assistants(settings, store, Retriever(store, settings))
    memory = ReplyMemory()
    executor = ThreadPoolExecutor(max_workers=REPLY_WORKERS, thread_name_prefix="paper-assistant-reply")
    runs: set[ReplyRun] = set()
    token = settings.server.token if token is None else token

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
    app.add_middleware(
        RequestGate,
        token=token or None,
        allowed_hosts=[*settings.server.allowed_hosts, *allowed_hosts],
        bound_address=bound_address,
    )

    # --- errors ---------------------------------------------------------------------------
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(exc.errors())
        return JSONResponse(
            error_body(message, type_="invalid_request_error", code="invalid_request", param=param), 400
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(str(exc.detail), type_=error_type(exc.status_code), code=code),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def _known_failure(_: Request, exc: Exception) -> JSONResponse:
        return failure_response(exc)

    # The failures a user can act on (describe()'s table). Anything else is a bug: RequestGate
    # logs its traceback on the server and sends a 500 in the same format, never the traceback.
    for family in (ApiError, AssistantError, IngestionError, ValueError, LookupError, OSError, sqlite3.Error):
        app.add_exception_handler(family, _known_failure)

    # --- reply runs -----------------------------------------------------------------------
    def start_run(
        key: str, question: str, history: list[ChatTurn | ChatMessage], days: DateRange | None = None
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
        completion_id, created = _completion_id(), int(time.time())
        if body.stream:
            # Headers and a first comment at once: a client (or a proxy) that sees nothing for the
            # 20 s to 2 min a comparison takes before its first word gives up. From here on
            # StreamingResponse listens for the client leaving.
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(
                streamed_reply(run, completion_id, created, body.model, include_usage, body.stream_unchecked),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        watch = ClientWatch(request)
        try:
            first = await watch.next(run)
            if first is None:
                return Response(status_code=CLIENT_GONE)
            return await whole_reply(run, first, watch, completion_id, created, body.model)
        except BaseException:
            run.stop()
            raise
        finally:
            watch.close()

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
            return failure_response(event.error)
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
        run: ReplyRun, completion_id: str, created: int, model: str, include_usage: bool, live: bool
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

        inert = InertMarkdown()
        shown: list[str] = []
        try:
            yield STREAM_OPENED + chunk({"role": "assistant", "content": ""})
            last_sent = time.monotonic()
            while True:
                # The keep-alive clock runs on what the client saw: pieces a checked stream holds
                # back are silence to it, however fast the model writes them.
                try:
                    event = await asyncio.wait_for(run.next(), max(0.0, last_sent + KEEP_ALIVE_S - time.monotonic()))
                except TimeoutError:
                    yield KEEP_ALIVE  # an SSE comment: clients skip it, proxies see the stream is alive
                    last_sent = time.monotonic()
                    continue
                if isinstance(event, Piece):
                    text = inert.feed(event.text) if live else ""
                    if text:
                        shown.append(text)
                        yield chunk({"content": text})
                        last_sent = time.monotonic()
                elif isinstance(event, Failed):
                    _, error = error_content(event.error)
                    if error["error"]["code"] == "internal":
                        log_unexpected(event.error)
                    yield sse(error)
                    yield sse("[DONE]")
                    return
                else:
                    reply = event.reply
                    if live:
                        rest = inert.flush()
                        shown.append(rest)
                        appended = replacement_delta(event.streamed, reply.text)
                        if rest + appended:
                            yield chunk({"content": rest + appended})
                        remember(reply, event.streamed, "".join(shown), "".join(shown) + appended)
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
    settings: Settings,
    *,
    address: str = DEFAULT_ADDRESS,
    port: int = DEFAULT_PORT,
    store: PaperStore | None = None,
    allowed_hosts: Sequence[str] = (),
) -> None:
    """Run the API with uvicorn until interrupted (SIGINT or SIGTERM)."""
    import uvicorn

    app = create_app(settings, store=store, allowed_hosts=allowed_hosts, bound_address=address)
    uvicorn.run(app, host=address, port=port, log_level="info", timeout_graceful_shutdown=5)
