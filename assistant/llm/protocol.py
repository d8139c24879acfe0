"""The small protocol every language model sits behind.

Everything outside :mod:`assistant.llm` talks to models only through :class:`LLMBackend`:
one ``generate`` call that returns a :class:`~assistant.streaming.Streamed` reply, whose
pieces are the text as it is written and whose result is a :class:`Completion` (the whole
text, the token usage and the model that answered, which may be a fallback).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from assistant.schema import Message, Usage
from assistant.streaming import Streamed

JsonSchema = dict[str, Any]


class Completion(BaseModel):
    """A model's whole reply."""

    text: str
    model: str = Field(description="The model that answered: the configured one or a fallback")
    usage: Usage = Field(default_factory=Usage)
    finish_reason: str | None = None


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
        json_schema: JsonSchema | None = None,
    ) -> Streamed[Completion]:
        """Start a reply. With ``json_schema`` the reply is JSON of that shape where the model can be held to it."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def context_window(self) -> int: ...
