"""The CLI contract: commands, --json shapes and exit codes, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.settings import SAMPLE_COLLECTION


def run_cli(*args: str, env_extra: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.fixture
def store_dir(tmp_path):
    return str(tmp_path / "store")


def test_ingest_search_papers_json_contract(store_dir):
    ingested = run_cli("ingest", str(SAMPLE_COLLECTION), "--store", store_dir, "--json")
    assert ingested.returncode == 0, ingested.stderr
    report = json.loads(ingested.stdout)
    assert set(report) >= {
        "papers_added",
        "papers_updated",
        "papers_unchanged",
        "chunks_written",
        "total_papers",
        "problems",
    }
    assert report["papers_added"] == report["total_papers"] == 46 and report["problems"] == []

    again = json.loads(run_cli("--store", store_dir, "ingest", str(SAMPLE_COLLECTION), "--json").stdout)
    assert again["papers_unchanged"] == 46 and again["chunks_written"] == 0

    found = run_cli("search", "compression-based data selection", "-k", "3", "--json", "--store", store_dir)
    assert found.returncode == 0, found.stderr
    payload = json.loads(found.stdout)
    assert payload["query"] == "compression-based data selection"
    assert len(payload["hits"]) == 3
    assert set(payload["hits"][0]) >= {"paper_id", "title", "score", "text"}
    assert payload["hits"][0]["title"].startswith("ZIP-FIT")

    listed = json.loads(run_cli("papers", "--json", "--store", store_dir).stdout)
    assert listed["total"] == 46 and len(listed["papers"]) == 46
    assert {"paper_id", "title", "chunks"} <= set(listed["papers"][0])


def test_missing_file_is_exit_2_with_a_message_and_no_traceback(store_dir):
    result = run_cli("ingest", "/nonexistent/papers.json", "--store", store_dir)
    assert result.returncode == 2
    assert "/nonexistent/papers.json" in result.stderr and "Traceback" not in result.stderr


def test_usage_errors_are_exit_2(store_dir):
    assert run_cli("search").returncode == 2
    assert run_cli("frobnicate").returncode == 2
    assert run_cli("search", "   ", "--store", store_dir).returncode == 2
    bad_setting = run_cli("papers", "--store", store_dir, env_extra={"ASSISTANT_TOP_K": "0"})
    assert bad_setting.returncode == 2 and "ASSISTANT_TOP_K" in bad_setting.stderr


def test_unreachable_store_is_exit_3(tmp_path):
    from tests.conftest import free_port

    result = run_cli("papers", "--chroma-url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 3
    assert "chroma run" in result.stderr and "Traceback" not in result.stderr


def test_problems_are_listed_in_json(store_dir, tmp_path):
    data = tmp_path / "papers.jsonl"
    data.write_text('{"title": "Fine", "abstract": "An abstract."}\n{"title": 3, "abstract": []}\n')
    report = json.loads(run_cli("ingest", str(data), "--json", "--store", store_dir).stdout)
    assert report["papers_added"] == 1
    assert report["problems"] and set(report["problems"][0]) == {"source", "location", "reason"}


def test_app_options_repeat_the_streamlit_config_file():
    """`paper-assistant app` may start from any folder, where `.streamlit/config.toml` is not read."""
    import tomllib

    from assistant.cli import app_options

    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    given = app_options("127.0.0.1", 8501)
    flags = dict(zip(given[::2], given[1::2], strict=True))
    for section, values in config.items():
        for name, value in values.items():
            expected = str(value).lower() if isinstance(value, bool) else str(value)
            assert flags[f"--{section}.{name}"] == expected, f"{section}.{name}"
