"""Reliability: faults of the model and the store give clear errors, keep what arrived, lose no data.

Model faults are provoked for real over HTTP on loopback: a tiny scripted OpenAI-compatible
server (``reliability_fixtures.FakeOpenAIServer``) for 401, 429, 500, empty replies, broken
and stalled streams and slow replies, and llama-cpp-python's own OpenAI-compatible server
(stopped, frozen with SIGSTOP, killed mid-reply) where a real one matters. Store faults:
a Chroma server that goes away and comes back, a read-only and a full disk (in a private
mount namespace), and an ingest killed with SIGKILL halfway.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_fixtures import (
    PLANTED_KEY,
    REPO_ROOT,
    Reply,
    cli_env,
    fake_openai_server,
    run_cli,
    start_with_terminal,
    synthetic_papers_jsonl,
)

from assistant.cli import main
from assistant.errors import LLMError, StoreUnavailable, describe
from assistant.llm import FakeLLM
from assistant.llm.litellm_backend import DEADLINE_GRACE_S, MAX_CHARS_PER_TOKEN, LiteLLMBackend
from assistant.retrieval import Retriever
from assistant.schema import Message, ReadResult
from assistant.service import PaperAssistant
from assistant.settings import Settings
from assistant.store import PaperStore
from ingestion.normalize import build_paper
from ingestion.pipeline import PAPERS_PER_GROUP, ingest_papers
from tests.conftest import free_port

QUESTION = "How does ZIP-FIT select training data?"
GROUNDED = "ZIP-FIT selects training data by compression-based alignment with the target task [1]."


def served_settings(base: Settings, api_base: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": base.store.data_dir,
        "store_dir": base.store.resolved_store_dir,
        "model": "openai/fake",
        "api_base": api_base,
        "max_retries": 2,
        "timeout_s": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


def served_assistant(store: PaperStore, api_base: str, **overrides: object) -> PaperAssistant:
    settings = served_settings(store.settings, api_base, **overrides)
    return PaperAssistant(settings, store=store, backend=LiteLLMBackend.from_settings(settings, retry_delay_s=0.01))


def failed_turn(assistant: PaperAssistant, question: str = QUESTION) -> tuple[LLMError, list[str], object]:
    """Stream a reply that is expected to fail; what was shown, and the error."""
    turn = assistant.respond(question)
    shown: list[str] = []
    with pytest.raises(LLMError) as excinfo:
        for piece in turn:
            shown.append(piece)
    return excinfo.value, shown, turn


@pytest.fixture(autouse=True)
def planted_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)


# --- model faults against a scripted server --------------------------------------------------------


def test_connection_refused_is_retried_then_names_the_address(sample_store) -> None:
    address = f"http://127.0.0.1:{free_port()}/v1"
    error, shown, turn = failed_turn(served_assistant(sample_store, address, max_retries=1))
    assert f"could not connect to {address} (tried 2 times) — is the server running? set ASSISTANT_API_BASE" in str(
        error
    )
    assert shown == [] and turn.partial_text == ""


def test_slow_reply_times_out_with_advice_and_is_not_retried(sample_store) -> None:
    with fake_openai_server(default=Reply("slow", delay_s=4)) as server:
        error, shown, _ = failed_turn(served_assistant(sample_store, server.api_base, timeout_s=1.0))
        assert "no reply from openai/fake within 1 s; raise ASSISTANT_TIMEOUT_S" in str(error)
        assert len(server.requests) == 1 and shown == []


def test_401_is_not_retried_and_says_which_variable_to_check(sample_store) -> None:
    with fake_openai_server(default=Reply("status", status=401)) as server:
        error, _, _ = failed_turn(served_assistant(sample_store, server.api_base))
        assert f"{server.api_base} rejected the API key for openai/fake (HTTP 401): check OPENAI_API_KEY" in str(error)
        assert len(server.requests) == 1
        assert server.requests[0].headers["authorization"] == f"Bearer {PLANTED_KEY}"  # the key was really sent
        assert PLANTED_KEY not in str(error)


def test_429_is_retried_then_a_clear_error_names_the_retries(sample_store) -> None:
    with fake_openai_server(default=Reply("status", status=429)) as server:
        error, _, _ = failed_turn(served_assistant(sample_store, server.api_base, max_retries=2))
        assert "openai/fake is rate limited (HTTP 429) and still was after 2 retries" in str(error)
        assert "ASSISTANT_MAX_RETRIES" in str(error)
        assert len(server.requests) == 3


def test_429_then_success_recovers_within_the_retries(sample_store) -> None:
    with fake_openai_server(Reply("status", status=429), Reply("status", status=503), Reply(text=GROUNDED)) as server:
        turn = served_assistant(sample_store, server.api_base, max_retries=2).respond(QUESTION)
        assert turn.result.text == GROUNDED and turn.result.kind == "answer"
        assert len(server.requests) == 3


def test_server_error_is_retried_then_reported(sample_store) -> None:
    with fake_openai_server(default=Reply("status", status=500)) as server:
        error, _, _ = failed_turn(served_assistant(sample_store, server.api_base, max_retries=1))
        assert f"{server.api_base} failed with a server error after 1 retry" in str(error)
        assert len(server.requests) == 2 and PLANTED_KEY not in str(error)


def test_empty_reply_is_a_clear_error(sample_store) -> None:
    with fake_openai_server(default=Reply("empty")) as server:
        error, shown, _ = failed_turn(served_assistant(sample_store, server.api_base))
        assert "openai/fake returned an empty reply (finish reason: stop)" in str(error)
        # Not retried by the assistant (litellm itself asks once more without streaming).
        assert shown == [] and [r.body.get("stream") for r in server.requests][:1] == [True]
        assert len(server.requests) <= 2


def test_stream_breaking_halfway_keeps_the_partial_text_marked_cut(sample_store) -> None:
    reply = "ZIP-FIT selects training data by compression-based alignment with the target task [1]."
    with fake_openai_server(Reply("cut", text=reply, pieces=5)) as server:
        error, shown, turn = failed_turn(served_assistant(sample_store, server.api_base))
        partial = "ZIP-FIT selects training data by"
        assert "".join(shown) == partial and turn.partial_text == partial
        assert f"lost the connection to {server.api_base} mid-reply — did the server stop?" in str(error)
        assert f"(the reply was cut after {len(partial)} characters)" in str(error)
        assert error.partial_text == partial
        assert len(server.requests) == 1, "text already shown is never silently restarted"


def test_stream_stalling_halfway_times_out_and_keeps_the_partial_text(sample_store) -> None:
    with fake_openai_server(Reply("stall", text="ZIP-FIT selects data by compression", pieces=2, delay_s=4)) as server:
        error, shown, turn = failed_turn(served_assistant(sample_store, server.api_base, timeout_s=1.0))
        assert "".join(shown) == "ZIP-FIT selects" == turn.partial_text
        assert "openai/fake stalled mid-reply for 1 s; raise ASSISTANT_TIMEOUT_S" in str(error)


def _served_backend(tmp_path: Path, api_base: str, **overrides: object) -> LiteLLMBackend:
    values: dict[str, object] = {"data_dir": tmp_path, "model": "openai/fake", "api_base": api_base, "max_retries": 0}
    values.update(overrides)
    return LiteLLMBackend.from_settings(Settings(**values), retry_delay_s=0.01)


QUESTION_MESSAGES = [Message(role="user", content=QUESTION)]


@pytest.mark.parametrize("pieces", [2, 0], ids=["mid-reply", "before-any-text"])
def test_a_server_dripping_bytes_meets_the_whole_reply_deadline(tmp_path: Path, pieces: int) -> None:
    """A byte every 0.2 s never trips the 1 s read timeout; the whole reply's deadline does."""
    reply = Reply("drip", text=GROUNDED, pieces=pieces, delay_s=0.2)
    with fake_openai_server(default=reply) as server:
        streamed = _served_backend(tmp_path, server.api_base, timeout_s=1.0).generate(QUESTION_MESSAGES)
        shown: list[str] = []
        with pytest.raises(LLMError) as excinfo:
            shown.extend(streamed)
        elapsed = time.monotonic() - server.requests[0].received_at
        assert server.requests[0].finished.wait(5) and server.requests[0].client_closed
    error = excinfo.value
    assert error.kind == "timeout" and elapsed < 1.0 + DEADLINE_GRACE_S + 3.0, elapsed  # a busy machine: +3 s
    report = describe(error)
    assert report.exit_code == 3 and report.http_status == 503
    if pieces:
        assert "".join(shown) == "ZIP-FIT selects " == error.partial_text
        assert "openai/fake was still writing its reply after 1 s; raise ASSISTANT_TIMEOUT_S" in str(error)
        assert "(the reply was cut after 16 characters)" in str(error)
    else:
        assert shown == [] and "no reply from openai/fake within 1 s; raise ASSISTANT_TIMEOUT_S" in str(error)


