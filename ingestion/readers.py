"""Readers for the formats a day's batch of abstracts arrives in.

Supported: the text of a Hugging Face Daily Papers page (title line, blank line, abstract), JSON
(a list, or an object with a list under "papers"/"data"/"items"), JSON Lines, the Hugging Face daily
papers API response, and CSV/TSV. The format is chosen by content first and extension second.
Bad records become ``Problem``s and the rest is read; a file that yields nothing raises
:class:`IngestionError`. Nothing is ever executed or unpickled. Several records of one paper
are merged by the rules of :mod:`ingestion.duplicates`, and every record that is not kept and
says something the kept one does not is reported at its line.

**Two dates per paper.** ``published`` is the publication date (arXiv's first version):
``published``, ``published_at``/``publishedAt`` or ``publication_date``. ``listed`` is the day
the paper was listed on the Daily Papers, the date users mean ("papers of Aug 21"): a
``listed``, ``listed_on``, ``listed_at`` or ``date`` field or column (the Daily Papers archive's
JSON Lines name it ``date``), the ``date`` of a JSON object wrapping the list, a page scrape's
date line when it has a year ("Aug 19, 2025"; the bare "Aug 19" of a page has none and gives
no day), and in the Hugging Face API response the paper's ``submittedOnDailyAt`` (see
:func:`parse_hf_daily_papers` for the API's three generations of date fields).

About 600 lines because every format shares the same file checks (size, encoding, HTML,
binary, code files) and problem reporting, which are the bulk of it; each reader is short.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import stat
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePath
from typing import BinaryIO, Literal

from assistant.schema import Paper, Problem, ReadResult
from ingestion.duplicates import cap_problems, locations_of, merge_records
from ingestion.errors import IngestionError, InvalidRecord
from ingestion.normalize import build_paper, describe_type, normalize_arxiv_id, parse_day

Format = Literal["text", "json", "jsonl", "csv"]

SUFFIX_FORMATS: dict[str, Format] = {
    ".txt": "text",
    ".text": "text",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
}
SUPPORTED = "a Daily Papers page (.txt), JSON (.json), JSON Lines (.jsonl) or CSV (.csv, .tsv)"

# Code, executables and serialised objects are refused by name before a byte is read as data:
# nothing is ever run or unpickled, and sniffing a script as page text would turn its
# blank-line-separated blocks into "papers".
REFUSED_SUFFIXES = frozenset(
    {
        ".py", ".pyw", ".pyc", ".pyo", ".pyd", ".pyz", ".ipynb", ".sh", ".bash", ".zsh", ".fish", ".bat", ".cmd",
        ".ps1", ".js", ".mjs", ".cjs", ".rb", ".pl", ".php", ".exe", ".dll", ".so", ".dylib", ".jar", ".class",
        ".pkl", ".pickle", ".dill", ".joblib", ".npy", ".npz", ".pt", ".pth", ".ckpt", ".safetensors", ".h5",
        ".hdf5", ".onnx", ".gguf",
    }
)  # fmt: skip
_SNIFF_BYTES = 64 * 1024
# Enough to fix a file in a few passes; a million reasons about a wrong file help nobody.
MAX_PROBLEMS_PER_FILE = 200
_WRAPPER_KEYS = ("papers", "data", "items")


@dataclass
class _Collector:
    """Papers and problems of one input, with the problem list capped."""

    source: str
    papers: list[Paper] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    unreported: int = 0

    def problem(self, location: str, reason: str) -> None:
        if len(self.problems) < MAX_PROBLEMS_PER_FILE:
            self.problems.append(Problem(source=self.source, location=location, reason=reason))
        else:
            self.unreported += 1

    def add(self, location: str, make_paper: Callable[..., Paper], *args: object) -> None:
        try:
            paper = make_paper(*args)
        except InvalidRecord as error:
            self.problem(location, error.reason)
        else:
            self.papers.append(paper)
            self.locations.append(location)

    def result(self) -> ReadResult:
        if not self.papers:
            details = "; ".join(f"{p.location}: {p.reason}" if p.location else p.reason for p in self.problems[:3])
            raise IngestionError(f"{self.source}: no valid paper found" + (f" ({details})" if details else ""))
        problems = list(self.problems)
        if self.unreported:
            problems.append(
                Problem(source=self.source, location="", reason=f"{self.unreported} more bad records not listed")
            )
        merged = merge_records(self.papers, self.locations)
        return ReadResult(
            papers=merged.papers,
            locations=merged.locations,
            problems=problems + cap_problems(merged.problems, MAX_PROBLEMS_PER_FILE),
            duplicates_merged=merged.duplicates_merged,
        )


def read_path(path: Path | str) -> ReadResult:
    """Read one file, or every supported file under a directory (sorted, hidden files skipped)."""
    path = Path(path)
    try:
        status = path.stat()
    except FileNotFoundError:
        raise IngestionError(f"{path}: no such file or directory") from None
    except (OSError, ValueError) as error:  # a name too long, a loop of links, a NUL byte
        raise IngestionError(f"{path}: cannot be read ({getattr(error, 'strerror', None) or error})") from None
    if stat.S_ISDIR(status.st_mode):
        return _read_directory(path)
    if not stat.S_ISREG(status.st_mode):
        raise IngestionError(f"{path}: not a regular file")
    try:
        with path.open("rb") as stream:
            return _read_stream(stream, str(path))
    except OSError as error:
        raise IngestionError(f"{path}: cannot be read ({error.strerror or error})") from error


def read_bytes(data: bytes, name: str) -> ReadResult:
    """Read an uploaded file's content; ``name`` (the upload's file name) gives the extension and the source."""
    return _read_stream(io.BytesIO(data), name)


def parse_hf_daily_papers(payload: bytes, source: str, *, listed: date | None = None) -> ReadResult:
    """Parse a Hugging Face daily papers API response: a JSON list of ``{"paper": {...}, "publishedAt": ...}``.

    ``listed``: the day the response was fetched for (the request's ``date=``). An empty list is an
    empty result (a weekend or a holiday); the caller decides whether that is an error.

    The dates, from the three archived generations of the API (``daily-papers-archive/raw``):
    ``paper.publishedAt`` is the arXiv date in all three, and is the paper's ``published``.
    The listing day is ``paper.submittedOnDailyAt`` from 2025 on (its UTC day: the 2025-06-10
    response lists papers submitted 00:14-06:07 UTC on June 10, the 2026-08-21 one
    ``2026-08-21T00:00:00Z``); the 2024 generation has no such field, and there the entry's own
    ``publishedAt`` is the listing time (00:19-07:51 UTC on the request's day, days after the
    arXiv date), while from 2025 on the entry's ``publishedAt`` is the arXiv date shifted by the
    server's time zone (``2026-08-19T20:00Z`` for ``2026-08-20T00:00Z``), used as ``published``
    only when the paper has no ``publishedAt``. When the request's day and the paper's own
    listing day differ, the earlier one is kept: in the three responses they agree for all 52
    entries, and a paper listed again on a later page was first listed on the earlier day, which is
    the rule for several records of one paper too (:mod:`ingestion.duplicates`).
    """
    try:
        document = json.loads(payload.decode("utf-8-sig", errors="replace"))
    except (ValueError, RecursionError) as error:
        raise IngestionError(f"{source}: the response is not valid JSON ({_json_error(error)})") from None
    if not isinstance(document, list):
        message = document.get("error") if isinstance(document, dict) else None
        detail = f": {message}" if isinstance(message, str) else f", found {describe_type(document)}"
        raise IngestionError(f"{source}: expected a JSON list of daily papers{detail}")
    if not document:
        return ReadResult()
    collector = _Collector(source)
    for number, entry in enumerate(document, start=1):
        collector.add(f"record {number}", _paper_from_record, entry, source, listed)
    return collector.result()


def _read_directory(directory: Path) -> ReadResult:
    files: list[Path] = []
    for root, subdirectories, names in os.walk(directory):
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        files.extend(Path(root, name) for name in names if not name.startswith("."))
    files.sort()
    papers: list[Paper] = []
    locations: list[str] = []
    problems: list[Problem] = []
    duplicates = 0
    for file in files:
        if file.suffix.lower() not in SUFFIX_FORMATS:
            problems.append(Problem(source=str(file), location="", reason=f"skipped: only {SUPPORTED} files are read"))
            continue
        try:
            result = read_path(file)
        except IngestionError as error:
            reason = str(error).removeprefix(f"{file}: ")
            problems.append(Problem(source=str(file), location="", reason=reason))
            continue
        papers.extend(result.papers)
        locations.extend(locations_of(result))
        problems.extend(result.problems)
        duplicates += result.duplicates_merged
    if not papers:
        reasons = "; ".join(problem.reason for problem in problems[:3])
        raise IngestionError(
            f"{directory}: no readable files (expected {SUPPORTED})" + (f"; {reasons}" if reasons else "")
        )
    merged = merge_records(papers, locations)
    return ReadResult(
        papers=merged.papers,
        locations=merged.locations,
        problems=problems + cap_problems(merged.problems, MAX_PROBLEMS_PER_FILE),
        duplicates_merged=duplicates + merged.duplicates_merged,
    )


def _read_stream(stream: BinaryIO, name: str) -> ReadResult:
    refused = PurePath(name).suffix.lower()
    if refused in REFUSED_SUFFIXES:
        raise IngestionError(
            f"{name}: {refused} files are not read (code and serialised objects are never run or loaded); "
            f"expected {SUPPORTED}"
        )
    head = stream.read(_SNIFF_BYTES)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode text" export; small enough in practice to re-encode in memory.
        stream = io.BytesIO((head + stream.read()).decode("utf-16", errors="replace").encode("utf-8"))
        head = stream.read(_SNIFF_BYTES)
    stream.seek(0)
    head_text = head.decode("utf-8-sig", errors="replace")
    if not head_text.strip():
        raise IngestionError(f"{name}: the file is empty")
    if b"\x00" in head:
        raise IngestionError(f"{name}: not a text file (it contains NUL bytes); expected {SUPPORTED}")
    suffix = PurePath(name).suffix.lower()
    file_format = _detect_format(head_text, suffix, name)
    collector = _Collector(name)
    text_stream = io.TextIOWrapper(
        stream, encoding="utf-8-sig", errors="replace", newline="" if file_format == "csv" else None
    )
    try:
        if file_format == "json":
            _read_json(text_stream.read(), collector)
        elif file_format == "jsonl":
            _read_json_lines(text_stream, collector)
        elif file_format == "csv":
            _read_csv(text_stream, head_text, suffix, collector)
        else:
            _read_daily_papers_text(text_stream, collector)
            if not collector.papers and suffix not in SUFFIX_FORMATS:
                raise IngestionError(f"{name}: unknown format; expected {SUPPORTED}")
    finally:
        # The caller owns the byte stream; closing the wrapper would close it too.
        text_stream.detach()
    return collector.result()


def _detect_format(head_text: str, suffix: str, name: str) -> Format:
    content = head_text.lstrip()
    if content.startswith("["):
        return "json"
    if content.startswith("{"):
        try:
            _, end = json.JSONDecoder().raw_decode(content)
        except (ValueError, RecursionError):
            # The first record may be longer than the sniffed head.
            return "jsonl" if SUFFIX_FORMATS.get(suffix) == "jsonl" else "json"
        return "jsonl" if content[end:].strip() else "json"
    if content.startswith("<"):
        raise IngestionError(
            f"{name}: looks like HTML or XML, which is not supported; copy the page's text into a .txt file instead"
        )
    if SUFFIX_FORMATS.get(suffix) in ("json", "jsonl"):
        # Reading it as what it claims to be gives the most useful error ("not valid JSON at line 1").
        return SUFFIX_FORMATS[suffix]
    if SUFFIX_FORMATS.get(suffix) == "csv" or _csv_delimiter(_first_line(content)) is not None:
        return "csv"
    return "text"


# --- JSON and JSON Lines ---------------------------------------------------------------------


def _read_json(text: str, collector: _Collector) -> None:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise IngestionError(f"{collector.source}: not valid JSON ({_json_error(error)})") from None
    records = _json_records(document, collector.source)
    # An object wrapping the list may say the day of the whole batch: {"date": "2025-08-19", "papers": [...]}.
    day = _field(_casefold_keys(document), *_LISTED) if isinstance(document, dict) else None
    for number, record in enumerate(records, start=1):
        collector.add(f"record {number}", _paper_from_record, record, collector.source, day)


def _json_records(document: object, source: str) -> list[object]:
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        fields = _casefold_keys(document)
        for key in _WRAPPER_KEYS:
            records = fields.get(key)
            if isinstance(records, list):
                return records
            if records is not None:
                raise IngestionError(f"{source}: '{key}' must be a list of papers, found {describe_type(records)}")
        if fields.get("title") is not None:
            return [document]
        keys = ", ".join(repr(key) for key in list(document)[:10])
        raise IngestionError(
            f"{source}: expected a list of papers, or an object with a list under 'papers', 'data' or 'items'; "
            f"found an object with keys {keys or 'none'}"
        )
    raise IngestionError(f"{source}: expected a list of papers, found {describe_type(document)}")


def _read_json_lines(lines: Iterable[str], collector: _Collector) -> None:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.strip())
        except (ValueError, RecursionError) as error:
            collector.problem(f"line {number}", f"not valid JSON ({_json_error(error, one_line=True)})")
            continue
        collector.add(f"line {number}", _paper_from_record, record, collector.source)


def _json_error(error: Exception, *, one_line: bool = False) -> str:
    if isinstance(error, json.JSONDecodeError):
        where = f"column {error.colno}" if one_line else f"line {error.lineno}, column {error.colno}"
        return f"{error.msg} at {where}"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return str(error)


def _casefold_keys(record: dict[str, object]) -> dict[str, object]:
    # "Title" and "title" are the same field to whoever wrote the file.
    return {key.casefold(): value for key, value in record.items()}


def _field(record: dict[str, object], *names: str) -> object:
    """The first of ``names`` (casefolded) present in ``record`` (casefolded keys), else None."""
    for name in names:
        if name in record:
            return record[name]
    return None


# Field names (casefolded) of the two dates, in order of preference.
_PUBLISHED = ("published", "published_at", "publishedat", "publication_date")
_LISTED = ("listed", "listed_on", "listed_at", "date")


def _paper_from_record(record: object, source: str, listed: object = None) -> Paper:
    """One JSON record; ``listed``: the day of the batch it belongs to, for a record that does not say its own."""
    if not isinstance(record, dict):
        raise InvalidRecord(f"expected an object with a title and an abstract, found {describe_type(record)}")
    record = _casefold_keys(record)
    entry = record.get("paper")
    if isinstance(entry, dict):
        return _paper_from_hf_entry(record, _casefold_keys(entry), source, parse_day(listed, "listed"))
    own_day = _field(record, *_LISTED)
    return build_paper(
        title=_field(record, "title"),
        abstract=_field(record, "abstract", "summary"),
        authors=_field(record, "authors", "author"),
        published=_field(record, *_PUBLISHED),
        listed=listed if own_day is None or own_day == "" else own_day,
        url=_field(record, "url", "link"),
        arxiv_id=_arxiv_id_or_id(_field(record, "arxiv_id", "arxivid", "arxiv"), _field(record, "id")),
        source=source,
    )


def _arxiv_id_or_id(arxiv_id: object, generic_id: object) -> object:
    """The arXiv id field when given, else a generic id that looks like one ("p17" or 17 is the writer's own)."""
    if arxiv_id is not None and arxiv_id != "":
        return arxiv_id
    return generic_id if isinstance(generic_id, str) and normalize_arxiv_id(generic_id) else None


def _paper_from_hf_entry(
    entry: dict[str, object], paper: dict[str, object], source: str, request_day: date | None
) -> Paper:
    """An entry of https://huggingface.co/api/daily_papers: the paper's fields sit under "paper".

    Which date field means what is explained at :func:`parse_hf_daily_papers`.
    """
    title = _field(paper, "title")
    abstract = _field(paper, "summary", "abstract")
    submitted = _field(paper, "submittedondailyat") or _field(entry, "submittedondailyat")
    if submitted:  # 2025 on: the entry's publishedAt is the arXiv date in the server's time zone
        own_day, published = submitted, _field(paper, "publishedat") or _field(entry, "publishedat")
    else:  # 2024: the entry's publishedAt is when the paper was listed
        own_day, published = _field(entry, "publishedat"), _field(paper, "publishedat")
    days = [day for day in (parse_day(own_day, "submittedOnDailyAt"), request_day) if day is not None]
    return build_paper(
        title=title if title is not None else _field(entry, "title"),
        abstract=abstract if abstract is not None else _field(entry, "summary"),
        authors=_field(paper, "authors"),
        published=published,
        listed=min(days, default=None),
        arxiv_id=_field(paper, "id"),
        source=source,
    )


# --- CSV ----------------------------------------------------------------------------------------

_CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "abstract": ("abstract", "summary"),
    "authors": ("authors", "author"),
    "published": _PUBLISHED,
    "listed": _LISTED,
    "arxiv_id": ("arxiv_id", "arxivid", "arxiv"),
    "id": ("id",),
    "url": ("url", "link"),
}


def _first_line(text: str) -> str:
    return re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]


