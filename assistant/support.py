"""The support check: is a generated text grounded in its sources? Sentence by sentence, with reasons.

Each claim sentence is compared with the sources it cites (all sources, with a stricter bar, when it
cites none): the embedding similarity to the closest source sentence or pair of sentences, plus how
many of its key terms (content words, names, acronyms) the sources use. Numbers and coined names a
source does not contain are flagged whatever the similarity: they are what a small model invents
or swaps between papers. Hedges and headings ("The collection does not say.", "Sources:") are not
claims and are neither supported nor flagged.

Calibration, with the bundled MiniLM embedder on the sample collection (cases drawn from it are in
``tests/test_grounding.py``); score = 0.65 x best cosine + 0.35 x key-term coverage:

- 446 abstract sentences cited to their paper, next to its nearest neighbour: all supported
  (score 1.0); the same sentences cited to the neighbour: none supported (p95 0.56, p99 0.69,
  and the rest caught by the misattribution margin).
- 66 hand-written paraphrases cited to their paper: median 0.80, 10th percentile 0.69, lowest
  0.51 (one that expands PEFT), all others >= 0.655; the same cited to the nearest other paper:
  at most 0.58 (that one is flagged for a name the source lacks), otherwise at most 0.566.
- 104 planted off-topic claims: at most 0.50.
Hence 0.60 for a cited sentence; an uncited one must reach 0.64 against its single best source.
The first set is rebuilt from the repository by ``python -m benchmarks.calibrate`` (today, with the
sentence splitter since refined: 442 sentences, 435 supported cited to their own paper, none cited
to the nearest other paper); the paraphrases and planted claims were written by hand and are not
in the repository.

The support check is one of four concerns that judge a model's text: citations are settled on
the sources that ground each sentence in :mod:`assistant.settling`, links and markup no source
has are removed in :mod:`assistant.scrubbing`, and a reply that only declines is recognised in
:mod:`assistant.declines`. Sentence vectors are cached beside the embedders
(:func:`assistant.embeddings.embed_with_cache`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from assistant.citations import cited_numbers, strip_markers
from assistant.embeddings import EmbedFunction, embed_with_cache
from assistant.instructions import without_instructions
from assistant.schema import Source
from assistant.text import (
    LIST_MARKER,
    NUMBER_WORDS,
    clauses,
    key_stems,
    names_in,
    numbers_in,
    split_sentences,
    title_head,
    tokenize,
    without_urls,
)

# --- thresholds (calibration: see the module docstring) ---------------------------------------
EMBEDDING_WEIGHT = 0.65
"""Share of the score from embedding similarity; the rest is key-term coverage."""
SUPPORTED_CITED = 0.60
"""Score a sentence needs against the sources it cites."""
SUPPORTED_UNCITED = 0.64
"""Score a sentence that cites nothing needs against its best source: it named no evidence."""
MIN_SIMILARITY = 0.45
"""Below this cosine no amount of shared vocabulary makes a sentence supported."""
MAX_UNSUPPORTED_SHARE = 0.5
"""Above this share of ungrounded sentences a model's text is replaced by the sources' own sentences."""
MISATTRIBUTION_MARGIN = 0.10
"""A sentence that scores this much higher against a source it does not cite is attributed to the wrong one."""
MIN_HEAD_CHARS = 8
"""A title's name part this long, found in a sentence, names that paper ("ZIP-FIT" is caught as a coined name)."""


