"""Cited answers to questions about the collection.

A question is answered only from numbered abstracts placed in the prompt as data, and
nothing the model writes is trusted as is: citation markers that point to no source are
removed, every sentence is checked against the sources, and an answer that is mostly
ungrounded is replaced by the sources' own most relevant sentences. When no paper is
close enough to the question the model is not called at all.

This module also holds what the other features share: :class:`Streamed` (text pieces
while the model writes, then the checked result) and citation validation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from assistant.backend import LLMBackend, LLMError
from assistant.budget import context_budget, pack_context
from assistant.conversations import ChatTurn
from assistant.coverage import quoted_list, uncovered_notice, uncovered_words
from assistant.embeddings import Embedder
from assistant.models import Answer, Citation, Hit, Message, Paper, PaperRef, Source, Usage
from assistant.prompts import fence_sources, load_prompt
from assistant.resolve import resolve_papers
from assistant.retrieval import Retriever
from assistant.settings import Settings
from assistant.support import SupportReport, check_support, extractive_answer

ResultT = TypeVar("ResultT")

# Above this share of ungrounded sentences the model's text is replaced by source sentences.
MAX_UNSUPPORTED_SHARE = 0.5
NEAREST_SHOWN_ON_REFUSAL = 3
REWRITE_MAX_TOKENS = 60
NOT_COVERED = "NOT COVERED"
# Retrieved papers this much less similar to the question than the best one are left out.
RELEVANCE_MARGIN = 0.15


class Streamed(Generic[ResultT]):
    """A reply in the making: iterate for text pieces as the model writes, then read ``result``.

    Wraps a generator that yields text pieces and returns the final result. Iterating
    again replays the pieces; reading ``result`` first runs the rest silently. A model
    failure is re-raised (as :class:`LLMError`, with the partial text) wherever it is met,
    and ``partial_text`` keeps what arrived before it.
    """

    def __init__(self, steps: Generator[str, None, ResultT]) -> None:
        self._steps = steps
        self._pieces: list[str] = []
        self._finished = False
        self._result: ResultT | None = None
        self.error: LLMError | None = None

    def _pull(self) -> None:
        try:
            self._pieces.append(next(self._steps))
        except StopIteration as stop:
            self._finished = True
            self._result = stop.value
        except LLMError as exc:
            self._finished = True
            self.error = exc
            raise

    def __iter__(self) -> Iterator[str]:
        shown = 0
        while True:
            if shown < len(self._pieces):
                shown += 1
                yield self._pieces[shown - 1]
            elif self._finished:
                if self.error is not None:
                    raise self.error
                return
            else:
                self._pull()

    @property
    def result(self) -> ResultT:
        while not self._finished:
            self._pull()
        if self.error is not None:
            raise self.error
        return self._result  # type: ignore[return-value]

    @property
    def partial_text(self) -> str:
        return "".join(self._pieces)


# --- citations ------------------------------------------------------------------------
# "[1]", "[1, 2]", "[1-3]", "[Source 2]", "[1][2]" (each bracket matched on its own).
_CITATION_GROUP = re.compile(
    r"\s?\[\s*(?:sources?\s*)?(\d+(?:\s*(?:,|;|-|–|and)\s*(?:sources?\s*)?\d+)*)\s*\]", re.IGNORECASE
)
_NUMBER = re.compile(r"\d+")
_RANGE = re.compile(r"(\d+)\s*[-–]\s*(\d+)")


def _cited_numbers(group: str) -> list[int]:
    numbers: list[int] = []
    for start, end in _RANGE.findall(group):
        low, high = sorted((int(start), int(end)))
        numbers.extend(range(low, min(high, low + 20) + 1))
    numbers.extend(int(n) for n in _NUMBER.findall(_RANGE.sub("", group)))
    return sorted(set(numbers))


def validate_citations(text: str, sources: Sequence[Source]) -> tuple[str, list[Citation]]:
    """``text`` with every marker rewritten as ``[n]`` for real sources only, and those citations.

    A marker naming no source (``[7]`` with five sources) is removed rather than kept as a
    dangling promise. Citations come in order of first appearance, which is the order a
    reader meets them (and what "the second one" refers to in a follow-up).
    """
    by_number = {source.n: source for source in sources}
    cited: dict[int, Citation] = {}

    def rewrite(match: re.Match[str]) -> str:
        valid = [n for n in _cited_numbers(match.group(1)) if n in by_number]
        for n in valid:
            source = by_number[n]
            cited.setdefault(n, Citation(n=n, paper_id=source.paper_id, title=source.title))
        if not valid:
            return ""
        return (" " if match.group(0).startswith(" ") else "") + "".join(f"[{n}]" for n in valid)

    cleaned = _CITATION_GROUP.sub(rewrite, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    return cleaned.strip(), list(cited.values())


def papers_cited(citations: Sequence[Citation]) -> list[PaperRef]:
    """The distinct papers of ``citations``, in citation order."""
    seen: dict[str, PaperRef] = {}
    for citation in citations:
        seen.setdefault(citation.paper_id, PaperRef(paper_id=citation.paper_id, title=citation.title))
    return list(seen.values())


def cited(text: str, *numbers: int) -> str:
    """``text`` with ``[n]`` markers before its closing full stop, where a citation belongs."""
    body = text.rstrip()
    markers = "".join(f"[{n}]" for n in numbers)
    return f"{body[:-1]} {markers}." if body.endswith(".") else f"{body} {markers}"


def settle_citations(text: str, sources: Sequence[Source], report: SupportReport, embedder: Embedder) -> str:
    """``text`` with each claim citing the sources that ground it, as far as one can tell.

    A small model forgets the ``[n]`` of a sentence it copied from a source, or adds a
    second paper that has nothing to do with it. Checked against one source at a time,
    the support check tells which sources ground a sentence on their own: an uncited
    sentence gets the best of them; a sentence citing several keeps those that ground it
    (all of them when none does alone, and the joint check judges it as written).
    """
    unsettled = {
        _CITATION_GROUP.sub("", verdict.text).strip().lstrip(":;,-– ").strip(): verdict
        for verdict in report.sentences
        if verdict.kind == "claim" and len(verdict.cited) != 1
    }
    if not unsettled:
        return text
    grounding: dict[str, dict[int, float]] = {plain: {} for plain in unsettled}
    for source in sources:
        # One paragraph each: a sentence without a full stop (a list item, a bare title) must not
        # run into the next and come back as a unit matching none of them.
        for verdict in check_support("\n\n".join(unsettled), [source], embedder).sentences:
            if verdict.supported and verdict.text in grounding:
                grounding[verdict.text][source.n] = verdict.score
    for plain, verdict in unsettled.items():
        scores = grounding[plain]
        if not verdict.cited and scores:
            keep = [max(scores, key=scores.__getitem__)]
        else:
            keep = [n for n in verdict.cited if n in scores]
        if keep and keep != verdict.cited:
            text = text.replace(verdict.text, cited(plain, *keep), 1)
    return text


def checked(text: str, sources: Sequence[Source], embedder: Embedder) -> tuple[str, list[Citation], SupportReport]:
    """``text`` (its citations validated) with its citations settled, their citations, and its support report."""
    report = check_support(text, sources, embedder)
    settled = settle_citations(text, sources, report, embedder)
    if settled == text:
        return (*validate_citations(text, sources), report)
    text, citations = validate_citations(settled, sources)
    return text, citations, check_support(text, sources, embedder)


def grounded_sentences(reply: str, sources: Sequence[Source], embedder: Embedder) -> tuple[list[str], int]:
    """The reply's sentences that the sources support and that cite one (each once), and how many claims were not.

    For text that speaks of several papers at once (a comparison's narrative, a digest
    paragraph), where an ungrounded or unattributed sentence is worse than a shorter text.
    Hedges and headings are neither kept nor counted.
    """
    text, _ = validate_citations(strip_echoed_prompt(reply), sources)
    if not text:
        return [], 0
    _, _, report = checked(text, sources, embedder)
    claims = [verdict for verdict in report.sentences if verdict.kind == "claim"]
    kept = list(dict.fromkeys(verdict.text for verdict in claims if verdict.supported and verdict.cited))
    return kept, len(claims) - len(kept)


def source_of(n: int, paper: Paper, text: str | None = None) -> Source:
    return Source(n=n, paper_id=paper.paper_id, title=paper.title, text=text or paper.abstract, link=paper.link)


def mostly_unsupported(share: float) -> bool:
    return share > MAX_UNSUPPORTED_SHARE


# --- questions ------------------------------------------------------------------------
def question_token_limit(backend: LLMBackend) -> int:
    """The longest question sent on: an eighth of the window leaves the rest to the sources and answer."""
    return max(64, backend.context_window() // 8)


def fit_question(question: str, backend: LLMBackend) -> tuple[str, str | None]:
    """``question`` cut to what the prompt has room for, with a notice when it was cut."""
    limit = question_token_limit(backend)
    total = tokens = backend.count_tokens(question)
    kept = question
    # Shrink by the overshoot's share of characters: two or three counts, whatever the tokenizer.
    while tokens > limit:
        kept = kept[: max(1, int(len(kept) * limit / tokens * 0.95))]
        tokens = backend.count_tokens(kept)
    if kept == question:
        return question, None
    if " " in kept[len(kept) // 2 :]:
        kept = kept.rsplit(" ", 1)[0]
    notice = f"Your message was cut to its first {backend.count_tokens(kept)} tokens (of {total}) to fit the model's context."
    return kept, notice


def history_turns(history: Sequence[ChatTurn | Message]) -> list[ChatTurn]:
    """History as chat turns; plain messages (role, content) carry no papers."""
    turns: list[ChatTurn] = []
    for item in history:
        if isinstance(item, ChatTurn):
            turns.append(item)
        elif item.role in ("user", "assistant"):
            turns.append(ChatTurn(role=item.role, content=item.content))  # type: ignore[arg-type]
    return turns


# --- follow-ups -----------------------------------------------------------------------
_ORDINAL_WORDS = {
    "first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2,
    "fourth": 3, "4th": 3, "fifth": 4, "5th": 4, "last": -1, "former": 0, "latter": -1,
}  # fmt: skip
_REFERENT = r"(?:one|paper|work|method|approach|model|study|article)"
_ORDINAL_REFERENCE = re.compile(
    rf"\bthe\s+(first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|last)\s+{_REFERENT}\b|\bthe\s+(former|latter)\b",
    re.IGNORECASE,
)
_NUMBERED_REFERENCE = re.compile(r"\[(\d+)\]|\b(?:source|paper|reference)\s+(?:number\s+|#)?(\d+)\b", re.IGNORECASE)
_DEMONSTRATIVE = re.compile(rf"\b(?:this|that|these|those|both|each)\s+(?:{_REFERENT}s?|of them)\b", re.IGNORECASE)
_PRONOUN = re.compile(r"\b(?:it|its|they|them|their|theirs|both|either|neither)\b", re.IGNORECASE)
_ELLIPSIS_START = re.compile(r"^\s*(?:and|also|but|what about|how about|same for|how so)\b", re.IGNORECASE)
# Long questions that contain "it" usually say what "it" is themselves.
SHORT_QUESTION_WORDS = 12


@dataclass(frozen=True)
class FollowUp:
    """What a follow-up question refers to in the conversation."""

    papers: list[Paper]
    previous_question: str


def referenced_papers(
    question: str, history: Sequence[ChatTurn], papers_in_reach: Sequence[Paper], store_lookup: Callable[[list[str]], dict[str, Paper]]
) -> FollowUp | None:
    """The papers a follow-up points at, or None when ``question`` stands on its own.

    "The second one" is the second paper the last reply cited; "[2]" or "paper 2" is that
    reply's source 2; "it", "they", "what about ..." mean all papers of the last reply that
    discussed any (or, without such a reply, the papers in reach).
    """
    last_reply = next((turn for turn in reversed(history) if turn.role == "assistant" and turn.papers), None)
    previous_question = next((turn.content for turn in reversed(history) if turn.role == "user"), "")
    refs: list[PaperRef] = list(last_reply.papers) if last_reply else []
    in_reach = {paper.paper_id: paper for paper in papers_in_reach}

    ordinal = _ORDINAL_REFERENCE.search(question)
    numbered = _NUMBERED_REFERENCE.search(question)
    if ordinal and refs:
        index = _ORDINAL_WORDS[(ordinal.group(1) or ordinal.group(2)).lower()]
        chosen = [refs[index]] if -len(refs) <= index < len(refs) else refs
    elif numbered and last_reply and last_reply.sources:
        n = int(numbered.group(1) or numbered.group(2))
        chosen = [PaperRef(paper_id=s.paper_id, title=s.title) for s in last_reply.sources if s.n == n] or refs
    elif _DEMONSTRATIVE.search(question) or _ELLIPSIS_START.search(question) or (
        _PRONOUN.search(question) and len(question.split()) <= SHORT_QUESTION_WORDS
    ):
        chosen = refs
    else:
        return None
    if not chosen:
        if not papers_in_reach:
            return None
        return FollowUp(papers=list(papers_in_reach), previous_question=previous_question)
    missing = [ref.paper_id for ref in chosen if ref.paper_id not in in_reach]
    found = {**store_lookup(missing), **in_reach} if missing else in_reach
    papers = [found[ref.paper_id] for ref in chosen if ref.paper_id in found]
    return FollowUp(papers=papers, previous_question=previous_question) if papers else None


_STOPWORDS = frozenset(
    "a an the of for and or in on to with via by from at as is are be using towards toward into its their "
    "what how does do which when can".split()
)


_WORD = re.compile(r"[a-z0-9][a-z0-9\-]+")


def _title_words(title: str) -> set[str]:
    return {word for word in _WORD.findall(title.lower()) if word not in _STOPWORDS}


def _clean_rewrite(reply: str) -> str:
    line = next((line for line in reply.strip().splitlines() if line.strip()), "")
    line = re.sub(r"^\s*(?:standalone\s+)?(?:question|rewritten question)\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip("\"'`").strip()


def rewrite_follow_up(question: str, follow_up: FollowUp, *, backend: LLMBackend) -> tuple[str, Usage]:
    """A standalone version of ``question`` for retrieval and the answer prompt.

    The model's rewrite is kept only when it names one of the referenced papers (a tiny
    model often just repeats the question); otherwise their titles are appended, which
    is what retrieval needs to find them again.
    """
    titles = [paper.title for paper in follow_up.papers]
    messages = load_prompt("rewrite").render(
        previous_question=" ".join(follow_up.previous_question.split())[:500] or "(none)",
        papers="\n".join(f"{i}. {' '.join(title.split())}" for i, title in enumerate(titles, start=1)),
        question=question,
    )
    generation = backend.generate(messages, max_tokens=REWRITE_MAX_TOKENS, temperature=0.0)
    candidate = _clean_rewrite(generation.text)
    # It must bring in words of a referenced title that the follow-up itself did not have.
    added = set(_WORD.findall(candidate.lower())) - set(_WORD.findall(question.lower()))
    names_a_paper = any(_title_words(title) & added for title in titles)
    if 3 <= len(candidate.split()) <= 60 and names_a_paper and candidate.casefold() != question.casefold():
        return candidate, generation.usage
    return f"{question} ({'; '.join(titles)})", generation.usage


# --- refusals -------------------------------------------------------------------------
_MODEL_REFUSAL = re.compile(
    r"\bnot\s+covered\b|\b(?:collection|sources?|abstracts?|papers?|context|texts?)\s+(?:do|does|did)(?:\s+not|n['’]t)\s+"
    r"(?:answer|cover|mention|say|contain|provide|state|discuss|address|report|specify|include)"
    r"|\bno\s+(?:relevant\s+)?information\b|\bcannot\s+(?:be\s+)?answer(?:ed)?\b|\bI\s+(?:do\s+not|don['’]t)\s+know\b",
    re.IGNORECASE,
)


def says_not_covered(text: str, has_citations: bool) -> bool:
    """The model declined: the agreed phrase anywhere, or refusal wording with nothing cited."""
    if NOT_COVERED.casefold() in text.casefold():
        return True
    return not has_citations and bool(_MODEL_REFUSAL.search(text))


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
# Where a small model starts copying the prompt: a source tag, or the prompt's "Question:" line.
_ECHOED_SOURCE = re.compile(r"<\s*/?\s*source\b|^\s*question\s*:", re.IGNORECASE | re.MULTILINE)
_ASKS_FOR_ONE_PAPER = re.compile(
    r"\b(?:which|what)\s+(?:\w+\s+){0,2}?(?:paper|work|method|approach|technique|study|article)\b(?!s)"
    r"|\bis there (?:a |any )?(?:paper|work|study)\b(?!s)",
    re.IGNORECASE,
)
_STRAY_TAG = re.compile(r"</?\s*[a-zA-Z][a-zA-Z0-9]*\s*/?>")


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
        cost=lambda candidate: backend.count_tokens(fence_sources([(len(candidates), candidate[0].title, candidate[1])])) + 2,
        budget=budget,
    )
    sources = [source_of(n, paper, text) for n, (paper, text) in enumerate(packed.kept, start=1)]
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
        query, usage = rewrite_follow_up(question, follow_up, backend=backend)

    papers = list(catalog) if catalog is not None else [stats.paper for stats in retriever.store.list_papers()]
    resolution = resolve_papers(question, papers)
    for mention in resolution.ambiguous:
        titles = "; ".join(candidate.title for candidate in mention.candidates)
        notices.append(f"'{mention.mention}' could mean several papers ({titles}); name one to be sure it is used.")
    forced = _ordered_unique([*(follow_up.papers if follow_up else []), *resolution.matched])

    hits = retriever.search(query, settings.top_k)
    best = max((hit.similarity or 0.0 for hit in hits), default=0.0)
    if not forced and best < settings.min_relevance:
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
    if uncovered and best < settings.min_relevance_uncovered:
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
    floor = max(settings.min_relevance, best - RELEVANCE_MARGIN)
    forced_ids = {paper.paper_id for paper in forced}
    candidates = [(paper, paper.abstract) for paper in forced] + [
        (hit.paper, hit.text or hit.paper.abstract)
        for hit in hits
        if (hit.similarity or 0.0) >= floor and hit.paper.paper_id not in forced_ids
    ]

    prompt = load_prompt("answer")
    fixed_tokens = sum(backend.count_tokens(m.content) for m in prompt.render(sources="", question=query))
    sources, dropped = pack_sources(
        candidates, backend=backend, fixed_tokens=fixed_tokens, reserve_for_answer=settings.max_answer_tokens
    )
    if dropped:
        notices.append(
            f"{len(dropped)} lower-ranked paper(s) did not fit the model's context and were left out: "
            + "; ".join(paper.title for paper in dropped)
        )
    messages = prompt.render(sources=fence_sources([(s.n, s.title, s.text) for s in sources]), question=query)
    return _Plan(question, query, hits, sources, messages, notices, usage)


def strip_echoed_prompt(reply: str) -> str:
    """The reply up to where the model starts copying the prompt's markup (a small model does).

    Everything from an echoed ``<source`` tag or ``Question:`` line on is the prompt
    regurgitated, not an answer; stray tags elsewhere (``</pre>``) are dropped.
    """
    echo = _ECHOED_SOURCE.search(reply)
    kept = reply[: echo.start()] if echo else reply
    return _STRAY_TAG.sub("", kept).strip()


def _finish(plan: _Plan, reply: str, *, model: str, usage: Usage, embedder: Embedder) -> Answer:
    """Validate citations, check support, and fall back or refuse as the reply deserves."""
    notices = list(plan.notices)
    text, citations = validate_citations(strip_echoed_prompt(reply), plan.sources)
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
        notices.append(f"{reason}, so the sources' sentences closest to the question are shown instead; they may not fully answer it.")
        # "Which paper ..." asks for one: quoting a second paper would cite one that is not the answer.
        quoted = plan.sources[:1] if _ASKS_FOR_ONE_PAPER.search(plan.query) else plan.sources
        text, citations = validate_citations(extractive_answer(quoted, plan.query, embedder), plan.sources)
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
    generation = backend.generate(planned.messages, max_tokens=settings.max_answer_tokens, temperature=settings.temperature)
    yield from generation
    return _finish(
        planned, generation.text, model=generation.model, usage=planned.usage + generation.usage, embedder=retriever.store.embedder
    )


def stream_answer(
    question: str,
    history: Sequence[ChatTurn | Message] = (),
    *,
    retriever: Retriever | None = None,
    backend: LLMBackend | None = None,
    settings: Settings | None = None,
    papers_in_reach: Sequence[Paper] = (),
    catalog: Sequence[Paper] | None = None,
) -> Streamed[Answer]:
    """Like :func:`answer`, but the model's words can be shown as they arrive."""
    if not question.strip():
        raise ValueError("The question is empty: type what you would like to know about the papers.")
    settings = settings or (retriever.settings if retriever is not None else Settings())
    if retriever is None:
        from assistant.store import PaperStore

        retriever = Retriever(PaperStore(settings), settings)
    if backend is None:
        from assistant.llm import build_backend

        backend = build_backend(settings)
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


def answer(
    question: str,
    history: Sequence[ChatTurn | Message] = (),
    *,
    retriever: Retriever | None = None,
    backend: LLMBackend | None = None,
    settings: Settings | None = None,
    papers_in_reach: Sequence[Paper] = (),
    catalog: Sequence[Paper] | None = None,
) -> Answer:
    """Answer ``question`` from the collection with citations ``[n]`` to numbered sources.

    ``history`` lets follow-ups ("what about its results?") be understood; ``papers_in_reach``
    are papers the conversation discussed, kept available to follow-ups; ``catalog`` is
    the collection's papers for name resolution (read from the store when omitted).
    """
    return stream_answer(
        question,
        history,
        retriever=retriever,
        backend=backend,
        settings=settings,
        papers_in_reach=papers_in_reach,
        catalog=catalog,
    ).result
