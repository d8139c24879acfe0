"""The small protocol every language model sits behind, and a fake one for tests.

Everything outside ``assistant/llm.py`` talks to models only through
:class:`LLMBackend`: one ``generate`` call that returns a :class:`Generation`, which
streams text pieces when iterated and afterwards holds the whole text, the token
usage and the model that answered.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, runtime_checkable

from assistant.errors import LLMError
from assistant.models import Message, Usage


class Generation:
    """A reply being generated: iterate for text pieces, then read ``text`` and ``usage``.

    A failure mid-stream keeps what arrived: ``text`` holds it, ``cut`` is True and
    ``error`` says why; iteration then raises :class:`LLMError` carrying the partial text.
    """

    def __init__(
        self,
        pieces: Iterator[str],
        *,
        model: str,
        usage_of: Callable[[str], Usage] | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self._pieces = pieces
        self._usage_of = usage_of
        # A server or proxy may echo credentials into its reply; the whole text is what
        # every feature keeps and shows, so it is where secrets are masked.
        self._redact = redact
        self._received: list[str] = []
        self._done = False
        self.model = model
        self.cut = False
        self.error: LLMError | None = None
        self._usage: Usage | None = None

    def __iter__(self) -> Iterator[str]:
        if self._done:
            yield from self._received
            return
        try:
            for piece in self._pieces:
                if piece:
                    self._received.append(piece)
                    yield piece
        except LLMError as exc:
            partial = "".join(self._received)
            if partial:
                self.cut = True
                if self._redact is not None:
                    partial = self._redact(partial)
                self.error = LLMError(f"{exc} (the reply was cut after {len(partial)} characters)", partial_text=partial)
            else:
                self.error = exc
            raise self.error from exc
        finally:
            self._done = True

    def set_usage(self, usage: Usage) -> None:
        self._usage = usage

    @property
    def text(self) -> str:
        if not self._done:
            for _ in self:
                pass
        text = "".join(self._received)
        return self._redact(text) if self._redact is not None else text

    @property
    def usage(self) -> Usage:
        if self._usage is None and self._usage_of is not None:
            return self._usage_of(self.text)
        return self._usage or Usage()


@runtime_checkable
class LLMBackend(Protocol):
    """What the assistant needs from a language model."""

    @property
    def model(self) -> str: ...

    def generate(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Generation: ...

    def count_tokens(self, text: str) -> int: ...

    def context_window(self) -> int: ...


class FakeLLM:
    """A scripted backend: ``enqueue`` replies (text or an exception), read ``history`` after.

    Replies stream word by word. When the queue is empty it answers ``default_reply``.
    """

    def __init__(self, *replies: str | Exception, model: str = "fake/echo", window: int = 8192) -> None:
        self._queue: deque[str | Exception] = deque(replies)
        self._lock = threading.Lock()
        self.history: list[list[Message]] = []
        self.default_reply = "The collection does not say."
        self._model = model
        self._window = window

    @property
    def model(self) -> str:
        return self._model

    def enqueue(self, *replies: str | Exception) -> FakeLLM:
        with self._lock:
            self._queue.extend(replies)
        return self

    def count_tokens(self, text: str) -> int:
        from assistant.tokens import count_tokens

        return count_tokens(text)

    def context_window(self) -> int:
        return self._window

    def generate(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Generation:
        with self._lock:
            self.history.append(list(messages))
            reply = self._queue.popleft() if self._queue else self.default_reply
        prompt_tokens = sum(self.count_tokens(m.content) for m in messages)

        def pieces() -> Iterator[str]:
            if isinstance(reply, Exception):
                raise reply
            words = reply.split(" ")
            for i, word in enumerate(words):
                yield word if i == len(words) - 1 else word + " "

        return Generation(
            pieces(),
            model=self._model,
            usage_of=lambda text: Usage(prompt_tokens=prompt_tokens, completion_tokens=self.count_tokens(text)),
        )

    @property
    def last_messages(self) -> list[Message]:
        return self.history[-1] if self.history else []
