"""The facade the app, the CLI and the HTTP API use: one object that answers, compares, summarizes and digests.

:meth:`PaperAssistant.respond` reads a chat message once into a :class:`~assistant.plan.QueryPlan`
(:meth:`PaperAssistant.plan`) and routes it by that plan: a comparison question goes to
:mod:`assistant.features.compare`, "summarize X" / "what is X about" to
:mod:`assistant.features.summarize`, a name that fits several papers gets a clarifying
question back, and everything else is answered by :mod:`assistant.features.answer`. The
reply streams, and its result is a :class:`Reply`: the checked text with everything shown
beside it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from assistant.citations import papers_cited
from assistant.conversations import ChatTurn
from assistant.errors import CANDIDATES_SHOWN, AmbiguousPaper, InvalidInput, PaperNotFound
from assistant.features.answer import stream_answer
from assistant.features.compare import (
    MAX_PAPERS,
    MIN_PAPERS,
    comparison_markdown,
    comparison_sources,
    stream_comparison,
)
from assistant.features.digest import stream_digest
from assistant.features.summarize import SummaryCache, stream_summary
from assistant.followups import history_turns
from assistant.llm import LLMBackend, SpeedLog, build_backend, local_model
from assistant.llm.fake import FakeLLM
from assistant.outcomes import Outcome, Reason, Route
from assistant.plan import ModelPlanner, Planner, QueryPlan, RulesPlanner, plan_message
from assistant.prompts import load_prompt
from assistant.resolve import Resolution, resolve_one, resolve_papers
from assistant.retrieval import Retriever
from assistant.schema import (
    Answer,
    Citation,
    Comparison,
    DateRange,
    Digest,
    Hit,
    Message,
    Paper,
    PaperRef,
    Source,
    Summary,
    Usage,
)
from assistant.settings import Settings
from assistant.store import PaperStore
from assistant.streaming import Streamed, current_notices


class Clarification(BaseModel):
    """A question back to the user when a message's paper cannot be told for sure."""

    message: str
    text: str
    mention: str
    candidates: list[PaperRef] = Field(default_factory=list)


def clarification_for(
    message: str, mention: str, candidates: Sequence[Paper], *, unknown: bool = False
) -> Clarification:
    """A question back listing the candidates: the first :data:`CANDIDATES_SHOWN`, then how many more."""
    shown = candidates[:CANDIDATES_SHOWN]
    listed = "\n".join(f"{n}. {paper.title}" for n, paper in enumerate(shown, start=1))
    if len(candidates) > len(shown):
        listed += f"\n\n…and {len(candidates) - len(shown)} more: give a longer part of the title or the paper id."
    if unknown:
        text = f"No paper in the collection is called “{mention}”."
        text += f" Did you mean one of these?\n\n{listed}" if candidates else " Try `papers` to see what is in it."
    else:
        text = f"“{mention}” could mean several papers. Which one do you mean?\n\n{listed}"
    return Clarification(
        message=message,
        text=text,
        mention=mention,
        candidates=[PaperRef(paper_id=p.paper_id, title=p.title) for p in shown],
    )


ReplyKind = Literal["answer", "comparison", "summary", "clarification", "refusal"]


class Reply(BaseModel):
    """One chat reply, checked: what the app shows, the CLI prints and the HTTP API returns."""

    kind: ReplyKind
    text: str = Field(description="The final, checked Markdown, citing sources as [n]")
    citations: list[Citation] = Field(default_factory=list, description="What the text cites")
    sources: list[Source] = Field(default_factory=list, description="The numbered sources [n] refers to")
    papers: list[PaperRef] = Field(
        default_factory=list,
        description="The papers the reply discussed, in citation order: what a follow-up refers to",
    )
    unsupported: list[str] = Field(default_factory=list)
    notices: list[str] = Field(default_factory=list)
    model: str = ""
    usage: Usage = Field(default_factory=Usage)
    outcome: Outcome = Field(default=Outcome.ANSWER, description="What the user got (assistant.outcomes.Outcome)")
    reason: Reason = Field(default=Reason.GROUNDED, description="Why (assistant.outcomes.Reason)")
    result: Answer | Comparison | Summary | Clarification

    @property
    def refused(self) -> bool:
        return self.kind == "refusal"

    def to_chat_turn(self) -> ChatTurn:
        return ChatTurn(
            role="assistant",
            content=self.text,
            kind=self.kind,
            papers=self.papers,
            sources=self.sources,
            result=self.result.model_dump(mode="json"),
        )


