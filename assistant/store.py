"""The paper store: Chroma, embedded on disk or as a server. The only module importing chromadb.

One Chroma record per chunk. Chunk 0 of each paper carries the whole paper (abstract
and metadata) and is written after the paper's other chunks, so it doubles as a
commit marker: a paper whose chunk 0 is missing was interrupted mid-write and its
leftover chunks are removed before the next write.

Dates are chunk metadata so that Chroma filters on them (``where``): ``published_ordinal``
(publication date), ``listed_ordinal`` (the day it was listed on the Daily Papers) and
``day_ordinal`` (the listed day, else the publication date: what dated questions filter on).
A collection written before listed days (schema version 1) has no ``day_ordinal``; it is
backfilled from ``published_ordinal`` the first time the collection is opened for writing
(schema version 2 after that): one metadata update per chunk, no embedding. Measured
(``python -m benchmarks.backfill_days``, the 9,872 papers of the Daily Papers archive, 9,872
chunks): 5.0 s of CPU, once, on 2 cores shared with a load average of 22 (20 s of wall time there);
opening the store afterwards takes 0.02 s as before. On open rather than at the next ingest,
because a store that is only read (the app, ``serve``) would otherwise never answer dated questions.

The days fetched from the Hugging Face feed (:mod:`ingestion.hf_feed`) are recorded in the
collection's side collection, beside its revision: they travel with the store (a server, another
``ASSISTANT_STORE_DIR``), go with ``ingest --rebuild``, and include days that listed nothing.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple, ParamSpec, TypeVar
from urllib.parse import urlsplit

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings
from chromadb.utils.embedding_functions import register_embedding_function
from filelock import FileLock, Timeout

from assistant.embeddings import Embedder, LiteLLMEmbeddingFunction, MiniLMEmbeddingFunction, build_embedder
from assistant.errors import EmbedderMismatch, StoreUnavailable
from assistant.schema import Chunk, DateRange, Paper, PaperStats, chunk_id_of, paper_id_of
from assistant.settings import Settings

for _embedder_class in (MiniLMEmbeddingFunction, LiteLLMEmbeddingFunction):
    with contextlib.suppress(ValueError):  # already registered by an earlier import of this module
        register_embedding_function(_embedder_class)

# 2: chunks carry day_ordinal (listed_ordinal where known); a version-1 collection is backfilled on open.
SCHEMA_VERSION = 2
_PAGE = 5000
# Writers of one embedded store take this lock in its folder (see ingestion.pipeline.ingest_lock).
INGEST_LOCK_FILE = ".ingest.lock"
# Every process opening an embedded store takes this one for the few milliseconds opening lasts.
OPEN_LOCK_FILE = ".open.lock"
OPEN_LOCK_TIMEOUT_S = 120.0
_LOCK_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
# A store folder that refuses the lock file for these reasons cannot be written by this process at all.
_NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
# Deleting this id (never a chunk id: those are "paper_id:n") is a write that changes nothing.
_CATCH_UP_ID = "__catch-up__"
# The side collection's record of the days fetched from the feed (a JSON list of ISO days).
_FETCHED_DAYS_ID = "fetched_days"


P = ParamSpec("P")
R = TypeVar("R")


def _explained(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn any Chroma or transport failure into a StoreUnavailable that names the store."""

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(*args, **kwargs)
            except (StoreUnavailable, EmbedderMismatch):
                raise
            except Exception as exc:
                store: PaperStore = args[0]  # type: ignore[assignment]
                raise StoreUnavailable(f"could not {action} {store.location}: {_reason(exc)}. {store.hint}") from exc

        return wrapper

    return decorate


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def lock_file_error(path: Path) -> OSError | None:
    """Why the lock file ``path`` cannot be created or opened for writing; None when it can.

    Asked before taking a lock, because filelock cannot tell the two apart: where the file cannot
    be created (``/proc``, a read-only or foreign folder, a folder where the lock file's name is
    taken by a directory) it retries until its timeout, as if another process held the lock.
    The file is created if missing (as filelock would), never truncated, and a symlink is refused.
    """
    try:
        descriptor = os.open(path, _LOCK_OPEN_FLAGS, 0o666)
    except OSError as exc:
        return exc
    os.close(descriptor)
    return None


