"""Text clean-up, text keys, paper ids and validated Paper construction, shared by every reader.

The merge of several records of one paper (:mod:`ingestion.duplicates`) builds on this module
(its keys and ids); nothing here imports it back.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date, datetime
from urllib.parse import urlsplit

from assistant.schema import Paper
from ingestion.errors import InvalidRecord

# arXiv abstracts are capped at 1,920 characters; ten times that is a paper body or a wrong field.
MAX_ABSTRACT_CHARS = 20_000
MAX_TITLE_CHARS = 500
MAX_SLUG_CHARS = 73  # plus '-' and a 6-digit hash: at most 80

_UNDECODABLE = "\ufffd"
_UNDECODABLE_REASON = "contains bytes that are not valid UTF-8 (shown as \ufffd); re-save the file as UTF-8"

# Control characters go (tabs and newlines become spaces first so words do not fuse), as do invisible
# format characters that break tokenisation and search, and lone surrogates that cannot be encoded.
_INVISIBLE = {0x00AD, 0x200B, 0x2060, 0xFEFF}  # soft hyphen, zero-width space, word joiner, BOM
_DELETE_TABLE: dict[int, str | None] = {
    code: None for code in [*range(0x00, 0x20), *range(0x7F, 0xA0), *_INVISIBLE, *range(0xD800, 0xE000)]
}
_DELETE_TABLE.update({ord(c): " " for c in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85"})

_MATH = re.compile(r"(?<!\\)\$[^$]+?(?<!\\)\$")
_LATEX_TEXT_COMMAND = re.compile(
    r"\\(?:textbf|textit|texttt|textsc|textrm|textsf|textup|textmd|textnormal|emph|underline|mbox)\{([^{}]*)\}"
)
# ``\$`` stays: unescaping it would turn plain dollars into math delimiters.
_LATEX_ESCAPE = re.compile(r"(?<!\\)\\([%&_#])")
# A LaTeX tie joins two words ("Fig.~3", "et~al."); "~33.5%" (approximately) and "/~user" stay as they are.
_LATEX_TIE = re.compile(r"(?<=[\w.,;:)\]])~(?=[\w(\[\\])")

_NOT_A_WORD = re.compile(r"[\W_]+")
# The same for ASCII text, several times faster than the regex over a whole abstract.
_ASCII_NOT_A_WORD = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum()})
_ARXIV_PREFIX = re.compile(r"^(?:arxiv:|https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/)", re.IGNORECASE)
_ARXIV_NEW = re.compile(r"^(\d{4}\.\d{4,5})(?:v\d+)?$")
_ARXIV_OLD = re.compile(r"^([a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?$")


def normalize_text(text: str) -> str:
    """Clean text for storage and display: no control characters, LaTeX escapes resolved, single spaces, NFC.

    Inline math (``$...$``) is kept verbatim, and so is ``--`` (titles must match their source exactly).
    """
    text = text.translate(_DELETE_TABLE)
    if "$" in text:  # the math regex is slow to scan, and most abstracts have no math
        pieces: list[str] = []
        position = 0
        for math in _MATH.finditer(text):
            pieces.append(_resolve_latex(text[position : math.start()]))
            pieces.append(math.group())
            position = math.end()
        pieces.append(_resolve_latex(text[position:]))
        text = "".join(pieces)
    else:
        text = _resolve_latex(text)
    text = " ".join(text.split())
    # NFC last: removing a character can leave a base letter next to a combining mark.
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _resolve_latex(text: str) -> str:
    if "\\" not in text and "~" not in text:
        return text
    unwrapped = None
    while unwrapped != text:  # nested commands unwrap from the inside out
        unwrapped, text = text, _LATEX_TEXT_COMMAND.sub(r"\1", text)
    text = _LATEX_ESCAPE.sub(r"\1", text)
    return _LATEX_TIE.sub(" ", text)


def normalize_arxiv_id(raw: str) -> str | None:
    """``'arXiv:2407.12345v2'``, ``'https://arxiv.org/abs/2407.12345'`` -> ``'2407.12345'``; None if not an arXiv id."""
    candidate = _ARXIV_PREFIX.sub("", raw.strip())
    candidate = candidate.removesuffix(".pdf")
    for pattern in (_ARXIV_NEW, _ARXIV_OLD):
        match = pattern.match(candidate)
        if match:
            return match.group(1)
    return None


def title_key(title: str) -> str:
    """What two spellings of one title share: casefolded, punctuation and spacing ignored.

    A title of symbols only keeps its symbols, so that two such titles stay apart.
    """
    folded = normalize_text(title).casefold()
    return text_key(folded) or folded


def text_key(text: str) -> str:
    """What two spellings of one text share: casefolded, punctuation and spacing ignored."""
    folded = text.casefold()
    if folded.isascii():
        return " ".join(folded.translate(_ASCII_NOT_A_WORD).split())
    return " ".join(_NOT_A_WORD.sub(" ", folded).split())


def make_paper_id(title: str, arxiv_id: str | None = None) -> str:
    """A stable id that is safe in file names and URLs.

    The normalised arXiv id when there is one (old-style ``hep-th/9901001`` becomes ``hep-th_9901001``),
    else a slug of the title plus a hash of its :func:`title_key`, e.g.
    ``knowledge-composition-using-task-vectors-with-learned-anisotropic-scaling-0c5008``.
    """
    if arxiv_id is not None:
        normalized = normalize_arxiv_id(arxiv_id)
        if normalized is None:
            raise ValueError(f"{arxiv_id!r} is not an arXiv id")
        return normalized.replace("/", "_")
    key = title_key(title)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:6]
    ascii_title = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode("ascii")
    slug = "-".join(re.findall(r"[a-z0-9]+", ascii_title))
    if len(slug) > MAX_SLUG_CHARS:
        cut = slug.rfind("-", 0, MAX_SLUG_CHARS + 1)
        slug = slug[: cut if cut > 0 else MAX_SLUG_CHARS]
    return f"{slug or 'paper'}-{digest}"


def build_paper(
    *,
    title: object,
    abstract: object,
    source: str,
    authors: object = None,
    published: object = None,
    listed: object = None,
    url: object = None,
    arxiv_id: object = None,
) -> Paper:
    """The one way readers turn raw field values into a Paper.

    Values come straight from JSON, CSV or text, so each is type-checked here; anything that cannot
    be used raises :class:`InvalidRecord` naming the field, which the reader reports with its location.
    """
    clean_title = _required_text(title, "title", MAX_TITLE_CHARS)
    clean_abstract = _required_text(abstract, "abstract", MAX_ABSTRACT_CHARS)
    clean_arxiv_id = _arxiv_id(arxiv_id)
    clean_url = _url(url)
    if clean_url is None and clean_arxiv_id is not None:
        clean_url = f"https://arxiv.org/abs/{clean_arxiv_id}"
    return Paper(
        paper_id=make_paper_id(clean_title, clean_arxiv_id),
        title=clean_title,
        abstract=clean_abstract,
        authors=_authors(authors),
        published=parse_day(published, "published"),
        listed=parse_day(listed, "listed"),
        url=clean_url,
        arxiv_id=clean_arxiv_id,
        source=source,
    )


def describe_type(value: object) -> str:
    """How a JSON user would name the type of ``value``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _required_text(value: object, field: str, max_chars: int) -> str:
    if value is None:
        raise InvalidRecord(f"missing {field}", field=field)
    if not isinstance(value, str):
        raise InvalidRecord(f"{field} must be text, found {describe_type(value)}", field=field)
    text = normalize_text(value)
    if not text:
        raise InvalidRecord(f"empty {field}", field=field)
    if _UNDECODABLE in text:
        raise InvalidRecord(f"{field} {_UNDECODABLE_REASON}", field=field)
    if len(text) > max_chars:
        raise InvalidRecord(
            f"{field} is {len(text):,} characters long (at most {max_chars:,}); is a different field in its place?",
            field=field,
        )
    return text