def test_a_server_ignoring_max_tokens_is_cut_at_the_budget_and_not_read_to_the_end(tmp_path: Path) -> None:
    with fake_openai_server(default=Reply("flood", text="ZIP-FIT selects data", size=6_000_000)) as server:
        streamed = _served_backend(tmp_path, server.api_base).generate(QUESTION_MESSAGES, max_tokens=50)
        completion = streamed.result
        request = server.requests[0]
        assert request.body["max_tokens"] == 50
        assert request.finished.wait(10), "the server is still writing"
    assert len(completion.text) == 50 * MAX_CHARS_PER_TOKEN and completion.finish_reason == "length"
    # Closed, not read to the end (what the server wrote before it noticed sat in socket buffers).
    assert request.client_closed and request.sent_chars < 6_000_000, request.sent_chars
    assert streamed.notices == [
        "openai/fake wrote past its limit of 50 tokens (it ignored max_tokens): "
        "the reply was cut after 400 characters and the rest left unread."
    ]


def test_a_flooded_answer_says_it_was_cut(sample_store) -> None:
    with fake_openai_server(default=Reply("flood", text=GROUNDED, size=6_000_000)) as server:
        reply = served_assistant(sample_store, server.api_base, max_answer_tokens=60).respond(QUESTION).result
        assert server.requests[0].finished.wait(10) and server.requests[0].client_closed
    assert any("ignored max_tokens" in notice for notice in reply.notices), reply.notices


