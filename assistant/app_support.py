"""Everything the Streamlit pages need that is not display, testable without Streamlit.

The pages (``streamlit_app.py`` and ``app_pages/``) only lay out widgets and call into
this module and the service; nothing here imports streamlit. It holds:

* the model picker's presets and how a choice becomes :class:`Settings`;
* the builders of the heavy objects (store, retriever, assistant, conversations) and
  the keys the app caches them under, plus a hook that serves a model with a given
  backend (tests inject a :class:`FakeLLM` through it);
* Markdown that is safe to render: text from abstracts, uploads and models can
  neither inject HTML nor links, and citations ``[n]`` become links to source cards;
* Markdown exports, collection statistics, the paper map, and first-start ingestion.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from pydantic import ValidationError

from assistant.backend import FakeLLM, Generation, LLMBackend, LLMError
from assistant.compare import short_title, table_markdown
from assistant.conversations import ConversationNotFound, ConversationStore
from assistant.digest import digest_markdown
from assistant.llm import LOCAL_MODELS, describe_requirements
from assistant.models import Comparison, Digest, IngestReport, Message, Paper, Problem, ReadResult, Source, Usage
from assistant.retrieval import Retriever
from assistant.service import AmbiguousPaper, PaperAssistant, PaperNotFound
from assistant.settings import DEFAULT_LOCAL_MODEL, SAMPLE_COLLECTION, Settings
from assistant.store import EmbedderMismatch, PaperStore, StoreUnavailable
from ingestion.errors import IngestionError
from ingestion.pipeline import ingest_papers, ingest_paths
from ingestion.readers import read_bytes

UPLOAD_TYPES = ("txt", "json", "jsonl", "csv")


# --- model presets -------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelPreset:
    """One entry of the model picker; ``model`` is empty when the user types the model string."""

    label: str
    model: str = ""
    needs_api_base: bool = False
    placeholder: str = ""


OPENAI_COMPATIBLE = "OpenAI-compatible server (llama.cpp, vLLM, LM Studio…)"
ANY_LITELLM = "Any litellm model string"

MODEL_PRESETS: tuple[ModelPreset, ...] = (
    *(
        ModelPreset(
            # "SmolLM2-135M-Instruct (Q4_1, ~100 MB), chat-tuned" -> "Offline: SmolLM2-135M-Instruct"
            f"Offline{' (default)' if spec.model_string == DEFAULT_LOCAL_MODEL else ''}: {spec.description.split(' (')[0]}",
            spec.model_string,
        )
        for spec in sorted(LOCAL_MODELS.values(), key=lambda spec: spec.model_string != DEFAULT_LOCAL_MODEL)
    ),
    ModelPreset("OpenAI: gpt-4o-mini", "openai/gpt-4o-mini"),
    ModelPreset("Anthropic: claude-3-5-haiku-latest", "anthropic/claude-3-5-haiku-latest"),
    ModelPreset("Ollama: llama3.2", "ollama/llama3.2"),
    ModelPreset(OPENAI_COMPATIBLE, needs_api_base=True, placeholder="name of the served model, e.g. qwen2.5-7b-instruct"),
    ModelPreset(ANY_LITELLM, placeholder="e.g. groq/llama-3.1-8b-instant or gemini/gemini-2.0-flash"),
)
PRESET_LABELS = [preset.label for preset in MODEL_PRESETS]


def preset_named(label: str) -> ModelPreset:
    return MODEL_PRESETS[PRESET_LABELS.index(label)]


@dataclass(frozen=True)
class PickerDefaults:
    """What the model picker shows before the user touches it: the configured model."""

    label: str
    typed_model: str
    api_base: str


def picker_defaults(settings: Settings) -> PickerDefaults:
    """The preset that matches ``settings.model`` (and API base), else a typed model string."""
    api_base = settings.api_base_str or ""
    if api_base and settings.model.startswith("openai/"):
        return PickerDefaults(OPENAI_COMPATIBLE, settings.model.removeprefix("openai/"), api_base)
    for preset in MODEL_PRESETS:
        if preset.model and preset.model == settings.model:
            return PickerDefaults(preset.label, "", api_base)
    return PickerDefaults(ANY_LITELLM, settings.model, api_base)


@dataclass(frozen=True)
class ModelChoice:
    model: str
    api_base: str | None = None


def model_choice(label: str, typed_model: str = "", api_base: str = "") -> ModelChoice:
    """The model string (and server) a picker state stands for; ValueError says what is missing."""
    preset = preset_named(label)
    if preset.model:
        return ModelChoice(preset.model)
    typed = typed_model.strip()
    if not typed:
        raise ValueError(f"Type a model name for “{label}” ({preset.placeholder}).")
    if preset.needs_api_base:
        if not api_base.strip():
            raise ValueError("Give the server's base URL, e.g. http://127.0.0.1:8080/v1.")
        # litellm reaches OpenAI-compatible servers through its openai provider.
        model = typed if typed.startswith("openai/") else f"openai/{typed}"
        return ModelChoice(model, api_base.strip())
    return ModelChoice(typed)


def session_settings(base: Settings, choice: ModelChoice, top_k: int) -> Settings:
    """``base`` with the picked model and retrieval depth, validated (ValueError with the reason)."""
    values = {**base.model_dump(), "model": choice.model, "top_k": top_k}
    if choice.api_base is not None or choice.model != base.model:
        # A server address belongs to the model it was configured for.
        values["api_base"] = choice.api_base
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors())
        raise ValueError(f"These settings are not valid: {reasons}") from None


def model_requirements(settings: Settings) -> str | None:
    """What the chosen model needs that is missing (a key, a package, a server), for the picker."""
    if settings.model in _backend_overrides:
        return None
    return describe_requirements(settings.model, settings)


# --- backends: the injection hook and a quoting demo model ----------------------------------
_backend_overrides: dict[str, LLMBackend] = {}

QUOTING_FAKE_MODEL = "fake/quote"
_SOURCE_BLOCK = re.compile(r'<source n="(\d+)"[^>]*>\n(.*?)\n</source>', re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


def use_backend(model: str, backend: LLMBackend | None) -> None:
    """Serve ``model`` with ``backend`` in this process from now on (None stops it).

    For tests and for embedding the app: AppTest runs the pages in the test's process,
    so a test can script a :class:`FakeLLM` here and read what it was asked.
    """
    if backend is None:
        _backend_overrides.pop(model, None)
    else:
        _backend_overrides[model] = backend


class QuotingFakeLLM(FakeLLM):
    """A deterministic stand-in model (``ASSISTANT_MODEL=fake/quote``) that never needs a key.

    It answers every prompt with the first sentences of the first source it was given,
    cited ``[n]``: grounded answers with real citations, for demos and browser tests
    of a whole app that runs in another process. Prompts without sources get
    ``default_reply``; replies queued with ``enqueue`` still come first.
    """

    SENTENCES = 2

    def __init__(self) -> None:
        super().__init__(model=QUOTING_FAKE_MODEL)

    def generate(
        self, messages: Sequence[Message], *, max_tokens: int | None = None, temperature: float | None = None
    ) -> Generation:
        with self._lock:
            queued = bool(self._queue)
        if queued or not messages:
            return super().generate(messages, max_tokens=max_tokens, temperature=temperature)
        reply = self.quote(messages[-1].content) or self.default_reply
        with self._lock:
            self.history.append(list(messages))
        prompt_tokens = sum(self.count_tokens(m.content) for m in messages)
        words = reply.split(" ")
        pieces = iter([word + " " for word in words[:-1]] + words[-1:])
        return Generation(
            pieces,
            model=self.model,
            usage_of=lambda text: Usage(prompt_tokens=prompt_tokens, completion_tokens=self.count_tokens(text)),
        )

    @classmethod
    def quote(cls, prompt: str) -> str:
        found = _SOURCE_BLOCK.search(prompt)
        if found is None:
            return ""
        n, text = found.group(1), " ".join(found.group(2).split())
        sentences = [s for s in _SENTENCE_END.split(text) if s][: cls.SENTENCES]
        return " ".join(f"{sentence.rstrip('.!? ')} [{n}]." for sentence in sentences)


def backend_for(settings: Settings) -> LLMBackend | None:
    """The backend injected for ``settings.model``, the quoting demo model, or None (the service builds one)."""
    if settings.model in _backend_overrides:
        return _backend_overrides[settings.model]
    if settings.model == QUOTING_FAKE_MODEL:
        return QuotingFakeLLM()
    return None


# --- heavy objects and their cache keys --------------------------------------------------
_STORE_FIELDS = {
    "data_dir",
    "store_dir",
    "chroma_url",
    "collection",
    "embedding_model",
    "embedding_batch_size",
    "embedding_threads",
    "chunk_tokens",
    "chunk_overlap_tokens",
}
_RETRIEVAL_FIELDS = _STORE_FIELDS | {"hybrid", "rrf_k", "dense_weight", "bm25_weight"}


def store_key(settings: Settings) -> str:
    """Settings that decide which store is opened and how it embeds: one open store per key."""
    return settings.model_dump_json(include=_STORE_FIELDS)


def retriever_key(settings: Settings) -> str:
    return settings.model_dump_json(include=_RETRIEVAL_FIELDS)


def assistant_key(settings: Settings) -> str:
    """Every setting can change an answer; an injected backend is part of the key so a new one takes effect."""
    injected = _backend_overrides.get(settings.model)
    return settings.model_dump_json() + (f"#backend-{id(injected)}" if injected is not None else "")


def conversations_key(settings: Settings) -> str:
    return str(settings.data_dir.resolve())


def open_store(settings: Settings) -> PaperStore:
    return PaperStore(settings)


def open_retriever(store: PaperStore, settings: Settings) -> Retriever:
    return Retriever(store, settings)


def open_assistant(settings: Settings, store: PaperStore, retriever: Retriever) -> PaperAssistant:
    """The facade for one session's settings, sharing the store and retriever of every session."""
    return PaperAssistant(settings, store=store, retriever=retriever, backend=backend_for(settings))


