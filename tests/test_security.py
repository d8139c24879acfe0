"""Security: API keys stay in the environment, uploads are only parsed, the app listens on this machine only.

A fake key is planted in OPENAI_API_KEY, failures that tend to echo credentials are
provoked (a server that puts the Authorization header in its 401 and 500 bodies, a
refused connection, a broken stream), and every output is searched for it: error
messages and their tracebacks, logs, CLI stdout and stderr, conversation history, the
exported Markdown and the bytes of every file in the data folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import socket
import subprocess
import sys
import time
import tomllib
import traceback
from pathlib import Path

import httpx
import pytest
from api_fixtures import running
from reliability_fixtures import PLANTED_KEY, REPO_ROOT, Reply, cli_env, fake_openai_server, run_cli

from assistant.api import create_app
from assistant.conversations import ChatTurn, ConversationStore
from assistant.errors import LLMError
from assistant.llm import describe_requirements
from assistant.llm.litellm_backend import LiteLLMBackend
from assistant.redaction import StreamRedactor, redact_secrets
from assistant.schema import Message
from assistant.service import PaperAssistant
from assistant.settings import Settings
from ingestion.errors import IngestionError
from ingestion.pipeline import read_uploads
from ingestion.readers import read_bytes, read_path
from tests.conftest import free_port

QUESTION = "How does ZIP-FIT select training data?"
KEY_PIECES = (PLANTED_KEY, PLANTED_KEY[3:], "PLANTED-123456")


def assert_no_key(text: str | bytes, where: str) -> None:
    data = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
    for piece in KEY_PIECES:
        assert piece not in data, f"the API key leaked into {where}"


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


@pytest.fixture(autouse=True)
def planted_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)


# --- keys come only from the environment -----------------------------------------------------------


def test_settings_have_no_place_for_a_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASSISTANT_API_KEY", PLANTED_KEY)
    monkeypatch.setenv("ASSISTANT_OPENAI_API_KEY", PLANTED_KEY)
    settings = Settings(data_dir=tmp_path)
    secret_words = {"key", "token", "secret", "password", "credential", "auth"}
    assert not [name for name in Settings.model_fields if secret_words & set(name.split("_"))]
    assert_no_key(settings.model_dump_json(), "the settings")
    assert_no_key(repr(settings), "the settings' repr")


def test_model_requirements_never_show_the_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, model="openai/gpt-4o-mini")
    assert describe_requirements("openai/gpt-4o-mini", settings) is None  # the key is set: nothing missing
    address = f"http://127.0.0.1:{free_port()}/v1"
    served = Settings(data_dir=tmp_path, model="openai/served", api_base=address)
    message = describe_requirements("openai/served", served) or ""
    assert address in message
    assert_no_key(message, "a model requirement")


# --- failures never carry the key ------------------------------------------------------------------


def _service(sample_store, api_base: str, **overrides: object) -> PaperAssistant:
    values: dict[str, object] = {
        "data_dir": sample_store.settings.store.data_dir,
        "store_dir": sample_store.settings.store.resolved_store_dir,
        "model": "openai/fake",
        "api_base": api_base,
        "max_retries": 1,
        "timeout_s": 5.0,
    }
    values.update(overrides)
    settings = Settings(**values)
    return PaperAssistant(
        settings, store=sample_store, backend=LiteLLMBackend.from_settings(settings, retry_delay_s=0.01)
    )


def _everything_about(error: BaseException) -> str:
    """What a log or a screen could show of an error: its text, repr, partial text and whole traceback."""
    parts = [str(error), repr(error), getattr(error, "partial_text", "")]
    parts.append("".join(traceback.format_exception(error)))
    return "\n".join(parts)


@pytest.mark.parametrize(
    "reply",
    [Reply("status", status=401), Reply("status", status=500), Reply("cut", text="ZIP-FIT selects data", pieces=2)],
    ids=["401-echoing-the-key", "500-echoing-the-key", "broken-stream"],
)
def test_failures_carry_no_key_in_errors_logs_or_history(
    sample_store, reply: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with fake_openai_server(default=reply) as server:
        assistant = _service(sample_store, server.api_base)
        turn = assistant.respond(QUESTION)
        with pytest.raises(LLMError) as excinfo:
            "".join(turn)
        assert server.requests and server.requests[0].headers["authorization"] == f"Bearer {PLANTED_KEY}"
    assert_no_key(_everything_about(excinfo.value), "the error")
    assert_no_key(turn.partial_text, "the partial reply")
    assert_no_key(caplog.text, "the logs")
    for record in caplog.records:
        assert_no_key(str(record.args), "a log record's arguments")


def test_connection_refused_carries_no_key(sample_store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(LLMError) as excinfo:
        "".join(_service(sample_store, f"http://127.0.0.1:{free_port()}/v1").respond(QUESTION))
    assert "could not connect to" in str(excinfo.value)
    assert_no_key(_everything_about(excinfo.value), "the error")
    assert_no_key(caplog.text, "the logs")


def test_a_reply_echoing_the_key_is_not_shown_with_it(sample_store) -> None:
    echo = f"ZIP-FIT selects data by compression-based alignment [1]. The server saw Bearer {PLANTED_KEY} [1]."
    with fake_openai_server(default=Reply(text=echo)) as server:
        turn = _service(sample_store, server.api_base).respond(QUESTION)
        _ = turn.result
    assert_no_key(turn.result.text, "the answer")
    assert_no_key(" ".join(turn.result.unsupported), "the unsupported sentences")
    assert_no_key(turn.result.to_chat_turn().model_dump_json(), "the chat history")


# --- a key echoed into a streamed reply is masked piece by piece ------------------------------------


def test_a_key_split_over_pieces_at_any_point_never_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_API_TOKEN", "opaque-token-value")
    said = (
        f"The server saw Authorization: Bearer {PLANTED_KEY}, then sk-ant-abcdefghij0123 "
        "and the token opaque-token-value, and Bearer Zq8yTb1XvK3m; the rest is research."
    )
    for first in range(1, len(said)):
        for second in (first + 1, first + 7, len(said)):
            redactor = StreamRedactor()
            pieces = [redactor.feed(said[:first]), redactor.feed(said[first:second]), redactor.feed(said[second:])]
            pieces.append(redactor.flush())
            for piece in pieces:
                for secret in ("PLANTED", "abcdefghij0123", "opaque-token", "Zq8yTb1XvK3m"):
                    assert secret not in piece, (first, second, piece)
            assert "".join(pieces) == redact_secrets(said)


def test_a_server_echoing_the_key_streams_no_piece_of_it(tmp_path: Path) -> None:
    with fake_openai_server(default=Reply("echo", text="ZIP-FIT selects data.", chunk_chars=5)) as server:
        settings = Settings(data_dir=tmp_path, model="openai/fake", api_base=server.api_base, max_retries=0)
        reply = LiteLLMBackend.from_settings(settings).generate([Message(role="user", content=QUESTION)])
        pieces = list(reply)
        assert server.requests[0].headers["authorization"] == f"Bearer {PLANTED_KEY}"
    assert len(pieces) > 3, "the reply still streams"
    for piece in pieces:
        assert_no_key(piece, "a streamed piece")
        assert "PLANT" not in piece and "123456" not in piece, piece
    assert (
        "".join(pieces)
        == reply.result.text
        == "ZIP-FIT selects data. The request carried Authorization: Bearer [redacted]."
    )


def test_the_apis_live_stream_carries_no_piece_of_an_echoed_key(sample_store) -> None:
    with fake_openai_server(default=Reply("echo", text="ZIP-FIT selects data by compression [1].")) as server:
        settings = sample_store.settings.replace(model="openai/fake", api_base=server.api_base, max_retries=0)
        payload = {
            "model": "paper-assistant",
            "messages": [{"role": "user", "content": QUESTION}],
            "stream": True,
            "stream_unchecked": True,
        }
        with running(create_app(settings, store=sample_store, token="")) as api:
            body = httpx.post(api.base_url + "/chat/completions", json=payload, timeout=60).text
        assert server.requests and server.requests[0].headers["authorization"] == f"Bearer {PLANTED_KEY}"
    events = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {")]
    shown = "".join(choice["delta"].get("content") or "" for event in events for choice in event["choices"])
    assert "[redacted]" in shown
    assert_no_key(shown, "the text a client shows from the API's live stream")


# --- the bearer rule masks credentials, not the words of an instruction ----------------------------


def test_the_api_token_instruction_stays_readable_and_credentials_after_bearer_are_masked() -> None:
    instruction = (
        "missing or wrong bearer token: send the header 'Authorization: Bearer <token>' "
        "with the value of ASSISTANT_API_TOKEN"
    )
    assert redact_secrets(instruction) == instruction
    for prose in ("use Bearer authentication", "a bearer token is needed", "Bearer tokens expire"):
        assert redact_secrets(prose) == prose
    for credential in (
        "tok_987654",
        "test-token-7f3a91c2",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "AbCdEfGhIjKlMnOpQrStUvWx",  # letters only, but long
        "dGhpcyBpcyBhIHRva2Vu==",
    ):
        assert redact_secrets(f"Authorization: Bearer {credential}") == "Authorization: Bearer [redacted]"
        assert redact_secrets(f'{{"auth": "bearer {credential}"}}') == '{"auth": "bearer [redacted]"}'


def test_conversations_on_disk_and_exported_never_hold_the_key(settings: Settings) -> None:
    conversations = ConversationStore.in_folder(settings.store.data_dir)
    conversation = conversations.create(f"debugging {PLANTED_KEY}")
    leaky = f"My key is {PLANTED_KEY}, why does it fail?"
    conversations.append_turn(conversation.conversation_id, ChatTurn(role="user", content=leaky))
    reply = ChatTurn(
        role="assistant",
        content=f"The server said: Incorrect API key provided: Bearer {PLANTED_KEY} [1]",
        kind="answer",
        result={"text": PLANTED_KEY, "notices": [f"auth {PLANTED_KEY}"]},
    )
    conversations.append_turn(conversation.conversation_id, reply)
    loaded = conversations.load(conversation.conversation_id)
    assert_no_key(loaded.model_dump_json(), "a loaded conversation")
    assert_no_key(conversations.export_markdown(conversation.conversation_id), "the exported Markdown")
    for path in files_under(settings.store.data_dir):
        assert_no_key(path.read_bytes(), str(path))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_cli_failures_and_sessions_never_show_or_store_the_key(sample_settings: Settings, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = ["--store", str(sample_settings.store.resolved_store_dir)]
    outputs: list[tuple[str, str]] = []
    with fake_openai_server(
        Reply("status", status=401), Reply("status", status=500), Reply("status", status=500)
    ) as server:
        env = cli_env(
            OPENAI_API_KEY=PLANTED_KEY,
            ASSISTANT_API_BASE=server.api_base,
            ASSISTANT_DATA_DIR=str(data_dir),
            ASSISTANT_MAX_RETRIES="1",
            LITELLM_LOG="DEBUG",  # even with litellm's own debug logging on
        )
        for _ in range(2):  # the 401, then the 500 twice (retried)
            result = run_cli("ask", QUESTION, "--model", "openai/fake", "--session", "leaks", *store, env=env)
            assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr
            outputs.append((result.stdout, result.stderr))
        assert len(server.requests) == 3
        server.default = Reply(text="ZIP-FIT selects training data by compression-based alignment [1].")
        result = run_cli("ask", QUESTION, "--model", "openai/fake", "--session", "leaks", "--json", *store, env=env)
        assert result.returncode == 0, result.stderr
        outputs.append((result.stdout, result.stderr))
    env["ASSISTANT_API_BASE"] = f"http://127.0.0.1:{free_port()}/v1"
    refused = run_cli("ask", QUESTION, "--model", "openai/fake", *store, env=env)
    assert refused.returncode == 3 and "could not connect" in refused.stderr
    outputs.append((refused.stdout, refused.stderr))
    missing = {k: v for k, v in env.items() if k not in ("OPENAI_API_KEY", "ASSISTANT_API_BASE")}
    no_key = run_cli("ask", QUESTION, "--model", "openai/gpt-4o-mini", *store, env=missing)
    assert no_key.returncode == 3 and "OPENAI_API_KEY" in no_key.stderr

    for stdout, stderr in outputs:
        assert_no_key(stdout, "the CLI's stdout")
        assert_no_key(stderr, "the CLI's stderr")
    conversations = ConversationStore(data_dir / "conversations.sqlite3")
    (info,) = conversations.list_conversations()
    assert info.turn_count == 2  # failed asks leave no turn behind
    assert_no_key(conversations.export_markdown(info.conversation_id), "the exported Markdown")
    for path in files_under(data_dir):
        assert_no_key(path.read_bytes(), str(path))


# --- uploads are parsed, never executed ------------------------------------------------------------


class _Exploit:
    """Unpickling this writes a marker file: proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_pickles_and_scripts_are_never_unpickled_or_run(tmp_path: Path) -> None:
    marker = tmp_path / "EXECUTED"
    payloads = {
        "papers.pkl": pickle.dumps(_Exploit(marker)),
        "papers.pickle": pickle.dumps(_Exploit(marker), protocol=0),  # protocol 0 is ASCII text
        "papers.json": pickle.dumps(_Exploit(marker), protocol=0),
        "papers": pickle.dumps(_Exploit(marker), protocol=0),
        "convert.py": f'import pathlib\n\npathlib.Path("{marker}").write_text("x")\n\nprint("done")\n'.encode(),
        "notes.txt": f'import pathlib\n\npathlib.Path("{marker}").write_text("x")\n'.encode(),
        "setup.sh": f"#!/bin/sh\n\ntouch '{marker}'\n".encode(),
    }
    for name, data in payloads.items():
        try:
            result = read_bytes(data, name)
        except IngestionError:
            continue
        # Whatever text was read is data: it never runs.
        assert all(paper.abstract for paper in result.papers)
    assert not marker.exists()

    uploaded = read_uploads(list(payloads.items()))
    reasons = {Path(problem.source).name: problem.reason for problem in uploaded.problems}
    for name in ("papers.pkl", "papers.pickle", "convert.py", "setup.sh"):
        assert "files are not read" in reasons[name]
    for name, data in payloads.items():
        (tmp_path / name).write_bytes(data)
        with contextlib.suppress(IngestionError):
            read_path(tmp_path / name)
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_cli_refuses_a_script_or_pickle_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "EXECUTED"
    script = tmp_path / "papers.py"
    script.write_text(f'"""Papers."""\n\nimport pathlib\n\npathlib.Path("{marker}").write_text("x")\n')
    pickled = tmp_path / "papers.pkl"
    pickled.write_bytes(pickle.dumps(_Exploit(marker)))
    for path in (script, pickled):
        result = run_cli("ingest", str(path), "--store", str(tmp_path / "store"))
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert f"{path}: {path.suffix} files are not read" in result.stderr
    assert not marker.exists()


