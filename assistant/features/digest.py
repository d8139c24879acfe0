"""The day's digest: papers grouped into themes, each theme named and given one cited paragraph.

Themes come from clustering the papers' vectors, so every paper lands in exactly one.
The model names each theme (the theme's top keywords when its name is unusable) and
writes a paragraph citing the theme's papers as [n], where n is the paper's position in
the theme's ``paper_ids``. Only its sentences that the papers support and that cite one
are kept; a paragraph mostly ungrounded is replaced by each paper's own sentence on
what it does ("we introduce ...").
"""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence

from assistant.budget import context_budget, pack_context
from assistant.citations import insert
from assistant.embeddings import EmbedFunction
from assistant.extracts import APPROACH, AspectSentences
from assistant.instructions import without_instructions
from assistant.llm import LLMBackend
from assistant.prompts import fence_sources, load_prompt
from assistant.schema import DateRange, Digest, Paper, Source, Theme, Usage, paper_id_of
from assistant.scrubbing import strip_echoed_prompt
from assistant.settings import Settings
from assistant.settling import grounded_sentences
from assistant.store import PaperStore, date_filter
from assistant.streaming import Streamed
from assistant.text import split_sentences
from assistant.themes import cluster_papers, theme_keywords

NAME_MAX_TOKENS = 16
NAME_MAX_WORDS = 6
PARAGRAPH_MAX_TOKENS = 300
# The opening sentences state what a paper does; they are enough to place it in a theme.
SENTENCES_PER_SOURCE = 2

_NAME_LABEL = re.compile(r"^\s*(?:theme(?:\s+name)?|name|research theme)\s*:\s*", re.IGNORECASE)
_NOT_A_NAME = re.compile(r"\[\d+\]|\b(?:not|papers?|collection|sources?)\b|[?!]", re.IGNORECASE)


def _clean_name(reply: str) -> str:
    """A usable theme name from the reply, or "" (too long, a sentence, a refusal, or no letters)."""
    line = next((line for line in reply.strip().splitlines() if line.strip()), "")
    line = _NAME_LABEL.sub("", line).strip().strip("\"'*`#").strip()
    name = line.rstrip(".").strip()
    # A name is a noun phrase: a reply ending like a sentence is the model talking, not naming.
    sentence_like = line.endswith(".") and len(name.split()) > 3
    if sentence_like or _NOT_A_NAME.search(name) or not re.search(r"[A-Za-z]{3}", name):
        return ""
    if not 1 <= len(name.split()) <= NAME_MAX_WORDS:
        return ""
    return name[0].upper() + name[1:]


def keyword_name(keywords: Sequence[str]) -> str:
    """The theme's top keywords as its name, first letter raised ("LoRA" keeps its case)."""
    name = ", ".join(keywords[:3])
    return name[0].upper() + name[1:] if name else "Other papers"


def _opening(abstract: str) -> str:
    clean = without_instructions(abstract)
    return " ".join(split_sentences(clean)[:SENTENCES_PER_SOURCE]) or clean


def theme_sources(papers: Sequence[Paper], *, backend: LLMBackend, fixed_tokens: int) -> list[Source]:
    """The theme's papers as numbered sources (their opening sentences), as many as the context holds."""
    budget = context_budget(backend, fixed_messages_tokens=fixed_tokens, reserve_for_answer=PARAGRAPH_MAX_TOKENS)
    packed = pack_context(
        list(papers),
        cost=lambda paper: (
            backend.count_tokens(fence_sources([(len(papers), paper.title, _opening(paper.abstract))])) + 2
        ),
        budget=budget,
    )
    kept = {paper.paper_id for paper in packed.kept}
    # Numbers follow the theme's paper order, so [n] is always the theme's n-th paper.
    return [
        Source.of(n, paper, _opening(paper.abstract))
        for n, paper in enumerate(papers, start=1)
        if paper.paper_id in kept
    ]


def fallback_paragraph(papers: Sequence[Paper], embedder: EmbedFunction) -> str:
    """Each paper's own statement of what it does, cited: grounded by construction."""
    extractor = AspectSentences(embedder)
    sentences = []
    for n, paper in enumerate(papers, start=1):
        key = extractor.best(paper.abstract, APPROACH, set())
        sentences.append(insert(key, n))
    return " ".join(sentences)