def open_conversations(settings: Settings) -> ConversationStore:
    return ConversationStore(settings)


def store_description(settings: Settings) -> str:
    """Which store is open, for the sidebar."""
    where = settings.chroma_url_str or str(settings.resolved_store_dir)
    return f"collection “{settings.collection}” in {where}"


# --- errors --------------------------------------------------------------------------------
EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    LLMError,
    StoreUnavailable,
    EmbedderMismatch,
    IngestionError,
    PaperNotFound,
    AmbiguousPaper,
    ConversationNotFound,
    ValueError,
)
"""Failures a page shows as an ``st.error`` and carries on from."""


def error_message(exc: BaseException) -> str:
    """One actionable sentence or two for a failure, never a traceback."""
    detail = str(exc).strip() or type(exc).__name__
    if isinstance(exc, LLMError):
        return f"The language model failed: {detail.rstrip('.')}. Pick another model in the sidebar, or try again."
    if isinstance(exc, StoreUnavailable):
        return f"The paper store is unavailable: {detail}"
    if isinstance(exc, EmbedderMismatch):
        return f"{detail} Rebuild it with `paper-assistant ingest --rebuild PATH...`."
    if isinstance(exc, IngestionError):
        return f"Nothing could be read: {detail}"
    if isinstance(exc, ConversationNotFound):
        return "That conversation no longer exists (deleted in another window); a new one was started."
    return detail


