"""Is a generated text grounded in its sources? Sentence by sentence, with reasons.

Each claim sentence is compared with the sources it cites (all sources, with a stricter bar, when it
cites none): the embedding similarity to the closest source sentence or pair of sentences, plus how
many of its key terms (content words, names, acronyms) the sources use. Numbers and coined names a
source does not contain are flagged whatever the similarity: they are what a small model invents
or swaps between papers. Hedges and headings ("The collection does not say.", "Sources:") are not
claims and are neither supported nor flagged.

Calibration, with the bundled MiniLM embedder on the sample collection (the cases are in
``tests/test_support.py``); score = 0.65 x best cosine + 0.35 x key-term coverage:

- 446 abstract sentences cited to their paper, next to its nearest neighbour: all supported
  (score 1.0); the same sentences cited to the neighbour: none supported (p95 0.56, p99 0.69,
  and the rest caught by the misattribution margin).
- 66 hand-written paraphrases cited to their paper: median 0.80, 10th percentile 0.69, lowest
  0.51 (one that expands PEFT), all others >= 0.655; the same cited to the nearest other paper:
  at most 0.58 (that one is flagged for a name the source lacks), otherwise at most 0.566.
- 104 planted off-topic claims: at most 0.50.
Hence 0.60 for a cited sentence; an uncited one must reach 0.64 against its single best source.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from assistant.citations import cited_numbers, settle, strip_markers, validate
from assistant.embeddings import EmbedFunction
from assistant.instructions import without_instructions
from assistant.schema import Citation, Source
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
NOT_COVERED = "NOT COVERED"
"""The phrase the prompts ask a model to write when its sources do not answer."""
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


def _embed(embedder: EmbedFunction, texts: Sequence[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    vectors = np.asarray(embedder(list(texts)), dtype=np.float32)
    return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)


SOURCE_CACHE_SIZE = 20_000
"""Source sentences remembered per embedder: a conversation keeps citing the same abstracts."""
_source_vectors: weakref.WeakKeyDictionary[object, OrderedDict[str, np.ndarray]] = weakref.WeakKeyDictionary()
_source_lock = threading.Lock()


def embed_with_cache(embedder: EmbedFunction, fresh: Sequence[str], sources: Sequence[str]) -> np.ndarray:
    """Vectors of ``fresh`` then ``sources`` in at most one embedder call.

    Source sentences are remembered per embedder, so a conversation citing the same abstracts embeds
    only its new sentences; a fresh text equal to a remembered one (a copied sentence) is reused too.
    """
    try:
        with _source_lock:
            cache = _source_vectors.setdefault(embedder, OrderedDict())
    except TypeError:  # an embedder that cannot be weakly referenced is not cached
        cache = OrderedDict()
    wanted = list(dict.fromkeys([*fresh, *sources]))
    with _source_lock:
        known = {text: cache[text] for text in wanted if text in cache}
    missing = [text for text in wanted if text not in known]
    known.update(zip(missing, _embed(embedder, missing), strict=True))
    with _source_lock:
        for text in dict.fromkeys(sources):
            cache[text] = known[text]
            cache.move_to_end(text)
        while len(cache) > SOURCE_CACHE_SIZE:
            cache.popitem(last=False)
    return np.asarray([known[text] for text in [*fresh, *sources]], dtype=np.float32)


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


# --- citations, settled by the check -------------------------------------------------------------
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


_REFUSAL_SENTENCE = re.compile(
    r"^\W*(?:not\s+covered|(?:the\s+)?(?:collection|sources?|excerpts?|abstracts?|papers?|context|texts?)\s+"
    r"(?:do|does|did)(?:\s+not|n['’]t)\s+(?:answer|cover|mention|say|contain|provide|state|discuss|address|report"
    r"|specify|include)\b[^.]*|no\s+(?:relevant\s+)?information\b[^.]*|(?:this|the)\s+question\s+cannot\s+be\s+"
    r"answered\b[^.]*|I\s+(?:do\s+not|don['’]t)\s+know\b[^.]*)\W*$",
    re.IGNORECASE,
)
_NOT_COVERED_LINE = re.compile(rf"^\W*{NOT_COVERED}\W*$", re.IGNORECASE | re.MULTILINE)


def declined(text: str) -> bool:
    """The model's whole reply declines: NOT COVERED, or only sentences saying the sources do not answer.

    Never a phrase inside an answer: "regions not covered by gradient descent [1]" is an answer.
    """
    sentences = [sentence for sentence in split_sentences(" ".join(text.split())) if sentence.strip()]
    return bool(sentences) and all(_REFUSAL_SENTENCE.match(strip_markers(sentence)) for sentence in sentences)


def without_decline(text: str) -> str:
    """A reply that answers and then also writes NOT COVERED, without that line: the answer stands."""
    return _NOT_COVERED_LINE.sub("", text).strip()


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
