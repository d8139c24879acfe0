"""Reliability under concurrency: two ingests on one store, many sessions asking at once, an ingest while answering.

Nothing may be lost or duplicated, every answer must belong to its own question, and a
writer that cannot get the store's lock must say so instead of corrupting it.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from filelock import FileLock
from reliability_fixtures import REPO_ROOT, cli_env, run_cli, synthetic_papers_jsonl

import assistant.store
from assistant.cli import main
from assistant.errors import StoreUnavailable
from assistant.llm import Completion, FakeLLM
from assistant.retrieval import Retriever, cache_dir_for
from assistant.schema import Message, ReadResult
from assistant.service import PaperAssistant
from assistant.settings import Settings
from assistant.store import PaperStore
from assistant.streaming import Streamed
from assistant.text import split_sentences
from ingestion.pipeline import ingest_lock, ingest_papers, ingest_paths, read_sources


class QuotingLLM(FakeLLM):
    """Thread-safe and stateless per call: replies with the first sentence of the prompt's source 1, slowly.

    Whatever order the calls interleave in, each reply can only come from its own prompt.
    """

    def generate(self, messages: Sequence[Message], **options: object) -> Streamed[Completion]:
        with self._lock:
            self.history.append(list(messages))
        prompt = messages[-1].content
        source = prompt.split('<source n="1"', 1)[1].split(">\n", 1)[1].split("\n</source>", 1)[0]
        reply = split_sentences(source)[0] + " [1]"

        def pieces() -> Generator[str, None, Completion]:
            for word in reply.split(" "):
                time.sleep(0.002)  # let other sessions' replies interleave with this one
                yield word + " "
            return Completion(text=reply + " ", model=self.model)

        return Streamed(pieces())


def _store_state(store: PaperStore) -> dict[str, object]:
    rows = store.all_chunks()
    index = store.paper_index()
    per_paper: dict[str, int] = {}
    for _, paper_id, _, _ in rows:
        per_paper[paper_id] = per_paper.get(paper_id, 0) + 1
    return {
        "papers": len(index),
        "chunks": len(rows),
        "orphans": sorted(set(per_paper) - set(index)),
        "complete": all(per_paper.get(pid) == n for pid, (_, n) in index.items()),
        "bm25_agrees": sorted(Retriever(store).refresh().chunk_ids) == sorted(row[0] for row in rows),
    }


# --- two writers -----------------------------------------------------------------------------------


def test_a_held_ingest_lock_makes_a_second_writer_refuse_clearly(settings: Settings, tmp_path: Path) -> None:
    papers = tmp_path / "papers.jsonl"
    synthetic_papers_jsonl(papers, 3, sentences=2)
    store = PaperStore(settings)
    read = read_sources([papers])
    with ingest_lock(settings):  # another writer holds the store
        started = time.monotonic()
        with pytest.raises(
            StoreUnavailable, match=r"another ingest is writing to .* \(waited 1 s for .*\.ingest\.lock\); try again"
        ):
            ingest_papers(read, store=store, lock_timeout_s=1.0)
        assert time.monotonic() - started < 30
        assert store.count_chunks() == 0, "nothing written without the lock"
    assert ingest_papers(read, store=store, lock_timeout_s=1.0).papers_added == 3


def test_a_second_writer_waits_for_the_lock_then_finishes(settings: Settings, tmp_path: Path) -> None:
    papers = tmp_path / "papers.jsonl"
    synthetic_papers_jsonl(papers, 3, sentences=2)
    store = PaperStore(settings)
    lock = FileLock(str(settings.store.resolved_store_dir / ".ingest.lock"), thread_local=False)
    lock.acquire()
    releaser = threading.Timer(1.5, lock.release)
    releaser.start()
    started = time.monotonic()
    report = ingest_paths([papers], store=store)
    releaser.join()
    assert time.monotonic() - started >= 1.4 and report.papers_added == 3


# --- lock files that cannot be created ------------------------------------------------------------
# A lock file that cannot be created is no lock held by another process: the answer comes at once
# ("cannot write to DIR"), not after the lock's timeout. The time limits below check that nothing
# waits for a lock (the timeouts are 60 and 120 s); they are not speed requirements.
NO_WAIT_S = 20.0


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str, float]:
    started = time.monotonic()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err, time.monotonic() - started


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("command", [["search", "zebra"], ["papers"], ["ingest", "PAPERS"]])
def test_a_store_in_proc_fails_at_once_with_cannot_write(command: list[str], tmp_path: Path, capsys) -> None:
    papers = tmp_path / "papers.jsonl"
    synthetic_papers_jsonl(papers, 2, sentences=2)
    argv = [str(papers) if arg == "PAPERS" else arg for arg in command]
    code, out, err, seconds = _cli(capsys, *argv, "--store", "/proc")
    assert seconds < NO_WAIT_S, f"waited {seconds:.0f} s for a lock nobody holds"
    assert code == 3 and out == "", err
    assert (
        err.startswith("error: cannot write to /proc: could not create the lock file .open.lock (")
        and "ASSISTANT_STORE_DIR" in err
    )
    assert "another process" not in err and "Traceback" not in err


def test_a_directory_in_the_open_locks_place_fails_at_once(tmp_path: Path, capsys) -> None:
    store_dir = tmp_path / "store"
    (store_dir / ".open.lock").mkdir(parents=True)
    code, out, err, seconds = _cli(capsys, "search", "zebra", "--store", str(store_dir))
    assert seconds < NO_WAIT_S and code == 3 and out == "", err
    assert f"cannot write to {store_dir}: could not create the lock file .open.lock (Is a directory)" in err


def test_a_directory_in_the_ingest_locks_place_stops_an_ingest_at_once_but_not_a_search(tmp_path: Path, capsys) -> None:
    papers = tmp_path / "papers.jsonl"
    titles = synthetic_papers_jsonl(papers, 3, sentences=2)
    store_dir = tmp_path / "store"
    assert _cli(capsys, "ingest", str(papers), "--store", str(store_dir), "--json")[0] == 0
    (store_dir / ".ingest.lock").unlink()
    (store_dir / ".ingest.lock").mkdir()
    more = tmp_path / "more.jsonl"
    synthetic_papers_jsonl(more, 2, start=50, sentences=2)
    code, out, err, seconds = _cli(capsys, "ingest", str(more), "--store", str(store_dir), "--json")
    assert seconds < NO_WAIT_S and code == 3 and out == "", err
    assert f"cannot write to {store_dir}: could not create the lock file .ingest.lock (Is a directory)" in err
    assert "another ingest" not in err
    # Searching needs no write: it answers from what is indexed, without waiting for the lock.
    code, out, err, seconds = _cli(capsys, "search", titles[0], "-k", "1", "--json", "--store", str(store_dir))
    assert seconds < NO_WAIT_S and code == 0, err
    assert json.loads(out)["hits"][0]["title"] == titles[0]
    store = PaperStore(Settings(store_dir=store_dir, data_dir=tmp_path / "data"))
    assert len(store.paper_index()) == 3, "the refused ingest wrote nothing"
    with (
        pytest.raises(StoreUnavailable, match=r"cannot write to .*\.ingest\.lock \(Is a directory\)"),
        ingest_lock(store.settings),
    ):
        pass


def test_a_read_only_store_folder_still_opens_without_the_lock(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder nobody can write (mounted read-only) is one nobody can race to create a store in.

    Root writes through chmod, so the read-only filesystem is the errno itself here; the real
    read-only mount is tests/test_reliability_faults.py::test_read_only_store_is_a_clear_error_and_loses_nothing.
    """
    papers = settings.store.data_dir / "two.jsonl"
    settings.store.data_dir.mkdir(parents=True, exist_ok=True)
    synthetic_papers_jsonl(papers, 2, sentences=2)
    store = PaperStore(settings)
    ingest_paths([papers], store=store)
    read_only = OSError(errno.EROFS, os.strerror(errno.EROFS))
    monkeypatch.setattr(assistant.store, "lock_file_error", lambda path: read_only)
    monkeypatch.setattr(assistant.store, "FileLock", None)  # no lock may even be constructed
    reopened = PaperStore(settings)
    assert len(reopened.paper_index()) == 2
    assert reopened.query(store.embedder(["anything"])[0], 1), "search answers (catch-up skipped)"
    # Permission denied on an existing store is the same case; on a folder without a store it is not.
    denied = OSError(errno.EACCES, os.strerror(errno.EACCES))
    monkeypatch.setattr(assistant.store, "lock_file_error", lambda path: denied)
    assert len(PaperStore(settings).paper_index()) == 2
    with pytest.raises(
        StoreUnavailable, match=r"cannot write to .*: could not create the lock file \.open\.lock \(Permission denied\)"
    ):
        PaperStore(settings.replace(store_dir=settings.store.data_dir / "empty-store"))