# --- safe Markdown ------------------------------------------------------------------------
# Every ASCII punctuation character CommonMark lets a backslash escape, minus those that
# only matter next to the others (",", ";", "?", "/", "@", "%", "'", '"'): escaped, a
# string shows literally whatever it holds — HTML, links, emphasis, Streamlit's
# ":color[...]" directives, emoji shortcodes, "$" LaTeX.
_LITERAL_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&$:~^=])")
# Model text keeps its emphasis and lists but can open no HTML tag, link, image, directive,
# shortcode or formula. One character at a time, so it also works on streamed pieces.
_MODEL_SPECIALS = re.compile(r"([\\<>&\[\]$:])")
_CITATION = re.compile(r"\[(\d+)\]")


def literal_markdown(text: str) -> str:
    """``text`` as Markdown that displays exactly these characters (titles, abstracts, user messages)."""
    lines = [_LITERAL_SPECIALS.sub(r"\\\1", line.strip()) for line in text.splitlines()]
    return "  \n".join(lines)


def inline_literal(text: str) -> str:
    """Like :func:`literal_markdown`, on one line (labels, table headers)."""
    return _LITERAL_SPECIALS.sub(r"\\\1", " ".join(text.split()))


def model_markdown(text: str) -> str:
    """Model text made inert: emphasis and lists stay, HTML, links and directives show as typed."""
    return _MODEL_SPECIALS.sub(r"\\\1", text)