def _column_name(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().casefold())


def _column_indexes(header: list[str]) -> dict[str, int]:
    names = [_column_name(column) for column in header]
    indexes: dict[str, int] = {}
    for field_name, aliases in _CSV_COLUMNS.items():
        for alias in aliases:
            if alias in names:
                indexes[field_name] = names.index(alias)
                break
    return indexes


def _csv_delimiter(header_line: str) -> str | None:
    """The delimiter under which ``header_line`` names a title and an abstract column, if any."""
    for delimiter in (",", "\t", ";"):
        try:
            columns = next(csv.reader([header_line], delimiter=delimiter), [])
        except csv.Error:  # e.g. an unterminated quote: not a header
            return None
        indexes = _column_indexes(columns)
        if "title" in indexes and "abstract" in indexes:
            return delimiter
    return None


class _LineTap:
    """The lines a CSV reader takes, and whether it ran into the end of the file while taking them."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.taken: list[str] = []
        self.at_end = False

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        try:
            line = next(self._lines)
        except StopIteration:
            self.at_end = True
            raise
        self.taken.append(line)
        return line


def _ends_inside_quotes(lines: list[str], delimiter: str) -> bool:
    """The file's last row stops inside a quoted field: the file was cut off mid-row.

    Python's lenient CSV reader hands back such a row as if it were complete, cut-off
    abstract and all; its strict mode says "unexpected end of data" instead.
    """
    try:
        for _ in csv.reader(lines, delimiter=delimiter, strict=True):
            pass
    except csv.Error as error:
        return "end of data" in str(error)
    return False


def _read_csv(stream: io.TextIOWrapper, head_text: str, suffix: str, collector: _Collector) -> None:
    header_line = _first_line(head_text.lstrip("\r\n"))
    delimiter = _csv_delimiter(header_line)
    if delimiter is None:
        delimiter = "\t" if suffix == ".tsv" else max((",", "\t", ";"), key=header_line.count)
    lines = _LineTap(stream)
    reader = csv.reader(lines, delimiter=delimiter)
    header: list[str] | None = None
    indexes: dict[str, int] = {}
    # Rows are numbered as a spreadsheet shows them: the header is row 1.
    row_number = 0
    while True:
        row_number += 1
        lines.taken.clear()
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            collector.problem(f"row {row_number}", f"unreadable CSV ({error})")
            continue
        if lines.at_end and _ends_inside_quotes(lines.taken, delimiter):
            collector.problem(
                f"row {row_number}",
                "the file ends inside this row's quoted field: it looks cut off, so the row was skipped",
            )
            continue
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header, indexes = row, _column_indexes(row)
            if "title" not in indexes or "abstract" not in indexes:
                found = ", ".join(repr(column.strip()) for column in header if column.strip())
                raise IngestionError(
                    f"{collector.source}: a CSV file needs 'title' and 'abstract' (or 'summary') columns; found {found}"
                )
            continue
        if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
            collector.problem(
                f"row {row_number}",
                f"{len(row)} fields but the header has {len(header)}; quote fields that contain '{delimiter}'",
            )
            continue
        collector.add(f"row {row_number}", _paper_from_row, row, indexes, collector.source)


def _paper_from_row(row: list[str], indexes: dict[str, int], source: str) -> Paper:
    def cell(field_name: str) -> str | None:
        index = indexes.get(field_name)
        return row[index] if index is not None and index < len(row) else None

    return build_paper(
        title=cell("title"),
        abstract=cell("abstract"),
        authors=cell("authors"),
        published=cell("published"),
        listed=cell("listed"),
        url=cell("url"),
        arxiv_id=_arxiv_id_or_id(cell("arxiv_id"), cell("id")),
        source=source,
    )


# --- Daily Papers page text -------------------------------------------------------------------

# Lines of the page around the papers, compared casefolded; a title is never one of these.
_FURNITURE = frozenset(
    {
        "new", "get trending papers in your email inbox!", "subscribe", "daily papers", "daily", "weekly",
        "monthly", "byak and the research community", "by ak and the research community", "submit paper",
        "submit", "search", "search papers", "trending", "trending papers", "previous", "next", "view all",
        "load more", "show more", "upvote", "upvoted", "github", "arxiv page", "paper page", "view arxiv page",
        "view pdf", "submitted by", "add to collection", "join the community", "hugging face", "models",
        "datasets", "spaces", "docs", "pricing", "log in", "login", "sign up", "papers", "collections",
        "community", "comments", "authors", "enterprise", "abstract",
    }
)  # fmt: skip
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_FURNITURE_PATTERN = re.compile(
    "|".join(
        (
            r"[\d.,]+\s*[km]?",  # upvote and comment counts
            r"[·•|*\-–—]+",  # separators
            rf"(?:on\s+)?(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?",
            rf"\d{{1,2}}\s+{_MONTH}(?:,?\s+\d{{4}})?",
            r"\d{4}-\d{2}-\d{2}",
            r"\+?\s*\d+\s+authors?",
            r"submitted\s+by\s+\S+",
            r"(?:published|updated)\s+on\s+.*",
        )
    ),
    re.IGNORECASE,
)
# A page's date line, when it has a year: the day the papers below it were listed.
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_LINE = re.compile(
    rf"(?:on\s+)?(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?"
    rf"(?:(?P<month>{_MONTH})\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year>\d{{4}})"
    rf"|(?P<day2>\d{{1,2}})\s+(?P<month2>{_MONTH}),?\s+(?P<year2>\d{{4}})"
    rf"|(?P<iso>\d{{4}}-\d{{2}}-\d{{2}}))",
    re.IGNORECASE,
)
_CLOSING = "\"')]”’"
_TITLE_MAX_CHARS = 300
_TITLE_MAX_WORDS = 40
_LAYOUT = "a Daily Papers page has a title line, a blank line, then the abstract"


def _is_furniture(line: str) -> bool:
    return line.casefold() in _FURNITURE or _FURNITURE_PATTERN.fullmatch(line) is not None


def _day_of_line(line: str) -> date | None:
    """The day a page's date line names, when it names a whole date ("Aug 19, 2025", "2025-08-19")."""
    match = _DAY_LINE.fullmatch(line)
    if match is None:
        return None
    try:
        if match["iso"]:
            return date.fromisoformat(match["iso"])
        month = (match["month"] or match["month2"])[:3].casefold()
        return date(int(match["year"] or match["year2"]), _MONTHS.index(month) + 1, int(match["day"] or match["day2"]))
    except ValueError:  # "Feb 30, 2025"
        return None


