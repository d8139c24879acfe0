"""Side-by-side comparison of 2-4 papers: an aligned, cited table and a short narrative.

Each paper is one model call: its abstract in, a JSON object with the five aspects out
(problem, approach, data, results, limitations). A local model is held to the JSON schema by
a llama.cpp grammar, a hosted one by ``response_format`` where it supports it; a reply that is
not such JSON is parsed as far as it goes. One call per paper instead of one per cell reads
each abstract once: on the 1.5B Qwen model on 2 cores, a two-paper comparison took 49 s with a
call per cell (issue 10).

A cell the model leaves empty, repeats, or that the abstract does not support, is filled with
the abstract sentence closest to the aspect, or "not stated in the abstract"; an aspect the
abstract has no words for (most state no limitation) is "not stated" whatever the model wrote.
Every cell cites its paper as [n]. Of the narrative only the sentences the abstracts support
(each paper its own, for a sentence about both) and that cite a paper are kept; when those no
longer compare two papers, the narrative is rebuilt from the papers' own words.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Generator, Sequence

from assistant.citations import cited_numbers, insert, markers_to_sentence_ends, name_paper_markers, strip_markers
from assistant.declines import declined
from assistant.embeddings import EmbedFunction
from assistant.errors import InvalidInput
from assistant.extracts import ASPECTS, Aspect, AspectSentences
from assistant.instructions import instructions_notice, without_instructions
from assistant.llm import LLMBackend
from assistant.prompts import fence_sources, load_prompt
from assistant.schema import Comparison, ComparisonAspect, DateRange, Paper, PaperRef, Source, Usage
from assistant.scrubbing import scrub, strip_echoed_prompt
from assistant.settings import Settings
from assistant.settling import grounded_sentences
from assistant.streaming import Streamed
from assistant.support import check_support
from assistant.text import RESEARCH_WORDS, STOPWORDS, TITLE_HEAD_WORDS, split_sentences, title_head

MIN_PAPERS = 2
MAX_PAPERS = 4
NOT_STATED = "not stated in the abstract"
PAPER_MAX_TOKENS = 200
"""Five values of at most CELL_MAX_CHARS, the keys and the quotes: at most about 190 tokens."""
CELL_MAX_CHARS = 150
"""The prompt asks for at most 15 words (about 100 characters); the cap stops a model that goes on.

