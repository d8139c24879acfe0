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
stream sends the checked text in one piece: what any client shows, and the history it sends back, is the
checked reply, the same as the whole response. A client that wants the words as they are
written asks with ``"stream_unchecked": true``; when the checked text then differs, the last
content delta appends it under a rule and a note that the text above did not pass the
check (so even a plain chat client ends on the checked answer), and the extras say
``streamed_text_replaced: true``. Either way the last chunk carries the checked text alone
as ``final_text``. The unchecked words go out inert (``![``, ``](`` and ``<`` before a tag
escaped, :class:`~assistant.api.chat.InertMarkdown`): a client that renders Markdown must not
load an image the check would have removed.

How a stream starts: at once. The headers, an SSE comment and the role chunk go out as soon
as the request is read, before the model writes anything (a comparison took 20 s to its
first piece with a loopback model, 106 s with the local 1.5B, and clients and proxies gave
up on the silence). From then on a ``: keep-alive`` comment goes out whenever the client has
seen nothing for :data:`~assistant.api.app.KEEP_ALIVE_S`, counted on what the client saw:
pieces a checked stream holds back are silence to it. A failure before the first words is
therefore an error event, not an HTTP status.

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
request validation errors are 400 in that format too, never a traceback; a lone surrogate
in a message is 400 naming it. A failure after a stream started is sent as one
``data: {"error": ...}`` event, then ``[DONE]``. An unexpected failure (a bug) is a 500 whose
traceback goes to the server's log (secrets masked), never to the client.

Who may call it (:class:`~assistant.api.app.RequestGate`, before any route): the ``Host``
header must be a loopback name, an IP address, the bound address or an allowed name
(``--allowed-host``, ``ASSISTANT_ALLOWED_HOSTS``), against DNS rebinding; a request a browser
sends from another page (a foreign ``Origin``, ``Sec-Fetch-Site`` cross-site or same-site) is
403, since browsers post forms and ``no-cors`` uploads anywhere without asking; the chat
route refuses the content types such a page may send (415); bodies are counted as they are
read against their limit (413, also for chunked bodies). With ``ASSISTANT_API_TOKEN`` set,
every request but ``/healthz`` needs ``Authorization: Bearer <token>`` (compared in constant
time), else 401; a blank token is an invalid setting.

The package: :mod:`~assistant.api.wire` (OpenAI's formats), :mod:`~assistant.api.chat` (a
request's conversation and reply run), :mod:`~assistant.api.variants` (the assistant as
models), :mod:`~assistant.api.app` (the gate, routes, uvicorn).
"""

from assistant.api.app import create_app, serve
from assistant.api.chat import REPLACED_NOTE
from assistant.api.wire import MODEL_ID, TOKEN_ENV

__all__ = ["MODEL_ID", "REPLACED_NOTE", "TOKEN_ENV", "create_app", "serve"]