@dataclass(frozen=True)
class _Paragraph:
    line: int
    lines: list[str]
    day: date | None = None  # the last whole date line above it

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    @property
    def title_like(self) -> bool:
        return len(self.lines) == 1 and _title_like(self.lines[0])


def _title_like(line: str) -> bool:
    """A short line that does not end a sentence: how titles look, and abstracts do not."""
    ends_a_sentence = line.rstrip(_CLOSING).endswith(".")
    return len(line) <= _TITLE_MAX_CHARS and len(line.split()) <= _TITLE_MAX_WORDS and not ends_a_sentence


def _paragraphs(lines: Iterable[str]) -> Iterator[_Paragraph]:
    current: list[str] = []
    first_line = 0
    day: date | None = None
    for number, raw_line in enumerate(lines, start=1):
        line = raw_line.strip()
        if not line or _is_furniture(line):
            if current:
                yield _Paragraph(first_line, current, day)
                current = []
            day = _day_of_line(line) or day
            continue
        if not current:
            first_line = number
        current.append(line)
    if current:
        yield _Paragraph(first_line, current, day)


def _unglue_titles(paragraphs: Iterable[_Paragraph]) -> Iterator[_Paragraph]:
    """Split off a title pasted right under the previous abstract, with no blank line between them.

    Only when the abstract's last sentence ends just before it and an abstract follows: a hard-wrapped
    abstract's short last line ("Code: github.com/x") is followed by the next title instead.
    """
    previous: _Paragraph | None = None
    for paragraph in paragraphs:
        if previous is not None:
            lines = previous.lines
            glued = (
                not paragraph.title_like
                and len(lines) > 1
                and _title_like(lines[-1])
                and lines[-2].rstrip(_CLOSING).endswith((".", "!", "?"))
            )
            if glued:
                yield _Paragraph(previous.line, lines[:-1], previous.day)
                yield _Paragraph(previous.line + len(lines) - 1, lines[-1:], previous.day)
            else:
                yield previous
        previous = paragraph
    if previous is not None:
        yield previous