Measured with Qwen2.5-Coder 1.5B on three dev comparisons: asked for "one short sentence (at most
20 words)" per aspect, it wrote 62-198 tokens per paper (12.6-37 s at 11 tokens/s), and a
comparison of two papers took 55-65 s.
"""
CELL_MAX_WORDS = 45
NARRATIVE_MAX_TOKENS = 110
"""Two sentences of about 25 words with their markers: about 80 tokens."""


_ANSWER_LABEL = re.compile(r"^\s*(?:answer|a)\s*:\s*", re.IGNORECASE)
# "not stated", "None.", or a sentence saying the abstract leaves it open: the model found nothing.
_NOT_STATED_REPLY = re.compile(
    r"^\W*(?:not\s+stated|not\s+mentioned|none|n/?a|unknown)\b"
    r"|\b(?:is|are|was|were)\s+not\s+(?:specified|stated|mentioned|provided|given|described|reported|discussed|clear)\b",
    re.IGNORECASE,
)


def check_paper_count(papers: Sequence[Paper]) -> None:
    distinct = {paper.paper_id for paper in papers}
    if len(distinct) != len(papers):
        raise InvalidInput("a comparison needs different papers: the same paper was given twice")
    if not MIN_PAPERS <= len(papers) <= MAX_PAPERS:
        raise InvalidInput(f"a comparison takes {MIN_PAPERS} to {MAX_PAPERS} papers, got {len(papers)}")


def _clean_cell(reply: str) -> str:
    """The first sentence of a reply, without labels or citation markers, at most CELL_MAX_WORDS."""
    line = next((line for line in strip_echoed_prompt(reply).splitlines() if line.strip()), "")
    line = strip_markers(_ANSWER_LABEL.sub("", line)).strip().strip("*").strip()
    if not line or _NOT_STATED_REPLY.search(line) or declined(line):
        return ""
    if len(line) >= CELL_MAX_CHARS:  # cut off by the cap: end at a whole word
        line = line[: line.rfind(" ")].rstrip(",;:") + "…" if " " in line else line
    sentences = split_sentences(line)
    first = sentences[0] if sentences else line
    words = first.split()
    return first if len(words) <= CELL_MAX_WORDS else " ".join(words[:CELL_MAX_WORDS]).rstrip(",;:") + "…"


def _grounded_claim(cell: str, abstract: str, embedder: EmbedFunction) -> bool:
    """The cell says something (not only "the abstract does not say") and the abstract supports all of it.

    Checked against its own abstract with the bar of a cited sentence: a cell is about that paper.
    """
    report = check_support(insert(cell, 1), [abstract], embedder)
    return not report.unsupported and any(verdict.kind == "claim" for verdict in report.sentences)


_GENERIC = STOPWORDS | RESEARCH_WORDS


def _two_word_terms(abstract: str) -> Counter[str]:
    """Two-word terms ("task vectors", "parameter blocks") with their counts, function words excluded."""
    words = re.findall(r"[a-z][a-z0-9\-]+", abstract.lower())
    return Counter(
        f"{first} {second}"
        for first, second in itertools.pairwise(words)
        # "edit pre-trained" is a verb and an adjective, not a term: terms end in a noun.
        if not {first, second} & _GENERIC and not second.endswith("ed")
    )


def _ranked(terms: set[str], counts: Sequence[Counter[str]], limit: int) -> list[str]:
    return sorted(terms, key=lambda term: (-sum(count[term] for count in counts), term))[:limit]


def short_title(title: str) -> str:
    """The name before a colon ("ZIP-FIT: ..."), else the first six words and an ellipsis."""
    head = title_head(title)
    return head + ("…" if not title.startswith(f"{head}:") and len(title.split()) > TITLE_HEAD_WORDS else "")


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
    return [Source.of(n, paper) for n, paper in enumerate(papers, start=1)]


ASPECT_KEYS: dict[str, str] = {
    "problem": "Problem",
    "approach": "Approach",
    "data": "Data / benchmarks",
    "results": "Key results",
    "limitations": "Limitations",
}
"""The JSON key of each aspect of :data:`~assistant.extracts.ASPECTS`."""
_KEY_OF = {name: key for key, name in ASPECT_KEYS.items()}


def askable_aspects(abstract: str) -> list[Aspect]:
    """The aspects a model is asked about: those whose cue the abstract has, when one is required.

    Whatever a model wrote about the others would be invented; leaving them out of the reply saved
    8-20 of the 60-200 tokens a 1.5B model wrote per paper.
    """
    return [aspect for aspect in ASPECTS if not aspect.cue_required or aspect.cue.search(abstract)]


def paper_schema(aspects: Sequence[Aspect]) -> dict[str, object]:
    """The JSON schema of one paper's reply: a string per aspect, capped at CELL_MAX_CHARS.

    A local model's grammar enforces the cap; a hosted model treats it as guidance.
    """
    keys = [_KEY_OF[aspect.name] for aspect in aspects]
    by_key = {_KEY_OF[aspect.name]: aspect for aspect in aspects}
    return {
        "type": "object",
        "properties": {
            key: {"type": "string", "maxLength": CELL_MAX_CHARS, "description": by_key[key].question} for key in keys
        },
        "required": keys,
        "additionalProperties": False,
    }


def key_lines(aspects: Sequence[Aspect]) -> str:
    """The prompt's list of keys: each with the question its value answers."""
    return "\n".join(f'- "{_KEY_OF[aspect.name]}": {aspect.question}' for aspect in aspects)


_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_cells(reply: str) -> dict[str, str]:
    """The aspect cells of a model's JSON reply (aspect name -> text); what cannot be read is left out."""
    found = _JSON_OBJECT.search(reply)
    if found is None:
        return {}
    try:
        data = json.loads(found.group(0))
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {name: str(data[key]) for key, name in ASPECT_KEYS.items() if isinstance(data.get(key), str)}


def _paper_cells(
    paper: Paper,
    source: Source,
    *,
    backend: LLMBackend,
    settings: Settings,
    embedder: EmbedFunction,
    extractor: AspectSentences,
) -> tuple[dict[str, str], int, Usage]:
    """One paper's cells (aspect name -> cited text), how many were quoted from the abstract, and the usage."""
    abstract = without_instructions(paper.abstract)
    asked = askable_aspects(abstract)
    prompt = load_prompt("compare_paper", directory=settings.prompts.prompts_dir)
    completion = backend.generate(
        prompt.render(source=fence_sources([(source.n, paper.title, abstract)]), keys=key_lines(asked)),
        max_tokens=PAPER_MAX_TOKENS,
        temperature=settings.llm.temperature,
        json_schema=paper_schema(asked),
    ).result
    written = parse_cells(completion.text)
    cells: dict[str, str] = {}
    used: set[str] = set()
    quoted = 0
    for aspect in ASPECTS:
        if aspect not in asked:
            cells[aspect.name] = NOT_STATED
            continue
        text = _clean_cell(scrub(written.get(aspect.name, ""), [source]).text)
        # A small model often gives every aspect the same sentence: one row's worth is enough.
        repeated = text.casefold() in {cell.casefold() for cell in used}
        if text and (repeated or not _grounded_claim(text, abstract, embedder)):
            text = ""
        if text:
            used.add(text)
        else:
            quoted += 1
            text = extractor.best(abstract, aspect, used)
        cells[aspect.name] = insert(text, source.n) if text else NOT_STATED
    return cells, quoted, completion.usage


