"""Cited answers to questions about the collection, evidence first.

Retrieval and the question choose; the model writes. The papers that bear on a question are
ranked by hybrid retrieval; from each, the sentences most relevant to the question are taken
(:mod:`assistant.evidence`); the model answers from those few sentences, which is the
passage-summarising task small models do well, in a prompt a few hundred tokens long. A
"which papers ..." question asks the model to say, paper by paper, which of them answer.

Nothing the model writes is trusted as is: links, addresses and markup no source has are
removed, citation markers that point to no source are dropped, every sentence is checked
against the sources, and a reply that is mostly ungrounded is replaced by the sentences that
answer the question (the figures, for "how much" questions; one line per paper, for "which
papers"). Small models cannot be trusted to decline: told to write NOT COVERED when the excerpts do not
answer, Qwen2.5-Coder 1.5B wrote it for 6 of 6 answerable dev questions; told nothing, it
restates an unanswerable question as a claim ("[2] proposes a new optimizer to replace Adam").
So the prompt has no escape phrase, and a reply is taken as "the papers do not say" when the
model says so in its whole reply, when its claims the sources do not support mostly restate the
question (unless a "which paper" question was read from one paper that plainly is the one asked
for: then the reply is that paper's title and its most relevant sentence), or when it is
ungrounded and a word that carries the question is in no abstract; a reply that is ungrounded in
other ways is replaced by the sources' sentences.

The question is declined before any model is asked only when it is far from every paper: no
paper close enough (``answer.min_relevance``), or a word that carries the question appears
in no abstract and the best paper matches only loosely and has no sentence that does
(``answer.min_relevance_uncovered``). Similarity alone cannot tell answerable questions from
the rest: over the dev and held-out questions (95), answerable ones had a best similarity as low
as 0.30 (d25, h24, h44, all answered by their second- or first-ranked paper) and unanswerable
ones from 0.23 to 0.49; so ``min_relevance`` is a floor (0.20), and the word-coverage gate and
the model's reply decide the rest.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Generator, Sequence
from dataclasses import dataclass
from datetime import date

from assistant.budget import context_budget, fit_question, pack_context
from assistant.citations import insert, markers_to_sentence_ends, name_paper_markers, validate
from assistant.conversations import ChatTurn
from assistant.coverage import content_words, quoted_list, uncovered_notice, uncovered_words
from assistant.dates import between_text, span_text
from assistant.embeddings import EmbedFunction
from assistant.errors import InvalidInput
from assistant.evidence import Evidence, asks_for_a_quantity, gather
from assistant.extracts import quantity_sentences
from assistant.followups import history_turns, referenced_papers, rewrite_follow_up
from assistant.grounding import (
    SupportReport,
    checked,
    declined,
    mostly_unsupported,
    plain,
    scrub,
    strip_echoed_prompt,
    unnamed,
    without_decline,
)
from assistant.instructions import instructions_notice, without_instructions
from assistant.llm import LLMBackend
from assistant.prompts import fence_sources, load_prompt
from assistant.resolve import resolve_papers
from assistant.retrieval import Retriever, bm25_tokens
from assistant.schema import Answer, Citation, DateRange, Hit, Message, Paper, Source, Usage
from assistant.settings import Settings
from assistant.streaming import Streamed
from assistant.text import key_stems, names_in, numbers_in, title_head, tokenize, word_count

NEAREST_SHOWN_ON_REFUSAL = 3
EVIDENCE_MARGIN = 0.15
"""A paper whose best sentence is this much less relevant than the best paper's is left out of an answer."""
LISTED_EVIDENCE_MARGIN = 0.20
"""The same for a "which papers" question, where the model itself says which of them answer."""
MAX_PAPERS = 3
"""Papers an answer reads, best-ranked first. A "which paper" question reads the best-ranked one alone: given
three, Qwen2.5-Coder 1.5B listed all three titles (dev citation precision 0.61 on lookups), while the
best-ranked paper was the right one for every dev lookup. A "which papers" question reads up to
MAX_PAPERS_LISTED."""
MAX_PAPERS_LISTED = 4
SENTENCE_ANSWERS = 0.55
"""A paper's best sentence this relevant answers a loosely matched question whose key word no abstract has."""
RESTATED_SHARE = 0.7
"""A claim whose key terms are mostly the question's own restates the question: it answers nothing."""
CLEAR_LEAD = 0.15
CLEAR_COVERAGE = 0.6
"""When a "which paper" reply only restates the question, the one paper read is still the answer if it
is CLEAR_LEAD more similar to the question than any other paper, or its title and abstract hold
CLEAR_COVERAGE of the question's key terms. Over the dev and first held-out sets (one-paper
questions), no unanswerable question came within 0.09 of either lead or 0.40 coverage; the
restated answerable ones did (h42 lead 0.20; h24 coverage 0.75)."""

