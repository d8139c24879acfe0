"""Citations settled by the support check, and text about several papers kept to its grounded sentences.

A small model forgets the ``[n]`` of a sentence it copied, or cites a second paper that has
nothing to do with it; checked against one source at a time, :mod:`assistant.support` tells
which sources ground each sentence, and the citations follow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.citations import cited_numbers, settle, strip_markers, validate
from assistant.embeddings import EmbedFunction
from assistant.schema import Citation, Source
from assistant.scrubbing import scrub, strip_echoed_prompt
from assistant.support import MIN_HEAD_CHARS, SupportReport, as_evidence, check_support, plain
from assistant.text import names_in, split_sentences, tokenize

_OUTER_MARKERS = re.compile(r"^(?:\s*\[\d+\])+\s*[:;,–-]?|(?:\s*\[\d+\])+\s*[.!?]?\s*$")


def _cited_in_place(sentence: str) -> bool:
    """Several papers cited inside the sentence, not only at its start or end."""
    return len(set(cited_numbers(sentence))) > 1 and bool(cited_numbers(_OUTER_MARKERS.sub("", sentence)))


def settle_citations(text: str, sources: Sequence[Source], report: SupportReport, embedder: EmbedFunction) -> str:
    """``text`` with each claim citing the sources that ground it, as far as one can tell.

    A small model forgets the ``[n]`` of a sentence it copied from a source, or adds a
    second paper that has nothing to do with it. Checked against one source at a time,
    the support check tells which sources ground a sentence on their own: an uncited
    sentence gets the best of them; a sentence citing several keeps those that ground it
    (all of them when none does alone, and the joint check judges it as written). A sentence
    that cites papers where it names them ("ZIP-FIT [1] ..., while Bonito [2] ...") is left as
    written: each marker belongs to its clause.
    """
    unsettled = {
        strip_markers(verdict.text).strip().lstrip(":;,-– ").strip(): verdict
        for verdict in report.sentences
        if verdict.kind == "claim" and len(verdict.cited) != 1 and not _cited_in_place(verdict.text)
    }
    if not unsettled:
        return text
    grounding: dict[str, dict[int, float]] = {key: {} for key in unsettled}
    for source in sources:
        # One paragraph each: a sentence without a full stop (a list item, a bare title) must not
        # run into the next and come back as a unit matching none of them.
        for verdict in check_support("\n\n".join(unsettled), [source], embedder).sentences:
            if verdict.supported and verdict.text in grounding:
                grounding[verdict.text][source.n] = verdict.score
    for plain_text, verdict in unsettled.items():
        settled = settle(verdict.text, verdict.cited, grounding[plain_text])
        if settled is not None:
            text = text.replace(verdict.text, settled, 1)
    return text


def checked(text: str, sources: Sequence[Source], embedder: EmbedFunction) -> tuple[str, list[Citation], SupportReport]:
    """``text`` (its citations validated) with its citations settled, their citations, and its support report."""
    report = check_support(text, sources, embedder)
    settled = settle_citations(text, sources, report, embedder)
    if settled == text:
        return (*validate(text, sources), report)
    text, citations = validate(settled, sources)
    return text, citations, check_support(text, sources, embedder)


def cite_named_papers(text: str, sources: Sequence[Source]) -> str:
    """Each sentence that names a source it does not cite gets that source's marker after the name.

    For text about several papers at once: "ZIP-FIT uses gzip ..., while Bonito [2] learns ..."
    speaks of ZIP-FIT as surely as of Bonito, and is then checked against both abstracts. A name
    counts when only that source has it: a coined name or acronym, or the title's head.
    """
    evidence = as_evidence(sources)
    pieces: list[str] = []
    done = 0
    for sentence in split_sentences(text):
        start = text.find(sentence, done)
        if start < 0:
            continue
        cited = set(cited_numbers(sentence))
        marked = sentence
        for source in evidence:
            if source.n in cited:
                continue
            own = [
                token.text
                for token in tokenize(plain(sentence))
                if token.unit in names_in(token.text)
                and source.mentions(token.unit)
                and not any(other.mentions(token.unit) for other in evidence if other is not source)
            ]
            if len(source.head) >= MIN_HEAD_CHARS:
                own.append(source.head)
            for name in own:
                found = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", marked, re.IGNORECASE)
                if found and not marked[found.end() :].lstrip().startswith("["):
                    marked = f"{marked[: found.end()]} [{source.n}]{marked[found.end() :]}"
                    break
        pieces.append(text[done:start] + marked)
        done = start + len(sentence)
    return "".join(pieces) + text[done:]


def grounded_sentences(reply: str, sources: Sequence[Source], embedder: EmbedFunction) -> tuple[list[str], list[str]]:
    """The reply's sentences that the sources support and that cite one (each once), and the claims left out.

    For text that speaks of several papers at once (a comparison's narrative, a digest
    paragraph), where an ungrounded or unattributed sentence is worse than a shorter text. A
    paper named without its marker is cited where it is named (:func:`cite_named_papers`).
    Links and markup no source has are removed first; hedges and headings are neither kept
    nor counted.
    """
    text, _ = validate(scrub(strip_echoed_prompt(reply), sources).text, sources)
    if not text:
        return [], []
    text = cite_named_papers(text, sources)
    _, _, report = checked(text, sources, embedder)
    claims = [verdict for verdict in report.sentences if verdict.kind == "claim"]
    kept = list(dict.fromkeys(verdict.text for verdict in claims if verdict.supported and verdict.cited))
    return kept, [verdict.text for verdict in claims if verdict.text not in kept]