def _authors(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        # "A, B and C" as well as "A; B; C".
        names = re.split(r"\s*(?:[,;]|\band\b)\s*", value)
    elif isinstance(value, list):
        names = [_author_name(item, position) for position, item in enumerate(value, start=1)]
    else:
        raise InvalidRecord(
            f"authors must be a list or comma-separated text, found {describe_type(value)}", field="authors"
        )
    cleaned = [normalize_text(name) for name in names]
    if any(_UNDECODABLE in name for name in cleaned):
        raise InvalidRecord(f"authors {_UNDECODABLE_REASON}", field="authors")
    return [name for name in cleaned if name]


def _author_name(item: object, position: int) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return item["name"]
    raise InvalidRecord(
        f"author {position} must be a name or an object with a 'name', found {describe_type(item)}", field="authors"
    )


def parse_day(value: object, field: str) -> date | None:
    """A date field: ``2025-08-19``, or a timestamp (``2025-08-19T00:43:01.816Z``: its own day, UTC for ``Z``)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise InvalidRecord(f"{field} must be an ISO date (YYYY-MM-DD), found {describe_type(value)}", field=field)
    text = value.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise InvalidRecord(f"{field} {text[:40]!r} is not an ISO date (YYYY-MM-DD)", field=field) from None


def _url(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRecord(f"url must be text, found {describe_type(value)}", field="url")
    text = value.strip()
    # Only web links: the URL is rendered as a clickable link in the UI.
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(ch.isspace() for ch in text):
        raise InvalidRecord(f"url {text[:80]!r} is not an http(s) link", field="url")
    return text


def _arxiv_id(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        # A JSON number would silently lose trailing zeros (2407.10 -> 2407.1).
        raise InvalidRecord(
            f'arxiv_id must be text (e.g. "2407.12345"), found {describe_type(value)}', field="arxiv_id"
        )
    normalized = normalize_arxiv_id(value)
    if normalized is None:
        raise InvalidRecord(f"arxiv_id {value.strip()[:40]!r} is not an arXiv id (e.g. 2407.12345)", field="arxiv_id")
    return normalized