def test_a_held_open_lock_is_still_waited_for(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assistant.store, "OPEN_LOCK_TIMEOUT_S", 1.0)
    store_dir = settings.store.resolved_store_dir
    store_dir.mkdir(parents=True)
    holder = FileLock(str(store_dir / ".open.lock"), thread_local=False)
    holder.acquire()
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=r"another process has been opening it for 1 s"):
            PaperStore(settings)
        assert time.monotonic() - started >= 0.9
    finally:
        holder.release()
    assert PaperStore(settings).count_chunks() == 0


_OPEN_AT_ONCE = """
import sys, time
from pathlib import Path
from assistant.settings import Settings
from assistant.store import PaperStore
start_at = float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
store = PaperStore(Settings(store_dir=Path(sys.argv[1]), data_dir=Path(sys.argv[1]).parent / "data"))
print(store.count_chunks())
"""


@pytest.mark.timeout(300)
def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    # Chroma creates its tables and the collection when a store is first opened; two processes
    # doing that at the same instant made one fail with "table collections already exists".
    script = tmp_path / "open_store.py"
    script.write_text(_OPEN_AT_ONCE)
    store_dir = tmp_path / "store"
    start_at = time.time() + 8  # past every process's imports, so the openings coincide
    command = [sys.executable, str(script), str(store_dir), str(start_at)]
    processes = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=REPO_ROOT
        )
        for _ in range(4)
    ]
    results = [(p.wait(240), *p.communicate()) for p in processes]
    assert time.time() > start_at, "the processes did not start together; raise the delay"
    assert [(code, out.strip()) for code, out, _ in results] == [(0, "0")] * 4, [err[-600:] for _, _, err in results]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_two_ingest_processes_on_one_embedded_store(tmp_path: Path) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    titles = set(synthetic_papers_jsonl(first, 200, start=0, sentences=3))
    titles |= set(synthetic_papers_jsonl(second, 200, start=150, sentences=3))  # 50 papers in both
    store_dir = tmp_path / "store"
    env = cli_env(ASSISTANT_DATA_DIR=str(tmp_path / "data"))

    def ingest(path: Path) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "assistant", "ingest", str(path), "--store", str(store_dir), "--json"]
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT
        )

    processes = [ingest(first), ingest(second)]
    results = [(p.wait(1500), *p.communicate()) for p in processes]
    reports = []
    for (code, out, err), path in zip(results, (first, second), strict=True):
        if code == 3:
            # The lock wait ran out (a very slow machine): the refusal must say why, and a retry must work.
            assert "another ingest is writing to" in err and "try again when it has finished" in err, err
            retry = run_cli("ingest", str(path), "--store", str(store_dir), "--json", env=env, timeout=1500)
            code, out, err = retry.returncode, retry.stdout, retry.stderr
        assert code == 0 and "Traceback" not in err, err
        reports.append(json.loads(out))
    assert sum(r["papers_added"] for r in reports) == len(titles) == 350
    assert sum(r["papers_unchanged"] for r in reports) == 50
    assert max(r["total_papers"] for r in reports) == 350

    store = PaperStore(Settings(store_dir=store_dir, data_dir=tmp_path / "check"))
    assert _store_state(store) == {"papers": 350, "chunks": 350, "orphans": [], "complete": True, "bm25_agrees": True}
    assert {s.paper.title for s in store.list_papers()} == titles
    # The vector index holds both writers' vectors: each chunk is its own nearest neighbour.
    rows = store.all_chunks()[::7]
    vectors = store.embedder([f"{title}\n{text}" for _, _, title, text in rows])
    misses = [row[0] for row, vector in zip(rows, vectors, strict=True) if store.query(vector, 1)[0][0] != row[0]]
    assert misses == []


