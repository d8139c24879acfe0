"""A digest as an Atom 1.0 feed (RFC 4287), for feed readers: ``paper-assistant digest --day D --atom FILE``.

One entry per theme: its name as the title, its paragraph and its papers (title, day, link) as
the content. Everything from the data (names, paragraphs, titles) is escaped, and the only links
are the papers' own pages, so a feed reader shows no markup or address the abstracts carry.
Entry ids are stable for a given range and theme, so re-writing the feed does not repeat entries.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Mapping
from datetime import UTC, datetime
from xml.etree import ElementTree

from assistant.dates import span_text
from assistant.schema import DateRange, Digest, Paper

ATOM = "http://www.w3.org/2005/Atom"


def _urn(*parts: str) -> str:
    return "urn:paper-assistant:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _child(parent: ElementTree.Element, tag: str, text: str | None = None, **attributes: str) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, f"{{{ATOM}}}{tag}", attributes)
    if text is not None:
        element.text = text
    return element


def _theme_html(paragraph: str, papers: list[Paper]) -> str:
    items = []
    for n, paper in enumerate(papers, start=1):
        title = html.escape(paper.title)
        day = f" ({paper.day.isoformat()})" if paper.day else ""
        link = paper.link
        named = f'<a href="{html.escape(link, quote=True)}">{title}</a>' if link else title
        items.append(f"<li>[{n}] {named}{day}</li>")
    return f"<p>{html.escape(paragraph)}</p><ol>{''.join(items)}</ol>"


def digest_atom(
    digest: Digest, papers: Mapping[str, Paper], *, days: DateRange | None, updated: datetime | None = None
) -> str:
    """The digest as an Atom document (UTF-8 text). ``papers``: paper_id -> Paper for the themes' papers."""
    ElementTree.register_namespace("", ATOM)
    stamp = (updated or datetime.now(UTC)).replace(microsecond=0).isoformat()
    scope = span_text(days) if days is not None else "the whole collection"
    feed = ElementTree.Element(f"{{{ATOM}}}feed")
    _child(feed, "id", _urn("digest", scope))
    _child(feed, "title", f"Paper Assistant digest: {scope}")
    _child(feed, "updated", stamp)
    author = _child(feed, "author")
    _child(author, "name", "Paper Assistant")
    _child(feed, "generator", "paper-assistant")
    for theme in digest.themes:
        members = [papers[pid] for pid in theme.paper_ids if pid in papers]
        entry = _child(feed, "entry")
        _child(entry, "id", _urn("theme", scope, theme.name, *theme.paper_ids))
        _child(entry, "title", theme.name)
        _child(entry, "updated", stamp)
        first_link = next((paper.link for paper in members if paper.link), None)
        if first_link:
            _child(entry, "link", href=first_link)
        _child(entry, "summary", f"{len(members)} paper(s): " + "; ".join(paper.title for paper in members))
        _child(entry, "content", _theme_html(theme.paragraph, members), type="html")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(feed, encoding="unicode") + "\n"
