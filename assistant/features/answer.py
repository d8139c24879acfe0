"""Cited answers to questions about the collection.

A question is answered only from numbered abstracts placed in the prompt as data, and
nothing the model writes is trusted as is: citation markers that point to no source are
removed, every sentence is checked against the sources, and an answer that is mostly
ungrounded is replaced by the sources' own most relevant sentences. When no paper is
close enough to the question the model is not called at all.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass

from assistant.budget import context_budget, fit_question, pack_context
from assistant.citations import validate
from assistant.conversations import ChatTurn
from assistant.coverage import quoted_list, uncovered_notice, uncovered_words
from assistant.embeddings import EmbedFunction
from assistant.errors import InvalidInput
from assistant.extracts import extractive_answer
from assistant.followups import history_turns, referenced_papers, rewrite_follow_up
from assistant.grounding import (
    SupportReport,
    checked,
    mostly_unsupported,
    says_not_covered,
    strip_echoed_prompt,
)
from assistant.llm import LLMBackend
from assistant.prompts import fence_sources, load_prompt
from assistant.resolve import resolve_papers
from assistant.retrieval import Retriever
from assistant.schema import Answer, Hit, Message, Paper, Source, Usage
from assistant.settings import Settings
from assistant.streaming import Streamed

NEAREST_SHOWN_ON_REFUSAL = 3
RELEVANCE_MARGIN = 0.15
"""Retrieved papers this much less similar to the question than the best one are left out."""


def nearest_papers_text(hits: Sequence[Hit]) -> str:
    nearest = sorted(hits, key=lambda hit: -(hit.similarity or 0.0))[:NEAREST_SHOWN_ON_REFUSAL]
    if not nearest:
        return "The collection is empty: ingest some papers first."
    lines = "\n".join(f"- {hit.paper.title}" for hit in nearest)
    return f"The nearest papers, for what they are worth:\n{lines}"


def refusal(
    question: str,
    hits: Sequence[Hit],
    *,
    reason: str,
    notices: Sequence[str],
    usage: Usage,
    model: str = "",
    sources: Sequence[Source] = (),
) -> Answer:
    return Answer(
        question=question,
        text=f"{reason}\n\n{nearest_papers_text(hits)}",
        sources=list(sources),
        refused=True,
        notices=list(notices),
        model=model,
        usage=usage,
    )


# --- the answer -----------------------------------------------------------------------
_ASKS_FOR_ONE_PAPER = re.compile(
    r"\b(?:which|what)\s+(?:\w+\s+){0,2}?(?:paper|work|method|approach|technique|study|article)\b(?!s)"
    r"|\bis there (?:a |any )?(?:paper|work|study)\b(?!s)",
    re.IGNORECASE,
)


@dataclass
class _Plan:
    """Everything decided before the model writes."""

    question: str
    query: str
    hits: list[Hit]
    sources: list[Source]
    messages: list[Message]
    notices: list[str]
    usage: Usage


def _ordered_unique(papers: Sequence[Paper]) -> list[Paper]:
    """Each paper once, where it first appears."""
    return list({paper.paper_id: paper for paper in papers}.values())


def pack_sources(
    candidates: Sequence[tuple[Paper, str]], *, backend: LLMBackend, fixed_tokens: int, reserve_for_answer: int
) -> tuple[list[Source], list[Paper]]:
    """Number (paper, text) candidates as sources in rank order, dropping the lowest-ranked that do not fit."""
    budget = context_budget(backend, fixed_messages_tokens=fixed_tokens, reserve_for_answer=reserve_for_answer)
    packed = pack_context(
        list(candidates),
        cost=lambda candidate: (
            backend.count_tokens(fence_sources([(len(candidates), candidate[0].title, candidate[1])])) + 2
        ),
        budget=budget,
    )
    sources = [Source.of(n, paper, text) for n, (paper, text) in enumerate(packed.kept, start=1)]
    return sources, [paper for paper, _ in packed.dropped]


def _plan(
    question: str,
    history: Sequence[ChatTurn],
    *,
    retriever: Retriever,
    backend: LLMBackend,
    settings: Settings,
    papers_in_reach: Sequence[Paper],
    catalog: Sequence[Paper] | None,
) -> _Plan | Answer:
    """Retrieve, resolve, pack and render; or an Answer already, when the model must not be asked."""
    notices: list[str] = []
    usage = Usage()
    question, cut_notice = fit_question(question, backend)
    if cut_notice:
        notices.append(cut_notice)

    follow_up = referenced_papers(question, history, papers_in_reach, retriever.store.get_papers)
    query = question
    if follow_up is not None:
        rewrite = load_prompt("rewrite", directory=settings.prompts.prompts_dir)
        query, usage = rewrite_follow_up(question, follow_up, backend=backend, prompt=rewrite)

    papers = list(catalog) if catalog is not None else [stats.paper for stats in retriever.store.list_papers()]
    resolution = resolve_papers(question, papers)
    for mention in resolution.ambiguous:
        titles = "; ".join(candidate.title for candidate in mention.candidates)
        notices.append(f"'{mention.mention}' could mean several papers ({titles}); name one to be sure it is used.")
    forced = _ordered_unique([*(follow_up.papers if follow_up else []), *resolution.matched])

    hits = retriever.search(query, settings.answer.top_k)
    best = max((hit.similarity or 0.0 for hit in hits), default=0.0)
    if not forced and best < settings.answer.min_relevance:
        return refusal(
            question,
            hits,
            reason="The collection does not cover this question: no paper in it is close enough to answer it.",
            notices=notices,
            usage=usage,
        )
    # Named papers are asked about as they are; otherwise find the question's key words no abstract
    # uses. With a fair match elsewhere the answer says so; with a loose one it is not attempted.
    uncovered = [] if forced else uncovered_words(query, retriever.vocabulary(), retriever.store.embedder)
    if uncovered and best < settings.answer.min_relevance_uncovered:
        return refusal(
            question,
            hits,
            reason=f"The collection does not cover this question: no abstract mentions {quoted_list(uncovered)}, "
            "and no paper is close to the rest of it.",
            notices=notices,
            usage=usage,
        )
    if uncovered:
        notices.append(uncovered_notice(uncovered))
    # Named papers come whole; a retrieved one brings its best-matching chunk. Hits far below
    # the best only distract a small model (and cost it seconds of reading on a CPU).
    floor = max(settings.answer.min_relevance, best - RELEVANCE_MARGIN)
    forced_ids = {paper.paper_id for paper in forced}
    candidates = [(paper, paper.abstract) for paper in forced] + [
        (hit.paper, hit.text or hit.paper.abstract)
        for hit in hits
        if (hit.similarity or 0.0) >= floor and hit.paper.paper_id not in forced_ids
    ]

    prompt = load_prompt("answer", directory=settings.prompts.prompts_dir)
    fixed_tokens = sum(backend.count_tokens(m.content) for m in prompt.render(sources="", question=query))
    sources, dropped = pack_sources(
        candidates, backend=backend, fixed_tokens=fixed_tokens, reserve_for_answer=settings.llm.max_answer_tokens
    )
    if dropped:
        notices.append(
            f"{len(dropped)} lower-ranked paper(s) did not fit the model's context and were left out: "
            + "; ".join(paper.title for paper in dropped)
        )
    messages = prompt.render(sources=fence_sources([(s.n, s.title, s.text) for s in sources]), question=query)
    return _Plan(question, query, hits, sources, messages, notices, usage)


def _finish(plan: _Plan, reply: str, *, model: str, usage: Usage, embedder: EmbedFunction) -> Answer:
    """Validate citations, check support, and fall back or refuse as the reply deserves."""
    notices = list(plan.notices)
    text, citations = validate(strip_echoed_prompt(reply), plan.sources)
    if says_not_covered(text, bool(citations)):
        return refusal(
            plan.question,
            plan.hits,
            reason="The papers found do not answer this question.",
            notices=notices,
            usage=usage,
            model=model,
            sources=plan.sources,
        )
    common = {"question": plan.question, "sources": plan.sources, "model": model, "usage": usage}
    report: SupportReport | None = None
    if text:
        text, citations, report = checked(text, plan.sources, embedder)
    claims = [v for v in report.sentences if v.kind == "claim"] if report is not None else []
    if report is None or not claims or mostly_unsupported(report.unsupported_share):
        reason = "The model's answer was not grounded in the abstracts" if claims else "The model gave no answer"
        notices.append(
            f"{reason}, so the sources' sentences closest to the question are shown instead; they may not fully answer it."
        )
        # "Which paper ..." asks for one: quoting a second paper would cite one that is not the answer.
        quoted = plan.sources[:1] if _ASKS_FOR_ONE_PAPER.search(plan.query) else plan.sources
        text, citations = validate(extractive_answer(quoted, plan.query, embedder), plan.sources)
        return Answer(**common, text=text, citations=citations, notices=notices)
    return Answer(**common, text=text, citations=citations, unsupported=list(report.unsupported), notices=notices)


def _answer_steps(
    question: str,
    history: Sequence[ChatTurn | Message],
    *,
    retriever: Retriever,
    backend: LLMBackend,
    settings: Settings,
    papers_in_reach: Sequence[Paper],
    catalog: Sequence[Paper] | None,
) -> Generator[str, None, Answer]:
    planned = _plan(
        question,
        history_turns(history),
        retriever=retriever,
        backend=backend,
        settings=settings,
        papers_in_reach=papers_in_reach,
        catalog=catalog,
    )
    if isinstance(planned, Answer):
        yield planned.text
        return planned
    completion = yield from backend.generate(
        planned.messages, max_tokens=settings.llm.max_answer_tokens, temperature=settings.llm.temperature
    ).relay()
    return _finish(
        planned,
        completion.text,
        model=completion.model,
        usage=planned.usage + completion.usage,
        embedder=retriever.store.embedder,
    )


def stream_answer(
    question: str,
    history: Sequence[ChatTurn | Message] = (),
    *,
    retriever: Retriever,
    backend: LLMBackend,
    settings: Settings,
    papers_in_reach: Sequence[Paper] = (),
    catalog: Sequence[Paper] | None = None,
) -> Streamed[Answer]:
    """Answer ``question`` from the collection with citations ``[n]`` to numbered sources, as it is written.

    ``history`` lets follow-ups ("what about its results?") be understood; ``papers_in_reach``
    are papers the conversation discussed, kept available to follow-ups; ``catalog`` is the
    collection's papers for name resolution (read from the store when omitted).
    """
    if not question.strip():
        raise InvalidInput("The question is empty: type what you would like to know about the papers.")
    return Streamed(
        _answer_steps(
            question,
            history,
            retriever=retriever,
            backend=backend,
            settings=settings,
            papers_in_reach=papers_in_reach,
            catalog=catalog,
        )
    )
