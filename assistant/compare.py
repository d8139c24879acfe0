"""Side-by-side comparison of 2-4 papers: an aligned, cited table and a short narrative.

A small model cannot fill a whole table reliably in one go, so every cell is its own
short question about one whole abstract ("What problem does this paper address?"). A
cell the model leaves empty, or that the abstract does not support, is filled with the
abstract sentence closest to the aspect, or "not stated in the abstract". Every cell
cites its paper as [n]. Of the narrative only the sentences the abstracts support and
that cite a paper are kept; when those no longer compare two papers, the narrative is
rebuilt from the papers' own words.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np

from assistant.backend import LLMBackend
from assistant.embeddings import Embedder, build_embedder
from assistant.models import Comparison, ComparisonAspect, Paper, PaperRef, Source, Usage
from assistant.prompts import fence_sources, load_prompt
from assistant.qa import Streamed, cited, grounded_sentences, says_not_covered, source_of, strip_echoed_prompt
from assistant.settings import Settings
from assistant.summarize import word_count
from assistant.support import check_support, split_sentences

MIN_PAPERS = 2
MAX_PAPERS = 4
NOT_STATED = "not stated in the abstract"
CELL_MAX_TOKENS = 60
CELL_MAX_WORDS = 45
NARRATIVE_MAX_TOKENS = 180
# Below this score no abstract sentence is taken as an aspect's answer.
MIN_ASPECT_SCORE = 0.15
CUE_BONUS = 0.15


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
    re.compile(r"\bwe (?:propose|introduce|present|develop|design|devise)|\b(?:this paper|this work|our (?:method|approach|framework))\b", re.I),
)
ASPECTS: tuple[Aspect, ...] = (
    Aspect(
        "Problem",
        "What problem does this paper address?",
        "the problem, challenge or open question that existing methods fail to solve",
        re.compile(r"\bchalleng|\bproblem|\bhowever\b|\blimited\b|\black|\bstruggl|\bfail|\bremains?\b|\bquestion|\bissue|\bdifficult|\bcostly|\bexpensive", re.I),
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
        re.compile(r"\boutperform|\bimprov|\bachiev|\bstate-of-the-art|\bsurpass|\d+(?:\.\d+)?\s*%|\bgains?\b|\bshow that|\bdemonstrat|\bresults? (?:show|indicate|suggest)", re.I),
        position_weight=0.15,
    ),
    Aspect(
        "Limitations",
        "What limitation or open problem does the abstract mention?",
        "a limitation: the method fails, remains costly or is limited",
        re.compile(r"\blimitation|\bfails?\b|\bfailure|\bcostly|\bexpensive|\bstruggl|\bcannot\b|\bdrawback|\bfuture work|\bweakness|\bopen (?:problem|question)", re.I),
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

_ANSWER_LABEL = re.compile(r"^\s*(?:answer|a)\s*:\s*", re.IGNORECASE)
# "not stated", "None.", or a sentence saying the abstract leaves it open: the model found nothing.
_NOT_STATED_REPLY = re.compile(
    r"^\W*(?:not\s+stated|not\s+mentioned|none|n/?a|unknown)\b"
    r"|\b(?:is|are|was|were)\s+not\s+(?:specified|stated|mentioned|provided|given|described|reported|discussed|clear)\b",
    re.IGNORECASE,
)
_MARKER = re.compile(r"\s*\[[^\]]*\]")


def check_paper_count(papers: Sequence[Paper]) -> None:
    distinct = {paper.paper_id for paper in papers}
    if len(distinct) != len(papers):
        raise ValueError("a comparison needs different papers: the same paper was given twice")
    if not MIN_PAPERS <= len(papers) <= MAX_PAPERS:
        raise ValueError(f"a comparison takes {MIN_PAPERS} to {MAX_PAPERS} papers, got {len(papers)}")


def _clean_cell(reply: str) -> str:
    """The first sentence of a reply, without labels or citation markers, at most CELL_MAX_WORDS."""
    line = next((line for line in strip_echoed_prompt(reply).splitlines() if line.strip()), "")
    line = _MARKER.sub("", _ANSWER_LABEL.sub("", line)).strip().strip("*").strip()
    if not line or _NOT_STATED_REPLY.search(line) or says_not_covered(line, has_citations=False):
        return ""
    sentences = split_sentences(line)
    first = sentences[0] if sentences else line
    words = first.split()
    return first if len(words) <= CELL_MAX_WORDS else " ".join(words[:CELL_MAX_WORDS]).rstrip(",;:") + "…"


def _grounded_claim(cell: str, paper: Paper, embedder: Embedder) -> bool:
    """The cell says something (not only "the abstract does not say") and the abstract supports all of it."""
    report = check_support(cell, [paper.abstract], embedder)
    return not report.unsupported and any(verdict.kind == "claim" for verdict in report.sentences)


def _quotable(sentence: str) -> str:
    """An abstract sentence as a cell: opener dropped, at most CELL_MAX_WORDS."""
    text = _OPENER.sub("", sentence.strip())
    text = text[:1].upper() + text[1:]
    words = text.split()
    return text if len(words) <= CELL_MAX_WORDS else " ".join(words[:CELL_MAX_WORDS]).rstrip(",;:") + "…"


class AspectSentences:
    """Picks the abstract sentence that best answers an aspect, never one already in ``used``."""

    def __init__(self, embedder: Embedder) -> None:
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
        similarity = np.asarray(self._embedder([sentence for _, sentence in candidates])) @ self._aspect_vectors[aspect.name]
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


_GENERIC = frozenset(
    "a an the of for and or in on to with via by from at as is are be we our this that these those it its their which "
    "can also both such more than show shows paper propose proposed method methods approach results new based using "
    "while however has have not only how what when where into over under between".split()
)


def _two_word_terms(abstract: str) -> Counter[str]:
    """Two-word terms ("task vectors", "parameter blocks") with their counts, function words excluded."""
    words = re.findall(r"[a-z][a-z0-9\-]+", abstract.lower())
    return Counter(
        f"{first} {second}"
        for first, second in zip(words, words[1:], strict=False)
        # "edit pre-trained" is a verb and an adjective, not a term: terms end in a noun.
        if first not in _GENERIC and second not in _GENERIC and not second.endswith("ed")
    )


def _ranked(terms: set[str], counts: Sequence[Counter[str]], limit: int) -> list[str]:
    return sorted(terms, key=lambda term: (-sum(count[term] for count in counts), term))[:limit]


def short_title(title: str) -> str:
    """The name before a colon ("ZIP-FIT: ..."), else the first six words."""
    head = title.split(":", 1)[0].strip()
    if head != title.strip() and word_count(head) <= 6:
        return head
    words = title.split()
    return " ".join(words[:6]) + ("…" if len(words) > 6 else "")


def table_narrative(papers: Sequence[Paper], aspects: Sequence[ComparisonAspect]) -> str:
    """A narrative made of the papers' own words, for when the model's is not grounded.

    Common ground is the two-word terms every abstract uses; differences are each paper's
    most frequent terms that no other abstract uses, or else the table's approach row.
    """
    counts = [_two_word_terms(paper.abstract) for paper in papers]
    sentences = []
    shared = _ranked(set.intersection(*(set(count) for count in counts)), counts, 3)
    if shared:
        everyone = "both" if len(papers) == 2 else "all of them"
        cited_all = "".join(f"[{n}]" for n in range(1, len(papers) + 1))
        sentences.append(f"Common ground: {everyone} deal with {' and '.join(shared)} {cited_all}.")
    distinct = []
    for index, (paper, count) in enumerate(zip(papers, counts, strict=True)):
        others = set().union(*(set(other) for i, other in enumerate(counts) if i != index))
        own = _ranked({term for term in count if term not in others and count[term] > 1}, [count], 2)
        if own:
            distinct.append(f"{short_title(paper.title)} [{index + 1}] centres on {' and '.join(own)}")
    if len(distinct) == len(papers):
        sentences.append("Where they differ: " + "; ".join(distinct) + ".")
    else:
        approach = next(aspect for aspect in aspects if aspect.aspect == "Approach")
        sentences.append(
            "They differ in approach: "
            + " ".join(f"{short_title(p.title)}: {approach.cells[p.paper_id]}" for p in papers)
        )
    return " ".join(sentences)


def _cell_markdown(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def table_markdown(papers: Sequence[PaperRef], aspects: Sequence[ComparisonAspect]) -> str:
    """The table alone: one row per aspect, one column per paper, headed by its short title and [n]."""
    header = " | ".join(f"{_cell_markdown(short_title(p.title))} [{n}]" for n, p in enumerate(papers, start=1))
    lines = [f"| Aspect | {header} |", "|---" * (len(papers) + 1) + "|"]
    for aspect in aspects:
        cells = " | ".join(_cell_markdown(aspect.cells.get(p.paper_id, NOT_STATED)) for p in papers)
        lines.append(f"| **{aspect.aspect}** | {cells} |")
    return "\n".join(lines)


def comparison_markdown(comparison: Comparison) -> str:
    """The table, then the narrative; the papers' full titles are its sources [n]."""
    return f"{table_markdown(comparison.papers, comparison.aspects)}\n\n{comparison.narrative}"


