"""The project must run with no network: these tests fail if anything opens a socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_offline_defaults_do_not_override_the_user(monkeypatch):
    from assistant.offline import apply_offline_defaults

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "/my/own/cache")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "False")
    apply_offline_defaults()
    assert os.environ["TIKTOKEN_CACHE_DIR"] == "/my/own/cache"
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "False"


def test_tiktoken_encoding_comes_from_litellms_bundle():
    from assistant.offline import bundled_tiktoken_dir

    bundled = bundled_tiktoken_dir()
    assert bundled is not None and any(bundled.iterdir())
    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(bundled)


def test_ingest_embed_and_search_touch_no_network(no_network, settings):
    from assistant.retrieval import Retriever
    from assistant.settings import SAMPLE_COLLECTION
    from assistant.store import PaperStore
    from assistant.tokens import count_tokens
    from ingestion.pipeline import ingest_paths

    assert count_tokens("task vectors") > 0
    store = PaperStore(settings)
    report = ingest_paths([SAMPLE_COLLECTION], store=store)
    assert report.papers_added == 46
    hits = Retriever(store).search("anisotropic scaling of task vectors", 3)
    assert hits[0].paper.title.startswith("Knowledge Composition using Task Vectors")


def test_fresh_interpreter_imports_without_network(tmp_path):
    """Import-time work (litellm's cost map, tiktoken files) must not reach for the network either."""
    script = textwrap.dedent(
        """
        import socket
        def refuse(*a, **k):
            raise SystemExit("network access attempted at import: %r" % (a,))
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        import assistant.cli, assistant.store, assistant.retrieval, assistant.llm, assistant.tokens
        assistant.tokens.count_tokens("hello")
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TIKTOKEN_CACHE_DIR", "LITELLM_LOCAL_MODEL_COST_MAP")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