def safe_stream(pieces: Iterable[str]) -> Iterator[str]:
    """Streamed model text made inert piece by piece, for ``st.write_stream``."""
    for piece in pieces:
        yield model_markdown(piece)


_SLUG_SAFE = re.compile(r"^[a-z0-9 ]+$")


@dataclass(frozen=True)
class SourceHeading:
    """The heading of a source card and the anchor Streamlit derives from it (lower-case, spaces to dashes)."""

    text: str
    anchor: str


def source_heading(n: int, scope: str) -> SourceHeading:
    """``Source 2 of reply 3``: a heading whose anchor is predictable, so ``[2]`` can link to it.

    Streamlit gives each Markdown heading an id slugged from its text; with only ASCII
    letters, digits and spaces that slug is the text lower-cased with dashes for spaces.
    """
    if not _SLUG_SAFE.match(scope):
        raise ValueError(f"a source scope is lower-case letters, digits and spaces, got {scope!r}")
    text = f"Source {n} of {scope}"
    return SourceHeading(text=text, anchor=text.lower().replace(" ", "-"))


def _linked_citations(text: str, numbers: set[int], scope: str) -> str:
    """Inert ``text`` whose ``[n]`` for known sources link to their cards."""
    parts = []
    position = 0
    for match in _CITATION.finditer(text):
        parts.append(model_markdown(text[position : match.start()]))
        n = int(match.group(1))
        if n in numbers:
            parts.append(f"[\\[{n}\\]](#{source_heading(n, scope).anchor})")
        else:
            parts.append(model_markdown(match.group(0)))
        position = match.end()
    parts.append(model_markdown(text[position:]))
    return "".join(parts)


FLAG = "⚠"


def cited_markdown(text: str, sources: Sequence[Source], scope: str, unsupported: Sequence[str] = ()) -> str:
    """Model text as safe Markdown: citations link to source cards, unsupported sentences are marked.

    A sentence the support check could not ground is shown on an orange background after
    a warning sign; one that cannot be found verbatim (rewritten since) is left as is —
    the page lists it separately.
    """
    numbers = {source.n for source in sources}
    spans: list[tuple[int, int]] = []
    for sentence in unsupported:
        start = text.find(sentence) if sentence.strip() else -1
        if start >= 0 and not any(start < end and start + len(sentence) > begin for begin, end in spans):
            spans.append((start, start + len(sentence)))
    parts = []
    position = 0
    for start, end in sorted(spans):
        parts.append(_linked_citations(text[position:start], numbers, scope))
        flagged = _linked_citations(" ".join(text[start:end].split()), numbers, scope)
        parts.append(f":orange-background[{FLAG} {flagged}]")
        position = end
    parts.append(_linked_citations(text[position:], numbers, scope))
    return "".join(parts)


def cited_numbers(text: str) -> set[int]:
    return {int(n) for n in _CITATION.findall(text)}


def cited_sources(text: str, sources: Sequence[Source]) -> list[Source]:
    """The sources ``text`` cites; all of them when it cites none (a summary is of its one source)."""
    cited = cited_numbers(text)
    return [source for source in sources if source.n in cited] or list(sources)


def unmarked_unsupported(text: str, unsupported: Sequence[str]) -> list[str]:
    """Flagged sentences that :func:`cited_markdown` could not mark inside ``text``."""
    return [sentence for sentence in unsupported if sentence.strip() and sentence not in text]


# --- comparisons ---------------------------------------------------------------------------
def comparison_rows(comparison: Comparison, scope: str) -> list[dict[str, str]]:
    """The comparison as table rows of safe Markdown: one row per aspect, a column per paper."""
    sources = [Source(n=n, paper_id=p.paper_id, title=p.title, text="") for n, p in enumerate(comparison.papers, start=1)]
    headers = [f"\\[{n}\\] {inline_literal(short_title(p.title))}" for n, p in enumerate(comparison.papers, start=1)]
    rows = []
    for aspect in comparison.aspects:
        row = {"Aspect": f"**{inline_literal(aspect.aspect)}**"}
        for header, paper in zip(headers, comparison.papers, strict=True):
            cell = " ".join(aspect.cells.get(paper.paper_id, "not stated in the abstract").split())
            row[header] = cited_markdown(cell, sources, scope)
        rows.append(row)
    return rows


