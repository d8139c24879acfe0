"""The one streaming wrapper: text pieces while something is written, then its checked result.

A model's reply (:class:`~assistant.llm.Completion`), an answer, a comparison, a summary, a
digest and a chat reply are all a :class:`Streamed`: iterate it to show the words as they
arrive, then read ``result``. It wraps a generator that yields text pieces and returns the
result, so a feature is written as plain sequential code that ``yield from``\\ s the model.

Stopping. A reader that no longer wants a reply (an HTTP client that left) calls
:meth:`Streamed.stop` from any thread, or hands the stream its own flag with
:meth:`Streamed.stopped_by`. The stop reaches every stream pulled inside it: while a stream
makes its next piece, it is on this context's stack of streams being made, and each stream
checks that stack before each of its own pieces. So a comparison that reads a model's whole
reply with ``.result`` (no piece reaches the reader until the table is done) still stops
between its model calls and inside one, at the model's next piece; a model backend that
waits on a server can poll :func:`stop_requested` while it waits. The stopped stream raises
:class:`Stopped` and its generator is closed, which ends the model call.

Notices. A model layer that changes what it was given (a reply cut at the answer budget)
says so with :func:`add_notice`; the notice is kept by every stream being made at that
moment, and :func:`current_notices` gives the innermost one's to whoever builds the reply.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

from assistant.errors import LLMError

ResultT = TypeVar("ResultT")
OtherT = TypeVar("OtherT")

_making: ContextVar[tuple[Streamed[Any], ...]] = ContextVar("streams_being_made", default=())


class Stopped(LLMError):
    """The reader stopped the reply (a client that left); nobody is waiting for this error."""

    def __init__(self, partial_text: str = "") -> None:
        super().__init__("the reply was stopped before it was finished", partial_text=partial_text, kind="stopped")


def stop_requested() -> bool:
    """Whether a stream being made in this context was asked to stop."""
    return any(stream.stop_wanted for stream in _making.get())


def add_notice(notice: str) -> None:
    """Tell whoever reads the replies being made in this context (each keeps it once)."""
    for stream in _making.get():
        if notice not in stream.notices:
            stream.notices.append(notice)


def current_notices() -> list[str]:
    """The notices raised so far inside the innermost stream being made (none outside one)."""
    making = _making.get()
    return list(making[-1].notices) if making else []


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
        self._stops: list[threading.Event] = [threading.Event()]
        self.error: LLMError | None = None
        self.notices: list[str] = []

    @classmethod
    def of(cls, result: ResultT, text: str) -> Streamed[ResultT]:
        """A reply known before anything is generated, streamed as one piece."""

        def steps() -> Generator[str, None, ResultT]:
            yield text
            return result

        return cls(steps())

    def stop(self) -> None:
        """Ask the reply to stop at its next piece (or a model's next chance); safe from any thread."""
        self._stops[0].set()

    def stopped_by(self, flag: threading.Event) -> Streamed[ResultT]:
        """This stream, stopping as soon as ``flag`` is set (a request's own stop flag)."""
        self._stops.append(flag)
        return self

    @property
    def stop_wanted(self) -> bool:
        return any(flag.is_set() for flag in self._stops)

    def _pull(self) -> None:
        making = _making.get()
        if self.stop_wanted or any(stream.stop_wanted for stream in making):
            self._steps.close()
            self._finished = True
            self.error = Stopped(self.partial_text)
            raise self.error
        token = _making.set((*making, self))
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
        finally:
            _making.reset(token)

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
