"""Citation markers ``[n]``: the one grammar, and everything done with them.

Models write citations in many shapes: ``[1]``, ``[1, 2]``, ``[1-3]``, ``[Source 2]``,
``[S1]``, ``[1][2]``. :data:`MARKER` reads all of them; :func:`validate` rewrites them as
plain ``[n]`` for sources that exist, so everything downstream (the support check, the
app's links to source cards, exports, conversations) only ever meets :data:`PLAIN`.

A range names every source in it (``[1-3]`` is 1, 2 and 3) unless it is longer than
:data:`MAX_RANGE`, which is a typo or a made-up span: then only its two ends count.

:func:`settle` decides which markers a sentence keeps once the support check has said
which sources ground it on their own; it is pure, the check itself lives in
:mod:`assistant.settling`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from assistant.schema import Citation, PaperRef, Source

_LABEL = r"(?:(?:sources?|s)\s*)?"
MARKER = re.compile(rf"\[\s*{_LABEL}(\d+(?:\s*(?:,|;|–|-|and)\s*{_LABEL}\d+)*)\s*\]", re.IGNORECASE)
"""Any citation marker a model writes; group 1 holds its numbers."""
PLAIN = re.compile(r"\[(\d+)\]")
"""A marker as :func:`validate` writes it: one number in brackets."""
MAX_RANGE = 20
_SPAN = re.compile(r"(\d+)\s*[–-]\s*(\d+)|(\d+)")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"[ \t]+([.,;:!?])")
# Markers written after a sentence's full stop ("... distribution. [1]"), where a new sentence or
# the text's end follows: they go before the stop, where the reader expects them.
_AFTER_THE_STOP = re.compile(r"(?<=\w)([.!?])((?:[ \t]*\[\d+\])+)(?=[ \t]*(?:$|\n|[A-Z\"“(]))")


def numbers_in_marker(group: str) -> list[int]:
    """The source numbers of one marker's inside ("1-3, 5" -> [1, 2, 3, 5]), in order, each once."""
    numbers: list[int] = []
    for first, last, single in _SPAN.findall(group):
        if single:
            numbers.append(int(single))
        elif 0 < int(last) - int(first) <= MAX_RANGE:
            numbers.extend(range(int(first), int(last) + 1))
        else:
            numbers.extend((int(first), int(last)))
    return list(dict.fromkeys(numbers))


def cited_numbers(text: str) -> list[int]:
    """Every source number ``text`` cites, in order of first appearance."""
    numbers: list[int] = []
    for match in MARKER.finditer(text):
        numbers.extend(numbers_in_marker(match.group(1)))
    return list(dict.fromkeys(numbers))


def strip_markers(text: str) -> str:
    """``text`` without citation markers (and the space before each)."""
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", re.sub(rf"\s?{MARKER.pattern}", "", text, flags=re.IGNORECASE))


def validate(text: str, sources: Sequence[Source]) -> tuple[str, list[Citation]]:
    """``text`` with every marker rewritten as ``[n]`` for real sources only, and those citations.

    A marker naming no source (``[7]`` with five sources) is removed rather than kept as a
    dangling promise. Citations come in order of first appearance, which is the order a
    reader meets them (and what "the second one" refers to in a follow-up).
    """
    by_number = {source.n: source for source in sources}
    cited: dict[int, Citation] = {}

    def rewrite(match: re.Match[str]) -> str:
        valid = sorted(n for n in numbers_in_marker(match.group(1)) if n in by_number)
        for n in valid:
            source = by_number[n]
            cited.setdefault(n, Citation(n=n, paper_id=source.paper_id, title=source.title, url=source.link))
        if not valid:
            return ""
        return (" " if match.group(0).startswith(" ") else "") + "".join(f"[{n}]" for n in valid)

    cleaned = re.sub(rf"\s?{MARKER.pattern}", rewrite, text, flags=re.IGNORECASE)
    cleaned = _AFTER_THE_STOP.sub(
        lambda match: " " + "".join(f"[{n}]" for n in PLAIN.findall(match.group(2))) + match.group(1), cleaned
    )
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", cleaned).strip(), list(cited.values())


def renumber(text: str, mapping: Mapping[int, int]) -> str:
    """``text`` whose plain markers ``[n]`` become ``[mapping[n]]``; numbers not in ``mapping`` are dropped."""

    def replace(match: re.Match[str]) -> str:
        new = mapping.get(int(match.group(2)))
        return f"{match.group(1)}[{new}]" if new is not None else ""

    return re.sub(rf"(\s?){PLAIN.pattern}", replace, text)