def cannot_write(store_dir: Path, lock_name: str, error: OSError, hint: str) -> StoreUnavailable:
    """The error for a store folder where the lock file ``lock_name`` cannot be created."""
    reason = error.strerror or _reason(error)
    return StoreUnavailable(
        f"cannot write to {store_dir}: could not create the lock file {lock_name} ({reason}). {hint}"
    )


def _paper_metadata(paper: Paper, chunk: Chunk, n_chunks: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "paper_id": paper.paper_id,
        "chunk_index": chunk.index,
        "title": paper.title,
        "content_hash": paper.content_hash,
        "source": paper.source,
    }
    if paper.published is not None:
        # An ordinal lets Chroma filter date ranges with $gte/$lte.
        metadata["published_ordinal"] = paper.published.toordinal()
    if paper.listed is not None:
        metadata["listed_ordinal"] = paper.listed.toordinal()
    if paper.day is not None:
        # The day dated questions filter on: listed, else published (Paper.day).
        metadata["day_ordinal"] = paper.day.toordinal()
    if chunk.index == 0:
        metadata["n_chunks"] = n_chunks
        metadata["paper_json"] = paper.model_dump_json(exclude={"content_hash"})
    return metadata


def _paper_from_metadata(metadata: dict[str, Any]) -> Paper:
    return Paper.model_validate(json.loads(metadata["paper_json"]))


def date_filter(
    since: date | None = None,
    until: date | None = None,
    source: str | None = None,
    *,
    days: DateRange | None = None,
) -> dict | None:
    """A Chroma ``where`` clause for the optional retrieval filters.

    ``since``/``until`` bound the publication date; ``days`` bounds the day a paper counts for
    in a dated question (``Paper.day``: the day it was listed, else its publication date).
    """
    clauses: list[dict[str, Any]] = []
    if days is not None:
        clauses.append({"day_ordinal": {"$gte": days.start.toordinal()}})
        clauses.append({"day_ordinal": {"$lte": days.end.toordinal()}})
    if since is not None:
        clauses.append({"published_ordinal": {"$gte": since.toordinal()}})
    if until is not None:
        clauses.append({"published_ordinal": {"$lte": until.toordinal()}})
    if source is not None:
        clauses.append({"source": source})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class PaperRow(NamedTuple):
    """What a listing sorts and pages by, read from a paper's chunk-0 metadata without parsing the paper."""

    paper_id: str
    title: str
    day: date | None
    source: str


def _day_clause(days: DateRange | None) -> dict[str, Any]:
    """Complete papers (chunk 0), within ``days`` when given."""
    if days is None:
        return {"chunk_index": 0}
    return {
        "$and": [
            {"chunk_index": 0},
            {"day_ordinal": {"$gte": days.start.toordinal()}},
            {"day_ordinal": {"$lte": days.end.toordinal()}},
        ]
    }