def _sources_markdown(sources: Sequence[Source]) -> str:
    lines = [f"{s.n}. [{s.title}]({s.link})" if s.link else f"{s.n}. {s.title}" for s in sources]
    return "\n".join(["## Sources", "", *lines])


def comparison_export(comparison: Comparison, sources: Sequence[Source]) -> str:
    """A comparison as a Markdown file: the cited table, the narrative, notes and the sources."""
    title = " vs ".join(short_title(paper.title) for paper in comparison.papers)
    parts = [f"# Comparison: {title}", table_markdown(comparison.papers, comparison.aspects), comparison.narrative]
    if comparison.unsupported:
        parts.append("Not supported by the abstracts: " + " ".join(comparison.unsupported))
    parts += [f"_{notice}_" for notice in comparison.notices]
    parts.append(_sources_markdown(sources))
    return "\n\n".join(parts) + "\n"


def digest_export(digest: Digest, papers: Sequence[Paper]) -> str:
    """A digest as a Markdown file: one section per theme, its cited paragraph and its papers."""
    by_id = {paper.paper_id: paper for paper in papers}
    titles = {
        paper_id: f"[{paper.title}]({paper.link})" if paper.link else paper.title
        for paper_id, paper in by_id.items()
    }
    count = sum(len(theme.paper_ids) for theme in digest.themes)
    header = f"# Digest of {count} papers in {len(digest.themes)} themes"
    return f"{header}\n\n{digest_markdown(digest, titles)}\n"


def theme_sources(paper_ids: Sequence[str], papers: Sequence[Paper]) -> list[Source]:
    """A theme's papers numbered as its paragraph cites them."""
    by_id = {paper.paper_id: paper for paper in papers}
    return [
        Source(n=n, paper_id=pid, title=by_id[pid].title, text=by_id[pid].abstract, link=by_id[pid].link)
        for n, pid in enumerate(paper_ids, start=1)
        if pid in by_id
    ]


_FILE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def download_name(title: str, suffix: str = ".md") -> str:
    """A portable file name for an export."""
    stem = _FILE_NAME_UNSAFE.sub("-", title).strip("-.")[:60] or "export"
    return f"{stem}{suffix}"


# --- collection ---------------------------------------------------------------------------
_first_start_lock = threading.Lock()


def ensure_sample(store: PaperStore, progress: Callable[[int, int], None] | None = None) -> IngestReport | None:
    """Ingest the bundled sample when the store is empty; None when it already holds papers.

    Serialised in the process: two first visits at once ingest the sample once, the
    second waits and finds it there.
    """
    with _first_start_lock:
        if store.count_chunks() > 0:
            return None
        return ingest_paths([SAMPLE_COLLECTION], store=store, progress=progress)


def read_uploads(files: Iterable[tuple[str, bytes]]) -> ReadResult:
    """Papers and per-record problems of uploaded files; a file that cannot be read at all is one problem."""
    combined = ReadResult()
    for name, data in files:
        try:
            result = read_bytes(data, name)
        except IngestionError as exc:
            reason = str(exc).removeprefix(f"{name}: ")
            combined.problems.append(Problem(source=name, location="", reason=reason))
            continue
        combined.papers.extend(result.papers)
        combined.problems.extend(result.problems)
    return combined


def ingest_uploads(
    files: Iterable[tuple[str, bytes]], store: PaperStore, progress: Callable[[int, int], None] | None = None
) -> IngestReport:
    """Read and ingest uploads; the report lists every record that was skipped and why."""
    read = read_uploads(files)
    if not read.papers:
        return IngestReport(problems=read.problems, total_papers=len(store.paper_index()))
    return ingest_papers(read, store=store, progress=progress)


def plural(count: int, noun: str) -> str:
    """``1 chunk``, ``2 chunks`` (regular nouns only)."""
    return f"{count} {noun if count == 1 else noun + 's'}"


def problem_rows(problems: Sequence[Problem]) -> list[dict[str, str]]:
    return [{"file": p.source, "where": p.location or "whole file", "problem": p.reason} for p in problems]


@dataclass(frozen=True)
class CollectionStats:
    papers: int
    chunks: int
    sources: dict[str, int]
    first_published: date | None
    last_published: date | None
    with_links: int