def insert(text: str, *numbers: int) -> str:
    """``text`` with ``[n]`` markers before its closing punctuation, where a citation belongs."""
    body = text.rstrip()
    markers = "".join(f"[{n}]" for n in numbers)
    if not markers:
        return body
    end = body[-1] if body and body[-1] in ".!?" else ""
    return f"{body.rstrip('.!?').rstrip()} {markers}{end}" if end else f"{body} {markers}"


def papers_cited(citations: Sequence[Citation]) -> list[PaperRef]:
    """The distinct papers of ``citations``, in citation order."""
    seen: dict[str, PaperRef] = {}
    for citation in citations:
        seen.setdefault(citation.paper_id, PaperRef(paper_id=citation.paper_id, title=citation.title))
    return list(seen.values())


def cited_sources(text: str, sources: Sequence[Source]) -> list[Source]:
    """The sources ``text`` cites; all of them when it cites none (a summary is of its one source)."""
    cited = set(cited_numbers(text))
    return [source for source in sources if source.n in cited] or list(sources)


def settle(sentence: str, cited: Sequence[int], grounding: Mapping[int, float]) -> str | None:
    """The sentence re-cited to the sources that ground it on their own, or None to leave it as written.

    ``grounding`` maps each source that supports the sentence by itself to its score. An
    uncited sentence gets its best such source; a sentence citing several keeps those that
    ground it (all of them when none does alone: the joint check then judges it as written).
    """
    if not cited and grounding:
        keep = [max(grounding, key=grounding.__getitem__)]
    else:
        keep = [n for n in cited if n in grounding]
    if not keep or list(keep) == list(cited):
        return None
    return insert(strip_markers(sentence).strip().lstrip(":;,-– ").strip(), *keep)


# Markers opening a sentence: at the start of the text, or right after a sentence's end.
_LEADING = re.compile(rf"(?:^|(?<=[.!?]))\s*((?:{MARKER.pattern}\s*)+)(?=\S)", re.IGNORECASE)


def markers_to_sentence_ends(text: str, names: Mapping[int, str]) -> str:
    """A reply written with each sentence opening on its marker ("[2] proposes ...") as ordinary prose.

    Small models (Qwen2.5-Coder 1.5B in 6 of 30 dev answers) start sentences with the marker, as a
    subject ("[1] introduces a filter") or a label ("[1] Our loss reduces overlap"); read the usual
    way, each marker would cite the sentence before it. Only a text that opens on a marker is taken
    to follow that style. The marker moves to the sentence's end; one that stood for the subject
    becomes the paper's name, from ``names``.
    """
    stripped = text.strip()
    if not MARKER.match(stripped):
        return text
    starts = list(_LEADING.finditer(stripped))
    sentences = []
    for index, start in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(stripped)
        body = stripped[start.end() : end].strip()
        numbers = cited_numbers(start.group(1))
        if not body:
            continue
        if body[0].islower() and numbers[0] in names:
            body = f"{names[numbers[0]]} {body}"
        sentences.append(body if cited_numbers(body) else insert(body, *numbers))
    return " ".join(sentences)


# A marker standing for a paper in a clause: at a sentence's start or after a joining word, and
# followed by a verb or another paper ("[1] and [2] differ in ...", "... while [2] learns to ...").
_PAPER_MARKER = re.compile(
    r"(^|[.!?]\s+|\b(?i:and|or|while|whereas|but|than|from|with|unlike|like|versus|vs\.)\s+)"
    r"\[(\d+)\](?=\s+(?:and\b|or\b|[a-z])|,)"
)


def name_paper_markers(text: str, names: Mapping[int, str]) -> str:
    """Markers a model wrote as the papers' names ("while [2] learns ...") get the name before them.

    Read as citations only, such a sentence would say nothing of whom it is about: "[1] and [2]
    differ in their approach" becomes "ZIP-FIT [1] and Bonito [2] differ in their approach".
    """

    def named(match: re.Match[str]) -> str:
        n = int(match.group(2))
        return f"{match.group(1)}{names[n]} [{n}]" if n in names else match.group(0)

    return _PAPER_MARKER.sub(named, text)
