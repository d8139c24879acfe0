"""Pydantic models for everything that crosses a module, process or UI boundary."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date
from pathlib import PureWindowsPath

from pydantic import BaseModel, ConfigDict, Field, computed_field

from assistant.outcomes import Outcome, Reason


class Paper(BaseModel):
    """One paper as the collection knows it: an abstract and its metadata."""

    model_config = ConfigDict(frozen=True)

    paper_id: str = Field(min_length=1, description="arXiv id when known, else derived from the normalised title")
    title: str = Field(min_length=1)
    abstract: str = Field(min_length=1)
    authors: list[str] = Field(default_factory=list)
    published: date | None = Field(default=None, description="Publication date (arXiv's first version)")
    listed: date | None = Field(
        default=None,
        description="The day the paper was listed on the Daily Papers page or feed: the date users mean",
    )
    url: str | None = None
    arxiv_id: str | None = None
    source: str = Field(default="", description="File or feed the paper was read from")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def content_hash(self) -> str:
        """Changes exactly when what is embedded or shown changes."""
        digest = hashlib.sha256()
        for part in (self.title, self.abstract, "\x1f".join(self.authors), str(self.published or ""), self.url or ""):
            digest.update(part.encode("utf-8"))
            digest.update(b"\x1e")
        if self.listed is not None:  # only when known, so stores written before listed days keep their hashes
            digest.update(f"listed={self.listed}".encode())
        return digest.hexdigest()[:16]

    @property
    def day(self) -> date | None:
        """The day a question about dates means: the listing day, else the publication date."""
        return self.listed or self.published

    @property
    def link(self) -> str | None:
        if self.url:
            return self.url
        if self.arxiv_id:
            return f"https://arxiv.org/abs/{self.arxiv_id}"
        return None


def chunk_id_of(paper_id: str, index: int) -> str:
    """The id of a paper's chunk number ``index``: stable across re-ingests."""
    return f"{paper_id}:{index}"


def paper_id_of(chunk_id: str) -> str:
    """The paper of a chunk id ('paper_id:n', as ingestion writes them)."""
    return chunk_id.rsplit(":", 1)[0]


class DateRange(BaseModel):
    """An inclusive range of days (a question's "last week", a ``--since/--until`` pair)."""

    model_config = ConfigDict(frozen=True)

    start: date
    end: date

    def contains(self, day: date | None) -> bool:
        return day is not None and self.start <= day <= self.end


class Chunk(BaseModel):
    """A token-bounded piece of one abstract, embedded and indexed on its own."""

    model_config = ConfigDict(frozen=True)

    chunk_id: str = Field(description="'paper_id:n', stable across re-ingests")
    paper_id: str
    index: int = Field(ge=0)
    text: str = Field(min_length=1)
    title: str
    token_count: int = Field(ge=1)

    @property
    def embedding_text(self) -> str:
        """The title travels with every chunk so that each one can be found by the paper's topic."""
        return f"{self.title}\n{self.text}"


class Problem(BaseModel):
    """A record (or file) that could not be ingested, with where and why."""

    source: str
    location: str = Field(description="'line 12', 'record 3', 'row 7' or '' for the whole file")
    reason: str

    @property
    def line(self) -> str:
        """``FILE line 12: reason``, as the CLI lists skipped records."""
        return f"{' '.join(part for part in (self.source, self.location) if part)}: {self.reason}"


class ReadResult(BaseModel):
    """Papers read from files or a feed, the records that could not be read, and where each paper was read."""

    papers: list[Paper] = Field(default_factory=list)
    problems: list[Problem] = Field(default_factory=list)
    locations: list[str] = Field(
        default_factory=list, description="Line, record or row of each paper in its source ('' when unknown)"
    )
    duplicates_merged: int = Field(default=0, description="Records that only repeated a paper, merged into it")

    def extend(self, other: ReadResult) -> None:
        """Add another read's papers (with where each was read), problems and merge count."""
        self.papers.extend(other.papers)
        self.locations.extend(
            other.locations if len(other.locations) == len(other.papers) else [""] * len(other.papers)
        )
        self.problems.extend(other.problems)
        self.duplicates_merged += other.duplicates_merged


class Replacement(BaseModel):
    """A stored paper whose text or metadata an ingest replaced: which source replaced which."""

    paper_id: str
    title: str
    source: str = Field(description="File (and line) read now, whose record is kept")
    replaced_source: str = Field(description="File the stored copy was read from")
    fields: list[str] = Field(description="What differed: title, abstract, authors, date, link")


class AddressedAbstract(BaseModel):
    """A paper whose abstract gives orders to an AI model or its reader ("note to the AI: ...")."""

    paper_id: str
    title: str
    sentences: list[str] = Field(description="The sentences that give orders, as written; never used as evidence")


class IngestReport(BaseModel):
    """What an ingest did; ``ingest --json`` prints it (fields are only ever added)."""

    papers_added: int = 0
    papers_updated: int = 0
    papers_unchanged: int = 0
    chunks_written: int = 0
    total_papers: int = 0
    problems: list[Problem] = Field(default_factory=list)
    duplicates_merged: int = Field(
        default=0, description="Records that only repeated a paper read before them, merged without losing anything"
    )
    replaced: list[Replacement] = Field(
        default_factory=list,
        description="Stored papers this ingest replaced with a differing record: which source replaced which",
    )
    addressed_to_model: list[AddressedAbstract] = Field(
        default_factory=list,
        description="Papers written now whose abstract addresses an AI model: kept as written, marked in the app, "
        "never quoted or used as evidence",
    )
    days_fetched: list[date] = Field(
        default_factory=list,
        description="Days asked of the Hugging Face feed by this run (days that listed nothing too)",
    )
    days_skipped: list[date] = Field(
        default_factory=list, description="Days of the range fetched by an earlier run, not asked again"
    )
    days_empty: list[date] = Field(default_factory=list, description="Days fetched that listed no paper")