def comparison_sources(papers: Sequence[Paper]) -> list[Source]:
    """Each paper's whole abstract as source [n], in the order given: what the cells cite."""
    return [source_of(n, paper) for n, paper in enumerate(papers, start=1)]


def _comparison_steps(
    papers: Sequence[Paper], *, backend: LLMBackend, settings: Settings, embedder: Embedder
) -> Generator[str, None, Comparison]:
    sources = comparison_sources(papers)
    cell_prompt = load_prompt("compare_cell")
    extractor = AspectSentences(embedder)
    usage = Usage()
    cells: dict[str, dict[str, str]] = {aspect.name: {} for aspect in ASPECTS}
    quoted = 0
    # Paper by paper, so a local model reuses the abstract's prefix from one question to the next.
    for source, paper in zip(sources, papers, strict=True):
        fenced = fence_sources([(source.n, paper.title, paper.abstract)])
        used: set[str] = set()
        for aspect in ASPECTS:
            if aspect.cue_required and not aspect.cue.search(paper.abstract):
                # Nothing in the abstract speaks to it: whatever a model wrote would be invented.
                cells[aspect.name][paper.paper_id] = NOT_STATED
                continue
            generation = backend.generate(
                cell_prompt.render(source=fenced, question=aspect.question),
                max_tokens=CELL_MAX_TOKENS,
                temperature=settings.temperature,
            )
            text = _clean_cell(generation.text)
            usage = usage + generation.usage
            # A small model often gives every aspect the same sentence: one row's worth is enough.
            repeated = text.casefold() in {cell.casefold() for cell in used}
            if text and (repeated or not _grounded_claim(text, paper, embedder)):
                text = ""
            if text:
                used.add(text)
            else:
                quoted += 1
                text = extractor.best(paper.abstract, aspect, used)
            cells[aspect.name][paper.paper_id] = cited(text, source.n) if text else NOT_STATED
    aspects = [ComparisonAspect(aspect=name, cells=by_paper) for name, by_paper in cells.items()]
    refs = [PaperRef(paper_id=paper.paper_id, title=paper.title) for paper in papers]
    notices = []
    if quoted:
        notices.append(
            f"{quoted} of {len(ASPECTS) * len(papers)} cells quote the abstract (or say it is not stated) "
            "because the model's answer was missing or not grounded."
        )
    yield table_markdown(refs, aspects) + "\n\n"

    notes = fence_sources(
        [
            (source.n, paper.title, "\n".join(f"{a.aspect}: {_MARKER.sub('', a.cells[paper.paper_id])}" for a in aspects))
            for source, paper in zip(sources, papers, strict=True)
        ]
    )
    generation = backend.generate(
        load_prompt("narrative").render(sources=notes),
        max_tokens=min(settings.max_answer_tokens, NARRATIVE_MAX_TOKENS),
        temperature=settings.temperature,
    )
    yield from generation
    usage = usage + generation.usage
    kept, dropped = grounded_sentences(generation.text, sources, embedder)
    narrative = " ".join(kept)
    if len(set(re.findall(r"\[(\d+)\]", narrative))) < 2:
        narrative = table_narrative(papers, aspects)
        notices.append("The model's narrative did not compare the papers from their abstracts, so it was rebuilt from the table.")
    elif dropped:
        notices.append(f"{dropped} sentence(s) of the model's narrative were left out: not grounded in the abstracts.")
    return Comparison(
        papers=refs,
        aspects=aspects,
        narrative=narrative,
        notices=notices,
        model=generation.model,
        usage=usage,
    )


def stream_comparison(
    papers: Sequence[Paper],
    *,
    backend: LLMBackend | None = None,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
) -> Streamed[Comparison]:
    """Like :func:`compare`; the table arrives as one piece, then the narrative as the model writes it."""
    check_paper_count(papers)
    settings = settings or Settings()
    if backend is None:
        from assistant.llm import build_backend

        backend = build_backend(settings)
    return Streamed(
        _comparison_steps(list(papers), backend=backend, settings=settings, embedder=embedder or build_embedder(settings))
    )


def compare(
    papers: Sequence[Paper],
    *,
    backend: LLMBackend | None = None,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
) -> Comparison:
    """Compare 2-4 papers on problem, approach, data/benchmarks, key results and limitations."""
    return stream_comparison(papers, backend=backend, settings=settings, embedder=embedder).result