# --- many readers ----------------------------------------------------------------------------------


def _plain_questions(store: PaperStore, step: int, offset: int, count: int) -> list:
    """Papers whose title, asked about, is routed as a plain question (no 'compare'/'summary' in it)."""
    from assistant.plan import asks_for_comparison, asks_for_summary

    papers = sorted((s.paper for s in store.list_papers()), key=lambda p: p.paper_id)
    plain = [p for p in papers if not asks_for_comparison(p.title) and not asks_for_summary(p.title)]
    return plain[offset::step][:count]


def test_sessions_asking_at_once_each_get_their_own_answer(sample_store: PaperStore) -> None:
    papers = _plain_questions(sample_store, step=4, offset=0, count=10)
    backend = QuotingLLM()
    assistant = PaperAssistant(sample_store.settings, store=sample_store, backend=backend)
    start = threading.Barrier(len(papers))

    def ask(paper):
        start.wait()
        turn = assistant.respond(f"What does “{paper.title}” propose?")
        return paper, turn, "".join(turn)

    with ThreadPoolExecutor(max_workers=len(papers)) as pool:
        results = list(pool.map(ask, papers))
    assert len(backend.history) == len(papers)
    for paper, turn, streamed in results:
        assert turn.result.kind == "answer", (paper.title, turn.result.text)
        assert turn.result.sources[0].paper_id == paper.paper_id
        quoted = streamed.split(" [1]", 1)[0]
        assert quoted in split_sentences(turn.result.sources[0].text), "each reply quotes its own paper"
        assert turn.result.text.startswith(quoted.rstrip("."))
        assert [c.paper_id for c in turn.result.citations] == [paper.paper_id]


