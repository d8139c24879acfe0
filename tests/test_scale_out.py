"""Server mode as a deployment: one `chroma run`, an ingesting process, and other processes that see its papers.

Every process here is a real subprocess with its own data folder, as separate app instances
would be: they share nothing but the Chroma server.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import SAMPLE_COLLECTION

pytestmark = pytest.mark.slow

NEW_PAPERS = [
    {
        "title": "Zorblax: Tidal Scheduling of Kelp Farm Harvests with Graph Reinforcement Learning",
        "abstract": (
            "We present Zorblax, a scheduler for kelp farm harvests that models tides, currents and vessel "
            "availability as a graph and learns harvest plans with reinforcement learning. On three seasons of "
            "data from coastal farms, Zorblax increases harvested biomass by 18.4% while cutting vessel hours."
        ),
        "authors": ["A. Marine"],
        "published": "2025-08-20",
    },
    {
        "title": "Counting Lighthouse Flashes: A Benchmark for Periodic Event Detection in Night Videos",
        "abstract": (
            "Lighthouses flash in characteristic periodic patterns. We release a benchmark of night-time coastal "
            "videos annotated with flash timings and evaluate periodic event detectors on it; the best model "
            "identifies the lighthouse from its flash pattern in 91% of clips."
        ),
        "authors": ["B. Keeper"],
        "published": "2025-08-20",
    },
]

HOLDER = textwrap.dedent(
    """
    import json, os, sys
    from assistant.retrieval import Retriever
    from assistant.settings import Settings
    from assistant.store import PaperStore

    retriever = Retriever(PaperStore(Settings()))
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        hits = retriever.search(request["query"], request.get("k", 3), hybrid=request.get("hybrid"))
        print(json.dumps({
            "pid": os.getpid(),
            "revision": retriever.store.revision(),
            "papers": len(retriever.store.paper_index()),
            "hits": [{"title": h.paper.title, "dense_rank": h.dense_rank, "bm25_rank": h.bm25_rank} for h in hits],
        }), flush=True)
    """
)


def _env(chroma_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update({"ASSISTANT_CHROMA_URL": chroma_url, "ASSISTANT_DATA_DIR": str(data_dir)})
    return env


def cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "assistant", *args, "--json"], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class Holder:
    """A long-running process holding one Retriever, asked questions over stdin, answering JSON lines."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.process.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        self.pid = self._read(120)["pid"]

    def _read(self, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._selector.select(timeout=0.5):
                line = self.process.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    raise RuntimeError(f"the retriever process exited with {self.process.wait()}")
                return json.loads(line)
            if self.process.poll() is not None:
                raise RuntimeError(f"the retriever process exited with {self.process.returncode}")
        raise TimeoutError(f"no reply from the retriever process within {timeout_s} s")

    def search(self, query: str, *, hybrid: bool | None = None, k: int = 3) -> dict[str, Any]:
        self.process.stdin.write(json.dumps({"query": query, "hybrid": hybrid, "k": k}) + "\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        return self._read(120)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()  # type: ignore[union-attr]
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._selector.close()


def test_processes_sharing_a_chroma_server_see_each_others_ingests(chroma_server, tmp_path: Path) -> None:
    ingester = _env(chroma_server.url, tmp_path / "ingester")
    report = cli(ingester, "ingest", str(SAMPLE_COLLECTION))
    assert report["papers_added"] == report["total_papers"] == 46

    # Another instance: nothing shared with the ingester but the server.
    searcher = _env(chroma_server.url, tmp_path / "searcher")
    found = cli(searcher, "search", "compression-based data selection", "-k", "3")
    assert found["hits"][0]["title"].startswith("ZIP-FIT")
    assert cli(searcher, "papers")["total"] == 46

    holder = Holder(_env(chroma_server.url, tmp_path / "holder"))
    try:
        before = holder.search("zorblax kelp farm harvest scheduling")
        assert before["papers"] == 46
        assert all("Zorblax" not in hit["title"] for hit in before["hits"])

        second = tmp_path / "new.jsonl"
        second.write_text("\n".join(json.dumps(paper) for paper in NEW_PAPERS) + "\n", encoding="utf-8")
        report = cli(ingester, "ingest", str(second))
        assert report["papers_added"] == 2 and report["total_papers"] == 48

        after = holder.search("zorblax kelp farm harvest scheduling")
        assert after["pid"] == holder.pid  # the same process, never restarted
        assert after["revision"] != before["revision"] and after["papers"] == 48
        top = after["hits"][0]
        assert top["title"].startswith("Zorblax")
        assert top["bm25_rank"] == 1  # the BM25 index was rebuilt for the new revision, not only dense search
        dense = holder.search("detecting periodic lighthouse flashes in night videos", hybrid=False)
        assert dense["hits"][0]["title"].startswith("Counting Lighthouse Flashes")
        # The papers already there are still found, by the same process.
        assert holder.search("compression-based data selection")["hits"][0]["title"].startswith("ZIP-FIT")
    finally:
        holder.close()

    # A third instance started after both ingests sees all 48 papers too.
    fresh = _env(chroma_server.url, tmp_path / "fresh")
    assert cli(fresh, "search", "lighthouse flash benchmark", "-k", "1")["hits"][0]["title"].startswith(
        "Counting Lighthouse"
    )
    assert cli(fresh, "papers")["total"] == 48
