"""One-paragraph summaries of one paper, written from its whole abstract and cached on disk.

Whatever the model writes is forced into one plain paragraph of 60-150 words (markdown
stripped, lines joined, trimmed at a sentence boundary) and checked against the
abstract; a reply too short or mostly ungrounded is replaced by the abstract's own key
sentences. Results are cached per paper content, model and prompt version, so asking
again is instant and any of the three changing gives a fresh summary.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from assistant.backend import LLMBackend
from assistant.embeddings import Embedder, build_embedder
from assistant.models import Paper, Summary
from assistant.prompts import fence_sources, load_prompt
from assistant.qa import Streamed, mostly_unsupported, strip_echoed_prompt
from assistant.settings import Settings
from assistant.support import check_support, extractive_summary, split_sentences

MIN_WORDS = 60
MAX_WORDS = 150
# 150 words are about 200 tokens; a little more lets the model finish its last sentence.
SUMMARY_MAX_TOKENS = 260
CACHE_FILE_NAME = "summaries.sqlite3"
# An extractive summary grows sentence by sentence until it reaches MIN_WORDS.
MAX_EXTRACTIVE_SENTENCES = 8

_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s+")
_LABEL = re.compile(r"^\s*(?:\*\*)?(?:summary|paragraph|answer|tl;?dr)(?:\*\*)?\s*:\s*(?:\*\*)?", re.IGNORECASE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")
_CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")


def word_count(text: str) -> int:
    return len(text.split())


def one_paragraph(text: str, *, max_words: int = MAX_WORDS) -> str:
    """``text`` as one plain paragraph of at most ``max_words``, ending at a sentence boundary.

    Headings and a lone first line that repeats the title are dropped, list markers and
    emphasis removed, lines joined; an unfinished last sentence (the reply hit its token
    limit) is dropped when a finished one precedes it.
    """
    lines = [line for line in text.strip().splitlines() if line.strip()]
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _HEADING.match(line):
            continue
        line = _LABEL.sub("", _LIST_MARKER.sub("", line))
        # A short first line without a full stop is a title the model put on top.
        if index == 0 and len(lines) > 1 and not line.rstrip().endswith((".", "!", "?")) and word_count(line) <= 15:
            continue
        kept.append(line)
    flat = " ".join(" ".join(kept).split())
    flat = _CITATION.sub("", _EMPHASIS.sub("", flat)).strip()
    sentences = split_sentences(flat)
    if len(sentences) > 1 and not sentences[-1].endswith((".", "!", "?", '."', ".)")):
        sentences = sentences[:-1]
    chosen: list[str] = []
    for sentence in sentences:
        if word_count(" ".join([*chosen, sentence])) > max_words:
            break
        chosen.append(sentence)
    if not chosen and sentences:
        # One run-on sentence longer than the limit: cut it at the limit and close it.
        chosen = [" ".join(sentences[0].split()[:max_words]).rstrip(",;:") + "…"]
    return " ".join(chosen)


def extractive_paragraph(abstract: str, embedder: Embedder) -> str:
    """The abstract's key sentences, as many as it takes to reach MIN_WORDS (within MAX_WORDS)."""
    summary = ""
    for sentences in range(3, MAX_EXTRACTIVE_SENTENCES + 1):
        summary = one_paragraph(
            extractive_summary(abstract, embedder, max_sentences=sentences, max_words=MAX_WORDS), max_words=MAX_WORDS
        )
        if word_count(summary) >= MIN_WORDS:
            break
    return summary


class SummaryCache:
    """Summaries in a small SQLite file, keyed by paper content, model and prompt version."""

    def __init__(self, settings: Settings | None = None, *, path: Path | None = None) -> None:
        self.path = path or (settings or Settings()).data_dir / CACHE_FILE_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
    paper: Paper, *, backend: LLMBackend, settings: Settings, embedder: Embedder, cache: SummaryCache
) -> Generator[str, None, Summary]:
    prompt = load_prompt("summarize")
    cached = cache.get(paper, backend.model, prompt.version)
    if cached is not None:
        yield cached.summary
        return cached.model_copy(update={"cached": True})

    messages = prompt.render(source=fence_sources([(1, paper.title, paper.abstract)]))
    generation = backend.generate(
        messages, max_tokens=min(settings.max_answer_tokens, SUMMARY_MAX_TOKENS), temperature=settings.temperature
    )
    yield from generation
    text = one_paragraph(strip_echoed_prompt(generation.text))
    common = {"paper_id": paper.paper_id, "title": paper.title, "model": generation.model, "usage": generation.usage}

    fallback_reason = None
    unsupported: list[str] = []
    if word_count(text) < MIN_WORDS:
        fallback_reason = f"The model's summary was shorter than {MIN_WORDS} words"
    else:
        report = check_support(text, [paper.abstract], embedder)
        unsupported = list(report.unsupported)
        if mostly_unsupported(report.unsupported_share):
            fallback_reason = "Most of the model's summary was not grounded in the abstract"
    if fallback_reason:
        summary = Summary(
            **common,
            summary=extractive_paragraph(paper.abstract, embedder),
            extractive=True,
            notices=[f"{fallback_reason}, so the abstract's key sentences are shown instead."],
        )
    else:
        summary = Summary(**common, summary=text, unsupported=unsupported)
    cache.put(paper, backend.model, prompt.version, summary)
    return summary


def stream_summary(
    paper: Paper,
    *,
    backend: LLMBackend | None = None,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    cache: SummaryCache | None = None,
) -> Streamed[Summary]:
    """Like :func:`summarize`, but the model's words can be shown as they arrive."""
    settings = settings or Settings()
    if backend is None:
        from assistant.llm import build_backend

        backend = build_backend(settings)
    return Streamed(
        _summary_steps(
            paper,
            backend=backend,
            settings=settings,
            embedder=embedder or build_embedder(settings),
            cache=cache or SummaryCache(settings),
        )
    )


def summarize(
    paper: Paper,
    *,
    backend: LLMBackend | None = None,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    cache: SummaryCache | None = None,
) -> Summary:
    """One paragraph (60-150 words): the paper's problem, approach and result, from its whole abstract."""
    return stream_summary(paper, backend=backend, settings=settings, embedder=embedder, cache=cache).result
