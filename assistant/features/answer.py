"""Cited answers to questions about the collection, evidence first.

Retrieval and the question choose; the model writes. The papers that bear on a question are
ranked by hybrid retrieval; from each, the sentences most relevant to the question are taken
(:mod:`assistant.evidence`); the model answers from those few sentences, which is the
passage-summarising task small models do well, in a prompt a few hundred tokens long. A
"which papers ..." question asks the model to say, paper by paper, which of them answer.

The question is read once, at the facade, into a :class:`~assistant.plan.QueryPlan`: its
shape (one paper, several, a figure, an explanation), the papers it names or a follow-up points
at, and the words no abstract has. This module never parses the question again. What becomes of
the model's reply is a verdict (:class:`~assistant.outcomes.Reason`) looked up with the shape in
:data:`assistant.outcomes.OUTCOMES`; each outcome is built in one place below.

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

from collections.abc import Collection, Generator, Sequence
from dataclasses import dataclass
from datetime import date

from assistant.budget import context_budget, pack_context
from assistant.citations import insert, markers_to_sentence_ends, name_paper_markers, validate
from assistant.coverage import content_words, quoted_list, uncovered_notice
from assistant.dates import between_text, span_text
from assistant.declines import declined, without_decline
from assistant.embeddings import EmbedFunction
from assistant.evidence import Evidence, gather
from assistant.extracts import quantity_sentences
from assistant.followups import FollowUp, rewrite_follow_up
from assistant.instructions import instructions_notice, without_instructions
from assistant.llm import LLMBackend
from assistant.outcomes import Outcome, Reason, Shape, outcome_for
from assistant.plan import QueryPlan
from assistant.prompts import fence_sources, load_prompt
from assistant.retrieval import Retriever, bm25_tokens
from assistant.schema import Answer, Citation, DateRange, Hit, Message, Paper, Source, Usage
from assistant.scrubbing import scrub, strip_echoed_prompt
from assistant.settings import AnswerSettings, Settings
from assistant.settling import checked
from assistant.streaming import Streamed
from assistant.support import SupportReport, mostly_unsupported, plain, unnamed
from assistant.text import key_stems, numbers_in, title_head, word_count

NEAREST_SHOWN_ON_REFUSAL = 3
MAX_PAPERS = 3
"""Papers an answer reads, best-ranked first. A "which paper" question reads the best-ranked one alone: given
three, Qwen2.5-Coder 1.5B listed all three titles (dev citation precision 0.61 on lookups), while the
best-ranked paper was the right one for every dev lookup. A "which papers" question reads up to
MAX_PAPERS_LISTED."""
MAX_PAPERS_LISTED = 4
TITLE_ONLY_EXTRA_WORDS = 4
"""A claim that is a paper's name and at most this many words more ("ZIP-FIT does this") says nothing of what."""


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
    text: str,
    reason: Reason,
    notices: Sequence[str],
    usage: Usage,
    model: str = "",
    sources: Sequence[Source] = (),
) -> Answer:
    """A decline: ``text`` says why, and the nearest papers follow."""
    return Answer(
        question=question,
        text=f"{text}\n\n{nearest_papers_text(hits)}",
        sources=list(sources),
        refused=True,
        outcome=Outcome.DECLINE,
        reason=reason,
        notices=list(notices),
        model=model,
        usage=usage,
    )


@dataclass
class _Reading:
    """Everything decided before the model writes: the plan, and what retrieval and the evidence made of it."""

    plan: QueryPlan
    query: str
    hits: list[Hit]
    evidence: list[Evidence]
    sources: list[Source]
    messages: list[Message]
    notices: list[str]
    usage: Usage


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


