"""One-paragraph summaries of one paper, written from its whole abstract and cached on disk.

Whatever the model writes is forced into one plain paragraph of 60-150 words (markdown
stripped, lines joined, trimmed at a sentence boundary) and checked against the
abstract; a reply too short or mostly ungrounded is replaced by the abstract's own key
sentences. Results are cached per paper content, model and prompt version, so asking
again is instant and any of the three changing gives a fresh summary.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from assistant.embeddings import EmbedFunction
from assistant.errors import data_dir_errors
from assistant.extracts import SUMMARY_MIN_WORDS, extractive_paragraph, one_paragraph
from assistant.instructions import instructions_notice, without_instructions
from assistant.llm import LLMBackend
from assistant.prompts import fence_sources, load_prompt
from assistant.schema import Paper, Source, Summary
from assistant.scrubbing import scrub, strip_echoed_prompt
from assistant.settings import Settings
from assistant.streaming import Streamed
from assistant.support import check_against_own_source, mostly_unsupported
from assistant.text import word_count

# 150 words are about 200 tokens; a little more lets the model finish its last sentence.
SUMMARY_MAX_TOKENS = 260
CACHE_FILE_NAME = "summaries.sqlite3"


class SummaryCache:
    """Summaries in a small SQLite file, keyed by paper content, model and prompt version."""

    @classmethod
    def in_folder(cls, data_dir: Path) -> SummaryCache:
        """The summaries cached in a data folder (``ASSISTANT_DATA_DIR``)."""
        return cls(data_dir / CACHE_FILE_NAME)

    def __init__(self, path: Path) -> None:
        self.path = path
        with data_dir_errors(path.parent):
            path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS summaries ("
                " paper_id TEXT NOT NULL, content_hash TEXT NOT NULL, model TEXT NOT NULL, prompt_version INTEGER NOT NULL,"
                " summary_json TEXT NOT NULL, created_at TEXT NOT NULL,"
                " PRIMARY KEY (paper_id, content_hash, model, prompt_version))"
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # A connection per call: the cache is shared by Streamlit's threads and other processes.
        with data_dir_errors(self.path.parent):
            connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            try:
                yield connection
            finally:
                connection.close()

    def get(self, paper: Paper, model: str, prompt_version: int) -> Summary | None:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT summary_json FROM summaries WHERE paper_id = ? AND content_hash = ? AND model = ? AND prompt_version = ?",
                (paper.paper_id, paper.content_hash, model, prompt_version),
            ).fetchone()
        return Summary.model_validate_json(row[0]) if row else None

    def put(self, paper: Paper, model: str, prompt_version: int, summary: Summary) -> None:
        with self._connect() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO summaries VALUES (?, ?, ?, ?, ?, ?)",
                (
                    paper.paper_id,
                    paper.content_hash,
                    model,
                    prompt_version,
                    summary.model_dump_json(exclude={"cached"}),
                    datetime.now(UTC).isoformat(),
                ),
            )


def _summary_steps(
    paper: Paper, *, backend: LLMBackend, settings: Settings, embedder: EmbedFunction, cache: SummaryCache
) -> Generator[str, None, Summary]:
    prompt = load_prompt("summarize", directory=settings.prompts.prompts_dir)
    cached = cache.get(paper, backend.model, prompt.version)
    if cached is not None:
        yield cached.summary
        return cached.model_copy(update={"cached": True})

    abstract = without_instructions(paper.abstract)
    source = Source.of(1, paper, abstract)
    messages = prompt.render(source=fence_sources([(1, paper.title, abstract)]))
    completion = yield from backend.generate(
        messages,
        max_tokens=min(settings.llm.max_answer_tokens, SUMMARY_MAX_TOKENS),
        temperature=settings.llm.temperature,
    ).relay()
    scrubbed = scrub(strip_echoed_prompt(completion.text), [source])
    text = one_paragraph(scrubbed.text)
    common = {"paper_id": paper.paper_id, "title": paper.title, "model": completion.model, "usage": completion.usage}
    notices = [notice for notice in (scrubbed.notice, instructions_notice([(paper.title, paper.abstract)])) if notice]

    fallback_reason = None
    unsupported: list[str] = []
    if word_count(text) < SUMMARY_MIN_WORDS:
        fallback_reason = f"The model's summary was shorter than {SUMMARY_MIN_WORDS} words"
    else:
        report = check_against_own_source(text, source, embedder)
        unsupported = list(report.unsupported)
        if mostly_unsupported(report.unsupported_share):
            fallback_reason = "Most of the model's summary was not grounded in the abstract"
    if fallback_reason:
        notices.append(f"{fallback_reason}, so the abstract's key sentences are shown instead.")
        summary = Summary(**common, summary=extractive_paragraph(abstract, embedder), extractive=True, notices=notices)
    else:
        summary = Summary(**common, summary=text, unsupported=unsupported, notices=notices)
    cache.put(paper, backend.model, prompt.version, summary)
    return summary


def stream_summary(
    paper: Paper, *, backend: LLMBackend, settings: Settings, embedder: EmbedFunction, cache: SummaryCache
) -> Streamed[Summary]:
    """One paragraph (60-150 words): the paper's problem, approach and result, from its whole abstract.

    The model's words can be shown as they arrive; a cached summary arrives as one piece.
    """
    return Streamed(_summary_steps(paper, backend=backend, settings=settings, embedder=embedder, cache=cache))
