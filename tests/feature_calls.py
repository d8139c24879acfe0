"""The features called whole, with the collaborators tests do not care about filled in.

Each feature streams (``stream_answer`` ...); a test that wants the result alone calls these.
Settings default to the retriever's or store's, the embedder to the bundled one, the summary cache to the
one in the settings' data folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant.embeddings import EmbedFunction, build_embedder
from assistant.features.answer import stream_answer
from assistant.features.compare import MAX_PAPERS, MIN_PAPERS, stream_comparison
from assistant.features.digest import stream_digest
from assistant.features.summarize import SummaryCache, stream_summary
from assistant.llm import LLMBackend
from assistant.outcomes import Route
from assistant.plan import QueryPlan, RulesPlanner, plan_message
from assistant.retrieval import Retriever
from assistant.schema import Answer, Comparison, Digest, Paper, Summary
from assistant.settings import Settings
from assistant.store import PaperStore


def plan(
    question: str,
    history: Sequence[Any] = (),
    *,
    retriever: Retriever,
    backend: LLMBackend,
    papers_in_reach: Sequence[Paper] = (),
) -> QueryPlan:
    """The rules' plan of ``question`` as an answer, as the facade reads it."""
    planned = plan_message(
        question,
        history,
        planner=RulesPlanner(),
        backend=backend,
        retriever=retriever,
        catalog=[stats.paper for stats in retriever.store.list_papers()],
        papers_in_reach=papers_in_reach,
        compared=(MIN_PAPERS, MAX_PAPERS),
    )
    return planned.model_copy(update={"route": Route.ANSWER})


def answer(
    question: str,
    history: Sequence[Any] = (),
    *,
    retriever: Retriever,
    backend: LLMBackend,
    settings: Settings | None = None,
    papers_in_reach: Sequence[Paper] = (),
) -> Answer:
    planned = plan(question, history, retriever=retriever, backend=backend, papers_in_reach=papers_in_reach)
    return stream_answer(planned, retriever=retriever, backend=backend, settings=settings or retriever.settings).result


def compare(
    papers: Sequence[Paper], *, backend: LLMBackend, settings: Settings, embedder: EmbedFunction | None = None
) -> Comparison:
    return stream_comparison(
        papers, backend=backend, settings=settings, embedder=embedder or build_embedder(settings)
    ).result


def summarize(
    paper: Paper,
    *,
    backend: LLMBackend,
    settings: Settings,
    embedder: EmbedFunction | None = None,
    cache: SummaryCache | None = None,
) -> Summary:
    return stream_summary(
        paper,
        backend=backend,
        settings=settings,
        embedder=embedder or build_embedder(settings),
        cache=cache or SummaryCache.in_folder(settings.store.data_dir),
    ).result


def digest(*, store: PaperStore, backend: LLMBackend, settings: Settings | None = None) -> Digest:
    return stream_digest(store=store, backend=backend, settings=settings or store.settings).result
