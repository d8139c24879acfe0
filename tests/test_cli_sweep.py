"""Every CLI argument given hostile values: it ends with exit 0, 2 or 3 and a message, never a bug.

Each command's every argument that takes a value, and the global options, get an undecodable
value (bytes the terminal's encoding cannot read, as Python passes them: lone surrogates), an
empty one, a whitespace-only one and an oversized one (100,000 characters), one at a time,
the others set to something ordinary. Runs in-process on a copy of the sample store with a
scripted model; ``app`` and ``serve`` get as far as starting their server, which is replaced.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from assistant.cli import build_parser, main
from assistant.errors import EXIT_BAD_INPUT, EXIT_OK
from assistant.llm import FakeLLM
from assistant.settings import Settings

UNDECODABLE = b"\xff\xfe zebra".decode("utf-8", "surrogateescape")
HOSTILE_VALUES = {
    "undecodable": UNDECODABLE,
    "empty": "",
    "whitespace": "   \t ",
    "oversized": "zebra " * 16_667,
}
EXIT_UNAVAILABLE = 3
ALLOWED_EXITS = {EXIT_OK, EXIT_BAD_INPUT, EXIT_UNAVAILABLE}
BUG_MARK = "ASSISTANT_DEBUG"  # what main prints for an unexpected exception


def _ordinary_positionals(records: Path, questions: Path) -> dict[str, dict[str, list[str]]]:
    """Per command, ordinary values of its positional arguments (dest -> values)."""
    return {
        "ingest": {"paths": [str(records)]},
        "search": {"query": ["task vectors"]},
        "ask": {"question": ["How does aTLAS scale task vectors?"]},
        "summarize": {"paper": ["aTLAS"]},
        "compare": {"papers": ["aTLAS", "ZIP-FIT"]},
        "eval": {"file": [str(questions)]},
    }


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    found = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(found.choices)


GLOBAL_OPTIONS = ("--store", "--chroma-url", "--collection", "--model")


def _cases() -> list[tuple[str, str]]:
    """(command, argument) pairs: each argument of each command that takes a value."""
    cases = []
    for command, sub in _subcommands().items():
        for action in sub._actions:
            if action.nargs == 0 or isinstance(action, argparse._HelpAction):
                continue
            name = action.option_strings[0] if action.option_strings else action.dest
            if name in GLOBAL_OPTIONS and command not in ("papers", "ask"):
                continue  # the global options are swept on a command that reads the store and one that asks
            cases.append((command, name))
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def sweep_dir(sample_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    shutil.copytree(sample_settings.store.resolved_store_dir, root / "store")
    (root / "records.jsonl").write_text(json.dumps({"title": "A new paper", "abstract": "It studies zebras."}) + "\n")
    (root / "questions.jsonl").write_text(
        json.dumps(
            {
                "kind": "lookup",
                "question": "Which paper scales task vectors?",
                "gold_titles": ["Knowledge Composition using Task Vectors with Learned Anisotropic Scaling"],
                "must_mention": ["aTLAS"],
            }
        )
        + "\n"
    )
    return root


@pytest.fixture
def quiet_servers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``app`` and ``serve`` reach their server start, which records what it would have served instead."""
    started: list[str] = []
    monkeypatch.setattr("assistant.cli.run_until_stopped", lambda command, env: started.append("app") or 0)
    monkeypatch.setattr("assistant.api.serve", lambda *args, **kwargs: started.append("serve"))
    return started


def _argv(command: str, argument: str, value: str, root: Path) -> list[str]:
    positionals = _ordinary_positionals(root / "records.jsonl", root / "questions.jsonl").get(command, {})
    argv = [command]
    for dest, values in positionals.items():
        argv += [value] if dest == argument else values
    if argument.startswith("-"):
        argv += [argument, value]
    if argument != "--store":
        argv += ["--store", str(root / "store")]
    if argument != "--model":
        argv += ["--model", "fake"]
    if command == "eval":
        argv.append("--retrieval-only")
    return argv


@pytest.mark.parametrize("kind", list(HOSTILE_VALUES))
@pytest.mark.parametrize(("command", "argument"), CASES, ids=[f"{c} {a}" for c, a in CASES])
def test_a_hostile_value_ends_in_a_message_never_a_bug(
    command: str,
    argument: str,
    kind: str,
    sweep_dir: Path,
    quiet_servers: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)  # an empty --store is the current folder: this test's own
    monkeypatch.setattr("assistant.service.build_backend", lambda settings=None: FakeLLM())
    code = main(_argv(command, argument, HOSTILE_VALUES[kind], sweep_dir))
    out, err = capsys.readouterr()
    assert code in ALLOWED_EXITS, (code, err[-500:])
    assert BUG_MARK not in err and "Traceback" not in out + err, err[-500:]
    if code != EXIT_OK:
        assert err.strip() and len(err) < 2_000, "a short message says what to fix"
    if kind == "undecodable":
        assert code == EXIT_BAD_INPUT and "not valid text (undecodable bytes)" in err, err


@pytest.mark.parametrize("name", ["", "   "])
def test_an_empty_conversation_name_is_refused_with_a_message(
    name: str, sweep_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("assistant.service.build_backend", lambda settings=None: FakeLLM())
    code = main(["ask", "zebra?", "--session", name, "--store", str(sweep_dir / "store"), "--model", "fake"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and "error: argument --session: a conversation name needs some letters" in err, err


def test_the_sweep_covers_every_command() -> None:
    # `update` takes only the global options (swept on `papers` and `ask`) and --json.
    assert {command for command, _ in CASES} >= set(_subcommands()) - {"papers", "digest", "update"}
    assert {argument for _, argument in CASES} >= {"query", "question", "--session", "paper", "papers", "file"}