_ONE_PAPER_NOUN = (
    r"(?:paper|work|method|approach|technique|study|article|model|system|framework|agent|benchmark|dataset|algorithm)"
)
_ASKS_FOR_PAPERS = re.compile(
    # "which paper trains models ..." asks for one paper: the words between may not name one
    rf"\b(?:which|what|any|list|name|find|are there)\s+(?:(?!{_ONE_PAPER_NOUN}\b)[\w'-]+\s+){{0,3}}?"
    r"(?:papers|works|methods|approaches|studies"
    r"|articles|techniques|models)\b|\bpapers\s+(?:that|which|about|on)\b",
    re.IGNORECASE,
)
_ASKS_FOR_ONE_PAPER = re.compile(
    rf"\b(?:which|what)\s+(?:[\w'-]+\s+){{0,3}}?{_ONE_PAPER_NOUN}\b(?!s)"
    r"|\bis there (?:a |any )?(?:paper|work|study|method)\b(?!s)",
    re.IGNORECASE,
)
_ASKS_WHAT_OR_HOW = re.compile(r"^\s*(?:what|how|why|in what way|does|do|is|are|can)\b", re.IGNORECASE)


def asks_for_papers(question: str) -> bool:
    """A question like "which papers ..." or "any works on ...": the answer is a list of papers."""
    return bool(_ASKS_FOR_PAPERS.search(question))


def asks_for_one_paper(question: str) -> bool:
    """A question like "which paper ...", "what method ...", "is there a paper ...": the answer is one paper."""
    return bool(_ASKS_FOR_ONE_PAPER.search(question)) and not asks_for_papers(question)


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


@dataclass
class _Plan:
    """Everything decided before the model writes."""

    question: str
    query: str
    hits: list[Hit]
    evidence: list[Evidence]
    sources: list[Source]
    messages: list[Message]
    notices: list[str]
    usage: Usage
    lists_papers: bool
    uncovered: list[str]
    """Words that carry the question and that no abstract has."""


def _ordered_unique(papers: Sequence[Paper]) -> list[Paper]:
    """Each paper once, where it first appears."""
    return list({paper.paper_id: paper for paper in papers}.values())


def pack_evidence(
    candidates: Sequence[Evidence], *, backend: LLMBackend, fixed_tokens: int, reserve_for_answer: int
) -> list[Evidence]:
    """The evidence that fits the model's context, in rank order: the lowest-ranked is left out first."""
    budget = context_budget(backend, fixed_messages_tokens=fixed_tokens, reserve_for_answer=reserve_for_answer)
    packed = pack_context(
        list(candidates),
        cost=lambda item: backend.count_tokens(fence_sources([(len(candidates), item.paper.title, item.text)])) + 2,
        budget=budget,
    )
    return list(packed.kept)


def _chosen_papers(forced: Sequence[Paper], hits: Sequence[Hit], limit: int, *, lists_papers: bool) -> list[Paper]:
    """The papers a question names, alone; else the best-ranked retrieved ones, at most ``limit``.

    A question about named papers is answered from them: given A-STAR and RealEra by name and a
    third retrieved paper, Qwen 1.5B described all three (held-out h54). Only "which papers ..."
    questions read past the named ones.
    """
    if forced and not lists_papers:
        return list(forced)
    return _ordered_unique([*forced, *(hit.paper for hit in hits)])[: max(limit, len(forced))]