def _reply(
    kind: ReplyKind,
    result: Answer | Comparison | Summary | Clarification,
    *,
    text: str,
    sources: list[Source],
    papers: list[PaperRef],
    notices: Sequence[str],
    outcome: Outcome = Outcome.ANSWER,
    reason: Reason = Reason.GROUNDED,
) -> Reply:
    # The model layer's notices (a reply cut at its budget) reach the reply this way.
    own = [*getattr(result, "notices", []), *current_notices()]
    if isinstance(result, Answer):
        citations = list(result.citations)
        kind = "refusal" if result.refused else kind
        outcome, reason = result.outcome, result.reason
    else:
        citations = [Citation(n=s.n, paper_id=s.paper_id, title=s.title, url=s.link) for s in sources]
    return Reply(
        kind=kind,
        text=text,
        citations=citations,
        sources=sources,
        papers=papers,
        unsupported=list(getattr(result, "unsupported", [])),
        notices=list(notices) + [notice for notice in own if notice not in notices],
        model=getattr(result, "model", ""),
        usage=getattr(result, "usage", None) or Usage(),
        outcome=outcome,
        reason=reason,
        result=result,
    )


TYPICAL_PROMPT_TOKENS = 400
"""An answer's prompt: a few sentences of up to three papers (measured on the dev set: 300-500 tokens)."""


