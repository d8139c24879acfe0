"""Errors of the ingestion layer."""

from __future__ import annotations


class IngestionError(Exception):
    """Nothing could be read: the message names the file or URL and says what is wrong.

    Raised for a whole input (missing file, unknown format, no valid record, feed failure);
    a single bad record inside a readable file becomes a ``Problem`` instead.
    """


class InvalidRecord(ValueError):
    """One record cannot become a Paper; readers turn it into a ``Problem`` at the record's location."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        # Lets a reader whose fields sit on different lines point at the offending one.
        self.field = field
