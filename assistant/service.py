"""The facade the app and the CLI use: one object that answers, compares, summarizes and digests.

:meth:`PaperAssistant.respond` routes a chat message: a comparison question goes to
:mod:`assistant.compare`, "summarize X" / "what is X about" to :mod:`assistant.summarize`,
a name that fits several papers gets a clarifying question back, and everything else is
answered by :mod:`assistant.qa`. The reply is a :class:`Turn` whose text streams.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from assistant.backend import LLMBackend
from assistant.compare import MAX_PAPERS, MIN_PAPERS, comparison_markdown, comparison_sources, stream_comparison
from assistant.conversations import ChatTurn
from assistant.errors import AmbiguousPaper, PaperNotFound
from assistant.models import Answer, Citation, Comparison, Digest, Hit, Message, Paper, PaperRef, Source, Summary
from assistant.qa import Streamed, fit_question, history_turns, papers_cited, referenced_papers, source_of, stream_answer
from assistant.resolve import Resolution, resolve_one, resolve_papers
from assistant.retrieval import Retriever
from assistant.settings import Settings
from assistant.store import PaperStore
from assistant.summarize import SummaryCache, stream_summary

ResultT = TypeVar("ResultT")

_COMPARISON = re.compile(
    r"\bcompar(?:e|es|ed|ing|ison)\b|\bvs\.?(?=\s)|\bversus\b|\bdiffer(?:s|ent|ently|ence|ences)?\b|\bcontrast\b"
    r"|\bsimilarit(?:y|ies)\b|\bin common\b",
    re.IGNORECASE,
)
_SUMMARY = re.compile(
    r"\bsummar(?:y|ies|ise|ize|ised|ized|ising|izing)\b|\btl;?dr\b|\bgist\b|\bwhat\s+(?:is|'s)\s+.{2,120}?\s+about\b",
    re.IGNORECASE,
)


class Clarification(BaseModel):
    """A question back to the user when a message's paper cannot be told for sure."""

    message: str
    text: str
    mention: str
    candidates: list[PaperRef] = Field(default_factory=list)


def clarification_for(message: str, mention: str, candidates: Sequence[Paper], *, unknown: bool = False) -> Clarification:
    listed = "\n".join(f"{n}. {paper.title}" for n, paper in enumerate(candidates, start=1))
    if unknown:
        text = f"No paper in the collection is called “{mention}”."
        text += f" Did you mean one of these?\n\n{listed}" if candidates else " Try `papers` to see what is in it."
    else:
        text = f"“{mention}” could mean several papers. Which one do you mean?\n\n{listed}"
    return Clarification(
        message=message,
        text=text,
        mention=mention,
        candidates=[PaperRef(paper_id=p.paper_id, title=p.title) for p in candidates],
    )


class Turn:
    """One reply in a chat. Iterate it for text pieces as they are written (``st.write_stream``);
    afterwards ``kind``, ``result`` and ``text`` (the final, checked Markdown) are set.

    A model failure is raised as :class:`LLMError` from the iteration (or from ``result``);
    ``partial_text`` keeps what was shown until then.
    """

    def __init__(
        self,
        kind: str,
        stream: Streamed[Any],
        *,
        render: Callable[[Any], str],
        sources: Callable[[Any], list[Source]],
        papers: Callable[[Any], list[PaperRef]],
        notices: Sequence[str] = (),
    ) -> None:
        self._kind = kind
        self._stream = stream
        self._render = render
        self._sources = sources
        self._papers = papers
        self._notices = list(notices)

    def __iter__(self) -> Iterator[str]:
        return iter(self._stream)

    @property
    def result(self) -> Answer | Comparison | Summary | Clarification:
        return self._stream.result

    @property
    def kind(self) -> str:
        result = self.result
        return "refusal" if isinstance(result, Answer) and result.refused else self._kind

    @property
    def text(self) -> str:
        return self._render(self.result)

    @property
    def notices(self) -> list[str]:
        own = getattr(self.result, "notices", [])
        return self._notices + [notice for notice in own if notice not in self._notices]

    @property
    def sources(self) -> list[Source]:
        return self._sources(self.result)

    @property
    def papers(self) -> list[PaperRef]:
        """The papers this reply discussed, in the order it cited them: what a follow-up refers to."""
        return self._papers(self.result)

    @property
    def citations(self) -> list[Citation]:
        """What the text cites; a comparison cites every paper it compares, a summary its one paper."""
        result = self.result
        if isinstance(result, Answer):
            return list(result.citations)
        return [Citation(n=s.n, paper_id=s.paper_id, title=s.title) for s in self.sources]

    @property
    def unsupported(self) -> list[str]:
        return list(getattr(self.result, "unsupported", []))

    @property
    def model(self) -> str:
        return getattr(self.result, "model", "")

    @property
    def partial_text(self) -> str:
        return self._stream.partial_text

    def to_chat_turn(self) -> ChatTurn:
        return ChatTurn(
            role="assistant",
            content=self.text,
            kind=self.kind,
            papers=self.papers,
            sources=self.sources,
            result=self.result.model_dump(mode="json"),
        )


def _immediate(result: ResultT, text: str) -> Streamed[ResultT]:
    """A reply known before any model is asked, streamed as one piece."""

    def steps() -> Generator[str, None, ResultT]:
        yield text
        return result

    return Streamed(steps())