def _plan(
    question: str,
    history: Sequence[ChatTurn],
    *,
    retriever: Retriever,
    backend: LLMBackend,
    settings: Settings,
    papers_in_reach: Sequence[Paper],
    catalog: Sequence[Paper] | None,
    days: DateRange | None = None,
) -> _Plan | Answer:
    """Retrieve, choose the papers and their sentences, and render the prompt; or an Answer already, when
    the model must not be asked. ``days``: only papers of those days are read (a dated question)."""
    notices: list[str] = []
    usage = Usage()
    question, cut_notice = fit_question(question, backend)
    if cut_notice:
        notices.append(cut_notice)
    if days is not None:
        held = retriever.papers_by_day(days)
        if not held or not bm25_tokens(question):
            return _days_listing(question, days, held, retriever=retriever, notices=notices)
        notices.append(days_read_notice(held))

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
    if days is not None:
        forced = _in_range(forced, days, notices)

    hits = retriever.search(query, settings.answer.top_k, days=days)
    best = max((hit.similarity or 0.0 for hit in hits), default=0.0)
    if days is not None and not forced and best < settings.answer.min_relevance:
        return _nothing_in_range(question, query, days, [], retriever=retriever, notices=notices, usage=usage)
    if not forced and best < settings.answer.min_relevance:
        return refusal(
            question,
            hits,
            reason="The collection does not cover this question: no paper in it is close enough to answer it.",
            notices=notices,
            usage=usage,
        )
    embedder = retriever.store.embedder
    lists_papers = asks_for_papers(query)
    limit = MAX_PAPERS_LISTED if lists_papers else 1 if asks_for_one_paper(query) else MAX_PAPERS
    chosen = _chosen_papers(forced, hits, limit, lists_papers=lists_papers)
    evidence = gather(query, chosen, embedder)
    # A question whose key word no abstract uses is answered only when a paper comes close, or has
    # a sentence that does. Named papers are always asked about; of them, a name no abstract has is
    # still said to be missing ("What success rate does Synapse achieve on WebArena?"), a plain
    # word is how to answer ("Explain aTLAS to a zoologist").
    uncovered = uncovered_words(query, retriever.vocabulary(days), embedder)
    if forced:
        names = names_in(query)
        uncovered = [word for word in uncovered if any(token.unit in names for token in tokenize(word))]
    top_sentence = max((item.relevance for item in evidence), default=0.0)
    if uncovered and not forced and best < settings.answer.min_relevance_uncovered and top_sentence < SENTENCE_ANSWERS:
        if days is not None:
            return _nothing_in_range(
                question, query, days, uncovered, retriever=retriever, notices=notices, usage=usage
            )
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
    forced_ids = {paper.paper_id for paper in forced}
    margin = LISTED_EVIDENCE_MARGIN if lists_papers else EVIDENCE_MARGIN
    evidence = [
        item for item in evidence if item.paper.paper_id in forced_ids or item.relevance >= top_sentence - margin
    ]

    prompt = load_prompt("answer_papers" if lists_papers else "answer", directory=settings.prompts.prompts_dir)
    fixed_tokens = sum(backend.count_tokens(m.content) for m in prompt.render(sources="", question=query))
    kept = pack_evidence(
        evidence, backend=backend, fixed_tokens=fixed_tokens, reserve_for_answer=settings.llm.max_answer_tokens
    )
    # The model reads the chosen sentences; what it writes is checked against the whole abstract.
    sources = [Source.of(n, item.paper, without_instructions(item.paper.abstract)) for n, item in enumerate(kept, 1)]
    if len(kept) < len(evidence):
        dropped = [item.paper.title for item in evidence if item not in kept]
        notices.append(
            f"{len(dropped)} lower-ranked paper(s) did not fit the model's context and were left out: "
            + "; ".join(dropped)
        )
    flagged = instructions_notice([(item.paper.title, item.paper.abstract) for item in kept])
    if flagged:
        notices.append(flagged)
    messages = prompt.render(
        sources=fence_sources([(n, item.paper.title, item.text) for n, item in enumerate(kept, 1)]), question=query
    )
    return _Plan(question, query, hits, kept, sources, messages, notices, usage, lists_papers, uncovered)


def _is_a_list_of_titles(report: SupportReport, sources: Sequence[Source]) -> bool:
    """Every claim only names a paper: no answer to a question asking what, how or why. A whole title
    counts too, however long its part after the colon ("Flowformer: Linearizing Transformers ...")."""
    names = [name for source in sources for name in (source.title.casefold(), title_head(source.title).casefold())]
    claims = [verdict.text for verdict in report.sentences if verdict.kind == "claim"]

    def names_only(claim: str) -> bool:
        folded = plain(claim).casefold()
        named = [name for name in names if name and name in folded]
        return bool(named) and word_count(folded) <= max(word_count(name) for name in named) + 4

    return bool(claims) and all(names_only(claim) for claim in claims)


