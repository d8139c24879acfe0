"""Scripted stand-ins for a language model, registered like any other (``fake``, ``fake/quote``).

:class:`FakeLLM` replies what a test ``enqueue``\\ s and records what it was asked in
``history``; :class:`QuotingFakeLLM` answers every prompt with sentences of its first source,
cited: grounded answers with real citations, for demos and for browser tests of an app
that runs in another process.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Generator, Sequence

from assistant.citations import insert
from assistant.llm.protocol import Completion, JsonSchema
from assistant.schema import Message, Usage
from assistant.streaming import Streamed
from assistant.text import split_sentences
from assistant.tokens import count_tokens

FAKE_WINDOW = 8192


class FakeLLM:
    """A scripted backend: ``enqueue`` replies (text or an exception), read ``history`` after.

    Replies stream word by word. When the queue is empty it answers ``default_reply``.
    ``calls`` records each call's options (max_tokens, temperature, json_schema).
    """

    def __init__(self, *replies: str | Exception, model: str = "fake/echo", window: int = FAKE_WINDOW) -> None:
        self._queue: deque[str | Exception] = deque(replies)
        self._lock = threading.Lock()
        self.history: list[list[Message]] = []
        self.calls: list[dict[str, object]] = []
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

    def clear(self) -> None:
        """Forget queued replies and what was asked."""
        with self._lock:
            self._queue.clear()
            self.history.clear()
            self.calls.clear()

    def count_tokens(self, text: str) -> int:
        return count_tokens(text)

    def context_window(self) -> int:
        return self._window

    @property
    def last_messages(self) -> list[Message]:
        return self.history[-1] if self.history else []

    def reply_to(self, messages: Sequence[Message], json_schema: JsonSchema | None) -> str | Exception:
        """The next queued reply, else ``default_reply``."""
        with self._lock:
            return self._queue.popleft() if self._queue else self.default_reply

    def generate(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: JsonSchema | None = None,
    ) -> Streamed[Completion]:
        with self._lock:
            self.history.append(list(messages))
            self.calls.append({"max_tokens": max_tokens, "temperature": temperature, "json_schema": json_schema})
        reply = self.reply_to(messages, json_schema)
        prompt_tokens = sum(self.count_tokens(m.content) for m in messages)

        def steps() -> Generator[str, None, Completion]:
            if isinstance(reply, Exception):
                raise reply
            words = reply.split(" ")
            for i, word in enumerate(words):
                yield word if i == len(words) - 1 else word + " "
            usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=self.count_tokens(reply))
            return Completion(text=reply, model=self._model, usage=usage, finish_reason="stop")

        return Streamed(steps())


_SOURCE_BLOCK = re.compile(r'<source n="(\d+)"[^>]*>\n(.*?)\n</source>', re.DOTALL)


class QuotingFakeLLM(FakeLLM):
    """A deterministic stand-in model (``ASSISTANT_MODEL=fake/quote``) that never needs a key.

    It answers every prompt with the first sentences of the first source it was given, cited
    ``[n]``; asked for JSON, it fills every text field of the schema that way. Prompts without
    sources get ``default_reply``; replies queued with ``enqueue`` still come first.
    """

    SENTENCES = 2

    def __init__(self, *, model: str = "fake/quote") -> None:
        super().__init__(model=model)

    def reply_to(self, messages: Sequence[Message], json_schema: JsonSchema | None) -> str | Exception:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        quoted = self.quote(messages[-1].content) if messages else ""
        if not quoted:
            return self.default_reply
        if json_schema is not None:
            fields = json_schema.get("properties", {})
            return json.dumps({name: quoted for name, spec in fields.items() if spec.get("type") == "string"})
        return quoted

    @classmethod
    def quote(cls, prompt: str) -> str:
        found = _SOURCE_BLOCK.search(prompt)
        if found is None:
            return ""
        n, text = int(found.group(1)), " ".join(found.group(2).split())
        return " ".join(insert(sentence, n) for sentence in split_sentences(text)[: cls.SENTENCES])
