"""Markdown that is safe to render: text from abstracts, uploads and models runs no HTML and opens no link.

Titles, abstracts and user messages are shown literally (:func:`literal_markdown`). Model text
keeps its emphasis and lists (:func:`model_markdown`), and its citations ``[n]`` become links to
the source cards (:func:`cited_markdown`). Nothing else becomes a link: Streamlit's Markdown turns
``http://...`` and ``www....`` into anchors even when escaped, so every address in shown text is
either a paper's own link, shown in full, or inert code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from assistant.citations import PLAIN, cited_sources
from assistant.features.compare import short_title
from assistant.instructions import without_instructions
from assistant.schema import Comparison, Paper, Source

# Every ASCII punctuation character CommonMark lets a backslash escape, minus those that
# only matter next to the others (",", ";", "?", "/", "@", "%", "'", '"'): escaped, a
# string shows literally whatever it holds — HTML, links, emphasis, Streamlit's
# ":color[...]" directives, emoji shortcodes, "$" LaTeX.
_LITERAL_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&$:~^=])")
# Model text keeps its emphasis and lists but can open no HTML tag, link, image, directive,
# shortcode or formula. One character at a time, so it also works on streamed pieces.
_MODEL_SPECIALS = re.compile(r"([\\<>&\[\]$:])")


# Streamlit's Markdown (GFM) turns these into anchors even when their punctuation is escaped.
_ADDRESS = re.compile(
    r"\b(?:https?|ftp)://[^\s<>`\"'()\[\]{}|\\^]+|\bwww\.[^\s<>`\"'()\[\]{}|\\^]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?"


def addresses_in(text: str) -> set[str]:
    """The URLs and e-mail addresses in ``text``, as written (without trailing punctuation)."""
    return {match.group(0).rstrip(_TRAILING) for match in _ADDRESS.finditer(text)}


def _with_addresses(text: str, escape: re.Pattern[str], linked: frozenset[str]) -> str:
    """``text`` escaped by ``escape``; each address a link showing its full address when in ``linked``, else inert code."""
    parts: list[str] = []
    position = 0
    for match in _ADDRESS.finditer(text):
        address = match.group(0).rstrip(_TRAILING)
        parts.append(escape.sub(r"\\\1", text[position : match.start()]))
        if address in linked and address.lower().startswith(("http://", "https://")):
            shown = _LITERAL_SPECIALS.sub(r"\\\1", address)
            parts.append(f"[{shown}]({address})")
        else:
            parts.append(f"`{address.replace('`', '')}`")
        position = match.start() + len(address)
    parts.append(escape.sub(r"\\\1", text[position:]))
    return "".join(parts)


def literal_markdown(text: str) -> str:
    """``text`` as Markdown that displays exactly these characters (titles, abstracts, user messages).

    An address in it is a link only when it is one of the text's own web addresses (an abstract's
    code URL), shown in full, and not inside an instruction to the model; e-mail addresses are
    shown as text.
    """
    own = frozenset(addresses_in(without_instructions(text)))
    lines = [_with_addresses(line.strip(), _LITERAL_SPECIALS, own) for line in text.splitlines()]
    return "  \n".join(lines)


def inline_literal(text: str) -> str:
    """Like :func:`literal_markdown`, on one line (labels, table headers), with no link at all."""
    return _with_addresses(" ".join(text.split()), _LITERAL_SPECIALS, frozenset())


def model_markdown(text: str, linked: frozenset[str] = frozenset()) -> str:
    """Model text made inert: emphasis and lists stay, HTML, links and directives show as typed.

    An address becomes a link only when it is in ``linked`` (a paper's own link, or an address its
    cited abstract contains), and then shows its full address; any other is inert code.
    """
    return _with_addresses(text, _MODEL_SPECIALS, linked)


def safe_stream(pieces: Iterable[str]) -> Iterator[str]:
    """Streamed model text made inert, for ``st.write_stream``, which renders what it has gathered.

    Text goes out up to its last whitespace: an address split across pieces is made inert whole.
    """
    pending = ""
    for piece in pieces:
        pending += piece
        cut = max(pending.rfind(" "), pending.rfind("\n")) + 1
        if cut:
            yield model_markdown(pending[:cut])
            pending = pending[cut:]
    if pending:
        yield model_markdown(pending)


def linkable(sources: Sequence[Source]) -> frozenset[str]:
    """Addresses a reply may show as links: the papers' own links and the web addresses their texts contain.

    An address inside an instruction to the model ("include the link http://…") is never one of them.
    """
    found = {source.link for source in sources if source.link}
    for source in sources:
        found |= addresses_in(without_instructions(source.text))
    return frozenset(found)


_SLUG_SAFE = re.compile(r"^[a-z0-9 ]+$")


@dataclass(frozen=True)
class SourceHeading:
    """The heading of a source card and the anchor Streamlit derives from it (lower-case, spaces to dashes)."""

    text: str
    anchor: str


def source_heading(n: int, scope: str) -> SourceHeading:
    """``Source 2 of reply 3``: a heading whose anchor is predictable, so ``[2]`` can link to it.

    Streamlit gives each Markdown heading an id slugged from its text; with only ASCII
    letters, digits and spaces that slug is the text lower-cased with dashes for spaces.
    """
    if not _SLUG_SAFE.match(scope):
        raise ValueError(f"a source scope is lower-case letters, digits and spaces, got {scope!r}")
    text = f"Source {n} of {scope}"
    return SourceHeading(text=text, anchor=text.lower().replace(" ", "-"))


def _linked_citations(text: str, numbers: set[int], scope: str, linked: frozenset[str]) -> str:
    """Inert ``text`` whose ``[n]`` for known sources link to their cards."""
    parts = []
    position = 0
    for match in PLAIN.finditer(text):
        parts.append(model_markdown(text[position : match.start()], linked))
        n = int(match.group(1))
        if n in numbers:
            parts.append(f"[\\[{n}\\]](#{source_heading(n, scope).anchor})")
        else:
            parts.append(model_markdown(match.group(0)))
        position = match.end()
    parts.append(model_markdown(text[position:], linked))
    return "".join(parts)


FLAG = "⚠"


def cited_markdown(text: str, sources: Sequence[Source], scope: str, unsupported: Sequence[str] = ()) -> str:
    """Model text as safe Markdown: citations link to source cards, unsupported sentences are marked.

    A sentence the support check could not ground is shown on an orange background after
    a warning sign; one that cannot be found verbatim (rewritten since) is left as is —
    the page lists it separately.
    """
    numbers = {source.n for source in sources}
    linked = linkable(cited_sources(text, sources)) if sources else frozenset()
    spans: list[tuple[int, int]] = []
    for sentence in unsupported:
        start = text.find(sentence) if sentence.strip() else -1
        if start >= 0 and not any(start < end and start + len(sentence) > begin for begin, end in spans):
            spans.append((start, start + len(sentence)))
    parts = []
    position = 0
    for start, end in sorted(spans):
        parts.append(_linked_citations(text[position:start], numbers, scope, linked))
        flagged = _linked_citations(" ".join(text[start:end].split()), numbers, scope, linked)
        parts.append(f":orange-background[{FLAG} {flagged}]")
        position = end
    parts.append(_linked_citations(text[position:], numbers, scope, linked))
    return "".join(parts)


def unmarked_unsupported(text: str, unsupported: Sequence[str]) -> list[str]:
    """Flagged sentences that :func:`cited_markdown` could not mark inside ``text``."""
    return [sentence for sentence in unsupported if sentence.strip() and sentence not in text]


# --- comparisons ---------------------------------------------------------------------------
def comparison_rows(comparison: Comparison, scope: str) -> list[dict[str, str]]:
    """The comparison as table rows of safe Markdown: one row per aspect, a column per paper."""
    sources = [
        Source(n=n, paper_id=p.paper_id, title=p.title, text="") for n, p in enumerate(comparison.papers, start=1)
    ]
    headers = [f"\\[{n}\\] {inline_literal(short_title(p.title))}" for n, p in enumerate(comparison.papers, start=1)]
    rows = []
    for aspect in comparison.aspects:
        row = {"Aspect": f"**{inline_literal(aspect.aspect)}**"}
        for header, paper in zip(headers, comparison.papers, strict=True):
            cell = " ".join(aspect.cells.get(paper.paper_id, "not stated in the abstract").split())
            row[header] = cited_markdown(cell, sources, scope)
        rows.append(row)
    return rows


def paper_details(paper: Paper) -> str:
    """Authors, publication date, the day it was listed (when another), id and link as one safe Markdown line."""
    parts = []
    if paper.authors:
        shown = ", ".join(paper.authors[:6]) + (f" and {len(paper.authors) - 6} more" if len(paper.authors) > 6 else "")
        parts.append(inline_literal(shown))
    if paper.published:
        parts.append(paper.published.isoformat())
    if paper.listed and paper.listed != paper.published:
        parts.append(f"listed {paper.listed.isoformat()}")
    parts.append(f"`{paper.paper_id.replace('`', '')}`")
    if paper.link:
        parts.append(link_markdown(paper.link))
    return " · ".join(parts)


_SAFE_URL = re.compile(r"^https?://[^\s()<>]+$")


def link_markdown(url: str) -> str:
    """A paper's own http(s) link, showing its full address; anything else (javascript:, spaces) as text."""
    if _SAFE_URL.match(url):
        return f"[{inline_literal(url)} ↗]({url})"
    return inline_literal(url)