class PaperStats(BaseModel):
    """A stored paper with its chunk count, as listed by `paper-assistant papers`."""

    paper: Paper
    chunks: int = Field(ge=0)


def shown_source(source: str) -> str:
    """A paper's source as listings show it: a file by its name, never a path of the machine that
    ingested it (``GET /v1/papers`` showed the server's absolute path of the bundled sample); a
    feed (``hf:2024-08-19``) or an address as it is."""
    if not source or "://" in source or not any(sep in source for sep in ("/", "\\")):
        return source
    return PureWindowsPath(source).name or source


class PaperEntry(BaseModel):
    """One paper as ``papers --json`` and ``GET /v1/papers`` list it."""

    paper_id: str
    title: str
    authors: list[str]
    published: date | None
    listed: date | None = None
    url: str | None
    source: str
    chunks: int


class PaperList(BaseModel):
    """``paper-assistant papers --json`` and ``GET /v1/papers``."""

    total: int
    papers: list[PaperEntry]

    @classmethod
    def of(cls, stats: Sequence[PaperStats]) -> PaperList:
        return cls(
            total=len(stats),
            papers=[
                PaperEntry(
                    paper_id=s.paper.paper_id,
                    title=s.paper.title,
                    authors=s.paper.authors,
                    published=s.paper.published,
                    listed=s.paper.listed,
                    url=s.paper.link,
                    source=shown_source(s.paper.source),
                    chunks=s.chunks,
                )
                for s in stats
            ],
        )


class Hit(BaseModel):
    """One retrieved paper: its best-matching chunk and how it ranked."""

    paper: Paper
    chunk_id: str
    text: str = Field(description="The best-matching chunk of this paper")
    score: float = Field(description="Fused score (higher is better); cosine similarity when dense-only")
    similarity: float | None = Field(default=None, description="Cosine similarity of the best chunk to the query")
    dense_rank: int | None = None
    bm25_rank: int | None = None


class SearchHit(BaseModel):
    """One paper as ``search --json`` and ``GET /v1/search`` give it."""

    paper_id: str
    title: str
    score: float = Field(description="Fused score, rounded to 6 places")
    similarity: float | None = Field(description="Cosine similarity of the best chunk, rounded to 4 places")
    text: str


class SearchResults(BaseModel):
    """``paper-assistant search --json`` and ``GET /v1/search``."""

    query: str
    hits: list[SearchHit]

    @classmethod
    def of(cls, query: str, hits: Sequence[Hit]) -> SearchResults:
        return cls(
            query=query,
            hits=[
                SearchHit(
                    paper_id=h.paper.paper_id,
                    title=h.paper.title,
                    score=round(h.score, 6),
                    similarity=None if h.similarity is None else round(h.similarity, 4),
                    text=h.text,
                )
                for h in hits
            ],
        )


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class Message(BaseModel):
    role: str = Field(pattern="^(system|user|assistant)$")
    content: str


class Source(BaseModel):
    """A numbered source as it was placed in the prompt; citations `[n]` point here."""

    n: int = Field(ge=1)
    paper_id: str
    title: str
    text: str
    link: str | None = None

    @classmethod
    def of(cls, n: int, paper: Paper, text: str | None = None) -> Source:
        """Paper ``paper`` as source ``[n]``, with ``text`` (a chunk, some sentences) or its whole abstract."""
        return cls(n=n, paper_id=paper.paper_id, title=paper.title, text=text or paper.abstract, link=paper.link)


class Citation(BaseModel):
    n: int = Field(ge=1)
    paper_id: str
    title: str
    url: str | None = Field(default=None, description="The paper's own page (arXiv, Hugging Face), when known")


class Answer(BaseModel):
    question: str
    text: str
    citations: list[Citation] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    unsupported: list[str] = Field(default_factory=list, description="Sentences the support check could not ground")
    refused: bool = Field(default=False, description="The collection does not cover the question")
    extractive: bool = Field(default=False, description="The model's text was replaced by the abstracts' own sentences")
    outcome: Outcome = Field(default=Outcome.ANSWER, description="What the user got (assistant.outcomes.Outcome)")
    reason: Reason = Field(default=Reason.GROUNDED, description="Why (assistant.outcomes.Reason)")
    notices: list[str] = Field(
        default_factory=list, description="Things the user should know (dropped context, fallbacks)"
    )
    model: str = ""
    usage: Usage = Field(default_factory=Usage)


class PaperRef(BaseModel):
    paper_id: str
    title: str


class ComparisonAspect(BaseModel):
    aspect: str
    cells: dict[str, str] = Field(description="paper_id -> cited text, or 'not stated in the abstract'")


class Comparison(BaseModel):
    papers: list[PaperRef]
    aspects: list[ComparisonAspect]
    narrative: str
    unsupported: list[str] = Field(default_factory=list)
    notices: list[str] = Field(default_factory=list)
    model: str = ""
    usage: Usage = Field(default_factory=Usage)


class Summary(BaseModel):
    paper_id: str
    title: str
    summary: str
    unsupported: list[str] = Field(default_factory=list)
    extractive: bool = Field(default=False, description="The model's text was replaced by abstract sentences")
    cached: bool = False
    notices: list[str] = Field(default_factory=list)
    model: str = ""
    usage: Usage = Field(default_factory=Usage)


class Theme(BaseModel):
    name: str
    paper_ids: list[str]
    paragraph: str
    unsupported: list[str] = Field(default_factory=list)


class Digest(BaseModel):
    themes: list[Theme]
    model: str = ""
    usage: Usage = Field(default_factory=Usage)