def _comparison_steps(
    papers: Sequence[Paper], *, backend: LLMBackend, settings: Settings, embedder: EmbedFunction
) -> Generator[str, None, Comparison]:
    sources = comparison_sources(papers)
    extractor = AspectSentences(embedder)
    usage = Usage()
    cells: dict[str, dict[str, str]] = {aspect.name: {} for aspect in ASPECTS}
    quoted = 0
    for source, paper in zip(sources, papers, strict=True):
        own, own_quoted, own_usage = _paper_cells(
            paper, source, backend=backend, settings=settings, embedder=embedder, extractor=extractor
        )
        for name, text in own.items():
            cells[name][paper.paper_id] = text
        quoted += own_quoted
        usage = usage + own_usage
    aspects = [ComparisonAspect(aspect=name, cells=by_paper) for name, by_paper in cells.items()]
    refs = [PaperRef(paper_id=paper.paper_id, title=paper.title) for paper in papers]
    notices = [notice for notice in [instructions_notice([(p.title, p.abstract) for p in papers])] if notice]
    if quoted:
        notices.append(
            f"{quoted} of {len(ASPECTS) * len(papers)} cells quote the abstract (or say it is not stated) "
            "because the model's answer was missing or not grounded."
        )
    yield table_markdown(refs, aspects) + "\n\n"

    notes = fence_sources(
        [
            (source.n, paper.title, "\n".join(f"{a.aspect}: {strip_markers(a.cells[paper.paper_id])}" for a in aspects))
            for source, paper in zip(sources, papers, strict=True)
        ]
    )
    completion = yield from backend.generate(
        load_prompt("narrative", directory=settings.prompts.prompts_dir).render(sources=notes),
        max_tokens=min(settings.llm.max_answer_tokens, NARRATIVE_MAX_TOKENS),
        temperature=settings.llm.temperature,
    ).relay()
    usage = usage + completion.usage
    names = {source.n: short_title(paper.title) for source, paper in zip(sources, papers, strict=True)}
    written = markers_to_sentence_ends(name_paper_markers(completion.text, names), names)
    kept, dropped = grounded_sentences(written, sources, embedder)
    narrative = " ".join(kept)
    if len(set(cited_numbers(narrative))) < MIN_PAPERS:
        narrative = table_narrative(papers, aspects)
        notices.append(
            "The model's narrative did not compare the papers from their abstracts, so it was rebuilt from the table."
        )
    elif dropped:
        notices.append(
            f"{len(dropped)} sentence(s) of the model's narrative were left out: not grounded in the abstracts."
        )
    return Comparison(
        papers=refs,
        aspects=aspects,
        narrative=narrative,
        unsupported=dropped,
        notices=notices,
        model=completion.model,
        usage=usage,
    )


def stream_comparison(
    papers: Sequence[Paper],
    *,
    backend: LLMBackend,
    settings: Settings,
    embedder: EmbedFunction,
    days: DateRange | None = None,
) -> Streamed[Comparison]:
    """Compare 2-4 papers on problem, approach, data/benchmarks, key results and limitations.

    The table arrives as one piece, then the narrative as the model writes it. ``days``: the days the
    user asked about; papers named but listed on other days are still compared, and the reply says so.
    """
    check_paper_count(papers)
    steps = _comparison_steps(list(papers), backend=backend, settings=settings, embedder=embedder)
    if days is None:
        return Streamed(steps)
    outside = [
        f"“{paper.title}” is listed {paper.day.isoformat() if paper.day else 'on no known day'}, outside the days asked."
        for paper in papers
        if not days.contains(paper.day)
    ]
    return Streamed(steps).then(
        lambda comparison: comparison.model_copy(update={"notices": [*outside, *comparison.notices]})
    )
