"""BibTeX for stored papers: ``paper-assistant papers --bibtex`` and the app's export button.

Each paper becomes one ``@misc`` entry, the form arXiv's own export uses for preprints: ``title``,
``author`` (names joined by ``and``), ``year`` and ``month`` (of the publication date, else of the
day the paper was listed), and for arXiv papers ``eprint``, ``archivePrefix = {arXiv}`` and ``url``.

Keys are stable and readable, in the style of Google Scholar: the first author's family name,
the year and the first word of the title that is not a small word, ASCII only
(``vaswani2017attention``); papers that would share a key get ``b``, ``c``... in the order of their
paper ids, so the same papers always get the same keys, whatever order they are asked in.

Text is escaped for LaTeX (``& % $ # _ { } ~ ^ \\``), except inline math (``$x^2$``), which abstracts
and titles keep verbatim and which stays math when its braces balance. Titles are wrapped in a
second pair of braces so that styles keep their capitals (``LLM``, ``GPT-4``). The output parses
with ``bibtexparser`` without a failed block, and its titles decode back to the stored text
(``tests/test_bibtex.py``).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence

from assistant.schema import Paper

_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_SPECIAL = re.compile(r"[\\{}&%$#_~^]")
_MATH = re.compile(r"(?<!\\)\$[^$]+?(?<!\\)\$")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_SMALL_WORDS = frozenset(
    "a an the on of in for to and with from towards toward at by via is are do does can how what when why which".split()
)


def papers_bibtex(papers: Sequence[Paper]) -> str:
    """BibTeX entries for ``papers``, in the order given, separated by blank lines; "" for none."""
    keys = bibtex_keys(papers)
    return "\n".join(bibtex_entry(paper, keys[paper.paper_id]) for paper in papers)


def bibtex_keys(papers: Sequence[Paper]) -> dict[str, str]:
    """paper_id -> a key unique among ``papers``: the base key, then ``b``, ``c``... by paper id."""
    by_base: dict[str, list[str]] = defaultdict(list)
    for paper_id, base in {paper.paper_id: key_base(paper) for paper in papers}.items():
        by_base[base].append(paper_id)
    keys: dict[str, str] = {}
    for base, paper_ids in by_base.items():
        for number, paper_id in enumerate(sorted(paper_ids)):
            keys[paper_id] = base + _suffix(number)
    return keys


def _suffix(number: int) -> str:
    """The suffix of the n-th paper of one key: "" for the first, then "b" to "z", then "ba", "bb"..."""
    if number == 0:
        return ""
    letters = ""
    while number:
        number, digit = divmod(number, 26)
        letters = "abcdefghijklmnopqrstuvwxyz"[digit] + letters
    return letters


def key_base(paper: Paper) -> str:
    """``vaswani2017attention``: first author's family name, year, first title word that is not a small word."""
    author = _ascii_word(_family_name(paper.authors[0])) if paper.authors else ""
    day = paper.published or paper.listed
    words = [_ascii_word(word) for word in paper.title.split()]
    words = [word for word in words if word]
    word = next((w for w in words if w not in _SMALL_WORDS), words[0] if words else "")
    return f"{author}{day.year if day else ''}{word}" or paper.paper_id


def _family_name(name: str) -> str:
    """The family name: "Ashish Vaswani" -> "Vaswani"; "Vaswani, Ashish" -> "Vaswani"."""
    if "," in name:
        return name.split(",", 1)[0]
    parts = name.split()
    return parts[-1] if parts else name


def _ascii_word(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]", "", ascii_text.casefold())


def bibtex_entry(paper: Paper, key: str) -> str:
    """One ``@misc`` entry for ``paper`` under ``key``."""
    fields = [("title", "{" + latex_text(paper.title) + "}")]
    if paper.authors:
        fields.append(("author", " and ".join(_author(name) for name in paper.authors)))
    day = paper.published or paper.listed
    if day is not None:
        fields.append(("year", str(day.year)))
    if paper.arxiv_id:
        fields.append(("eprint", paper.arxiv_id))
        fields.append(("archivePrefix", "arXiv"))
    if paper.link:
        fields.append(("url", _url(paper.link)))
    lines = [f"  {name} = {{{value}}}," for name, value in fields]
    if day is not None:  # a month macro, as styles expect it (unbraced)
        lines.insert(3 if paper.authors else 2, f"  month = {_MONTHS[day.month - 1]},")
    return f"@misc{{{key},\n" + "\n".join(lines) + "\n}\n"


def latex_text(text: str) -> str:
    """``text`` with LaTeX's special characters escaped; inline math with balanced braces kept as math."""
    pieces: list[str] = []
    position = 0
    for math in _MATH.finditer(text):
        if not _balanced(math.group()):
            continue
        pieces.append(_escape(text[position : math.start()]))
        pieces.append(math.group())
        position = math.end()
    pieces.append(_escape(text[position:]))
    return "".join(pieces)


def _escape(text: str) -> str:
    return _SPECIAL.sub(lambda match: _SPECIALS[match.group()], text)


def _balanced(text: str) -> bool:
    depth = 0
    for position, character in enumerate(text):
        if character in "{}" and position > 0 and text[position - 1] == "\\":
            continue
        depth += {"{": 1, "}": -1}.get(character, 0)
        if depth < 0:
            return False
    return depth == 0


def _author(name: str) -> str:
    escaped = latex_text(name)
    # A name with a comma or an " and " would be split or reordered by BibTeX: keep it whole.
    return "{" + escaped + "}" if "," in name or re.search(r"\band\b", name) else escaped


def _url(url: str) -> str:
    # Links are http(s) without spaces (ingestion checks); braces and backslashes would break the field.
    return url.replace("\\", "%5C").replace("{", "%7B").replace("}", "%7D")