def _restates(unsupported: Sequence[str], question: str, sources: Sequence[Source]) -> bool:
    """Most unsupported claims are the question turned into a statement.

    A claim that adds a figure of a source the question did not have ("22.1 F1 points [1]" to
    "how many F1 points ...?") answers it, however few words it has of its own.
    """
    asked = key_stems(question)
    if not unsupported or not asked:
        return False
    sourced = set().union(*(numbers_in(source.text) for source in sources)) - numbers_in(question)
    titles = [source.title for source in sources]
    restating = [
        claim
        for claim in unsupported
        if (terms := key_stems(prose := unnamed(plain(claim), titles)))
        and len(terms & asked) / len(terms) >= RESTATED_SHARE
        and not numbers_in(prose) & sourced
    ]
    return len(restating) * 2 >= len(unsupported)


def extractive_reply(plan: _Plan, embedder: EmbedFunction) -> str:
    """The sources' own sentences that answer the question asked, each cited.

    "Which papers": one line per paper, its most relevant sentence. "How much": the
    sentences that state figures, best first. Otherwise the best paper's most relevant
    sentences, then the next paper's best one.
    """
    by_paper = {source.paper_id: source.n for source in plan.sources}
    kept = [item for item in plan.evidence if item.paper.paper_id in by_paper]
    if not kept:
        return ""
    if plan.lists_papers:
        lines = [
            f"- {title_head(item.paper.title)}: {insert(item.sentences[item.best], by_paper[item.paper.paper_id])}"
            for item in kept
            if item.sentences
        ]
        return "\n".join(lines)
    if asks_for_a_quantity(plan.query):
        figures = quantity_sentences(
            plan.query, [(by_paper[item.paper.paper_id], item.sentences) for item in kept], embedder
        )
        if figures:
            return " ".join(insert(sentence, n) for n, sentence in figures)
    first, *others = kept
    chosen = [(by_paper[first.paper.paper_id], sentence) for sentence in first.sentences[:2]]
    chosen += [(by_paper[item.paper.paper_id], item.sentences[item.best]) for item in others[:1] if item.sentences]
    return " ".join(insert(sentence, n) for n, sentence in chosen)


