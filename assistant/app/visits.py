"""What is new since a reader's last visit: visits remembered per browser, in the data folder.

A browser is known by a random reader id (``new_reader_id``) that the app keeps in a cookie and
in the page's URL; ``visits.json`` in the data folder maps each id to its last visit: when it was,
and the newest listing day the collection held then. Papers listed on a later day are what is
new, so a paper counts as new exactly once, whether the reader came back the next morning or a
week later, and a visit made before the morning's papers were ingested does not hide them.
A paper added later to a day the reader had already seen is not counted (the store keeps no
ingest times).

A browser session reads the previous visit once, at its start, and records the new one at
once: every page of that session shows the same "since your last visit", and the next visit
(tomorrow's) counts from this one. A session started within an hour of the last (a reload, a
second tab) continues the same visit and shows the same news.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

from filelock import FileLock
from pydantic import BaseModel, ValidationError

from assistant.schema import DateRange

VISITS_FILE = "visits.json"
COOKIE = "paper_assistant_reader"
QUERY = "reader"
"""A URL may name the reader (``?reader=ID``): browsers that refuse the cookie, and tests."""
COOKIE_DAYS = 400
SAME_VISIT = timedelta(hours=1)
"""Sessions closer than this to the last one continue it (reloads, tabs): the morning's news stay put."""
MAX_READERS = 1000
"""Readers remembered; the ones not seen for longest are forgotten first (a file of ~100 KB)."""
_READER_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class Visit(BaseModel):
    """One visit: when, and the newest day with papers the collection held at that moment."""

    at: datetime
    newest_day: date | None = None


class WhatsNew(BaseModel):
    """How many papers were listed after the last visit's newest day, and on which days (None: none)."""

    previous: Visit | None
    count: int = 0
    days: DateRange | None = None

    def message(self) -> str:
        """“12 papers listed since your last visit on 2026-08-19” (or why there is nothing to show)."""
        if self.previous is None:
            return "Welcome! Next time you open the app from this browser, the papers listed since today come first."
        visited = self.previous.at.date().isoformat()
        if not self.count:
            return f"Nothing new since your last visit on {visited}."
        noun = "paper" if self.count == 1 else "papers"
        return f"{self.count} {noun} listed since your last visit on {visited}."


class Reader(BaseModel):
    reader_id: str
    set_cookie: bool


def choose_reader(cookie: object, query: object) -> Reader:
    """The browser's reader id: the URL's, else the cookie's, else a new one (kept in a new cookie)."""
    if valid_reader_id(query):
        return Reader(reader_id=str(query), set_cookie=query != cookie)
    if valid_reader_id(cookie):
        return Reader(reader_id=str(cookie), set_cookie=False)
    return Reader(reader_id=new_reader_id(), set_cookie=True)


def cookie_script(reader_id: str) -> str:
    """JavaScript that keeps ``reader_id`` in this browser's cookie for the app's site."""
    if not valid_reader_id(reader_id):
        raise ValueError(f"not a reader id: {reader_id!r}")
    max_age = COOKIE_DAYS * 24 * 3600
    return f'document.cookie = "{COOKIE}={reader_id}; max-age={max_age}; path=/; SameSite=Lax";'


def new_reader_id() -> str:
    return secrets.token_urlsafe(12)


def valid_reader_id(value: object) -> bool:
    """A reader id as ``new_reader_id`` makes it (a URL or cookie may carry anything)."""
    return isinstance(value, str) and bool(_READER_ID.match(value))


class Reading(BaseModel):
    """A reader's latest visit and the visit before it, which the latest one counts what is new from."""

    last: Visit
    before: Visit | None = None


class VisitLog:
    """``visits.json`` in the data folder: reader id -> their reading. Safe across app processes (a file lock)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / VISITS_FILE
        self._lock = FileLock(str(data_dir / f".{VISITS_FILE}.lock"), timeout=10)

    def _read(self) -> dict[str, Reading]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # missing or damaged: every reader starts afresh, nothing else depends on it
        readings: dict[str, Reading] = {}
        if isinstance(raw, dict):
            for reader, record in raw.items():
                try:
                    readings[reader] = Reading.model_validate(record)
                except ValidationError:
                    continue
        return readings

    def last(self, reader_id: str) -> Visit | None:
        reading = self._read().get(reader_id)
        return reading.last if reading is not None else None

    def arrive(self, reader_id: str, visit: Visit) -> Visit | None:
        """Record ``visit`` and return the visit that what is new counts from (None: a first visit).

        A session that starts within ``SAME_VISIT`` of the reader's last one (a reload, a second tab)
        continues that visit: it counts from the same earlier visit, so the news do not vanish on a reload.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            readings = self._read()
            reading = readings.pop(reader_id, None)
            if reading is not None and visit.at - reading.last.at < SAME_VISIT:
                readings[reader_id] = Reading(last=visit, before=reading.before)
            else:
                readings[reader_id] = Reading(last=visit, before=reading.last if reading is not None else None)
            kept = sorted(readings.items(), key=lambda item: item[1].last.at)[-MAX_READERS:]
            text = json.dumps({reader: r.model_dump(mode="json") for reader, r in kept}, indent=1)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".visits-", suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, self.path)
        return readings[reader_id].before