class PaperAssistant:
    """Everything the app, the CLI and the HTTP API do with the collection, from one set of collaborators.

    This is the edge where collaborators are built: from ``settings`` when not passed in, the
    model backend only when first needed, since loading a local model takes seconds. Below
    it, every feature takes them as arguments.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: PaperStore | None = None,
        retriever: Retriever | None = None,
        backend: LLMBackend | None = None,
        summary_cache: SummaryCache | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or (retriever.store if retriever is not None else PaperStore(settings))
        self.retriever = retriever or Retriever(self.store, settings)
        self._backend = backend
        self._lock = threading.Lock()
        self._catalog: tuple[str, list[Paper]] | None = None
        self.summary_cache = summary_cache or SummaryCache.in_folder(settings.store.data_dir)

    @property
    def backend(self) -> LLMBackend:
        with self._lock:
            if self._backend is None:
                self._backend = build_backend(self.settings)
            return self._backend

    # --- the collection ------------------------------------------------------------------
    def papers(self) -> list[Paper]:
        """Every paper, by title; re-read only when the store changed (an ingest anywhere)."""
        revision = self.store.revision()
        with self._lock:
            if self._catalog is None or self._catalog[0] != revision:
                self._catalog = (revision, [stats.paper for stats in self.store.list_papers()])
            return list(self._catalog[1])

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        return self.retriever.search(query, k or self.settings.answer.top_k)

    def resolve(self, text: str) -> Resolution:
        return resolve_papers(text, self.papers())

    def paper(self, name_or_id: str) -> Paper:
        """The one paper a title, part of a title, short name or id names.

        Raises :class:`PaperNotFound` (with the nearest papers by search) or :class:`AmbiguousPaper`.
        """
        if not name_or_id.strip():
            raise PaperNotFound(name_or_id)
        resolution = resolve_one(name_or_id, self.papers())
        if resolution.ambiguous:
            raise AmbiguousPaper(resolution.ambiguous[0].mention, resolution.ambiguous[0].candidates)
        if len(resolution.matched) == 1:
            return resolution.matched[0]
        if len(resolution.matched) > 1:
            raise AmbiguousPaper(name_or_id, resolution.matched)
        raise PaperNotFound(name_or_id, [hit.paper for hit in self.search(name_or_id, 3)])

    def papers_in_reach(self, history: Sequence[ChatTurn | Message]) -> list[Paper]:
        """Papers the conversation discussed, most recent reply first, each in its citation order."""
        ids: list[str] = []
        for turn in reversed(history_turns(history)):
            ids.extend(ref.paper_id for ref in turn.papers if ref.paper_id not in ids)
        found = self.store.get_papers(ids)
        return [found[paper_id] for paper_id in ids if paper_id in found]

    # --- features, whole or streamed ------------------------------------------------------
    def answer(
        self, question: str, history: Sequence[ChatTurn | Message] = (), *, days: DateRange | None = None
    ) -> Answer:
        """An answer, whatever the wording: a comparison or a summary asked is answered as a question."""
        plan = self.plan(question, history, days=days)
        return self.stream_answer(plan.model_copy(update={"route": Route.ANSWER})).result

    def compare(self, names_or_ids: Sequence[str]) -> Comparison:
        if not MIN_PAPERS <= len(names_or_ids) <= MAX_PAPERS:
            raise InvalidInput(f"a comparison takes {MIN_PAPERS} to {MAX_PAPERS} papers, got {len(names_or_ids)}")
        return self.stream_comparison([self.paper(name) for name in names_or_ids]).result

    def summarize(self, name_or_id: str) -> Summary:
        return self.stream_summary(self.paper(name_or_id)).result

    def digest(self, *, days: DateRange | None = None) -> Digest:
        return self.stream_digest(days=days).result

    def stream_answer(self, plan: QueryPlan) -> Streamed[Answer]:
        return stream_answer(plan, retriever=self.retriever, backend=self.backend, settings=self.settings)

    def stream_comparison(self, papers: Sequence[Paper], *, days: DateRange | None = None) -> Streamed[Comparison]:
        return stream_comparison(
            papers, backend=self.backend, settings=self.settings, embedder=self.store.embedder, days=days
        )

    def stream_summary(self, paper: Paper) -> Streamed[Summary]:
        return stream_summary(
            paper, backend=self.backend, settings=self.settings, embedder=self.store.embedder, cache=self.summary_cache
        )

    def stream_digest(self, *, days: DateRange | None = None) -> Streamed[Digest]:
        return stream_digest(store=self.store, backend=self.backend, settings=self.settings, days=days)

    def waiting_message(self, task: str, *, prompt_tokens: int = TYPICAL_PROMPT_TOKENS) -> str:
        """What the app says while a local model reads: ``task``, and how long reading takes here when measured."""
        model = local_model(self.settings.llm.model)
        speed = SpeedLog(self.settings.store.models_dir).read().get(model.name) if model is not None else None
        if speed is None or speed.read_tokens_per_s <= 0:
            return f"{task}…"
        return f"{task}: the local model reads them first (about {prompt_tokens / speed.read_tokens_per_s:.0f} s here)…"

    # --- chat ---------------------------------------------------------------------------
    def planner(self) -> Planner:
        """The rules, or the model when ``answer.planner`` says so and the model is a real one."""
        backend = self.backend
        if self.settings.answer.planner == "model" and not isinstance(backend, FakeLLM):
            return ModelPlanner(backend, load_prompt("plan", directory=self.settings.prompts.prompts_dir))
        return RulesPlanner()

    def plan(
        self, message: str, history: Sequence[ChatTurn | Message] = (), *, days: DateRange | None = None
    ) -> QueryPlan:
        """Read one message, once: its route, the shape of its answer, the papers it is about, its days.

        ``days``: a range chosen beside the message (``ask --since/--until``, the API's
        ``date_range``, the app's sidebar); a date phrase in the message ("last week") wins over it.
        """
        return plan_message(
            message,
            history,
            days=days,
            planner=self.planner(),
            backend=self.backend,
            retriever=self.retriever,
            catalog=self.papers(),
            papers_in_reach=self.papers_in_reach(history),
            compared=(MIN_PAPERS, MAX_PAPERS),
        )

    def respond(
        self, message: str, history: Sequence[ChatTurn | Message] = (), *, days: DateRange | None = None
    ) -> Streamed[Reply]:
        """Route one chat message by its plan and start the reply: iterate it to stream the text, then read its ``result``.

        ``days``: a range chosen beside the message; a date phrase in the message wins over it (:meth:`plan`).
        """
        plan = self.plan(message, history, days=days)
        message, notices = plan.message, list(plan.notices)
        if plan.route is Route.CLARIFICATION:
            if plan.ambiguous:
                mention = plan.ambiguous[0]
                clarification = clarification_for(message, mention.mention, mention.candidates)
                return self._clarify(clarification, notices, Reason.AMBIGUOUS_NAME)
            unknown = plan.unknown[0]
            nearest = [hit.paper for hit in self.search(unknown, 3)]
            return self._clarify(
                clarification_for(message, unknown, nearest, unknown=True), notices, Reason.UNKNOWN_NAME
            )
        if plan.route is Route.COMPARISON:
            named = plan.subjects
            sources = comparison_sources(named)
            return self.stream_comparison(named, days=plan.days).then(
                lambda comparison: _reply(
                    "comparison",
                    comparison,
                    text=comparison_markdown(comparison),
                    sources=sources,
                    papers=list(comparison.papers),
                    notices=notices,
                    reason=Reason.COMPARED,
                )
            )
        if plan.route is Route.SUMMARY:
            paper = plan.subjects[0]
            return self.stream_summary(paper).then(
                lambda summary: _reply(
                    "summary",
                    summary,
                    text=summary.summary,
                    sources=[Source.of(1, paper)],
                    papers=[PaperRef(paper_id=paper.paper_id, title=paper.title)],
                    notices=notices,
                    outcome=Outcome.ABSTRACT_SENTENCES if summary.extractive else Outcome.ANSWER,
                    reason=Reason.SUMMARY_UNGROUNDED if summary.extractive else Reason.SUMMARIZED,
                )
            )
        return self.stream_answer(plan).then(
            lambda answer: _reply(
                "answer",
                answer,
                text=answer.text,
                sources=list(answer.sources),
                papers=papers_cited(answer.citations),
                notices=notices,
            )
        )

    @staticmethod
    def _clarify(clarification: Clarification, notices: list[str], reason: Reason) -> Streamed[Reply]:
        reply = _reply(
            "clarification",
            clarification,
            text=clarification.text,
            sources=[],
            papers=list(clarification.candidates),
            notices=notices,
            outcome=Outcome.QUESTION_BACK,
            reason=reason,
        )
        return Streamed.of(reply, clarification.text)