def _finish(plan: _Plan, reply: str, *, model: str, usage: Usage, embedder: EmbedFunction) -> Answer:
    """Scrub, validate citations, check support, and fall back or refuse as the reply deserves."""
    notices = list(plan.notices)
    common = {"question": plan.question, "sources": plan.sources, "model": model, "usage": usage}
    names = {source.n: title_head(source.title) for source in plan.sources}
    text = name_paper_markers(markers_to_sentence_ends(strip_echoed_prompt(reply), names), names)
    if declined(text):
        return refusal(
            plan.question,
            plan.hits,
            reason="The papers found do not answer this question.",
            notices=notices,
            usage=usage,
            model=model,
            sources=plan.sources,
        )
    scrubbed = scrub(without_decline(text), plan.sources)
    if scrubbed.notice:
        notices.append(scrubbed.notice)
    text, citations = validate(scrubbed.text, plan.sources)
    report: SupportReport | None = None
    if text:
        text, citations, report = checked(text, plan.sources, embedder)
    claims = [v for v in report.sentences if v.kind == "claim"] if report is not None else []
    # A "which papers" reply restating the question under each paper still says which papers:
    # it falls back below to one line per paper, each with its own best sentence (held-out h44).
    if (
        report is not None
        and not plan.lists_papers
        and mostly_unsupported(report.unsupported_share)
        and _restates(report.unsupported, plan.query, plan.sources)
    ):
        if _clearly_the_paper(plan):
            # "Which paper ...?" restated under the one paper that plainly is it: the reply is its
            # title, and what the abstract says is quoted, not what the model wrote.
            read = plan.sources[0]
            named = _with_best_sentence(f"“{read.title}” [{read.n}]", plan, {read.paper_id})
            text, citations = validate(named, plan.sources)
            return Answer(**common, text=text, citations=citations, notices=notices)
        return refusal(
            plan.question,
            plan.hits,
            reason="The papers found do not say this: the model could only restate the question, "
            "and the abstracts do not support it.",
            notices=notices,
            usage=usage,
            model=model,
            sources=plan.sources,
        )
    only_titles = (
        report is not None
        and not plan.lists_papers
        and bool(_ASKS_WHAT_OR_HOW.search(plan.query))
        and _is_a_list_of_titles(report, plan.sources)
    )
    if claims and report is not None and mostly_unsupported(report.unsupported_share) and plan.uncovered:
        # The question's key word is in no abstract and what the model wrote is ungrounded: the
        # sources' own sentences would answer a different question (held-out h17, dev d29).
        return refusal(
            plan.question,
            plan.hits,
            reason=f"The papers found do not say this: no abstract mentions {quoted_list(plan.uncovered)}, "
            "and the model's answer was not grounded in the abstracts.",
            notices=[notice for notice in notices if notice != uncovered_notice(plan.uncovered)],
            usage=usage,
            model=model,
            sources=plan.sources,
        )
    if report is None or not claims or only_titles or mostly_unsupported(report.unsupported_share):
        if only_titles:
            reason = "The model named papers without saying what they do"
        elif claims:
            reason = "The model's answer was not grounded in the abstracts"
        else:
            reason = "The model gave no answer"
        notices.append(f"{reason}, so the abstracts' own sentences that answer the question are shown instead.")
        text, citations = validate(extractive_reply(plan, embedder), plan.sources)
        return Answer(**common, text=text, citations=citations, notices=notices, extractive=True)
    if not plan.lists_papers and _is_a_list_of_titles(report, plan.sources):
        # "Which paper ...?" answered with a title: right, but it says nothing of how; the
        # abstract's sentence that bears most on the question does.
        text, citations = validate(
            _with_best_sentence(text, plan, {citation.paper_id for citation in citations}), plan.sources
        )
    elif asks_for_one_paper(plan.query) and citations and not _names_a_cited_paper(text, citations):
        # "Which paper ...?" answered by what it does, in the question's words, under a bare [1]:
        # Qwen 1.5B did so in 7 of 10 such dev answers, and the reader still asks which one.
        first = citations[0]
        text, citations = validate(f"“{first.title}” [{first.n}]. {text}", plan.sources)
    return Answer(**common, text=text, citations=citations, unsupported=list(report.unsupported), notices=notices)


def _clearly_the_paper(plan: _Plan) -> bool:
    """A "which paper" question read from one paper that plainly is the one asked for: it is much
    closer to the question than any other paper, or its abstract has most of the question's key terms."""
    if not asks_for_one_paper(plan.query) or len(plan.sources) != 1:
        return False
    read = plan.sources[0]
    own = max((hit.similarity or 0.0 for hit in plan.hits if hit.paper.paper_id == read.paper_id), default=0.0)
    others = max((hit.similarity or 0.0 for hit in plan.hits if hit.paper.paper_id != read.paper_id), default=0.0)
    asked = key_stems(plan.query)
    covered = len(asked & key_stems(f"{read.title} {read.text}")) / len(asked) if asked else 0.0
    return own - others >= CLEAR_LEAD or covered >= CLEAR_COVERAGE


def _names_a_cited_paper(text: str, citations: Sequence[Citation]) -> bool:
    folded = text.casefold()
    return any(title_head(citation.title).casefold() in folded for citation in citations)


def _with_best_sentence(text: str, plan: _Plan, cited_ids: Collection[str]) -> str:
    """``text`` followed by the most relevant sentence of the first of ``cited_ids`` read, quoted and cited."""
    numbers = {source.paper_id: source.n for source in plan.sources}
    cited = [item for item in plan.evidence if item.paper.paper_id in cited_ids and item.sentences]
    if not cited:
        return text
    item = cited[0]
    sentence = item.sentences[item.best].strip().rstrip(".")
    named = text.rstrip() if text.rstrip().endswith((".", "!", "?")) else f"{text.rstrip()}."
    return f"{named} From its abstract: “{sentence}” [{numbers[item.paper.paper_id]}]."


