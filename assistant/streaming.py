"""The one streaming wrapper: text pieces while something is written, then its checked result.

A model's reply (:class:`~assistant.llm.Completion`), an answer, a comparison, a summary, a
digest and a chat reply are all a :class:`Streamed`: iterate it to show the words as they
arrive, then read ``result``. It wraps a generator that yields text pieces and returns the
result, so a feature is written as plain sequential code that ``yield from``\\ s the model.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Generic, TypeVar

from assistant.errors import LLMError

ResultT = TypeVar("ResultT")
OtherT = TypeVar("OtherT")


class Streamed(Generic[ResultT]):
    """A reply in the making: iterate for text pieces as they are written, then read ``result``.

    Iterating again replays the pieces; reading ``result`` first runs the rest silently. A model
    failure is re-raised (as :class:`LLMError`, carrying the partial text) wherever it is met,
    and ``partial_text`` keeps what arrived before it. :meth:`close` abandons the reply: the
    generator is closed, which ends the model call and frees a local model's lock at once.
    """

    def __init__(self, steps: Generator[str, None, ResultT]) -> None:
        self._steps = steps
        self._pieces: list[str] = []
        self._finished = False
        self._result: ResultT | None = None
        self.error: LLMError | None = None

    @classmethod
    def of(cls, result: ResultT, text: str) -> Streamed[ResultT]:
        """A reply known before anything is generated, streamed as one piece."""

        def steps() -> Generator[str, None, ResultT]:
            yield text
            return result

        return cls(steps())

    def _pull(self) -> None:
        try:
            self._pieces.append(next(self._steps))
        except StopIteration as stop:
            self._finished = True
            self._result = stop.value
        except LLMError as exc:
            self._finished = True
            if not exc.partial_text:
                exc.partial_text = self.partial_text
            self.error = exc
            raise

    def __iter__(self) -> Iterator[str]:
        shown = 0
        while True:
            if shown < len(self._pieces):
                shown += 1
                yield self._pieces[shown - 1]
            elif self._finished:
                if self.error is not None:
                    raise self.error
                return
            else:
                self._pull()

    @property
    def result(self) -> ResultT:
        while not self._finished:
            self._pull()
        if self.error is not None:
            raise self.error
        return self._result  # type: ignore[return-value]  # set whenever finished without an error

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def partial_text(self) -> str:
        return "".join(self._pieces)

    def close(self) -> None:
        """Stop generating: the rest is never written."""
        if not self._finished:
            self._steps.close()
            self._finished = True
            self.error = LLMError("the reply was abandoned before it was finished", partial_text=self.partial_text)

    def then(self, finish: Callable[[ResultT], OtherT]) -> Streamed[OtherT]:
        """The same pieces, with ``finish`` applied to the result."""

        def steps() -> Generator[str, None, OtherT]:
            result = yield from self.relay()
            return finish(result)

        return Streamed(steps())

    def relay(self) -> Generator[str, None, ResultT]:
        """The pieces, then the result: ``result = yield from streamed.relay()`` inside another stream."""
        yield from self
        return self.result