def test_sessions_summarizing_and_answering_at_once(sample_store: PaperStore, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "own-data", store_dir=sample_store.settings.store.resolved_store_dir)
    papers = _plain_questions(sample_store, step=5, offset=1, count=8)
    assistant = PaperAssistant(settings, store=sample_store, backend=QuotingLLM())

    def work(job):
        n, paper = job
        if n % 2:
            return paper, assistant.summarize(paper.paper_id).paper_id
        return paper, assistant.answer(f"What does “{paper.title}” propose?").sources[0].paper_id

    jobs = list(enumerate(papers)) * 2  # the second round reads the summary cache while others write it
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, jobs))
    assert all(paper.paper_id == got for paper, got in results)


# --- writing while reading -------------------------------------------------------------------------


@pytest.fixture
def small_store(tmp_path: Path) -> PaperStore:
    papers = tmp_path / "first.jsonl"
    synthetic_papers_jsonl(papers, 30, sentences=3)
    store = PaperStore(Settings(data_dir=tmp_path / "data"))
    ingest_paths([papers], store=store)
    return store


def _answer_until(assistant: PaperAssistant, stop: threading.Event, errors: list[BaseException]) -> int:
    answered = 0
    while not stop.is_set() or answered == 0:
        try:
            turn = assistant.respond("Which studies show that sparse attention improves a benchmark?")
            "".join(turn)
            assert turn.result.kind == "answer" and turn.result.sources, turn.result.text
            answered += 1
        except BaseException as exc:
            errors.append(exc)
            return answered
    return answered


def test_ingest_while_answering_in_one_process(small_store: PaperStore, tmp_path: Path) -> None:
    more = tmp_path / "more.jsonl"
    new_titles = synthetic_papers_jsonl(more, 120, start=500, sentences=3)
    assistant = PaperAssistant(small_store.settings, store=small_store, backend=QuotingLLM())
    writer = PaperStore(small_store.settings)  # another session's handle on the same store
    stop, errors = threading.Event(), []
    with ThreadPoolExecutor(max_workers=2) as pool:
        asking = pool.submit(_answer_until, assistant, stop, errors)
        try:
            report = ingest_paths([more], store=writer)
        finally:
            stop.set()
        answered = asking.result(timeout=600)
    assert errors == [] and answered >= 1
    assert report.papers_added == 120 and report.total_papers == 150
    # The reader sees the new papers at once: its catalogue and BM25 index follow the store's revision.
    assert len(assistant.papers()) == 150
    hits = assistant.search(new_titles[-1], 1)
    assert hits[0].paper.title == new_titles[-1]
    assert _store_state(small_store) == {
        "papers": 150,
        "chunks": 150,
        "orphans": [],
        "complete": True,
        "bm25_agrees": True,
    }


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_ingest_process_while_this_process_answers(small_store: PaperStore, tmp_path: Path) -> None:
    more = tmp_path / "more.jsonl"
    new_titles = synthetic_papers_jsonl(more, 300, start=500, sentences=3)
    assistant = PaperAssistant(small_store.settings, store=small_store, backend=QuotingLLM())
    env = cli_env(ASSISTANT_DATA_DIR=str(small_store.settings.store.data_dir))
    command = [
        sys.executable,
        "-m",
        "assistant",
        "ingest",
        str(more),
        "--store",
        str(small_store.settings.store.resolved_store_dir),
        "--json",
    ]
    ingest = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT
    )
    stop, errors = threading.Event(), []
    with ThreadPoolExecutor(max_workers=1) as pool:
        asking = pool.submit(_answer_until, assistant, stop, errors)
        try:
            out, err = ingest.communicate(timeout=1100)
        finally:
            stop.set()
        answered = asking.result(timeout=600)
    assert ingest.returncode == 0, err
    assert json.loads(out)["total_papers"] == 330
    assert errors == [] and answered >= 1
    assert len(assistant.papers()) == 330
    assert assistant.search(new_titles[-1], 1)[0].paper.title == new_titles[-1]
    # Found by meaning too: this process's vector index took in the other process's writes.
    assert assistant.retriever.search(new_titles[-1], 1, hybrid=False)[0].paper.title == new_titles[-1]
    assert _store_state(small_store) == {
        "papers": 330,
        "chunks": 330,
        "orphans": [],
        "complete": True,
        "bm25_agrees": True,
    }


