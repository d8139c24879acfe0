"""Peak memory (RSS) of ingesting and of serving, each in its own subprocess.

    python -m benchmarks.memory                    # 10,000 papers
    python -m benchmarks.memory --papers 1000      # quicker

Each measurement runs in a fresh child process and reads that child's peak resident set size
from the kernel when it exits (``os.wait4``: the child's own ``getrusage(RUSAGE_CHILDREN)`` figure,
``ru_maxrss``), so the benchmark's own memory never counts.

1. reference: a process that imports the assistant and loads the embedding model, nothing else;
2. ingest: ``python -m assistant ingest FILE --json`` of the synthetic collection into a fresh store;
3. serve, search: a PaperAssistant on that store runs searches (hybrid, BM25 index built from the store);
4. serve, answer: the same plus cited answers and a comparison with the fake model (no LLM weights).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from benchmarks.synthetic import DEFAULT_SEED, format_table, machine_line, sample_queries, synthetic_papers, write_jsonl  # noqa: E402

REFERENCE = """
import assistant.service, assistant.retrieval, assistant.store
from assistant.embeddings import build_embedder
build_embedder()(["warm up the model"])
"""

SERVE = """
import json, sys
from assistant.service import PaperAssistant
from assistant.settings import Settings
queries = json.loads(sys.argv[1])
answers = int(sys.argv[2])
assistant = PaperAssistant(Settings(model="fake"))
for round in range(2):
    for query in queries:
        assistant.search(query)
if answers:
    assistant.backend.default_reply = "The first source addresses this question directly [1]. The second one differs [2]."
    for query in queries[:answers]:
        assistant.answer(query)
    first, second = assistant.papers()[:2]
    assistant.respond(f'Compare "{first.title}" with "{second.title}"').result
print(json.dumps({"papers": len(assistant.papers())}))
"""


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(peak RSS in MiB, seconds, stdout) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Read the pipes on threads so a chatty child cannot block; then reap it with wait4 for its rusage.
    chunks: dict[str, str] = {}

    def drain(name: str, stream: object) -> None:
        chunks[name] = stream.read()  # type: ignore[attr-defined]

    readers = [
        threading.Thread(target=drain, args=(n, s)) for n, s in (("out", process.stdout), ("err", process.stderr))
    ]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    for reader in readers:
        reader.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    stdout, stderr = chunks.get("out", ""), chunks.get("err", "")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} ... exited with {process.returncode}:\n{stderr[-2000:]}")
    return usage.ru_maxrss / 1024, seconds, stdout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--papers", type=int, default=10000)
    parser.add_argument("--searches", type=int, default=40, help="distinct queries searched (twice each)")
    parser.add_argument("--answers", type=int, default=10, help="questions answered with the fake model")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--embedding-batch-size", type=int, help="ASSISTANT_EMBEDDING_BATCH_SIZE for every child")
    args = parser.parse_args(argv)
    print(machine_line())

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        tmp_dir = Path(tmp)
        jsonl = write_jsonl(synthetic_papers(args.papers, args.seed), tmp_dir / "papers.jsonl")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
        env["ASSISTANT_DATA_DIR"] = str(tmp_dir / "data")
        if args.embedding_batch_size:
            env["ASSISTANT_EMBEDDING_BATCH_SIZE"] = str(args.embedding_batch_size)
        python = sys.executable
        queries = json.dumps(sample_queries(args.searches))
        rows = []

        rss, seconds, _ = run_child([python, "-c", REFERENCE], env)
        rows.append(["reference: imports + embedding model loaded", f"{rss:,.0f}", f"{seconds:.1f}", ""])

        print(f"ingesting {args.papers:,} papers in a child process ...", file=sys.stderr, flush=True)
        rss, seconds, out = run_child([python, "-m", "assistant", "ingest", str(jsonl), "--json"], env)
        report = json.loads(out)
        rows.append([f"ingest {args.papers:,} papers (CLI)", f"{rss:,.0f}", f"{seconds:.1f}",
                     f"{report['chunks_written']:,} chunks written"])  # fmt: skip

        rss, seconds, _ = run_child([python, "-c", textwrap.dedent(SERVE), queries, "0"], env)
        rows.append([f"serve: {2 * args.searches} hybrid searches", f"{rss:,.0f}", f"{seconds:.1f}",
                     "first search builds the BM25 index"])  # fmt: skip
        rss, seconds, _ = run_child([python, "-c", textwrap.dedent(SERVE), queries, str(args.answers)], env)
        rows.append([f"serve: searches + {args.answers} answers + 1 comparison (fake model)", f"{rss:,.0f}",
                     f"{seconds:.1f}", "BM25 index loaded from disk"])  # fmt: skip

    batch = args.embedding_batch_size or "default"
    print(f"\nPeak RSS per process, {args.papers:,} synthetic papers (seed {args.seed}), embedding batch size {batch}")
    print(format_table(["process", "peak RSS MiB", "seconds", ""], rows))


if __name__ == "__main__":
    main()
