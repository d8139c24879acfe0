"""A chat request's life: the conversation read from OpenAI's messages, the reply made in a worker thread.

:func:`conversation` turns the ``messages`` array into the question and the history
``respond()`` takes; :class:`ReplyMemory` lets a follow-up's history name papers again;
:class:`ReplyRun` makes one reply off the event loop and hands its pieces to the request;
:class:`ClientWatch` notices a client that leaves, so its reply stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from starlette.requests import Request
from starlette.types import Receive

from assistant.api.wire import ChatMessage
from assistant.conversations import ChatTurn
from assistant.errors import InvalidInput
from assistant.schema import Message
from assistant.service import Reply
from assistant.streaming import Streamed

log = logging.getLogger("assistant.api")

REMEMBERED_REPLIES = 2048
"""Replies whose papers a follow-up can still find (per server process)."""
REPLACED_NOTE = "The text above did not pass the check against the abstracts; the checked answer:"


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


def check_text(text: str, where: str) -> str:
    """``text`` if it can be encoded as UTF-8; InvalidInput naming the bad character otherwise.

    JSON can carry a lone surrogate (``"\\ud800"``), which is no character: before, it reached
    the tokenizer and came back as a 500 "TextEncodeInput must be ...".
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        raise InvalidInput(
            f"{where} contains U+{ord(bad):04X} at character {exc.start + 1}, a lone surrogate that is not text "
            "(an escape like \\ud800 without its pair): remove it or send the whole character"
        ) from None
    return text


def conversation(messages: Sequence[ChatMessage], memory: ReplyMemory) -> tuple[str, list[ChatTurn | Message]]:
    """The question (last user message) and the history before it, as respond() takes them."""
    for number, message in enumerate(messages):
        check_text(message.text, f"messages[{number}].content")
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


def replacement_delta(streamed: str, final: str) -> str:
    """What a stream appends when the checked text is not what it streamed ("" when it is)."""
    if _normalized(streamed) == _normalized(final):
        return ""
    return f"\n\n---\n\n*{REPLACED_NOTE}*\n\n{final}"


class InertMarkdown:
    """Unchecked model words made inert as they stream: a client that renders Markdown loads no
    image, follows no link and runs no HTML of text that has not passed the check.

    ``![`` becomes ``!\\[`` and ``](`` becomes ``]\\(`` (no image, no inline link: the brackets
    show as written), ``<`` before a letter, ``/``, ``!`` or ``?`` becomes ``\\<`` (no tag). A
    piece that ends in ``!``, ``]`` or ``<`` keeps that character until the next piece shows
    what follows it. The checked text, sent after, has had such things removed or kept on
    their merits (``grounding.scrub``).
    """

    _OPENING = re.compile(r"!\[|\]\(|<(?=[A-Za-z/!?])")
    _ESCAPED: ClassVar[dict[str, str]] = {"![": "!\\[", "](": "]\\(", "<": "\\<"}

    def __init__(self) -> None:
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece
        self._held = text[-1] if text and text[-1] in "!]<" else ""
        if self._held:
            text = text[:-1]
        return self._OPENING.sub(lambda match: self._ESCAPED[match.group(0)], text)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


# --- producing a reply off the event loop ---------------------------------------------------
@dataclass(frozen=True)
class Piece:
    text: str


@dataclass(frozen=True)
class Done:
    reply: Reply
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

    def produce(self, start: Callable[[], Streamed[Reply]]) -> None:
        """Run in a worker thread: start the reply, pass its pieces on, then the checked reply."""
        stream: Streamed[Reply] | None = None
        completed = False
        try:
            if self.stopped:
                return
            stream = start().stopped_by(self._stop)  # reaches the model calls inside it, too
            streamed: list[str] = []
            for piece in stream:
                if self.stopped:
                    return
                streamed.append(piece)
                self._emit(Piece(piece))
            reply = stream.result
            completed = True
            self._emit(Done(reply, "".join(streamed)))
        except Exception as exc:  # every failure goes to the client, in OpenAI's format
            self._emit(Failed(exc))
        finally:
            if stream is not None and not completed:
                try:
                    stream.close()
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