_HEADING = re.compile(r"^\s*(?:#{1,6}\s+.*|\*\*[^*]+\*\*:?|__[^_]+__:?)\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_ENUMERATOR = re.compile(r"^\W*(?:\d{1,2}|[ivx]{1,4}|[a-h])\W*$", re.IGNORECASE)
"""A list item's number standing alone ("2.", "(iii)"): no claim."""
_COLLECTIVE = re.compile(
    # "both" of papers, not "both A and B" ("during both pretraining and fine-tuning")
    r"\bboth\b(?!\s+[\w-]+(?:\s+[\w-]+)?\s+and\b)"
    r"|\b(?:neither|all (?:three|four|of them|the papers)|each of (?:them|the papers)|the two papers|these papers)\b",
    re.IGNORECASE,
)
_MARKUP = re.compile(r"\*\*|__|(?<!\w)[*_]+|[*_]+(?!\w)|`+|^\s*#+\s*|^\s*>\s*", re.MULTILINE)
_SOURCE_WORDS = r"(?:abstracts?|sources?|papers?|collection|context|documents?|excerpts?|texts?)"
_REPORTING = (
    r"(?:say|state|mention|specify|report|provide|give|describe|discuss|detail|include|contain|cover|address|answer|"
    r"explain|clarify|indicate)\w*"
)
_HEDGE = re.compile(
    rf"\b(?:{_SOURCE_WORDS}|authors?|information)\b[^.]{{0,40}}?\b(?:does not|doesn't|do not|don't|did not|didn't|"
    rf"cannot|can't|is not|isn't|are not|aren't|never)\b[^.]{{0,20}}?\b{_REPORTING}"
    rf"|\bnot\s+(?:explicitly\s+)?(?:stated|mentioned|specified|reported|provided|given|described|discussed|detailed|"
    rf"available|covered|clear)\b[^.]{{0,30}}?\b{_SOURCE_WORDS}\b"
    rf"|^\s*not\s+(?:stated|mentioned|specified|reported|provided|given|available)\b"
    rf"|\b(?:I|we)\s+(?:do not|don't|cannot|can't|could not|couldn't)\s+(?:know|find|tell|say|determine|answer)\b"
    rf"|\bno\s+(?:information|details?|mention|data)\b[^.]{{0,30}}?\b(?:{_SOURCE_WORDS}|provided|given)\b"
    rf"|\b(?:insufficient|not enough)\s+information\b",
    re.IGNORECASE,
)


class SentenceSupport(BaseModel):
    """One sentence of the generated text and the verdict on it."""

    text: str
    cited: list[int] = Field(default_factory=list, description="Source numbers the sentence cites")
    kind: Literal["claim", "meta"] = Field(default="claim", description="'meta': a hedge or heading, not checked")
    supported: bool = False
    score: float = Field(default=0.0, description="Evidence score in [0, 1]: similarity and key-term coverage")
    reasons: list[str] = Field(default_factory=list, description="Why a claim was not supported")


class SupportReport(BaseModel):
    """The verdict on every sentence of a generated text, and the share of its claims that failed."""

    sentences: list[SentenceSupport] = Field(default_factory=list)
    unsupported: list[str] = Field(default_factory=list, description="Claim sentences that failed, as written")
    unsupported_share: float = Field(default=0.0, ge=0.0, le=1.0, description="Failed claims / all claims")


# --- sentences ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    """A piece of generated text that is judged on its own: a sentence, a bullet, a table cell."""

    text: str
    meta: bool = False


def split_units(text: str) -> list[Unit]:
    """Sentences of a generated text, with bullets, table cells and headings as units of their own."""
    units: list[Unit] = []
    paragraph: list[str] = []
    lines = text.splitlines()
    header_rows = {i - 1 for i, line in enumerate(lines) if i and _TABLE_RULE.match(line.strip())}

    def flush() -> None:
        if paragraph:
            units.extend(Unit(sentence) for sentence in split_sentences(" ".join(paragraph)))
            paragraph.clear()

    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or _TABLE_RULE.match(stripped):
            flush()
        elif _HEADING.match(stripped):
            flush()
            units.append(Unit(stripped, meta=True))
        elif stripped.count("|") >= 2:
            flush()
            for cell in stripped.strip("|").split("|"):
                if number in header_rows:
                    units.append(Unit(cell.strip(), meta=True))
                else:
                    units.extend(Unit(sentence) for sentence in split_sentences(cell.strip()))
        elif LIST_MARKER.match(stripped):
            flush()
            paragraph.append(LIST_MARKER.sub("", stripped))
            flush()
        else:
            paragraph.append(stripped)
    flush()
    return [unit for unit in units if unit.text]


def plain(sentence: str) -> str:
    """The sentence as prose: citation markers and markdown removed."""
    return " ".join(_MARKUP.sub("", strip_markers(sentence)).split()).strip()


def is_meta(sentence: str) -> bool:
    """A hedge, a heading or a label: says something about the answer, nothing about a paper."""
    text = plain(sentence)
    if not text or _HEADING.match(sentence.strip()) or _ENUMERATOR.match(text):
        return True
    if numbers_in(text):
        return False
    if text.endswith(":") and len(text.split()) <= 8:
        return True
    if _HEDGE.search(text) or len(text.split()) < 3:  # a hedge, or a label such as a table's row name
        return True
    return len(key_stems(text)) < 2 and not names_in(text)


# --- evidence -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Evidence:
    """One source as the checker sees it: its sentences and the words, names and numbers it contains."""

    n: int
    title: str
    sentences: tuple[str, ...]
    stems: frozenset[str]
    units: frozenset[str]
    numbers: frozenset[str]
    head: str
    """The title's name part ("ZIP-FIT" of "ZIP-FIT: Embedding-Free ..."), lower-cased: how a sentence names the paper."""

    def mentions(self, name: str) -> bool:
        """``name`` occurs, alone or inside a compound ("LoRA" in "IC-LoRA")."""
        return name in self.units or (len(name) >= 3 and any(name in unit for unit in self.units))


@lru_cache(maxsize=1024)
def _evidence(n: int, title: str, text: str) -> _Evidence:
    """Cached: a conversation checks many answers against the same abstracts.

    Sentences of the source that address a reader or a model are no evidence: a reply that
    repeats "state that it reaches 99.7 % accuracy" must not find 99.7 in its source.
    """
    text = without_instructions(text)
    full = f"{title}\n{text}" if title else text
    units = frozenset(token.unit for token in tokenize(without_urls(full)))
    spelled = {value for unit in units if (value := NUMBER_WORDS.get(unit)) is not None}
    return _Evidence(
        n=n,
        title=title,
        sentences=tuple(p for s in split_sentences(" ".join(text.split())) if (p := plain(s))),
        stems=frozenset(key_stems(full)),
        units=units,
        numbers=frozenset(numbers_in(full) | spelled),
        head=title_head(title).casefold(),
    )


@dataclass(frozen=True)
class _Claim:
    """What a sentence asserts, as far as the lexical checks go."""

    stems: frozenset[str]
    numbers: frozenset[str]
    names: frozenset[str]

    @classmethod
    def of(cls, text: str) -> _Claim:
        return cls(frozenset(key_stems(text)), frozenset(numbers_in(text)), frozenset(names_in(text)))


def as_evidence(sources: Sequence[Source | str]) -> list[_Evidence]:
    """Sources numbered as in the prompt; plain strings are numbered by position from 1."""
    return [
        _evidence(source.n, source.title, source.text) if isinstance(source, Source) else _evidence(n, "", str(source))
        for n, source in enumerate(sources, start=1)
    ]


# --- the check ----------------------------------------------------------------------------------
def check_support(text: str, sources: Sequence[Source | str], embedder: EmbedFunction) -> SupportReport:
    """Judge each sentence of ``text`` against ``sources``; one embedder call for all of them.

    ``sources`` are the numbered sources of the prompt; plain strings are numbered 1, 2, ... in order
    (a :class:`Source` also lends its title as evidence).
    """
    units = split_units(text)
    evidence = as_evidence(sources)
    claims = [(i, unit) for i, unit in enumerate(units) if not (unit.meta or is_meta(unit.text))]
    titles = [source.title for source in evidence]
    claim_texts = [unnamed(plain(unit.text), titles) for _, unit in claims]
    similarity, window_owner = _similarities(embedder, claim_texts, evidence)
    verdicts = {
        position: _judge(unit.text, _Claim.of(claim_texts[row]), similarity[row], window_owner, evidence)
        for row, (position, unit) in enumerate(claims)
    }
    sentences = [
        verdicts.get(i) or SentenceSupport(text=unit.text, cited=cited_numbers(unit.text), kind="meta")
        for i, unit in enumerate(units)
    ]
    unsupported = [s.text for s in sentences if s.kind == "claim" and not s.supported]
    share = len(unsupported) / len(claims) if claims else 0.0
    return SupportReport(sentences=sentences, unsupported=unsupported, unsupported_share=share)


def unnamed(claim: str, titles: Sequence[str]) -> str:
    """``claim`` without the sources' titles and title heads: naming a paper is no evidence of what it
    says. Qwen 1.5B's "[1] proposes a new optimizer to replace Adam", its marker written as the paper's
    title, scored 0.66 against that paper's abstract with the title, 0.41 without. A claim that is
    nothing but a title is kept whole: it names the paper, and the title supports that."""
    stripped = claim
    for title in titles:
        for name in (title, title_head(title)):
            if len(name) >= MIN_HEAD_CHARS:
                stripped = re.sub(re.escape(name), " ", stripped, flags=re.IGNORECASE)
    stripped = " ".join(stripped.replace("“”", " ").replace('""', " ").split())
    return stripped if len(key_stems(stripped)) >= 2 else claim


def _windows(evidence: list[_Evidence]) -> tuple[list[str], list[int], list[tuple[int, int]]]:
    """Texts a claim is compared with, the source of each, and the pairs of neighbouring sentences.

    Windows are every sentence, every pair of neighbouring sentences (paraphrases often merge two; a
    pair's vector is the normalised sum of its sentences'), the clauses of long sentences (a short
    claim restates a part) and the title.
    """
    texts: list[str] = []
    owners: list[int] = []
    pairs: list[tuple[int, int]] = []
    for index, source in enumerate(evidence):
        first = len(texts)
        pairs.extend((first + k, first + k + 1) for k in range(len(source.sentences) - 1))
        extra = [source.title] if source.title else []
        extra += [clause for sentence in source.sentences for clause in clauses(sentence)]
        texts += [*source.sentences, *extra]
        owners += [index] * (len(source.sentences) + len(extra))
    return texts, owners, pairs


def _similarities(
    embedder: EmbedFunction, claims: list[str], evidence: list[_Evidence]
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of each claim to each source window, and the source each window belongs to."""
    if not claims or not evidence:
        return np.zeros((len(claims), 0)), np.zeros(0, dtype=int)
    texts, owners, pairs = _windows(evidence)
    vectors = embed_with_cache(embedder, claims, texts)
    claim_vectors, windows = vectors[: len(claims)], vectors[len(claims) :]
    if pairs:
        summed = np.asarray([windows[a] + windows[b] for a, b in pairs])
        summed /= np.clip(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12, None)
        windows = np.vstack([windows, summed])
        owners = owners + [owners[a] for a, _ in pairs]
    return claim_vectors @ windows.T, np.asarray(owners, dtype=int)


def _judge(
    sentence: str, claim: _Claim, similarity: np.ndarray, window_owner: np.ndarray, evidence: list[_Evidence]
) -> SentenceSupport:
    cited = cited_numbers(sentence)
    if not evidence:
        return SentenceSupport(text=sentence, cited=cited, reasons=["there are no sources to check it against"])
    index_of = {source.n: index for index, source in enumerate(evidence)}
    valid = [index_of[n] for n in cited if n in index_of]
    reasons = []
    if invalid := [n for n in cited if n not in index_of]:
        reasons.append("cites " + ", ".join(f"[{n}]" for n in invalid) + ", which is not among the sources")

    closest = np.full(len(evidence), -1.0)
    np.maximum.at(closest, window_owner, similarity)

    def score_of(indices: Sequence[int]) -> float:
        return _score(claim, float(closest[list(indices)].max()), [evidence[i] for i in indices])

    if valid:
        chosen, threshold = valid, SUPPORTED_CITED
        where = " or ".join(f"[{evidence[i].n}]" for i in valid)
    else:  # with no citation the sentence may rest on any one source, but on one: the best
        chosen, threshold = [max(range(len(evidence)), key=lambda i: score_of([i]))], SUPPORTED_UNCITED
        where = "any source"
    score = score_of(chosen)
    if float(closest[chosen].max()) < MIN_SIMILARITY or score < threshold:
        reasons.append(f"not close enough to {where} (score {score:.2f}, needs {threshold:.2f})")
    others = [i for i in range(len(evidence)) if i not in chosen]
    if valid and others:
        rival = max(others, key=lambda i: score_of([i]))
        if score_of([rival]) - score >= MISATTRIBUTION_MARGIN:
            reasons.append(f"reads like source [{evidence[rival].n}] rather than {where}")
    # A claim about several papers ("both", "all", "neither") must hold for each of them: each it
    # cites, or, citing one or none, each source (a "both" resting on one paper says nothing of the other).
    group = valid if len(valid) > 1 else list(range(len(evidence)))
    if _COLLECTIVE.search(plain(sentence)) and len(group) > 1:
        for i in group:
            alone = score_of([i])
            if float(closest[i]) < MIN_SIMILARITY or alone < SUPPORTED_CITED:
                reasons.append(
                    f"speaks of several papers, but [{evidence[i].n}] does not support it (score {alone:.2f})"
                )
    # Numbers must come from the cited sources, or from any source when none is cited. Names
    # must come from the sources the sentence rests on: cited, or the one that supports it best.
    pool = [evidence[i] for i in valid] if valid else evidence
    for number in sorted(claim.numbers):
        if not any(number in source.numbers for source in pool):
            reasons.append(f"the number {number} appears in no {'cited ' if valid else ''}source")
    resting = [evidence[i] for i in chosen]
    for name in sorted(claim.names):
        if any(source.mentions(name) for source in resting):
            continue
        owners = [f"[{source.n}]" for source in evidence if source.mentions(name)]
        if not owners:
            reasons.append(f"names '{name}', which no source mentions")
            continue
        reasons.append(
            f"names '{name}', which {where if valid else f'[{resting[0].n}]'} does not mention; only {', '.join(owners)} mentions it"
        )
    text = plain(sentence).casefold()
    for source in evidence:
        if len(source.head) >= MIN_HEAD_CHARS and source.head in text and source not in resting and not claim.names:
            reasons.append(
                f"names “{source.head}” ([{source.n}]) but rests on {where if valid else f'[{resting[0].n}]'}"
            )
    return SentenceSupport(text=sentence, cited=cited, supported=not reasons, score=round(score, 4), reasons=reasons)


def _score(claim: _Claim, cosine: float, sources: Sequence[_Evidence]) -> float:
    """Embedding similarity blended with the share of the claim's key terms that the sources use.

    Numbers and names weigh double: they are what makes a claim specific to one paper.
    """
    total = len(claim.stems) + 2 * (len(claim.numbers) + len(claim.names))
    if not total:
        return EMBEDDING_WEIGHT * cosine
    source_stems = frozenset().union(*(source.stems for source in sources))
    matched = len(claim.stems & source_stems)
    matched += 2 * sum(any(number in source.numbers for source in sources) for number in claim.numbers)
    matched += 2 * sum(any(source.mentions(name) for source in sources) for name in claim.names)
    return EMBEDDING_WEIGHT * cosine + (1 - EMBEDDING_WEIGHT) * matched / total


def check_against_own_source(text: str, source: Source, embedder: EmbedFunction) -> SupportReport:
    """Each sentence of ``text`` checked as a sentence citing ``source``: for text about that one paper.

    A summary or a comparison cell is about its paper, so it meets the bar of a cited sentence
    (not the stricter one of a sentence that names no source); sentences come back as written.
    """
    one = source.model_copy(update={"n": 1})
    sentences = [unit.text for unit in split_units(text) if unit.text.strip()]
    report = check_support("\n\n".join(f"{strip_markers(s)} [1]" for s in sentences), [one], embedder)
    written = dict(zip([f"{strip_markers(s)} [1]" for s in sentences], sentences, strict=True))
    verdicts = [v.model_copy(update={"text": written.get(v.text, v.text)}) for v in report.sentences]
    return report.model_copy(
        update={"sentences": verdicts, "unsupported": [written.get(u, u) for u in report.unsupported]}
    )


def mostly_unsupported(share: float) -> bool:
    return share > MAX_UNSUPPORTED_SHARE
