"""Fetching the Hugging Face daily papers feed: one day (``ingest --hf-date``), or every weekday of a
range into the store, incrementally (``ingest --hf-since``, ``update``).

One request at a time, and polite about it: a 429 or 5xx answer is tried again after a wait that
doubles with each try, with full jitter (so that many clients do not retry in step), and never
shorter than the server's ``Retry-After``; after :data:`MAX_TRIES` tries, or when the server asks
for a longer wait than :data:`MAX_WAIT_S`, the fetch stops with an error naming the day.

A range is fetched day by day, oldest first, and written in groups of about
:data:`PAPERS_PER_WRITE` papers; the days of a group are recorded in the store
(:meth:`PaperStore.record_fetched_days`) once its papers are written, days that listed nothing
included. A later run skips the recorded days, so a killed run resumes at the first day whose
papers were not written, and ``update`` asks only for the days since the newest one held. Today
(UTC, the feed's day) is fetched but never recorded: its list grows during the day.

Why groups: each write merges with every stored paper, and reading them takes 0.7 s at 10,000
papers (:mod:`ingestion.duplicates`), while a day's ~15 papers embed in about 0.6 s here (27
chunks/s, ``benchmarks/README.md``): writing after each day would spend more time merging than
embedding. 256 papers (about 17 days, ~10 s of embedding) keep the merge under a tenth, and a
kill loses at most that much fetching.
"""

from __future__ import annotations

import email.utils
import http.client
import random
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from assistant import __version__
from assistant.schema import IngestReport, ReadResult
from assistant.store import PaperStore
from ingestion.errors import IngestionError
from ingestion.pipeline import ProgressCallback, ingest_lock, ingest_papers
from ingestion.readers import parse_hf_daily_papers

# A day's feed is ~100 KB; anything this big is not the feed.
MAX_FEED_BYTES = 20 * 1024 * 1024
_READ_BLOCK = 64 * 1024
MAX_TRIES = 5
"""Tries of one day before giving up on a 429 or 5xx: waits of about 1, 2, 4 and 8 s between them."""
BACKOFF_S = 1.0
MAX_WAIT_S = 120.0
"""A server asking for a longer wait (Retry-After) than this is not waited for: the error says to come back later."""
PAPERS_PER_WRITE = 256
_RETRIED = frozenset({429, 500, 502, 503, 504})

Sleep = Callable[[float], None]
DayProgress = Callable[[int, int, date], None]
"""Called with (days done, days to fetch, the day just done)."""


def fetch_daily_papers(
    day: date,
    *,
    base_url: str,
    timeout_s: float,
    allow_empty: bool = False,
    tries: int = MAX_TRIES,
    backoff_s: float = BACKOFF_S,
    sleep: Sleep = time.sleep,
) -> ReadResult:
    """GET ``{base_url}?date=YYYY-MM-DD`` and read it as a daily papers API response.

    Papers and problems carry the source ``hf:YYYY-MM-DD``, and papers the day as the day they
    were listed (or their own earlier one, see :func:`parse_hf_daily_papers`). A 429 or 5xx is
    tried again (module docstring). Any other failure (network, HTTP status, timeout, a body that
    is not the feed, a day without papers unless ``allow_empty``) raises :class:`IngestionError`
    naming the URL and the cause.
    """
    url = feed_url(base_url, day)
    payload = _get(url, timeout_s, tries, backoff_s, sleep)
    source = f"hf:{day.isoformat()}"
    hint = f"(fetched from {url}; weekends and future dates have no papers)"
    try:
        result = parse_hf_daily_papers(payload, source, listed=day)
    except IngestionError as error:
        raise IngestionError(f"{error} {hint}") from None
    if not result.papers and not allow_empty:
        raise IngestionError(f"{source}: the feed lists no papers {hint}")
    return result