class PaperAssistant:
    """Everything the app and the CLI do with the collection, from one set of collaborators.

    Collaborators are built from ``settings`` when not passed in; the model backend only
    when first needed, since loading the local model takes seconds.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: PaperStore | None = None,
        retriever: Retriever | None = None,
        backend: LLMBackend | None = None,
    ) -> None:
        self.settings = settings or (store.settings if store is not None else Settings())
        self.store = store or (retriever.store if retriever is not None else PaperStore(self.settings))
        self.retriever = retriever or Retriever(self.store, self.settings)
        self._backend = backend
        self._lock = threading.Lock()
        self._catalog: tuple[str, list[Paper]] | None = None
        self.summary_cache = SummaryCache(self.settings)

    @property
    def backend(self) -> LLMBackend:
        with self._lock:
            if self._backend is None:
                from assistant.llm import build_backend

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
        return self.retriever.search(query, k or self.settings.top_k)

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

    # --- features -----------------------------------------------------------------------
    def answer(self, question: str, history: Sequence[ChatTurn | Message] = ()) -> Answer:
        return self._answer_stream(question, history).result

    def compare(self, names_or_ids: Sequence[str]) -> Comparison:
        if not MIN_PAPERS <= len(names_or_ids) <= MAX_PAPERS:
            raise ValueError(f"a comparison takes {MIN_PAPERS} to {MAX_PAPERS} papers, got {len(names_or_ids)}")
        return self._comparison_stream([self.paper(name) for name in names_or_ids]).result

    def summarize(self, name_or_id: str) -> Summary:
        return self._summary_stream(self.paper(name_or_id)).result

    def digest(self) -> Digest:
        return self.stream_digest().result

    def stream_digest(self) -> Streamed[Digest]:
        from assistant.digest import stream_digest

        return stream_digest(store=self.store, backend=self.backend, settings=self.settings)

    def _answer_stream(self, question: str, history: Sequence[ChatTurn | Message]) -> Streamed[Answer]:
        return stream_answer(
            question,
            history,
            retriever=self.retriever,
            backend=self.backend,
            settings=self.settings,
            papers_in_reach=self.papers_in_reach(history),
            catalog=self.papers(),
        )

    def _comparison_stream(self, papers: Sequence[Paper]) -> Streamed[Comparison]:
        return stream_comparison(papers, backend=self.backend, settings=self.settings, embedder=self.store.embedder)

    def _summary_stream(self, paper: Paper) -> Streamed[Summary]:
        return stream_summary(
            paper, backend=self.backend, settings=self.settings, embedder=self.store.embedder, cache=self.summary_cache
        )

    # --- chat ---------------------------------------------------------------------------
    def respond(self, message: str, history: Sequence[ChatTurn | Message] = ()) -> Turn:
        """Route one chat message and start the reply; iterate the Turn to stream it."""
        if not message.strip():
            raise ValueError("The message is empty: ask something about the papers, e.g. “Which papers are about code generation?”")
        message, cut_notice = fit_question(message.strip(), self.backend)
        notices = [cut_notice] if cut_notice else []
        turns = history_turns(history)
        resolution = self.resolve(message)
        if resolution.ambiguous:
            mention = resolution.ambiguous[0]
            return self._clarify(clarification_for(message, mention.mention, mention.candidates), notices)

        named = list(resolution.matched)
        wants_comparison = bool(_COMPARISON.search(message))
        wants_summary = bool(_SUMMARY.search(message)) and not wants_comparison
        if len(named) < (MIN_PAPERS if wants_comparison else 1 if wants_summary else 0):
            # "Compare them", "how does it differ from aTLAS?", "summarize the second one".
            follow_up = referenced_papers(message, turns, self.papers_in_reach(history), self.store.get_papers)
            if follow_up is not None:
                named += [paper for paper in follow_up.papers if paper not in named]
        if (wants_comparison or wants_summary) and not named and resolution.unknown:
            mention = resolution.unknown[0]
            nearest = [hit.paper for hit in self.search(mention, 3)]
            return self._clarify(clarification_for(message, mention, nearest, unknown=True), notices)

        if wants_comparison and MIN_PAPERS <= len(named) <= MAX_PAPERS:
            papers = list(named)
            return Turn(
                "comparison",
                self._comparison_stream(papers),
                render=comparison_markdown,
                sources=lambda _: comparison_sources(papers),
                papers=lambda comparison: list(comparison.papers),
                notices=notices,
            )
        if wants_summary and len(named) == 1:
            paper = named[0]
            return Turn(
                "summary",
                self._summary_stream(paper),
                render=lambda summary: summary.summary,
                sources=lambda _: [source_of(1, paper)],
                papers=lambda _: [PaperRef(paper_id=paper.paper_id, title=paper.title)],
                notices=notices,
            )
        return Turn(
            "answer",
            self._answer_stream(message, history),
            render=lambda answer: answer.text,
            sources=lambda answer: list(answer.sources),
            papers=lambda answer: papers_cited(answer.citations),
            notices=notices,
        )

    @staticmethod
    def _clarify(clarification: Clarification, notices: list[str]) -> Turn:
        return Turn(
            "clarification",
            _immediate(clarification, clarification.text),
            render=lambda result: result.text,
            sources=lambda _: [],
            papers=lambda result: list(result.candidates),
            notices=notices,
        )