def test_ingests_from_threads_of_one_process_are_serialised(small_store: PaperStore, tmp_path: Path) -> None:
    """Two uploads at once in the app: threads of one process, each with its own store handle."""
    batches = []
    for n in range(3):
        path = tmp_path / f"batch{n}.jsonl"
        synthetic_papers_jsonl(path, 20, start=1000 + n * 15, sentences=2)  # consecutive batches overlap by 5
        batches.append(path)

    def ingest(path: Path) -> object:
        return ingest_paths([path], store=PaperStore(small_store.settings))

    with ThreadPoolExecutor(max_workers=3) as pool:
        reports = list(pool.map(ingest, batches))
    assert sum(r.papers_added for r in reports) == 50
    assert _store_state(small_store) == {
        "papers": 80,
        "chunks": 80,
        "orphans": [],
        "complete": True,
        "bm25_agrees": True,
    }


def test_read_result_of_one_ingest_is_not_shared_with_another(small_store: PaperStore) -> None:
    """ingest_papers never mutates the ReadResult it was given (the app may retry it)."""
    from ingestion.normalize import build_paper

    read = ReadResult(papers=[build_paper(title="Solo Paper", abstract="A solo abstract.", source="x")])
    before = read.model_dump()
    ingest_papers(read, store=small_store)
    assert read.model_dump() == before


# --- the BM25 index beside the store -----------------------------------------------------------------


def test_sessions_refreshing_the_bm25_index_at_once_agree(small_store: PaperStore, tmp_path: Path) -> None:
    more = tmp_path / "more.jsonl"
    synthetic_papers_jsonl(more, 10, start=700, sentences=2)
    ingest_paths([more], store=small_store)
    retrievers = [Retriever(small_store) for _ in range(6)]
    start = threading.Barrier(len(retrievers))

    def refresh(retriever: Retriever) -> list[str]:
        start.wait()
        return retriever.refresh().chunk_ids

    with ThreadPoolExecutor(max_workers=len(retrievers)) as pool:
        indexes = list(pool.map(refresh, retrievers))
    expected = sorted(row[0] for row in small_store.all_chunks())
    assert all(sorted(ids) == expected for ids in indexes)
    saved = cache_dir_for(small_store.settings)
    assert [p.name for p in saved.parent.iterdir()] == [saved.name], "no half-written folder left behind"
    assert sorted(Retriever(small_store).refresh().chunk_ids) == expected


def test_a_bm25_index_torn_by_another_writer_is_rebuilt_not_trusted(small_store: PaperStore) -> None:
    """chunks.json of one save next to the model of another (a folder swapped between two reads)."""
    Retriever(small_store).refresh()
    chunks_file = cache_dir_for(small_store.settings) / "chunks.json"
    saved = json.loads(chunks_file.read_text())
    torn = {**saved, "chunk_ids": saved["chunk_ids"][:10], "paper_ids": saved["paper_ids"][:10]}
    chunks_file.write_text(json.dumps(torn))
    retriever = Retriever(small_store)
    index = retriever.refresh()
    assert sorted(index.chunk_ids) == sorted(row[0] for row in small_store.all_chunks())
    last_title = small_store.get_papers([saved["paper_ids"][-1]])[saved["paper_ids"][-1]].title
    assert retriever.search(last_title, 3)[0].paper.title == last_title