def _read(plan: QueryPlan, *, retriever: Retriever, backend: LLMBackend, settings: Settings) -> _Reading | Answer:
    """Retrieve, choose the papers and their sentences, and render the prompt; or an Answer already, when
    the model must not be asked."""
    cutoffs = settings.answer
    notices = list(plan.notices)
    for mention in plan.ambiguous:
        titles = "; ".join(candidate.title for candidate in mention.candidates)
        notices.append(f"'{mention.mention}' could mean several papers ({titles}); name one to be sure it is used.")
    usage = Usage()
    days = plan.days
    if days is not None:
        held = retriever.papers_by_day(days)
        if not held or not bm25_tokens(plan.message):
            return _days_listing(plan.message, days, held, retriever=retriever, notices=notices)
        notices.append(days_read_notice(held))
    query = plan.message
    if plan.follow_up and plan.referents:
        rewrite = load_prompt("rewrite", directory=settings.prompts.prompts_dir)
        follow_up = FollowUp(papers=plan.referents, previous_question=plan.previous_question)
        query, usage = rewrite_follow_up(plan.message, follow_up, backend=backend, prompt=rewrite)
    forced = plan.papers if days is None else _in_range(plan.papers, days, notices)

    hits = retriever.search(query, cutoffs.top_k, days=days)
    best = max((hit.similarity or 0.0 for hit in hits), default=0.0)
    if days is not None and not forced and best < cutoffs.min_relevance:
        return _nothing_in_range(
            plan.message,
            query,
            days,
            [],
            retriever=retriever,
            notices=notices,
            usage=usage,
            margin=cutoffs.evidence_margin,
        )
    if not forced and best < cutoffs.min_relevance:
        return refusal(
            plan.message,
            hits,
            text="The collection does not cover this question: no paper in it is close enough to answer it.",
            reason=Reason.NO_CLOSE_PAPER,
            notices=notices,
            usage=usage,
        )
    embedder = retriever.store.embedder
    lists_papers = plan.shape is Shape.PAPERS
    limit = MAX_PAPERS_LISTED if lists_papers else 1 if plan.shape is Shape.ONE_PAPER else MAX_PAPERS
    chosen = _chosen_papers(forced, hits, limit, lists_papers=lists_papers)
    evidence = gather(query, chosen, embedder, figures=plan.shape is Shape.FIGURE)
    # A question whose key word no abstract uses is answered only when a paper comes close, or has a
    # sentence that does.
    uncovered = plan.uncovered
    top_sentence = max((item.relevance for item in evidence), default=0.0)
    if uncovered and not forced and best < cutoffs.min_relevance_uncovered and top_sentence < cutoffs.sentence_answers:
        if days is not None:
            return _nothing_in_range(
                plan.message,
                query,
                days,
                uncovered,
                retriever=retriever,
                notices=notices,
                usage=usage,
                margin=cutoffs.evidence_margin,
            )
        return refusal(
            plan.message,
            hits,
            text=f"The collection does not cover this question: no abstract mentions {quoted_list(uncovered)}, "
            "and no paper is close to the rest of it.",
            reason=Reason.UNCOVERED_WORD,
            notices=notices,
            usage=usage,
        )
    if uncovered:
        notices.append(uncovered_notice(uncovered))
    forced_ids = {paper.paper_id for paper in forced}
    margin = cutoffs.listed_evidence_margin if lists_papers else cutoffs.evidence_margin
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
    return _Reading(plan, query, hits, kept, sources, messages, notices, usage)


# --- the verdict on the model's reply ------------------------------------------------------------------
def _is_a_list_of_titles(report: SupportReport, sources: Sequence[Source]) -> bool:
    """Every claim only names a paper: no answer to a question asking what, how or why. A whole title
    counts too, however long its part after the colon ("Flowformer: Linearizing Transformers ...")."""
    names = [name for source in sources for name in (source.title.casefold(), title_head(source.title).casefold())]
    claims = [verdict.text for verdict in report.sentences if verdict.kind == "claim"]

    def names_only(claim: str) -> bool:
        folded = plain(claim).casefold()
        named = [name for name in names if name and name in folded]
        return bool(named) and word_count(folded) <= max(word_count(name) for name in named) + TITLE_ONLY_EXTRA_WORDS

    return bool(claims) and all(names_only(claim) for claim in claims)


def _restates(unsupported: Sequence[str], question: str, sources: Sequence[Source], share: float) -> bool:
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
        and len(terms & asked) / len(terms) >= share
        and not numbers_in(prose) & sourced
    ]
    return len(restating) * 2 >= len(unsupported)


def _clearly_the_paper(reading: _Reading, cutoffs: AnswerSettings) -> bool:
    """The one paper read plainly is the one asked for: it is much closer to the question than any other
    paper, or its abstract has most of the question's key terms."""
    if len(reading.sources) != 1:
        return False
    read = reading.sources[0]
    own = max((hit.similarity or 0.0 for hit in reading.hits if hit.paper.paper_id == read.paper_id), default=0.0)
    others = max((hit.similarity or 0.0 for hit in reading.hits if hit.paper.paper_id != read.paper_id), default=0.0)
    asked = key_stems(reading.query)
    covered = len(asked & key_stems(f"{read.title} {read.text}")) / len(asked) if asked else 0.0
    return own - others >= cutoffs.clear_lead or covered >= cutoffs.clear_coverage