# --- the app listens on this machine only ----------------------------------------------------------


def test_streamlit_config_binds_to_localhost() -> None:
    config_file = REPO_ROOT / ".streamlit" / "config.toml"
    assert config_file.is_file(), "no .streamlit/config.toml: streamlit would listen on every interface"
    config = tomllib.loads(config_file.read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"].get("headless") is True
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] in ("type", "none", False)  # no tracebacks on the page


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port``, from /proc/net/tcp{,6}."""
    found: set[str] = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, _, hex_port = local.partition(":")
            if state != "0A" or int(hex_port, 16) != port:
                continue
            raw = bytes.fromhex(address)
            if width == 8:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_app_listens_on_loopback_only_by_default(tmp_path: Path) -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux's /proc/net/tcp to see where the app listens")
    from conftest import wait_for_port

    port = free_port()
    env = cli_env(ASSISTANT_DATA_DIR=str(tmp_path / "data"))
    # With no --server.address, and started from another folder: the config beside the script still applies.
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO_ROOT / "streamlit_app.py"),
        "--server.port",
        str(port),
    ]
    log = tmp_path / "streamlit.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 120, process)
        time.sleep(0.5)
        addresses = _listening_addresses(port)
        assert addresses and addresses <= {"127.0.0.1", "::1"}, f"the app listens on {addresses}"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert "Traceback" not in log.read_text(errors="replace")
    assert os.environ.get("OPENAI_API_KEY") == PLANTED_KEY
    assert_no_key(log.read_bytes(), "the app's log")