def test_a_failure_before_any_text_is_not_called_a_cut_reply(sample_store) -> None:
    with fake_openai_server(default=Reply("status", status=401)) as server:
        assistant = served_assistant(sample_store, server.api_base)
        generation = assistant.backend.generate([])
        with pytest.raises(LLMError) as excinfo:
            _ = generation.result
        assert "cut after 0 characters" not in str(excinfo.value)
        assert excinfo.value.partial_text == ""


def test_model_faults_on_the_command_line_are_exit_3_without_traceback(
    sample_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--store", str(sample_settings.store.resolved_store_dir), "--model", "openai/fake"]
    monkeypatch.setenv("ASSISTANT_MAX_RETRIES", "1")
    monkeypatch.setenv("ASSISTANT_TIMEOUT_S", "1")
    cases = [
        (Reply("status", status=401), "rejected the API key for openai/fake (HTTP 401)"),
        (Reply("status", status=429), "rate limited (HTTP 429) and still was after 1 retry"),
        (Reply("empty"), "returned an empty reply"),
        (Reply("cut", text=GROUNDED, pieces=4), "mid-reply — did the server stop? (the reply was cut after"),
        (Reply("slow", delay_s=3), "no reply from openai/fake within 1 s"),
    ]
    for reply, message in cases:
        with fake_openai_server(default=reply) as server:
            monkeypatch.setenv("ASSISTANT_API_BASE", server.api_base)
            code = main(["ask", QUESTION, *store])
            out, err = capsys.readouterr()
            assert code == 3 and out == "", (reply, err)
            assert message in err and "Traceback" not in err, (reply, err)
    monkeypatch.setenv("ASSISTANT_API_BASE", f"http://127.0.0.1:{free_port()}/v1")
    code = main(["ask", QUESTION, *store])
    assert code == 3 and "could not connect to" in capsys.readouterr().err


# --- model faults against a real OpenAI-compatible server (llama-cpp-python's) -----------------------


@pytest.fixture(scope="module")
def llama_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llm_fixtures import local_model_unavailable, smollm2_gguf

    if local_model_unavailable() is not None:
        pytest.skip(str(local_model_unavailable()))
    return smollm2_gguf(tmp_path_factory.mktemp("gguf"))


@pytest.fixture(scope="module")
def llama_server(llama_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from test_llm_server import start_server

    server = start_server(llama_gguf, tmp_path_factory.mktemp("llama") / "server.log")
    try:
        yield server
    finally:
        if server.process.poll() is None:
            os.kill(server.process.pid, signal.SIGCONT)
        server.stop(signal.SIGKILL)


def llama_assistant(store: PaperStore, api_base: str, **overrides: object) -> PaperAssistant:
    values: dict[str, object] = {
        "model": "openai/smollm2",
        "max_answer_tokens": 48,
        "temperature": 0.0,
        "timeout_s": 120,
    }
    values.update(overrides)
    return served_assistant(store, api_base, **values)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_real_server_frozen_then_thawed(sample_store, llama_server) -> None:
    """A server that stops answering (SIGSTOP) times out with advice; thawed, the same session answers again."""
    answer = llama_assistant(sample_store, llama_server.api_base).answer(QUESTION)
    assert answer.text and answer.model == "openai/smollm2"

    os.kill(llama_server.process.pid, signal.SIGSTOP)
    try:
        frozen = llama_assistant(sample_store, llama_server.api_base, timeout_s=2.0, max_retries=0)
        error, shown, _ = failed_turn(frozen)
        assert "no reply from openai/smollm2 within 2 s; raise ASSISTANT_TIMEOUT_S" in str(error) and shown == []
    finally:
        os.kill(llama_server.process.pid, signal.SIGCONT)
    again = llama_assistant(sample_store, llama_server.api_base).answer(QUESTION)
    assert again.text and again.model == "openai/smollm2"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_real_server_killed_mid_reply_then_gone(sample_store, llama_gguf: Path, tmp_path: Path) -> None:
    from test_llm_server import start_server

    own = start_server(llama_gguf, tmp_path / "own.log")
    try:
        assistant = llama_assistant(sample_store, own.api_base, max_answer_tokens=300)
        # A question that makes the small model write at length.
        turn = assistant.respond("Explain in detail, step by step, how ZIP-FIT selects training data and why it works.")
        shown: list[str] = []
        with pytest.raises(LLMError) as excinfo:
            for piece in turn:
                shown.append(piece)
                if len(shown) == 3:
                    own.stop(signal.SIGKILL)
        assert len(shown) >= 3 and turn.partial_text == "".join(shown)
        assert f"lost the connection to {own.api_base} mid-reply" in str(excinfo.value)
        assert f"cut after {len(turn.partial_text)} characters" in str(excinfo.value)
    finally:
        own.stop(signal.SIGKILL)

    env = cli_env(ASSISTANT_API_BASE=own.api_base, ASSISTANT_MAX_RETRIES="0")
    result = run_cli(
        "ask",
        QUESTION,
        "--model",
        "openai/smollm2",
        "--store",
        str(sample_store.settings.store.resolved_store_dir),
        env=env,
    )
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert f"could not connect to {own.api_base} — is the server running?" in result.stderr


# --- the store: a Chroma server going away ----------------------------------------------------------


def _small_papers(count: int = 4) -> list:
    topics = ["sparse attention for long documents", "task vector arithmetic", "compression-based data selection",
              "diffusion sampling with fewer steps"]  # fmt: skip
    return [
        build_paper(
            title=f"A Study of {t.title()}",
            abstract=f"We study {t}. Our method improves {t} by a wide margin.",
            source="s",
        )
        for t in topics[:count]
    ]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_chroma_server_down_mid_session_is_clear_and_recovers(chroma_server, tmp_path: Path, capsys) -> None:
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_server.url)
    store = PaperStore(settings)
    ingest_papers(ReadResult(papers=_small_papers()), store=store)
    backend = FakeLLM()
    assistant = PaperAssistant(settings, store=store, backend=backend)
    question = "Which paper studies compression-based data selection?"
    backend.enqueue("Compression-based data selection is studied here [1].")
    assert assistant.respond(question).result.kind == "answer"

    chroma_server.stop()
    with pytest.raises(StoreUnavailable, match=rf"the Chroma server at {chroma_server.url}.*chroma run"):
        assistant.respond(question)
    with pytest.raises(StoreUnavailable):
        assistant.search("task vectors")
    for argv in (["ask", question, "--model", "fake"], ["papers"], ["search", "task vectors"]):
        code = main([*argv, "--chroma-url", chroma_server.url])
        out, err = capsys.readouterr()
        assert code == 3 and out == "" and "chroma run" in err and "Traceback" not in err, (argv, err)

    chroma_server.start()
    backend.enqueue("Compression-based data selection is studied here [1].")
    turn = assistant.respond(question)
    assert (
        turn.result.kind == "answer" and turn.result.sources[0].title == "A Study of Compression-Based Data Selection"
    )
    assert len(assistant.papers()) == 4
    index = Retriever(store).refresh()
    assert sorted(index.chunk_ids) == sorted(row[0] for row in store.all_chunks())


# --- the store: read-only and full disks -----------------------------------------------------------


def _private_mounts() -> str | None:
    """Why a private mount namespace cannot be used here (None when it can)."""
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    with tempfile.TemporaryDirectory() as target:
        probe = subprocess.run(
            [
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                f"mount -t tmpfs -o size=64k tmpfs '{target}' && touch '{target}/x'",
            ],
            capture_output=True,
            text=True,
        )
    return None if probe.returncode == 0 else f"no private mount namespace here: {probe.stderr.strip()[:200]}"


def in_private_mounts(script: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``script`` (bash) in its own mount namespace: its mounts vanish with it and nothing else sees them."""
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "bash", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=REPO_ROOT,
    )


def _ingest_small_store(tmp_path: Path, count: int = 20) -> tuple[Path, Path, Settings]:
    papers = tmp_path / "small.jsonl"
    synthetic_papers_jsonl(papers, count, sentences=2)
    settings = Settings(data_dir=tmp_path / "data", store_dir=tmp_path / "store")
    from ingestion.pipeline import ingest_paths

    ingest_paths([papers], store=PaperStore(settings))
    return papers, settings.store.resolved_store_dir, settings


_CHECK_STORE = """
import json, sys
from collections import Counter
from assistant.retrieval import Retriever
from assistant.settings import Settings
from assistant.store import PaperStore
store = PaperStore(Settings(store_dir=sys.argv[1], data_dir=sys.argv[2]))
rows = store.all_chunks()
index = store.paper_index()
per_paper = Counter(row[1] for row in rows)
print(json.dumps({
    "papers": len(index),
    "chunks": len(rows),
    "orphans": sorted(set(per_paper) - set(index)),
    "complete": all(per_paper[pid] == n for pid, (_, n) in index.items()),
    "bm25_agrees": sorted(Retriever(store).refresh().chunk_ids) == sorted(row[0] for row in rows),
}))
"""


def check_store(store_dir: Path, data_dir: Path, env: dict[str, str] | None = None) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", _CHECK_STORE, str(store_dir), str(data_dir)],
        capture_output=True, text=True, env=env or cli_env(), cwd=REPO_ROOT, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_read_only_store_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    _, store_dir, _settings = _ingest_small_store(tmp_path)
    more = tmp_path / "more.jsonl"
    synthetic_papers_jsonl(more, 5, start=100, sentences=2)
    env = cli_env(ASSISTANT_DATA_DIR=str(tmp_path / "data"))
    python = sys.executable
    if os.geteuid() != 0:
        # chmod is enough for an ordinary user.
        for path in [store_dir, *store_dir.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        try:
            result = run_cli("ingest", str(more), "--store", str(store_dir), env=env)
        finally:
            for path in [store_dir, *store_dir.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o200)
    else:
        # root writes through chmod: bind-mount the store read-only in a private mount namespace.
        reason = _private_mounts()
        if reason is not None:
            pytest.skip(f"root ignores chmod and {reason}")
        result = in_private_mounts(
            f"mount --bind '{store_dir}' '{store_dir}' && mount -o remount,ro,bind '{store_dir}' '{store_dir}' || exit 99\n"
            f"exec '{python}' -m assistant ingest '{more}' --store '{store_dir}'",
            env,
        )
        if result.returncode == 99:
            pytest.skip(f"could not bind-mount read-only: {result.stderr[:200]}")
    assert result.returncode == 3 and result.stdout == "", result.stderr
    assert f"the store in {store_dir}" in result.stderr and "Check that the folder is writable" in result.stderr
    assert "Traceback" not in result.stderr
    state = check_store(store_dir, tmp_path / "data", env)
    assert state == {"papers": 20, "chunks": 20, "orphans": [], "complete": True, "bm25_agrees": True}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_full_disk_is_a_clear_error_and_the_store_stays_consistent(tmp_path: Path) -> None:
    reason = _private_mounts()
    if reason is not None:
        pytest.skip(f"a small disk needs a private tmpfs mount: {reason}")
    _, store_dir, _ = _ingest_small_store(tmp_path)
    many = tmp_path / "many.jsonl"
    synthetic_papers_jsonl(many, 400, start=1000, sentences=3)
    disk = tmp_path / "disk"
    disk.mkdir()
    used_kib = sum(p.stat().st_size for p in store_dir.rglob("*") if p.is_file()) // 1024
    python = sys.executable
    checker = tmp_path / "check_store.py"
    checker.write_text(_CHECK_STORE)
    env = cli_env(ASSISTANT_DATA_DIR=str(disk / "data"))
    script = f"""
set -u
mount -t tmpfs -o size={used_kib + 600}k tmpfs '{disk}' || exit 99
cp -r '{store_dir}' '{disk}/store'
'{python}' -m assistant ingest '{many}' --store '{disk}/store'
echo "ingest-exit=$?"
echo "--- check" >&2
'{python}' '{checker}' '{disk}/store' '{disk}/data'
"""
    result = in_private_mounts(script, env)
    if result.returncode == 99:
        pytest.skip(f"could not mount a tmpfs: {result.stderr[:200]}")
    assert "ingest-exit=3" in result.stdout, result.stdout + result.stderr
    message = result.stderr.split("--- check")[0]
    assert "could not write to the store in" in message and "free space" in message, message
    assert "disk is full" in message or "No space left" in message, message
    assert "Traceback" not in result.stderr
    state = json.loads(result.stdout.strip().splitlines()[-1])
    # Whatever was committed before the disk filled is complete; nothing half-written is visible.
    assert state["orphans"] == [] and state["complete"] and state["bm25_agrees"], state
    assert 20 <= state["papers"] < 420 and state["chunks"] == state["papers"]


def _unwritable_data_dir(tmp_path: Path) -> Path:
    """A data folder that cannot be created or written, for any user (root included): under a regular file."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder's parent should be")
    return blocker / "data"


def test_search_works_with_an_unwritable_data_folder(
    sample_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The BM25 index cannot be saved: it is rebuilt in memory and the search still answers."""
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(_unwritable_data_dir(tmp_path)))
    code = main(
        [
            "search",
            "compression-based data selection",
            "-k",
            "2",
            "--json",
            "--store",
            str(sample_settings.store.resolved_store_dir),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["hits"][0]["title"].startswith("ZIP-FIT")


@pytest.mark.parametrize("session", [[], ["--session", "notes"]], ids=["ask", "ask-session"])
def test_ask_with_an_unwritable_data_folder_is_exit_3_with_a_message(
    sample_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    session: list[str],
) -> None:
    data_dir = _unwritable_data_dir(tmp_path)
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(data_dir))
    code = main(
        ["ask", QUESTION, "--model", "fake", *session, "--store", str(sample_settings.store.resolved_store_dir)]
    )
    _, err = capsys.readouterr()
    assert code == 3 and str(data_dir) in err and "ASSISTANT_DATA_DIR" in err


# --- the store: an ingest killed halfway ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_ingest_killed_halfway_is_completed_by_the_next_without_duplicates_or_orphans(tmp_path: Path) -> None:
    papers = tmp_path / "big.jsonl"
    total = 3 * PAPERS_PER_GROUP + 100
    titles = synthetic_papers_jsonl(papers, total, sentences=3)
    store_dir, data_dir = tmp_path / "store", tmp_path / "data"
    env = cli_env(ASSISTANT_DATA_DIR=str(data_dir))
    command = [sys.executable, "-m", "assistant", "ingest", str(papers), "--store", str(store_dir)]

    watcher = start_with_terminal(command, env)
    try:
        done, planned = watcher.wait_for_progress(1, timeout_s=900)
    finally:
        watcher.kill()
    assert watcher.process.returncode == -signal.SIGKILL
    assert 0 < done < planned == total

    # What the killed ingest committed is whole: complete papers, every chunk indexed.
    after_kill = check_store(store_dir, data_dir, env)
    assert 0 < after_kill["papers"] < total and after_kill["complete"] and after_kill["bm25_agrees"], after_kill

    result = run_cli("ingest", str(papers), "--store", str(store_dir), "--json", env=env, timeout=1500)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["papers_added"] + report["papers_unchanged"] == total == report["total_papers"]
    assert report["papers_unchanged"] == after_kill["papers"] and report["papers_updated"] == 0

    state = check_store(store_dir, data_dir, env)
    assert state == {"papers": total, "chunks": total, "orphans": [], "complete": True, "bm25_agrees": True}
    store = PaperStore(Settings(store_dir=store_dir, data_dir=data_dir))
    stored_titles = Counter(s.paper.title for s in store.list_papers())
    assert stored_titles == Counter(titles), "every paper exactly once"
    # The last paper, written by the second ingest, is in both indexes: first by keywords (its own
    # number), and among the first by fusion. Dense search cannot tell 87 "Speech Recognition at
    # Scale N" titles apart, so rank fusion may put another of them first.
    hits = {hit.paper.title: hit for hit in Retriever(store).search(titles[-1], 5)}
    assert titles[-1] in hits and hits[titles[-1]].bm25_rank == 1 and hits[titles[-1]].dense_rank is not None
