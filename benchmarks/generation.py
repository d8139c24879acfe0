"""How long people wait, per local model: lookups, summaries and comparisons through the real assistant.

Each question of an eval file goes through ``PaperAssistant.respond`` (retrieval, evidence, the
model, the support check), exactly as in the chat. For every reply it records the time to the
first piece of text on screen and the total time to the checked reply; it prints p50 and p95
per model and per kind, side by side in one run, so a busy machine slows every model alike.
The first reply of each model (loading its weights) is timed apart and left out of the
percentiles.

    python benchmarks/generation.py --models qwen2.5-coder-1.5b-instruct,qwen2.5-coder-0.5b-instruct --per-kind 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from assistant.evaluation import replaced_by_extracts  # noqa: E402
from assistant.service import PaperAssistant  # noqa: E402
from assistant.settings import SAMPLE_COLLECTION, Settings  # noqa: E402
from assistant.store import PaperStore  # noqa: E402
from benchmarks.synthetic import machine_line, percentile  # noqa: E402
from ingestion.pipeline import ingest_paths  # noqa: E402

WARM_UP = "How does Flowformer make attention linear?"
"""Loads the model with a question of its own, so that no timed question finds its whole prompt cached."""
KINDS = {"lookup": ("lookup", "numeric", "multi"), "summary": ("summary",), "comparison": ("compare",)}


@dataclass(frozen=True)
class Timing:
    first_text_s: float
    total_s: float
    extractive: bool


def questions(path: Path, per_kind: int) -> dict[str, list[str]]:
    by_kind: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        for kind, item_kinds in KINDS.items():
            if item["kind"] in item_kinds and len(by_kind[kind]) < per_kind:
                by_kind[kind].append(item["question"])
    return by_kind


def timed(assistant: PaperAssistant, question: str) -> Timing:
    started = time.perf_counter()
    first: float | None = None
    stream = assistant.respond(question)
    for piece in stream:
        if first is None and piece.strip():
            first = time.perf_counter() - started
    reply = stream.result
    total = time.perf_counter() - started
    return Timing(first if first is not None else total, total, replaced_by_extracts(reply.result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--models", default="qwen2.5-coder-1.5b-instruct,qwen2.5-coder-0.5b-instruct,smollm2-135m-instruct"
    )
    parser.add_argument("--questions", type=Path, default=ROOT / "tests" / "data" / "dev.jsonl")
    parser.add_argument("--per-kind", type=int, default=5, help="questions of each kind (lookup, summary, comparison)")
    args = parser.parse_args()
    asked = questions(args.questions, args.per_kind)
    rows: list[tuple[str, str, int, float, float, float, float, int]] = []
    with TemporaryDirectory(prefix="paper-assistant-generation-") as folder:
        base = Settings(data_dir=Path(folder))
        store = PaperStore(base)
        ingest_paths([SAMPLE_COLLECTION], store=store)
        for name in args.models.split(","):
            settings = base.replace(model=f"local/{name}")
            assistant = PaperAssistant(settings, store=store)
            warm = timed(assistant, WARM_UP)
            print(f"{name}: first reply, loading included: {warm.total_s:.1f} s", flush=True)
            for kind, texts in asked.items():
                timings = [timed(assistant, text) for text in texts]
                if not timings:
                    continue
                firsts = [t.first_text_s for t in timings]
                totals = [t.total_s for t in timings]
                rows.append(
                    (
                        name,
                        kind,
                        len(timings),
                        percentile(firsts, 50),
                        percentile(firsts, 95),
                        percentile(totals, 50),
                        percentile(totals, 95),
                        sum(t.extractive for t in timings),
                    )
                )
                print(f"  {kind}: p50 {percentile(totals, 50):.1f} s", flush=True)
    print()
    print(machine_line())
    print("| model | kind | n | first text p50 | p95 | total p50 | p95 | replaced by extracts |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, kind, n, f50, f95, t50, t95, extractive in rows:
        print(f"| {name} | {kind} | {n} | {f50:.1f} s | {f95:.1f} s | {t50:.1f} s | {t95:.1f} s | {extractive} |")


if __name__ == "__main__":
    main()