class PaperStore:
    """Papers and their chunk vectors in one Chroma collection."""

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or build_embedder(self.settings)
        url = self.settings.store.chroma_url_str
        if url:
            self.location = f"the Chroma server at {url}"
            self.hint = (
                "Start it with `chroma run --path DIR --port N`, or unset ASSISTANT_CHROMA_URL "
                "to use the embedded store."
            )
        else:
            self.location = f"the store in {self.settings.store.resolved_store_dir}"
            self.hint = "Check that the folder is writable and has free space, or set ASSISTANT_STORE_DIR."
        with self._opening():
            self._client = self._connect()
            self._collection = self._open_collection()
            self._meta = self._open_meta_collection()
        # The revision this process's vector index is known to include (None: not checked yet).
        self._indexed_revision: str | None = None
        self._backfill_days()

    # --- opening --------------------------------------------------------------------
    @contextmanager
    def _opening(self) -> Iterator[None]:
        """Serialise opening an embedded store across processes.

        Two processes opening a new store at once both run Chroma's schema migrations and both
        create the collection, and one of them fails ("table collections already exists").

        A lock file that cannot be created is not a lock held by someone else: it fails at once
        with "cannot write to DIR", except in a folder that is read-only to everyone (mounted
        read-only) or holds an existing store this user may not write: nobody can race to create
        a store there, so it is opened without the lock and Chroma says what it can still do.
        """
        if self.settings.store.chroma_url_str:
            yield
            return
        store_dir = self.settings.store.resolved_store_dir
        try:
            store_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"could not open {self.location}: {_reason(exc)}. {self.hint}") from exc
        lock_path = store_dir / OPEN_LOCK_FILE
        error = lock_file_error(lock_path)
        if error is not None:
            read_only = error.errno == errno.EROFS or (
                error.errno in _NOT_WRITABLE and (store_dir / "chroma.sqlite3").is_file()
            )
            if not read_only:
                raise cannot_write(store_dir, OPEN_LOCK_FILE, error, self.hint) from error
            yield
            return
        lock = FileLock(str(lock_path), timeout=OPEN_LOCK_TIMEOUT_S)
        try:
            lock.acquire()
            locked = True
        except Timeout as exc:
            raise StoreUnavailable(
                f"could not open {self.location}: another process has been opening it for "
                f"{OPEN_LOCK_TIMEOUT_S:.0f} s ({exc.lock_file}). {self.hint}"
            ) from exc
        except OSError:
            locked = False  # the file could be created a moment ago: a lock the filesystem cannot take
        try:
            yield
        finally:
            if locked:
                lock.release()

    @_explained("open")
    def _connect(self) -> Any:
        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        url = self.settings.store.chroma_url_str
        if url:
            parts = urlsplit(url)
            client = chromadb.HttpClient(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https",
                settings=chroma_settings,
            )
            client.heartbeat()
            return client
        return chromadb.PersistentClient(path=str(self.settings.store.resolved_store_dir), settings=chroma_settings)

    @_explained("open the collection in")
    def _open_collection(self) -> Any:
        name = self.settings.store.collection
        identity = self.embedder.identity
        existing = {c.name if hasattr(c, "name") else str(c) for c in self._client.list_collections()}
        if name in existing:
            collection = self._client.get_collection(name)
            built_with = (collection.metadata or {}).get("embedder")
            if built_with != identity:
                raise EmbedderMismatch(
                    f"collection '{name}' in {self.location} was built with the embedding model '{built_with}', "
                    f"but ASSISTANT_EMBEDDING_MODEL selects '{identity}'. Vectors of two models cannot be mixed: "
                    f"set ASSISTANT_EMBEDDING_MODEL back, or rebuild with "
                    f"`paper-assistant ingest --rebuild PATH...` (or choose another ASSISTANT_COLLECTION)."
                )
            return self._client.get_collection(name, embedding_function=self.embedder)
        return self._client.create_collection(
            name,
            embedding_function=self.embedder,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedder": identity, "schema_version": SCHEMA_VERSION},
        )

    @_explained("open the revision record of")
    def _open_meta_collection(self) -> Any:
        # A tiny side collection whose one record changes on every write, so that other
        # processes (app instances on one server) can tell cheaply when to refresh BM25.
        return self._client.get_or_create_collection(
            f"{self.settings.store.collection}__meta",
            embedding_function=None,
            metadata={"schema_version": SCHEMA_VERSION},
        )

    @_explained("delete the collection in")
    def drop(self) -> None:
        """Remove the collection (for a rebuild with another embedder) and start an empty one."""
        for name in (self.settings.store.collection, f"{self.settings.store.collection}__meta"):
            try:
                self._client.delete_collection(name)
            except Exception as exc:  # absent already: nothing to delete
                if "does not exist" not in str(exc).lower() and "not found" not in str(exc).lower():
                    raise
        with self._opening():
            self._collection = self._open_collection()
            self._meta = self._open_meta_collection()

    @_explained("update the dates in")
    def _backfill_days(self) -> int:
        """Give the chunks of a collection written before listed days their ``day_ordinal``; returns chunks updated.

        Runs once per collection (it then records schema version 2). It is a write, so it takes the
        ingest lock without waiting: while an ingest holds it, or where this process cannot write
        (a read-only folder), the collection is used as it is and the backfill waits for the next open.
        """
        metadata = dict(self._collection.metadata or {})
        if int(metadata.get("schema_version", 1)) >= SCHEMA_VERSION:
            return 0
        lock: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        if not self.settings.store.chroma_url_str:
            lock_path = self.settings.store.resolved_store_dir / INGEST_LOCK_FILE
            if lock_file_error(lock_path) is not None:
                return 0
            lock = FileLock(str(lock_path), timeout=0)
        try:
            with lock:
                ids: list[str] = []
                updates: list[dict[str, Any]] = []
                for page in self._pages(None, ["metadatas"]):
                    for chunk_id, chunk in zip(page["ids"], page["metadatas"], strict=True):
                        if "day_ordinal" not in chunk and "published_ordinal" in chunk:
                            ids.append(chunk_id)
                            updates.append({"day_ordinal": chunk["published_ordinal"]})
                batch = max(1, self._client.get_max_batch_size())
                for start in range(0, len(ids), batch):
                    self._collection.update(ids=ids[start : start + batch], metadatas=updates[start : start + batch])
                metadata["schema_version"] = SCHEMA_VERSION
                self._collection.modify(metadata=metadata)
        except Timeout:
            return 0
        return len(ids)

    # --- days fetched from the feed ---------------------------------------------------
    @_explained("read the fetched days of")
    def fetched_days(self) -> set[date]:
        """The days :mod:`ingestion.hf_feed` fetched into this collection completely (empty days included)."""
        records = self._meta.get(ids=[_FETCHED_DAYS_ID], include=["documents"])
        if not records["ids"]:
            return set()
        return {date.fromisoformat(day) for day in json.loads(records["documents"][0])}

    @_explained("record the fetched days in")
    def record_fetched_days(self, days: Iterable[date]) -> None:
        """Add ``days`` to :meth:`fetched_days` (the caller holds the ingest lock)."""
        held = self.fetched_days()
        new = held | set(days)
        if new != held:
            document = json.dumps(sorted(day.isoformat() for day in new))
            self._meta.upsert(ids=[_FETCHED_DAYS_ID], documents=[document], embeddings=[[0.0]])

    @_explained("read the listed days in")
    def newest_listed_day(self) -> date | None:
        """The latest day a stored paper was listed on, if any paper says."""
        newest = max(
            (
                int(metadata["listed_ordinal"])
                for page in self._pages({"chunk_index": 0}, ["metadatas"])
                for metadata in page["metadatas"]
                if "listed_ordinal" in metadata
            ),
            default=None,
        )
        return None if newest is None else date.fromordinal(newest)

    # --- revision -------------------------------------------------------------------
    @_explained("read the revision of")
    def revision(self) -> str:
        records = self._meta.get(ids=["revision"], include=["documents"])
        return records["documents"][0] if records["ids"] else ""

    def _bump_revision(self) -> None:
        self._meta.upsert(ids=["revision"], documents=[uuid.uuid4().hex], embeddings=[[0.0]])

    # --- reading --------------------------------------------------------------------
    def _pages(self, where: dict | None, include: list[str]) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self._collection.get(where=where, include=include, limit=_PAGE, offset=offset)
            if not page["ids"]:
                return
            yield page
            if len(page["ids"]) < _PAGE:
                return
            offset += _PAGE

    @_explained("count the chunks in")
    def count_chunks(self) -> int:
        return self._collection.count()

    @_explained("read the papers in")
    def paper_index(self) -> dict[str, tuple[str, int]]:
        """paper_id -> (content_hash, n_chunks) for every completely written paper."""
        index: dict[str, tuple[str, int]] = {}
        for page in self._pages({"chunk_index": 0}, ["metadatas"]):
            for metadata in page["metadatas"]:
                index[metadata["paper_id"]] = (metadata["content_hash"], int(metadata["n_chunks"]))
        return index

    @_explained("read the papers in")
    def list_papers(self) -> list[PaperStats]:
        stats = [
            PaperStats(paper=_paper_from_metadata(metadata), chunks=int(metadata["n_chunks"]))
            for page in self._pages({"chunk_index": 0}, ["metadatas"])
            for metadata in page["metadatas"]
        ]
        return sorted(stats, key=lambda s: s.paper.title.casefold())

    @_explained("list the papers in")
    def paper_rows(self, days: DateRange | None = None) -> list[PaperRow]:
        """Id, title, day and source of every complete paper (whose day is in ``days``), in no order.

        Filtered by Chroma on the chunk-0 metadata (``day_ordinal``), and the paper records are not
        parsed: a listing sorts and pages these rows and reads only the shown papers (``get_papers``).
        """
        return [
            PaperRow(
                paper_id=metadata["paper_id"],
                title=metadata["title"],
                day=date.fromordinal(metadata["day_ordinal"]) if "day_ordinal" in metadata else None,
                source=metadata.get("source") or "",
            )
            for page in self._pages(_day_clause(days), ["metadatas"])
            for metadata in page["metadatas"]
        ]

    @_explained("read the papers in")
    def papers_in(self, days: DateRange) -> list[Paper]:
        """The complete papers whose day (``Paper.day``) falls in ``days``, in no order."""
        return [
            _paper_from_metadata(metadata)
            for page in self._pages(_day_clause(days), ["metadatas"])
            for metadata in page["metadatas"]
        ]

    def get_papers(self, paper_ids: Sequence[str]) -> dict[str, Paper]:
        """The completely written papers among ``paper_ids``."""
        return self.papers_and_texts(paper_ids, [])[0]

    @_explained("read the chunks in")
    def all_chunks(self) -> list[tuple[str, str, str, str]]:
        """(chunk_id, paper_id, title, text) of every chunk, for the BM25 index."""
        rows: list[tuple[str, str, str, str]] = []
        for page in self._pages(None, ["metadatas", "documents"]):
            for chunk_id, metadata, text in zip(page["ids"], page["metadatas"], page["documents"], strict=True):
                rows.append((chunk_id, metadata["paper_id"], metadata["title"], text))
        return rows

    @_explained("read papers from")
    def papers_and_texts(
        self, paper_ids: Sequence[str], chunk_ids: Sequence[str]
    ) -> tuple[dict[str, Paper], dict[str, str]]:
        """The papers (complete ones only) and the texts of the chunks, in one read."""
        first_chunks = [chunk_id_of(pid, 0) for pid in paper_ids]
        ids = list(dict.fromkeys([*first_chunks, *chunk_ids]))
        if not ids:
            return {}, {}
        found = self._collection.get(ids=ids, include=["metadatas", "documents"])
        wanted_papers, wanted_texts = set(first_chunks), set(chunk_ids)
        papers: dict[str, Paper] = {}
        texts: dict[str, str] = {}
        for chunk_id, metadata, text in zip(found["ids"], found["metadatas"], found["documents"], strict=True):
            if chunk_id in wanted_papers:
                papers[metadata["paper_id"]] = _paper_from_metadata(metadata)
            if chunk_id in wanted_texts:
                texts[chunk_id] = text
        return papers, texts

    @_explained("read vectors from")
    def stored_vectors(self, chunks: Sequence[Chunk]) -> dict[str, np.ndarray]:
        """The stored vectors of those ``chunks`` whose stored text and title are theirs, by chunk id:
        a paper re-ingested with other metadata only (a listing day, a link) keeps its vectors."""
        if not chunks:
            return {}
        wanted = {chunk.chunk_id: chunk for chunk in chunks}
        found = self._collection.get(ids=list(wanted), include=["metadatas", "documents", "embeddings"])
        return {
            chunk_id: np.asarray(vector, dtype=np.float32)
            for chunk_id, metadata, text, vector in zip(
                found["ids"], found["metadatas"], found["documents"], found["embeddings"], strict=True
            )
            if text == wanted[chunk_id].text and metadata.get("title") == wanted[chunk_id].title
        }

    @_explained("filter the chunks in")
    def chunk_ids_where(self, where: dict) -> set[str]:
        return {chunk_id for page in self._pages(where, []) for chunk_id in page["ids"]}

    @_explained("read vectors from")
    def paper_vectors(self, paper_ids: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """One unit vector per paper: the mean of its chunk vectors (for themes and maps)."""
        where = {"paper_id": {"$in": list(paper_ids)}} if paper_ids else None
        sums: dict[str, np.ndarray] = {}
        for page in self._pages(where, ["metadatas", "embeddings"]):
            for metadata, vector in zip(page["metadatas"], page["embeddings"], strict=True):
                paper_id = metadata["paper_id"]
                vector = np.asarray(vector, dtype=np.float32)
                sums[paper_id] = sums[paper_id] + vector if paper_id in sums else vector.copy()
        return {pid: v / max(float(np.linalg.norm(v)), 1e-12) for pid, v in sums.items()}

    def _catch_up(self, revision: str | None = None) -> None:
        """Make this process's vector index include what other processes wrote to the embedded store.

        Embedded Chroma loads its vector index once per process and applies other processes'
        writes only when this process writes itself: an app left open while
        `paper-assistant ingest` runs would list the new papers (read from SQLite) but never
        find them by meaning. A write that changes nothing (deleting an id no chunk has)
        applies them. It is a write, so it takes the ingest lock, and skips while an ingest holds it.
        Where the lock file cannot be created (a folder this process cannot write) it cannot write
        either: it searches what is indexed, without waiting.
        """
        if self.settings.store.chroma_url_str:
            return
        revision = self.revision() if revision is None else revision
        if revision == self._indexed_revision:
            return
        lock_path = self.settings.store.resolved_store_dir / INGEST_LOCK_FILE
        if lock_file_error(lock_path) is not None:
            return  # cannot write here: search what is indexed (tried again at the next query)
        try:
            with FileLock(str(lock_path), timeout=0):
                self._collection.delete(ids=[_CATCH_UP_ID])
        except Timeout:
            return  # an ingest is writing: catch up after it
        except Exception:
            return
        self._indexed_revision = revision

    @_explained("search")
    def query(
        self, vector: np.ndarray, n_results: int, where: dict | None = None, *, revision: str | None = None
    ) -> list[tuple[str, str, float]]:
        """(chunk_id, paper_id, cosine similarity) of the nearest chunks, best first.

        Only ids and distances are read: fetching metadata and text for every candidate cost more
        than the vector search itself, and the caller reads text for the few chunks it keeps.
        ``revision``: the store's revision when the caller has just read it.
        """
        self._catch_up(revision)
        result = self._collection.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=n_results,
            where=where,
            include=["distances"],
        )
        return [
            (chunk_id, paper_id_of(chunk_id), 1.0 - float(distance))
            for chunk_id, distance in zip(result["ids"][0], result["distances"][0], strict=True)
        ]

    # --- writing --------------------------------------------------------------------
    @_explained("write to")
    def write_papers(
        self,
        papers: Sequence[tuple[Paper, Sequence[Chunk], Sequence[np.ndarray]]],
        *,
        replace: Iterable[str] = (),
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Write papers with their chunks and vectors; ``replace`` names papers whose old chunks go first.

        Returns the number of chunks written. Batches never exceed the client's limit.
        """
        to_delete = list(replace)
        if to_delete:
            self._collection.delete(where={"paper_id": {"$in": to_delete}})
        batch_limit = max(1, min(self._client.get_max_batch_size(), 1000))
        ids: list[str] = []
        vectors: list[np.ndarray] = []
        documents: list[str] = []
        metadatas: list[dict[str, Any]] = []
        written = 0

        def flush() -> None:
            nonlocal written
            if ids:
                # upsert: chunk ids are stable, so a second writer of the same paper overwrites, never doubles.
                self._collection.upsert(
                    ids=ids[:], embeddings=vectors[:], documents=documents[:], metadatas=metadatas[:]
                )
                written += len(ids)
                if on_batch is not None:
                    on_batch(len(ids))
                for buffer in (ids, vectors, documents, metadatas):
                    buffer.clear()

        for paper, chunks, chunk_vectors in papers:
            # Chunk 0 last: it marks the paper as completely written.
            for chunk, vector in sorted(zip(chunks, chunk_vectors, strict=True), key=lambda cv: cv[0].index == 0):
                ids.append(chunk.chunk_id)
                vectors.append(vector)
                documents.append(chunk.text)
                metadatas.append(_paper_metadata(paper, chunk, len(chunks)))
                if len(ids) >= batch_limit:
                    flush()
        flush()
        if written or to_delete:
            self._bump_revision()
        return written

    @_explained("clean up")
    def remove_incomplete_papers(self) -> int:
        """Delete chunks of papers whose write was interrupted (no chunk 0). Returns chunks removed."""
        complete = set(self.paper_index())
        orphans = [
            chunk_id
            for page in self._pages(None, ["metadatas"])
            for chunk_id, metadata in zip(page["ids"], page["metadatas"], strict=True)
            if metadata["paper_id"] not in complete
        ]
        for start in range(0, len(orphans), 1000):
            self._collection.delete(ids=orphans[start : start + 1000])
        if orphans:
            self._bump_revision()
        return len(orphans)