def _answer_steps(
    question: str,
    history: Sequence[ChatTurn | Message],
    *,
    retriever: Retriever,
    backend: LLMBackend,
    settings: Settings,
    papers_in_reach: Sequence[Paper],
    catalog: Sequence[Paper] | None,
    days: DateRange | None = None,
) -> Generator[str, None, Answer]:
    planned = _plan(
        question,
        history_turns(history),
        retriever=retriever,
        backend=backend,
        settings=settings,
        papers_in_reach=papers_in_reach,
        catalog=catalog,
        days=days,
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
    days: DateRange | None = None,
) -> Streamed[Answer]:
    """Answer ``question`` from the collection with citations ``[n]`` to numbered sources, as it is written.

    ``history`` lets follow-ups ("what about its results?") be understood; ``papers_in_reach``
    are papers the conversation discussed, kept available to follow-ups; ``catalog`` is the
    collection's papers for name resolution (read from the store when omitted). ``days``: read
    only the papers of those days (``question`` without its date phrase); a range with nothing on
    the question declines naming it, and one without a topic lists its papers.
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
            days=days,
        )
    )


# --- dated questions ("which papers on X came out last week?") ----------------------------

LISTED_SHOWN = 40
"""Papers a topic-less dated question ("what's new?") lists by title; a day holds 15 at the median, 50 at most."""
NEAREST_DAYS_SHOWN = 3


def days_read_notice(held: dict[date, int]) -> str:
    """ "Read the 84 papers listed 2024-12-02 to 2024-12-06.": which days were read, and how many papers they hold."""
    count = sum(held.values())
    first, last = min(held), max(held)
    span = span_text(DateRange(start=first, end=last))
    return f"Read the {count} paper{'s' if count != 1 else ''} listed {span} ({len(held)} day{'s' if len(held) != 1 else ''})."


def _days_listing(
    question: str, days: DateRange, held: dict[date, int], *, retriever: Retriever, notices: list[str]
) -> Answer:
    """A range with no papers says so; a dated question without a topic ("what's new?") lists the range's papers."""
    if not held:
        newest = retriever.newest_day()
        where = f" (the newest day held is {newest.isoformat()})" if newest else ""
        return Answer(
            question=question,
            text=f"The collection holds no paper listed {span_text(days)}{where}.",
            refused=True,
            notices=notices,
        )
    ids = retriever.paper_ids_in(days)
    papers = retriever.store.get_papers(ids[:LISTED_SHOWN])
    shown = [papers[pid] for pid in ids[:LISTED_SHOWN] if pid in papers]
    sources = [Source.of(n, paper, without_instructions(paper.abstract)) for n, paper in enumerate(shown, 1)]
    lines = [f"- {source.title} ({papers[source.paper_id].day}) [{source.n}]" for source in sources]
    more = f"\n\n…and {len(ids) - len(shown)} more." if len(ids) > len(shown) else ""
    head = f"The {len(ids)} paper{'s' if len(ids) != 1 else ''} listed {span_text(DateRange(start=min(held), end=max(held)))}:"
    text, citations = validate(head + "\n\n" + "\n".join(lines) + more, sources)
    return Answer(question=question, text=text, sources=sources, citations=citations, notices=notices)


def _in_range(papers: Sequence[Paper], days: DateRange, notices: list[str]) -> list[Paper]:
    """The named papers of the days asked; one named but listed on another day is said to be left out."""
    for paper in papers:
        if not days.contains(paper.day):
            listed = f"listed {paper.day.isoformat()}" if paper.day else "of no known day"
            notices.append(f"“{paper.title}” is {listed}, outside the days asked, so it was not read.")
    return [paper for paper in papers if days.contains(paper.day)]


def _nothing_in_range(
    question: str,
    query: str,
    days: DateRange,
    uncovered: Sequence[str],
    *,
    retriever: Retriever,
    notices: Sequence[str],
    usage: Usage,
) -> Answer:
    """An honest decline naming the range, and the nearest papers on other days; never their content."""
    topic = quoted_list(uncovered) if uncovered else f"“{' '.join(content_words(query)) or query.strip()}”"
    found = [hit for hit in retriever.search(query, NEAREST_DAYS_SHOWN) if not days.contains(hit.paper.day)]
    closest = max((hit.similarity or 0.0 for hit in found), default=0.0)
    elsewhere = [hit for hit in found if (hit.similarity or 0.0) >= closest - EVIDENCE_MARGIN]
    text = f"Nothing on {topic} was listed {between_text(days)}."
    if elsewhere:
        lines = "\n".join(f"- {hit.paper.day}: {hit.paper.title}" for hit in elsewhere)
        text += f" The nearest papers on other days:\n{lines}"
    return Answer(question=question, text=text, refused=True, notices=list(notices), usage=usage)