def collection_stats(papers: Sequence[Paper], chunks: int) -> CollectionStats:
    dates = sorted(paper.published for paper in papers if paper.published is not None)
    return CollectionStats(
        papers=len(papers),
        chunks=chunks,
        sources=dict(Counter(paper.source or "unknown" for paper in papers).most_common()),
        first_published=dates[0] if dates else None,
        last_published=dates[-1] if dates else None,
        with_links=sum(1 for paper in papers if paper.link),
    )


@dataclass(frozen=True)
class MapPoint:
    paper_id: str
    title: str
    x: float
    y: float
    theme: str


def paper_map(store: PaperStore) -> list[MapPoint]:
    """Each paper on the first two principal components of its vector, labelled with its theme."""
    from assistant.themes import cluster_papers, project_2d, theme_keywords

    vectors = store.paper_vectors()
    if not vectors:
        return []
    clusters = cluster_papers(vectors)
    papers = store.get_papers(list(vectors))
    keywords = theme_keywords(list(papers.values()), clusters, n=3)
    theme_of = {
        paper_id: f"{number}. {', '.join(words) or 'miscellaneous'}"
        for number, (cluster, words) in enumerate(zip(clusters, keywords, strict=True), start=1)
        for paper_id in cluster
    }
    coordinates = project_2d(vectors)
    return [
        MapPoint(paper_id=pid, title=papers[pid].title, x=x, y=y, theme=theme_of[pid])
        for pid, (x, y) in coordinates.items()
        if pid in papers
    ]


# --- the paper list ------------------------------------------------------------------------
SORT_ORDERS: dict[str, Callable[[Sequence[Paper]], list[Paper]]] = {
    "Title (A–Z)": lambda papers: sorted(papers, key=lambda p: p.title.casefold()),
    "Title (Z–A)": lambda papers: sorted(papers, key=lambda p: p.title.casefold(), reverse=True),
    "Newest first": lambda papers: sorted(papers, key=lambda p: (p.published or date.min, p.title.casefold()), reverse=True),
    "Oldest first": lambda papers: sorted(papers, key=lambda p: (p.published or date.max, p.title.casefold())),
    "Source file": lambda papers: sorted(papers, key=lambda p: (p.source.casefold(), p.title.casefold())),
}


def filter_papers(papers: Sequence[Paper], query: str) -> list[Paper]:
    """Papers whose title, authors, abstract or id contain every word of ``query`` (any case)."""
    words = query.casefold().split()
    if not words:
        return list(papers)

    def haystack(paper: Paper) -> str:
        return " ".join([paper.title, " ".join(paper.authors), paper.abstract, paper.paper_id]).casefold()

    return [paper for paper in papers if all(word in haystack(paper) for word in words)]


def paper_details(paper: Paper) -> str:
    """Authors, date, id and link of a paper as one safe Markdown line."""
    parts = []
    if paper.authors:
        shown = ", ".join(paper.authors[:6]) + (f" and {len(paper.authors) - 6} more" if len(paper.authors) > 6 else "")
        parts.append(inline_literal(shown))
    if paper.published:
        parts.append(paper.published.isoformat())
    parts.append(f"`{paper.paper_id.replace('`', '')}`")
    if paper.link:
        parts.append(link_markdown(paper.link, "arXiv" if "arxiv.org" in paper.link else "link"))
    return " · ".join(parts)


_SAFE_URL = re.compile(r"^https?://[^\s()<>]+$")


def link_markdown(url: str, label: str) -> str:
    """A Markdown link for an http(s) URL; anything else (javascript:, spaces) is shown as text."""
    if _SAFE_URL.match(url):
        return f"[{inline_literal(label)} ↗]({url})"
    return inline_literal(url)


def ask_about(paper: Paper) -> str:
    """The chat question the Papers page's “Ask about this paper” sends."""
    return f"What is “{paper.title}” about, and what are its main results?"


def clarified_question(message: str, mention: str, title: str) -> str:
    """The clarified message with the ambiguous name replaced by the chosen paper's full title."""
    if mention and mention in message:
        return message.replace(mention, f"“{title}”", 1)
    return f"{message} (I mean “{title}”)"


def conversation_title(first_message: str, limit: int = 60) -> str:
    """A new conversation's title: its first message, cut at a word."""
    flat = " ".join(first_message.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0] + "…"
