"""The project's user-facing failures, and the one table that says how each is shown.

Every failure a user can do something about is one of the exceptions below (or the
ingestion layer's :class:`~ingestion.errors.IngestionError`). Its message is written
for the user: it names the file, setting, environment variable or command that fixes
it. :func:`describe` turns any of them into an :class:`ErrorReport`, which the CLI
(exit code, one ``error:`` line), the app (a lead and a hint) and the HTTP API (status
and OpenAI's error body) all show from the same row of :data:`ERROR_TABLE`. Anything
else is a bug, and the edges show it as one line without a traceback.

This module imports nothing of the project but the ingestion layer's exception, so
every module can raise these without import cycles.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from ingestion.errors import IngestionError

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3

CANDIDATES_SHOWN = 10
"""A name that fits many papers (301 of one title, once) lists this many, then how many more."""


class AssistantError(Exception):
    """A failure whose message tells the user what to do."""


class InvalidInput(AssistantError, ValueError):
    """A question, name or option that cannot be used as given (empty, not text, out of range)."""


class LLMError(AssistantError, RuntimeError):
    """A model call failed; the message says what the user can do about it.

    ``kind`` is one word for what went wrong ("unknown_model", "auth", "timeout", ...);
    ``partial_text`` is what the model had written before a mid-reply failure.
    """

    def __init__(self, message: str, *, partial_text: str = "", kind: str = "other") -> None:
        super().__init__(message)
        self.partial_text = partial_text
        self.kind = kind


class StoreUnavailable(AssistantError, RuntimeError):
    """The Chroma store cannot be opened, read or written; the message says what to check."""


class EmbedderMismatch(AssistantError, ValueError):
    """The collection was built with another embedding model than the one configured."""


class EmbedderUnavailable(AssistantError, RuntimeError):
    """The embedding model cannot be loaded (a package or file is missing); the message says which."""


class DataDirUnavailable(AssistantError, RuntimeError):
    """The data folder (conversations, caches) cannot be written."""


class ConversationNotFound(AssistantError, KeyError):
    """No conversation has that id (deleted, or never created)."""

    def __str__(self) -> str:
        return f"the conversation {self.args[0]!r} no longer exists (deleted, perhaps in another window)"


@contextmanager
def data_dir_errors(folder: Path) -> Iterator[None]:
    """File and SQLite failures inside the data folder, as a :class:`DataDirUnavailable` naming it."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        raise DataDirUnavailable(
            f"cannot use {folder} for conversations and caches ({exc}); "
            "make it writable or set ASSISTANT_DATA_DIR to another folder"
        ) from exc


def listed_titles(papers: Sequence[object]) -> str:
    """Papers as a message lists them: the first CANDIDATES_SHOWN as "title [id]", then how many more."""
    shown = "; ".join(f"{getattr(p, 'title', p)} [{getattr(p, 'paper_id', '')}]" for p in papers[:CANDIDATES_SHOWN])
    more = len(papers) - CANDIDATES_SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


class PaperNotFound(AssistantError, LookupError):
    """A name fits no paper of the collection."""

    def __init__(self, name: str, suggestions: Sequence[object] = ()) -> None:
        self.name = name
        self.suggestions = list(suggestions)
        hint = listed_titles(self.suggestions)
        super().__init__(f"no paper in the collection matches {name!r}" + (f". Closest: {hint}" if hint else ""))


class AmbiguousPaper(AssistantError, LookupError):
    """A name fits several papers; the message lists the first of them so the user can pick one."""

    def __init__(self, name: str, candidates: Sequence[object]) -> None:
        self.name = name
        self.candidates = list(candidates)
        super().__init__(
            f"{name!r} fits several papers: {listed_titles(self.candidates)}. "
            "Give a longer part of the title or the paper id."
        )


ErrorKind = Literal["bad_input", "not_found", "unavailable", "internal"]


class ErrorReport(BaseModel):
    """How one failure is shown: the same facts for the CLI, the app and the HTTP API."""

    kind: ErrorKind
    message: str
    lead: str = ""
    hint: str = ""
    exit_code: int
    http_status: int
    error_type: str

    @property
    def text(self) -> str:
        """The message with its lead and hint, as the app shows it."""
        body = f"{self.lead}: {self.message.strip()}" if self.lead else self.message.strip()
        return f"{body.rstrip('.')}. {self.hint}" if self.hint else body


@dataclass(frozen=True)
class ErrorRule:
    """One row of the table: which exceptions, and how they are shown."""

    types: tuple[type[BaseException], ...]
    kind: ErrorKind
    lead: str = ""
    hint: str = ""


ERROR_TABLE: tuple[ErrorRule, ...] = (
    ErrorRule((LLMError,), "unavailable", "The language model failed", "Pick another model, or try again."),
    ErrorRule((StoreUnavailable,), "unavailable", "The paper store is unavailable"),
    ErrorRule((EmbedderUnavailable,), "unavailable", "The embedding model is unavailable"),
    ErrorRule((EmbedderMismatch,), "bad_input", hint="Rebuild it with `paper-assistant ingest --rebuild PATH...`."),
    ErrorRule((DataDirUnavailable,), "unavailable"),
    ErrorRule((IngestionError,), "bad_input", "Nothing could be read"),
    ErrorRule((PaperNotFound,), "not_found"),
    ErrorRule((AmbiguousPaper,), "bad_input"),
    ErrorRule((ConversationNotFound,), "not_found"),
    ErrorRule((InvalidInput, ValueError), "bad_input"),
)
"""First matching row wins; a ValueError from deeper down is bad input."""

_EXIT_CODES: dict[ErrorKind, int] = {
    "bad_input": EXIT_BAD_INPUT,
    "not_found": EXIT_BAD_INPUT,
    "unavailable": EXIT_UNAVAILABLE,
    "internal": 1,
}
_HTTP_STATUS: dict[ErrorKind, int] = {"bad_input": 400, "not_found": 404, "unavailable": 503, "internal": 500}


MESSAGE_MAX_CHARS = 600
"""Messages quote what the user gave (a path, a name); a 100,000-character argument is shown cut."""


def shortened(message: str) -> str:
    """``message`` at most MESSAGE_MAX_CHARS long: its start and its end (where the fix is said) kept."""
    if len(message) <= MESSAGE_MAX_CHARS:
        return message
    head, tail = MESSAGE_MAX_CHARS * 2 // 3, MESSAGE_MAX_CHARS // 3
    return f"{message[:head]} … ({len(message) - head - tail:,} characters left out) … {message[-tail:]}"


def describe(exc: BaseException) -> ErrorReport:
    """How to show ``exc``: its row of :data:`ERROR_TABLE`, or an internal error for anything else."""
    message = shortened(str(exc).strip() or type(exc).__name__)
    for rule in ERROR_TABLE:
        if isinstance(exc, rule.types):
            kind = rule.kind
            # An unknown model string is "no such model" to an API client, "unavailable" on the command line.
            http_status = 404 if isinstance(exc, LLMError) and exc.kind == "unknown_model" else _HTTP_STATUS[kind]
            return ErrorReport(
                kind=kind,
                message=message,
                lead=rule.lead,
                hint=rule.hint,
                exit_code=_EXIT_CODES[kind],
                http_status=http_status,
                error_type=type(exc).__name__,
            )
    return ErrorReport(
        kind="internal",
        message=f"an unexpected error ({type(exc).__name__}): {message}",
        exit_code=_EXIT_CODES["internal"],
        http_status=_HTTP_STATUS["internal"],
        error_type=type(exc).__name__,
    )