def verdict_on(reading: _Reading, report: SupportReport | None, cutoffs: AnswerSettings) -> Reason:
    """What the checked reply is, whatever was asked: the shape decides what becomes of it (:data:`OUTCOMES`)."""
    claims = [v for v in report.sentences if v.kind == "claim"] if report is not None else []
    if report is None or not claims:
        return Reason.NO_ANSWER
    if mostly_unsupported(report.unsupported_share):
        if _restates(report.unsupported, reading.query, reading.sources, cutoffs.restated_share):
            if _clearly_the_paper(reading, cutoffs):
                return Reason.RESTATED_CLEAR_PAPER
            return Reason.RESTATED_UNCOVERED if reading.plan.uncovered else Reason.RESTATED
        # The question's key word is in no abstract and what the model wrote is ungrounded: the
        # sources' own sentences would answer a different question.
        return Reason.UNGROUNDED_UNCOVERED if reading.plan.uncovered else Reason.UNGROUNDED
    if _is_a_list_of_titles(report, reading.sources):
        return Reason.TITLES_ONLY
    return Reason.GROUNDED


# --- the outcomes ----------------------------------------------------------------------------------
def extractive_reply(reading: _Reading, embedder: EmbedFunction) -> str:
    """The sources' own sentences that answer the question asked, each cited.

    Several papers: one line per paper, its most relevant sentence. A figure: the sentences
    that state figures, best first. Otherwise the best paper's most relevant sentences, then
    the next paper's best one.
    """
    by_paper = {source.paper_id: source.n for source in reading.sources}
    kept = [item for item in reading.evidence if item.paper.paper_id in by_paper]
    if not kept:
        return ""
    if reading.plan.shape is Shape.PAPERS:
        lines = [
            f"- {title_head(item.paper.title)}: {insert(item.sentences[item.best], by_paper[item.paper.paper_id])}"
            for item in kept
            if item.sentences
        ]
        return "\n".join(lines)
    if reading.plan.shape is Shape.FIGURE:
        figures = quantity_sentences(
            reading.query, [(by_paper[item.paper.paper_id], item.sentences) for item in kept], embedder
        )
        if figures:
            return " ".join(insert(sentence, n) for n, sentence in figures)
    first, *others = kept
    chosen = [(by_paper[first.paper.paper_id], sentence) for sentence in first.sentences[:2]]
    chosen += [(by_paper[item.paper.paper_id], item.sentences[item.best]) for item in others[:1] if item.sentences]
    return " ".join(insert(sentence, n) for n, sentence in chosen)


_DECLINED = {
    Reason.MODEL_DECLINED: "The papers found do not answer this question.",
    Reason.RESTATED: "The papers found do not say this: the model could only restate the question, "
    "and the abstracts do not support it.",
    Reason.RESTATED_CLEAR_PAPER: "The papers found do not say this: the model could only restate the question, "
    "and the abstracts do not support it.",
    Reason.RESTATED_UNCOVERED: "The papers found do not say this: the model could only restate the question, "
    "and the abstracts do not support it.",
}
_REPLACED = {
    Reason.TITLES_ONLY: "The model named papers without saying what they do",
    Reason.NO_ANSWER: "The model gave no answer",
}


def _finish(
    reading: _Reading, reply: str, *, model: str, usage: Usage, embedder: EmbedFunction, settings: Settings
) -> Answer:
    """Scrub, validate citations, check support, reach a verdict, and build the outcome the table gives it."""
    notices = list(reading.notices)
    plan = reading.plan
    names = {source.n: title_head(source.title) for source in reading.sources}
    text = name_paper_markers(markers_to_sentence_ends(strip_echoed_prompt(reply), names), names)
    report: SupportReport | None = None
    citations: list[Citation] = []
    if declined(text):
        reason = Reason.MODEL_DECLINED
    else:
        scrubbed = scrub(without_decline(text), reading.sources)
        if scrubbed.notice:
            notices.append(scrubbed.notice)
        text, citations = validate(scrubbed.text, reading.sources)
        if text:
            text, citations, report = checked(text, reading.sources, embedder)
        reason = verdict_on(reading, report, settings.answer)
    outcome = outcome_for(plan.shape, reason)
    common = {"question": plan.message, "sources": reading.sources, "model": model, "usage": usage}
    coded = {"outcome": outcome, "reason": reason}
    if outcome is Outcome.DECLINE:
        why = _DECLINED.get(reason)
        if why is None:  # ungrounded, and a word of the question is in no abstract
            why = (
                f"The papers found do not say this: no abstract mentions {quoted_list(plan.uncovered)}, "
                "and the model's answer was not grounded in the abstracts."
            )
            notices = [notice for notice in notices if notice != uncovered_notice(plan.uncovered)]
        return refusal(
            plan.message, reading.hits, text=why, reason=reason, notices=notices, usage=usage, model=model,
            sources=reading.sources,
        )  # fmt: skip
    if outcome in (Outcome.ABSTRACT_SENTENCES, Outcome.ONE_LINE_PER_PAPER):
        why = _REPLACED.get(reason, "The model's answer was not grounded in the abstracts")
        notices.append(f"{why}, so the abstracts' own sentences that answer the question are shown instead.")
        text, citations = validate(extractive_reply(reading, embedder), reading.sources)
        return Answer(**common, **coded, text=text, citations=citations, notices=notices, extractive=True)
    assert report is not None  # an answer stands only on a checked reply
    if outcome is Outcome.ANSWER_UNDER_TITLE:
        if reason is Reason.RESTATED_CLEAR_PAPER:
            # Restated under the one paper that plainly is it: the reply is its title, and what the
            # abstract says is quoted, not what the model wrote.
            read = reading.sources[0]
            named = _with_best_sentence(f"“{read.title}” [{read.n}]", reading, {read.paper_id})
            text, citations = validate(named, reading.sources)
            return Answer(**common, **coded, text=text, citations=citations, notices=notices)
        if reason is Reason.TITLES_ONLY:
            # Answered with a title: right, but it says nothing of how; the abstract's sentence
            # that bears most on the question does.
            cited = {citation.paper_id for citation in citations}
            text, citations = validate(_with_best_sentence(text, reading, cited), reading.sources)
        elif citations and not _names_a_cited_paper(text, citations):
            # Answered by what it does, in the question's words, under a bare [1]: Qwen 1.5B did so
            # in 7 of 10 such dev answers, and the reader still asks which one.
            first = citations[0]
            text, citations = validate(f"“{first.title}” [{first.n}]. {text}", reading.sources)
    return Answer(
        **common, **coded, text=text, citations=citations, unsupported=list(report.unsupported), notices=notices
    )


