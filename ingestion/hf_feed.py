"""Fetching one day of the Hugging Face daily papers feed."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import urllib.error
import urllib.request
from datetime import date
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from assistant import __version__
from assistant.schema import ReadResult
from ingestion.errors import IngestionError
from ingestion.readers import parse_hf_daily_papers

# A day's feed is ~100 KB; anything this big is not the feed.
MAX_FEED_BYTES = 20 * 1024 * 1024
_READ_BLOCK = 64 * 1024


def fetch_daily_papers(day: date, *, base_url: str, timeout_s: float) -> ReadResult:
    """GET ``{base_url}?date=YYYY-MM-DD`` and read it as a daily papers API response.

    Papers and problems carry the source ``hf:YYYY-MM-DD``. Any failure (network, HTTP status,
    timeout, a body that is not the feed, a day without papers) raises :class:`IngestionError`
    naming the URL and the cause.
    """
    url = feed_url(base_url, day)
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": f"paper-assistant/{__version__}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            payload = _read_body(response, url, time.monotonic() + timeout_s)
    except urllib.error.HTTPError as error:
        raise IngestionError(f"could not fetch {url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise IngestionError(f"could not fetch {url}: {_describe(error.reason, timeout_s)}") from None
    except (OSError, http.client.HTTPException) as error:
        raise IngestionError(f"could not fetch {url}: {_describe(error, timeout_s)}") from None
    source = f"hf:{day.isoformat()}"
    try:
        return parse_hf_daily_papers(payload, source)
    except IngestionError as error:
        raise IngestionError(f"{error} (fetched from {url}; weekends and future dates have no papers)") from None


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