def digest_markdown(digest: Digest, titles: dict[str, str]) -> str:
    """Each theme as a heading, its paragraph, and its papers by number (``titles``: paper_id -> title)."""
    parts = []
    for theme in digest.themes:
        papers = "\n".join(f"[{n}] {titles.get(pid, pid)}" for n, pid in enumerate(theme.paper_ids, start=1))
        parts.append(f"## {theme.name}\n\n{theme.paragraph}\n\n{papers}")
    return "\n\n".join(parts)


def _theme_steps(
    papers: Sequence[Paper],
    keywords: Sequence[str],
    *,
    backend: LLMBackend,
    settings: Settings,
    embedder: EmbedFunction,
) -> Generator[str, None, tuple[Theme, Usage, str]]:
    name_prompt = load_prompt("theme", directory=settings.prompts.prompts_dir)
    paragraph_prompt = load_prompt("theme_paragraph", directory=settings.prompts.prompts_dir)
    fixed = sum(backend.count_tokens(m.content) for m in paragraph_prompt.render(theme="", sources=""))
    sources = theme_sources(papers, backend=backend, fixed_tokens=fixed)
    fenced = fence_sources([(s.n, s.title, s.text) for s in sources])

    naming = backend.generate(
        name_prompt.render(sources=fenced), max_tokens=NAME_MAX_TOKENS, temperature=settings.llm.temperature
    ).result
    name = _clean_name(strip_echoed_prompt(naming.text)) or keyword_name(keywords)
    yield f"## {name}\n\n"

    writing = yield from backend.generate(
        paragraph_prompt.render(theme=name, sources=fenced),
        max_tokens=min(settings.llm.max_answer_tokens, PARAGRAPH_MAX_TOKENS),
        temperature=settings.llm.temperature,
    ).relay()
    yield "\n\n"
    kept, dropped = grounded_sentences(writing.text, sources, embedder)
    # Fewer grounded sentences than ungrounded ones: the model did not describe these papers.
    paragraph = " ".join(kept) if kept and len(kept) >= len(dropped) else fallback_paragraph(papers, embedder)
    theme = Theme(name=name, paper_ids=[p.paper_id for p in papers], paragraph=paragraph, unsupported=dropped)
    return theme, naming.usage + writing.usage, writing.model


def papers_of_days(store: PaperStore, days: DateRange) -> list[str]:
    """The ids of the papers whose day (``Paper.day``) lies in ``days``."""
    where = {"$and": [*date_filter(days=days)["$and"], {"chunk_index": 0}]}  # type: ignore[index]
    return sorted({paper_id_of(chunk_id) for chunk_id in store.chunk_ids_where(where)})


def _digest_steps(
    store: PaperStore, backend: LLMBackend, settings: Settings, days: DateRange | None
) -> Generator[str, None, Digest]:
    if days is not None:
        ids = papers_of_days(store, days)
        if not ids:
            return Digest(themes=[], model=backend.model)
        vectors = store.paper_vectors(ids)
    else:
        vectors = store.paper_vectors()
    clusters = cluster_papers(vectors)
    papers_by_id = store.get_papers(list(vectors))
    keywords = theme_keywords(list(papers_by_id.values()), clusters, n=4)
    themes: list[Theme] = []
    usage = Usage()
    answered_by = backend.model
    for cluster, cluster_keywords in zip(clusters, keywords, strict=True):
        members = [papers_by_id[pid] for pid in cluster if pid in papers_by_id]
        if not members:
            continue
        theme, theme_usage, answered_by = yield from _theme_steps(
            members, cluster_keywords, backend=backend, settings=settings, embedder=store.embedder
        )
        themes.append(theme)
        usage = usage + theme_usage
    return Digest(themes=themes, model=answered_by, usage=usage)


def stream_digest(
    *, store: PaperStore, backend: LLMBackend, settings: Settings, days: DateRange | None = None
) -> Streamed[Digest]:
    """The collection (or the papers of ``days``) grouped into named themes, each with one cited,
    support-checked paragraph. Each theme's heading and paragraph can be shown as they are written.
    """
    return Streamed(_digest_steps(store, backend, settings, days))