def _names_a_cited_paper(text: str, citations: Sequence[Citation]) -> bool:
    folded = text.casefold()
    return any(title_head(citation.title).casefold() in folded for citation in citations)


def _with_best_sentence(text: str, reading: _Reading, cited_ids: Collection[str]) -> str:
    """``text`` followed by the most relevant sentence of the first of ``cited_ids`` read, quoted and cited."""
    numbers = {source.paper_id: source.n for source in reading.sources}
    cited = [item for item in reading.evidence if item.paper.paper_id in cited_ids and item.sentences]
    if not cited:
        return text
    item = cited[0]
    sentence = item.sentences[item.best].strip().rstrip(".")
    named = text.rstrip() if text.rstrip().endswith((".", "!", "?")) else f"{text.rstrip()}."
    return f"{named} From its abstract: “{sentence}” [{numbers[item.paper.paper_id]}]."


def _answer_steps(
    plan: QueryPlan, *, retriever: Retriever, backend: LLMBackend, settings: Settings
) -> Generator[str, None, Answer]:
    reading = _read(plan, retriever=retriever, backend=backend, settings=settings)
    if isinstance(reading, Answer):
        yield reading.text
        return reading
    completion = yield from backend.generate(
        reading.messages, max_tokens=settings.llm.max_answer_tokens, temperature=settings.llm.temperature
    ).relay()
    return _finish(
        reading,
        completion.text,
        model=completion.model,
        usage=reading.usage + completion.usage,
        embedder=retriever.store.embedder,
        settings=settings,
    )


def stream_answer(
    plan: QueryPlan, *, retriever: Retriever, backend: LLMBackend, settings: Settings
) -> Streamed[Answer]:
    """Answer the planned question from the collection with citations ``[n]`` to numbered sources, as it is written.

    The plan (:func:`assistant.plan.plan_message`) carries the question, its shape, the papers it
    names or a follow-up points at, and the words no abstract has.
    """
    return Streamed(_answer_steps(plan, retriever=retriever, backend=backend, settings=settings))


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
            outcome=Outcome.DECLINE,
            reason=Reason.NO_PAPERS_IN_RANGE,
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
    return Answer(
        question=question,
        text=text,
        sources=sources,
        citations=citations,
        outcome=Outcome.ONE_LINE_PER_PAPER,
        reason=Reason.LISTED_DAYS,
        notices=notices,
    )


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
    margin: float,
) -> Answer:
    """An honest decline naming the range, and the nearest papers on other days; never their content."""
    topic = quoted_list(uncovered) if uncovered else f"“{' '.join(content_words(query)) or query.strip()}”"
    found = [hit for hit in retriever.search(query, NEAREST_DAYS_SHOWN) if not days.contains(hit.paper.day)]
    closest = max((hit.similarity or 0.0 for hit in found), default=0.0)
    elsewhere = [hit for hit in found if (hit.similarity or 0.0) >= closest - margin]
    text = f"Nothing on {topic} was listed {between_text(days)}."
    if elsewhere:
        lines = "\n".join(f"- {hit.paper.day}: {hit.paper.title}" for hit in elsewhere)
        text += f" The nearest papers on other days:\n{lines}"
    return Answer(
        question=question,
        text=text,
        refused=True,
        outcome=Outcome.DECLINE,
        reason=Reason.NOTHING_IN_RANGE,
        notices=list(notices),
        usage=usage,
    )
