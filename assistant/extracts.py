"""Extractive fallbacks: the abstracts' own sentences, chosen for what was asked.

When a model's text is missing or not grounded, the reply is made of sentences the sources
contain, each cited: a summary from an abstract's most central sentences, an answer from the
sentences closest to the question, a comparison cell from the sentence that best states an
aspect (problem, approach, data, results, limitations).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assistant.citations import insert, strip_markers
from assistant.embeddings import EmbedFunction, embed_with_cache
from assistant.schema import Source
from assistant.support import as_evidence
from assistant.text import LIST_MARKER, numbers_in, split_sentences, word_count

SUMMARY_MIN_WORDS = 60
SUMMARY_MAX_WORDS = 150
MAX_EXTRACTIVE_SENTENCES = 8
"""An extractive summary grows sentence by sentence until it reaches SUMMARY_MIN_WORDS."""
QUOTE_MAX_WORDS = 45
"""A quoted sentence (a comparison cell, a digest line) is cut at this many words."""
MIN_ASPECT_SCORE = 0.15
"""Below this score no abstract sentence is taken as an aspect's answer."""
CUE_BONUS = 0.15

_HEADING = re.compile(r"^\s*#{1,6}\s+")
_LABEL = re.compile(r"^\s*(?:\*\*)?(?:summary|paragraph|answer|tl;?dr)(?:\*\*)?\s*:\s*(?:\*\*)?", re.IGNORECASE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")


def extractive_summary(text: str, embedder: EmbedFunction, *, max_sentences: int = 3, max_words: int = 150) -> str:
    """The abstract's most central sentences (closest to their centroid), in their original order."""
    sentences = split_sentences(" ".join(text.split()))
    if not sentences:
        return ""
    if len(sentences) <= max_sentences and sum(len(s.split()) for s in sentences) <= max_words:
        return " ".join(sentences)
    vectors = embed_with_cache(embedder, [], sentences)
    centroid = vectors.mean(axis=0)
    centrality = vectors @ (centroid / max(float(np.linalg.norm(centroid)), 1e-12))
    chosen: list[int] = []
    words = 0
    for index in np.argsort(-centrality, kind="stable"):
        length = len(sentences[index].split())
        if len(chosen) == max_sentences:
            break
        if words + length <= max_words:
            chosen.append(int(index))
            words += length
    if not chosen:  # even the most central sentence is too long: cut it
        return " ".join(sentences[int(np.argmax(centrality))].split()[:max_words]) + " …"
    return " ".join(sentences[i] for i in sorted(chosen))


def extractive_answer(
    sources: Sequence[Source | str], question: str, embedder: EmbedFunction, max_sentences: int = 3
) -> str:
    """The source sentences closest to the question, best first, each with its citation ``[n]``."""
    evidence = as_evidence(sources)
    candidates = [(source.n, sentence) for source in evidence for sentence in source.sentences]
    if not candidates or not question.strip():
        return ""
    vectors = embed_with_cache(embedder, [question], [sentence for _, sentence in candidates])
    closeness = vectors[1:] @ vectors[0]
    best = np.argsort(-closeness, kind="stable")[:max_sentences]
    return " ".join(insert(candidates[i][1], candidates[i][0]) for i in best)


def quantity_sentences(
    question: str, candidates: Sequence[tuple[int, Sequence[str]]], embedder: EmbedFunction, *, limit: int = 2
) -> list[tuple[int, str]]:
    """For "how much / how many" questions: the sentences that state figures, most relevant first.

    ``candidates`` are (source number, sentences) pairs; the result pairs each chosen sentence
    with its source number. Empty when no candidate sentence has a number.
    """
    with_numbers = [(n, sentence) for n, sentences in candidates for sentence in sentences if numbers_in(sentence)]
    if not with_numbers:
        return []
    vectors = embed_with_cache(embedder, [question], [sentence for _, sentence in with_numbers])
    closeness = vectors[1:] @ vectors[0]
    return [with_numbers[i] for i in np.argsort(-closeness, kind="stable")[:limit]]


# --- one paragraph --------------------------------------------------------------------------------
def one_paragraph(text: str, *, max_words: int = SUMMARY_MAX_WORDS) -> str:
    """``text`` as one plain paragraph of at most ``max_words``, ending at a sentence boundary.

    Headings and a lone first line that repeats the title are dropped, list markers and
    emphasis removed, lines joined; an unfinished last sentence (the reply hit its token
    limit) is dropped when a finished one precedes it.
    """
    lines = [line for line in text.strip().splitlines() if line.strip()]
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _HEADING.match(line):
            continue
        line = _LABEL.sub("", LIST_MARKER.sub("", line))
        # A short first line without a full stop is a title the model put on top.
        if index == 0 and len(lines) > 1 and not line.rstrip().endswith((".", "!", "?")) and word_count(line) <= 15:
            continue
        kept.append(line)
    flat = " ".join(" ".join(kept).split())
    flat = strip_markers(_EMPHASIS.sub("", flat)).strip()
    sentences = split_sentences(flat)
    if len(sentences) > 1 and not sentences[-1].endswith((".", "!", "?", '."', ".)")):
        sentences = sentences[:-1]
    chosen: list[str] = []
    for sentence in sentences:
        if word_count(" ".join([*chosen, sentence])) > max_words:
            break
        chosen.append(sentence)
    if not chosen and sentences:
        # One run-on sentence longer than the limit: cut it at the limit and close it.
        chosen = [" ".join(sentences[0].split()[:max_words]).rstrip(",;:") + "…"]
    return " ".join(chosen)


def extractive_paragraph(abstract: str, embedder: EmbedFunction) -> str:
    """The abstract's key sentences, as many as it takes to reach SUMMARY_MIN_WORDS (within SUMMARY_MAX_WORDS)."""
    summary = ""
    for sentences in range(3, MAX_EXTRACTIVE_SENTENCES + 1):
        summary = one_paragraph(
            extractive_summary(abstract, embedder, max_sentences=sentences, max_words=SUMMARY_MAX_WORDS),
            max_words=SUMMARY_MAX_WORDS,
        )
        if word_count(summary) >= SUMMARY_MIN_WORDS:
            break
    return summary


# --- aspects of a paper ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Aspect:
    """One row of the table: the question a model answers per paper, and how to quote an abstract instead.

    An abstract sentence is scored by its similarity to ``description``, plus ``CUE_BONUS``
    when it has the aspect's ``cue`` words, plus ``position_weight`` times its relative
    position (abstracts state the problem first and results last). When ``cue_required``,
    a sentence without the cue is never quoted: most abstracts state no limitation, and
    the closest sentence by meaning would pretend otherwise.
    """

    name: str
    question: str
    description: str
    cue: re.Pattern[str]
    cue_required: bool = False
    position_weight: float = 0.0


APPROACH = Aspect(
    "Approach",
    "What method does this paper propose?",
    "we propose a new method, model, framework or algorithm that works by",
    re.compile(
        r"\bwe (?:propose|introduce|present|develop|design|devise)|\b(?:this paper|this work|our (?:method|approach|framework))\b",
        re.I,
    ),
)
ASPECTS: tuple[Aspect, ...] = (
    Aspect(
        "Problem",
        "What problem does this paper address?",
        "the problem, challenge or open question that existing methods fail to solve",
        re.compile(
            r"\bchalleng|\bproblem|\bhowever\b|\blimited\b|\black|\bstruggl|\bfail|\bremains?\b|\bquestion|\bissue|\bdifficult|\bcostly|\bexpensive",
            re.I,
        ),
        position_weight=-0.3,
    ),
    APPROACH,
    Aspect(
        "Data / benchmarks",
        "Which datasets, benchmarks or tasks is it evaluated on?",
        "experiments evaluate on datasets and benchmarks",
        re.compile(
            r"\bdata ?sets?\b|\bbenchmark|\bevaluat|\bexperiment|\bcorpus|\bcorpora|\bempirical"
            r"|\beffective(?:ness)?\b[^.]*\b(?:on|in|across)\b",
            re.I,
        ),
        cue_required=True,
    ),
    Aspect(
        "Key results",
        "What is the main result?",
        "results show the method outperforms baselines and improves accuracy",
        re.compile(
            r"\boutperform|\bimprov|\bachiev|\bstate-of-the-art|\bsurpass|\d+(?:\.\d+)?\s*%|\bgains?\b|\bshow that|\bdemonstrat|\bresults? (?:show|indicate|suggest)",
            re.I,
        ),
        position_weight=0.15,
    ),
    Aspect(
        "Limitations",
        "What limitation or open problem does the abstract mention?",
        "a limitation: the method fails, remains costly or is limited",
        re.compile(
            r"\blimitation|\bfails?\b|\bfailure|\bcostly|\bexpensive|\bstruggl|\bcannot\b|\bdrawback|\bfuture work|\bweakness|\bopen (?:problem|question)",
            re.I,
        ),
        cue_required=True,
        position_weight=0.1,
    ),
)

# Discourse openers that make a quoted sentence read as if torn from its context.
_OPENER = re.compile(
    r"^(?:furthermore|moreover|additionally|in addition|in particular|specifically|overall|finally|to this end|"
    r"as a result|consequently|thus|hence|therefore|however|yet|then|also|first|second|third|lastly),\s*",
    re.IGNORECASE,
)


def _quotable(sentence: str) -> str:
    """An abstract sentence as a cell: opener dropped, at most QUOTE_MAX_WORDS."""
    text = _OPENER.sub("", sentence.strip())
    text = text[:1].upper() + text[1:]
    words = text.split()
    return text if len(words) <= QUOTE_MAX_WORDS else " ".join(words[:QUOTE_MAX_WORDS]).rstrip(",;:") + "…"


class AspectSentences:
    """Picks the abstract sentence that best answers an aspect, never one already in ``used``."""

    def __init__(self, embedder: EmbedFunction) -> None:
        self._embedder = embedder
        vectors = np.asarray(embedder([aspect.description for aspect in ASPECTS]))
        self._aspect_vectors = {aspect.name: vector for aspect, vector in zip(ASPECTS, vectors, strict=True)}

    def best(self, abstract: str, aspect: Aspect, used: set[str]) -> str:
        """The best sentence, quotable (opener dropped, bounded), or "" when the abstract has none."""
        sentences = split_sentences(" ".join(abstract.split()))
        candidates = [
            (position, sentence)
            for position, sentence in enumerate(sentences)
            if sentence not in used and (not aspect.cue_required or aspect.cue.search(sentence))
        ]
        if not candidates:
            return ""
        similarity = (
            np.asarray(self._embedder([sentence for _, sentence in candidates])) @ self._aspect_vectors[aspect.name]
        )
        scores = [
            float(similarity[row])
            + (CUE_BONUS if aspect.cue.search(sentence) else 0.0)
            + aspect.position_weight * position / max(1, len(sentences) - 1)
            for row, (position, sentence) in enumerate(candidates)
        ]
        best = int(np.argmax(scores))
        # Every abstract states a problem, an approach and a result somewhere; only the rest may be missing.
        if aspect.cue_required and scores[best] < MIN_ASPECT_SCORE:
            return ""
        used.add(candidates[best][1])
        return _quotable(candidates[best][1])
