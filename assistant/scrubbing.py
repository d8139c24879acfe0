"""What no source has, taken out of a model's text: an echoed prompt, links, addresses, markup, code.

A model copies links and markup from instructions hidden in an abstract, or invents them; it
also starts copying its prompt's markup. Both are cut before the text is checked.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel, Field

from assistant.schema import Source

# --- what a reply is, before it is checked ------------------------------------------------------
# Where a small model starts copying the prompt: a source tag, or the prompt's "Question:" line.
_ECHOED_SOURCE = re.compile(r"<\s*/?\s*source\b|^\s*question\s*:", re.IGNORECASE | re.MULTILINE)
_STRAY_TAG = re.compile(r"</?\s*[a-zA-Z][a-zA-Z0-9]*\s*/?>")


def strip_echoed_prompt(reply: str) -> str:
    """The reply up to where the model starts copying the prompt's markup (a small model does).

    Everything from an echoed ``<source`` tag or ``Question:`` line on is the prompt
    regurgitated, not an answer; stray tags elsewhere (``</pre>``) are dropped.
    """
    echo = _ECHOED_SOURCE.search(reply)
    kept = reply[: echo.start()] if echo else reply
    return _STRAY_TAG.sub("", kept).strip()


# --- links, addresses, markup and code the sources do not have ------------------------------------
_MARKDOWN_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^)\s]*)[^)\n]*\)")
_MARKDOWN_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]*)[^)\n]*\)")
_FENCED_CODE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>\n]{0,300}>|<!--.*?-->", re.DOTALL)
_ADDRESS = re.compile(
    r"\b(?:https?://|ftp://|www\.)[^\s<>()\[\]\"']+|\b(?:javascript|data|vbscript):[^\s<>\"']+"
    r"|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b",
    re.IGNORECASE,
)
_CODE_LINE = re.compile(
    r"^\s*(?:(?:var|let|const|function|import|def|class|return)\b.*[;{(=:]|.*(?:=>|\);|document\.|window\.|eval\(|<script)).*$",
    re.MULTILINE,
)
_TRAILING_PUNCTUATION = ".,;:!?)"


_CITATION_JSON = re.compile(r'\{\s*"(?:citations|sources|references)"\s*:')


def _without_citation_json(text: str, removed: list[str]) -> str:
    """``text`` without the JSON a model writes imitating the API's ``citations`` field (a reply is
    its prose; the real citations are computed): each object from its ``{`` to its matching
    ``}``, or to the end of its paragraph when the model left it unfinished."""
    while match := _CITATION_JSON.search(text):
        start = match.start()
        try:
            _, length = json.JSONDecoder().raw_decode(text[start:])
            end = start + length
        except ValueError:
            paragraph_end = text.find("\n\n", start)
            end = len(text) if paragraph_end < 0 else paragraph_end
        removed.append(text[start:end])
        text = text[:start] + " " + text[end:]
    return text


class Scrubbed(BaseModel):
    """Model text with what no source has taken out, and what was taken out."""

    text: str
    removed: list[str] = Field(default_factory=list, description="Each removed link, address, tag or code, as written")

    @property
    def notice(self) -> str | None:
        """What was removed, counted by kind, never quoted: a notice that repeated ``<img onerror=…>``
        or a link handed the markup to any client that renders notices."""
        if not self.removed:
            return None
        counts = Counter(_removed_kind(item) for item in self.removed)
        kinds = [f"{n} {kind if n == 1 else kind + 's'}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1])]
        listed = ", ".join(kinds[:-1]) + f" and {kinds[-1]}" if len(kinds) > 1 else kinds[0]
        return f"Removed from the model's text because no cited abstract contains it: {listed}."


def _removed_kind(item: str) -> str:
    if item.startswith("!["):
        return "image"
    if item.startswith("{"):
        return "block of citation JSON"
    if item.startswith("<"):
        return "piece of HTML"
    if re.match(r"(?:https?://|ftp://|www\.|(?:javascript|data|vbscript):)", item, re.IGNORECASE):
        return "link"
    if "@" in item and " " not in item:
        return "e-mail address"
    return "piece of code"


def scrub(text: str, sources: Sequence[Source]) -> Scrubbed:
    """``text`` without links, addresses, HTML or code that appear in none of ``sources``.

    A model copies links and markup from instructions hidden in an abstract, or invents them
    (a project page on YouTube, a repository on GitHub): a URL, e-mail address, tag or piece of
    code in a reply must appear verbatim in a source, or in a paper's own link, to stay. A
    Markdown link becomes its text; the address behind it stays only when a source has it.
    """
    allowed = " ".join(part for source in sources for part in (source.text, source.title, source.link or ""))
    removed: list[str] = []

    def known(item: str) -> bool:
        return item.rstrip(_TRAILING_PUNCTUATION) in allowed

    def drop(match: re.Match[str]) -> str:
        removed.append(match.group(0).strip())
        return " "

    def image(match: re.Match[str]) -> str:
        removed.append(match.group(0))
        return ""

    def link(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2)
        if target and known(target):
            return f"{label} ({target.rstrip(_TRAILING_PUNCTUATION)})"
        removed.append(target or match.group(0))
        return label

    def address(match: re.Match[str]) -> str:
        item = match.group(0)
        if known(item):
            return item
        removed.append(item.rstrip(_TRAILING_PUNCTUATION))
        return item[len(item.rstrip(_TRAILING_PUNCTUATION)) :]

    def code(match: re.Match[str]) -> str:
        if known(match.group(1)):
            return match.group(1)
        removed.append(match.group(0))
        return " "

    text = _FENCED_CODE.sub(drop, text)
    text = _without_citation_json(text, removed)
    text = _MARKDOWN_IMAGE.sub(image, text)
    text = _MARKDOWN_LINK.sub(link, text)
    text = _HTML_TAG.sub(drop, text)
    text = _INLINE_CODE.sub(code, text)
    text = _CODE_LINE.sub(lambda match: match.group(0) if known(match.group(0).strip()) else drop(match), text)
    text = _ADDRESS.sub(address, text)
    cleaned = "\n".join(re.sub(r"[ \t]{2,}", " ", line).rstrip() for line in text.splitlines())
    cleaned = re.sub(r"\s+([.,;:!?])", r"\1", cleaned)
    return Scrubbed(text=cleaned.strip(), removed=list(dict.fromkeys(removed)))