def _get(url: str, timeout_s: float, tries: int, backoff_s: float, sleep: Sleep) -> bytes:
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": f"paper-assistant/{__version__}"}
    )
    for attempt in range(1, tries + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return _read_body(response, url, time.monotonic() + timeout_s)
        except urllib.error.HTTPError as error:
            answer = f"HTTP {error.code} {error.reason}"
            if error.code not in _RETRIED:
                raise IngestionError(f"could not fetch {url}: {answer}") from None
            if attempt == tries:
                raise IngestionError(f"could not fetch {url}: {answer} ({tries} tries)") from None
            asked = _retry_after(error.headers.get("Retry-After"))
            if asked is not None and asked > MAX_WAIT_S:
                raise IngestionError(
                    f"could not fetch {url}: {answer}; the server asks to wait {asked:.0f} s: try again later"
                ) from None
            sleep(max(asked or 0.0, random.uniform(0, backoff_s * 2 ** (attempt - 1))))
        except urllib.error.URLError as error:
            raise IngestionError(f"could not fetch {url}: {_describe(error.reason, timeout_s)}") from None
        except (OSError, http.client.HTTPException) as error:
            raise IngestionError(f"could not fetch {url}: {_describe(error, timeout_s)}") from None
    raise AssertionError("unreachable: the last try returns or raises")


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def feed_today() -> date:
    """Today on the feed: its days are UTC days (module docstring of :mod:`ingestion.readers`)."""
    return datetime.now(UTC).date()


def weekdays(start: date, end: date) -> Iterator[date]:
    """Monday to Friday from ``start`` to ``end``, both included: the days the feed lists papers."""
    day = start
    while day <= end:
        if day.weekday() < 5:
            yield day
        day += timedelta(days=1)


def newest_held_day(store: PaperStore) -> date | None:
    """The newest day the collection holds: fetched from the feed, or the day a stored paper was listed."""
    held = [day for day in (max(store.fetched_days(), default=None), store.newest_listed_day()) if day is not None]
    return max(held, default=None)


def ingest_feed_days(
    start: date,
    end: date,
    *,
    store: PaperStore,
    base_url: str,
    timeout_s: float,
    today: date | None = None,
    progress: DayProgress | None = None,
    embed_progress: ProgressCallback | None = None,
    sleep: Sleep = time.sleep,
    backoff_s: float = BACKOFF_S,
) -> IngestReport:
    """Fetch and ingest every weekday from ``start`` to ``end`` (at most today) not fetched before.

    Returns the report of every write, with ``days_fetched``, ``days_skipped`` and ``days_empty``.
    A day that cannot be fetched raises :class:`IngestionError` naming it, after the days before
    it are written and recorded.
    """
    today = feed_today() if today is None else today
    held = store.fetched_days()
    report = IngestReport(total_papers=len(store.paper_index()))
    wanted = list(weekdays(start, min(end, today)))
    report.days_skipped = [day for day in wanted if day in held]
    to_fetch = [day for day in wanted if day not in held]
    pending = ReadResult()
    pending_days: list[date] = []
    for number, day in enumerate(to_fetch, start=1):
        try:
            fetched = fetch_daily_papers(
                day, base_url=base_url, timeout_s=timeout_s, allow_empty=True, sleep=sleep, backoff_s=backoff_s
            )
        except IngestionError as error:
            _write(pending, pending_days, today, store, report, embed_progress)
            done = f"; the {len(report.days_fetched)} days before it are stored" if report.days_fetched else ""
            raise IngestionError(
                f"stopped at {day.isoformat()}: {error}{done}; run the same command again to resume from that day"
            ) from None
        pending.extend(fetched)
        pending_days.append(day)
        if not fetched.papers:
            report.days_empty.append(day)
        if len(pending.papers) >= PAPERS_PER_WRITE or number == len(to_fetch):
            _write(pending, pending_days, today, store, report, embed_progress)
            pending, pending_days = ReadResult(), []
        if progress is not None:
            progress(number, len(to_fetch), day)
    return report


def _write(
    read: ReadResult,
    days: list[date],
    today: date,
    store: PaperStore,
    report: IngestReport,
    embed_progress: ProgressCallback | None,
) -> None:
    """Ingest one group of days, record them (not today), and add what it did to ``report``."""
    if not days:
        return
    if read.papers:
        written = ingest_papers(read, store=store, progress=embed_progress)
        report.papers_added += written.papers_added
        report.papers_updated += written.papers_updated
        report.papers_unchanged += written.papers_unchanged
        report.chunks_written += written.chunks_written
        report.total_papers = written.total_papers
        report.problems.extend(written.problems)
        report.duplicates_merged += written.duplicates_merged
        report.replaced.extend(written.replaced)
        report.addressed_to_model.extend(written.addressed_to_model)
    else:
        report.problems.extend(read.problems)
    with ingest_lock(store.settings):
        store.record_fetched_days(day for day in days if day < today)
    report.days_fetched.extend(days)


def feed_url(base_url: str, day: date) -> str:
    """``base_url`` with ``date=YYYY-MM-DD`` added to its query."""
    parts = urlsplit(str(base_url))
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise IngestionError(f"{base_url}: the daily papers feed must be an http(s) URL")
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "date"]
    query.append(("date", day.isoformat()))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _read_body(response: http.client.HTTPResponse, url: str, deadline: float) -> bytes:
    # urlopen's timeout bounds each socket operation; a server that trickles bytes is bounded here.
    blocks: list[bytes] = []
    size = 0
    while block := response.read(_READ_BLOCK):
        size += len(block)
        if size > MAX_FEED_BYTES:
            raise IngestionError(f"could not fetch {url}: the response is larger than {MAX_FEED_BYTES // 2**20} MiB")
        if time.monotonic() > deadline:
            raise TimeoutError
        blocks.append(block)
    return b"".join(blocks)


def _describe(cause: object, timeout_s: float) -> str:
    if isinstance(cause, TimeoutError):  # socket.timeout is TimeoutError
        return f"timed out after {timeout_s:g} s"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused (is the server running and the URL right?)"
    if isinstance(cause, socket.gaierror):
        return "host not found (check the URL and your network)"
    if isinstance(cause, ssl.SSLError):
        return f"TLS error ({cause.reason or cause})"
    if isinstance(cause, http.client.IncompleteRead):
        return "the connection closed before the whole response arrived"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    return str(cause) or type(cause).__name__