def _title_abstract_pairs(paragraphs: Iterable[_Paragraph]) -> Iterator[tuple[_Paragraph | None, _Paragraph | None]]:
    """Pair titles with abstracts; a short abstract that looks like a title is recognised by what follows it."""
    upcoming = iter(paragraphs)
    window: deque[_Paragraph] = deque()

    def refill() -> None:
        while len(window) < 3 and (paragraph := next(upcoming, None)) is not None:
            window.append(paragraph)

    refill()
    while window:
        current = window.popleft()
        refill()
        if not current.title_like:
            yield None, current
        elif not window:
            yield current, None
        elif not window[0].title_like or len(window) == 1 or window[1].title_like:
            yield current, window.popleft()
            refill()
        else:
            # The next paragraph is a title of its own: it is followed by an abstract.
            yield current, None


def _read_daily_papers_text(lines: Iterable[str], collector: _Collector) -> None:
    for title, abstract in _title_abstract_pairs(_unglue_titles(_paragraphs(lines))):
        if title is None:
            assert abstract is not None
            collector.problem(f"line {abstract.line}", f"abstract without a title ({_LAYOUT})")
        elif abstract is None:
            collector.problem(f"line {title.line}", f"title {title.text[:60]!r} has no abstract ({_LAYOUT})")
        else:
            try:
                paper = build_paper(title=title.text, abstract=abstract.text, listed=title.day, source=collector.source)
            except InvalidRecord as error:
                line = abstract.line if error.field == "abstract" else title.line
                collector.problem(f"line {line}", error.reason)
            else:
                collector.papers.append(paper)
                collector.locations.append(f"line {title.line}")
