"""Local generation speed: the offline model through LiteLLMBackend vs llama-cpp-python directly.

Both paths use the same loaded model, the same prompt tokens, the same sampling and the
same ``max_tokens``; the KV cache is cleared before every run so each one pays for its
prompt. Reported: medians of time to first token, decode speed (tokens after the first,
per second) and total time, and the ratio backend/direct, which is litellm's and the
backend's overhead.

``--compare`` instead runs the summary questions of an eval file on several local models
and prints speed, how many expected terms each summary mentions, and the summaries.

    python benchmarks/generation.py --runs 5 --max-tokens 64
    python benchmarks/generation.py --compare --eval ../shared/eval/dev.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

from assistant.llm import (
    LOCAL_MODELS,
    LOCAL_REPEAT_PENALTY,
    LiteLLMBackend,
    LoadedLocalModel,
    LocalCallConfig,
    load_local_model,
)
from assistant.schema import Message
from assistant.settings import DEFAULT_LOCAL_MODEL, SAMPLE_COLLECTION, Settings

SUMMARY_SYSTEM = (
    "You summarise research paper abstracts. Write one paragraph of at most five sentences, "
    "using only facts stated in the abstract."
)


@dataclass(frozen=True)
class Timing:
    first_token_s: float
    total_s: float
    tokens: int

    @property
    def decode_tokens_per_s(self) -> float:
        decode_time = self.total_s - self.first_token_s
        return (self.tokens - 1) / decode_time if self.tokens > 1 and decode_time > 0 else 0.0


def timed(pieces: Iterable[str], count_tokens: Callable[[str], int]) -> tuple[Timing, str]:
    start = time.perf_counter()
    first: float | None = None
    received: list[str] = []
    for piece in pieces:
        if first is None:
            first = time.perf_counter() - start
        received.append(piece)
    total = time.perf_counter() - start
    text = "".join(received)
    return Timing(first_token_s=first or total, total_s=total, tokens=count_tokens(text)), text


def direct_pieces(loaded: LoadedLocalModel, messages: list[Message], max_tokens: int) -> Iterator[str]:
    """llama-cpp-python alone, with the prompt format and sampling the local provider uses."""
    tokens, stop, stopping_criteria = loaded.encode([m.model_dump() for m in messages])
    with loaded.lock:
        for chunk in loaded.llama.create_completion(
            tokens,
            max_tokens=max_tokens,
            temperature=0.0,
            stop=stop,
            stopping_criteria=stopping_criteria,
            repeat_penalty=LOCAL_REPEAT_PENALTY,
            stream=True,
        ):
            text = chunk["choices"][0]["text"]
            if text:
                yield text


def abstract_of(title: str, collection: Path = SAMPLE_COLLECTION) -> str:
    """The abstract that follows ``title`` in the sample collection (title line, blank, abstract)."""
    lines = [line.strip() for line in collection.read_text(encoding="utf-8").splitlines()]
    for index, line in enumerate(lines):
        if line == title:
            following = [candidate for candidate in lines[index + 1 :] if candidate]
            if following:
                return following[0]
    raise LookupError(f"'{title}' is not in {collection}")


def summary_messages(title: str, question: str) -> list[Message]:
    return [
        Message(role="system", content=SUMMARY_SYSTEM),
        Message(role="user", content=f"Title: {title}\n\nAbstract:\n{abstract_of(title)}\n\n{question}"),
    ]


def median_row(label: str, timings: list[Timing]) -> tuple[str, float, float, float, int]:
    return (
        label,
        statistics.median(t.first_token_s for t in timings) * 1000,
        statistics.median(t.decode_tokens_per_s for t in timings),
        statistics.median(t.total_s for t in timings),
        int(statistics.median(t.tokens for t in timings)),
    )


def benchmark_overhead(settings: Settings, *, runs: int, max_tokens: int) -> None:
    spec = LOCAL_MODELS[settings.llm.model.partition("/")[2]]
    config = LocalCallConfig.for_settings(spec, settings)
    loaded = load_local_model(config.path, n_ctx=config.n_ctx, n_threads=config.n_threads)
    backend = LiteLLMBackend(settings)
    messages = summary_messages(
        "Knowledge Composition using Task Vectors with Learned Anisotropic Scaling",
        "Summarise this paper in one paragraph.",
    )
    prompt_tokens = len(loaded.encode([m.model_dump() for m in messages])[0])

    # One untimed run of each path: loads the model, imports litellm, warms caches.
    timed(direct_pieces(loaded, messages, max_tokens), loaded.count_tokens)
    timed(backend.generate(messages, max_tokens=max_tokens, temperature=0.0), loaded.count_tokens)

    direct: list[Timing] = []
    through_backend: list[Timing] = []
    for _ in range(runs):  # interleaved, so drifting machine load hits both paths alike
        loaded.llama.reset()
        direct.append(timed(direct_pieces(loaded, messages, max_tokens), loaded.count_tokens)[0])
        loaded.llama.reset()
        generation = backend.generate(messages, max_tokens=max_tokens, temperature=0.0)
        through_backend.append(timed(generation, loaded.count_tokens)[0])

    rows = [
        median_row("llama-cpp-python direct", direct),
        median_row("LiteLLMBackend (litellm)", through_backend),
    ]
    print(
        f"model {settings.llm.model} · prompt {prompt_tokens} tokens · max_tokens {max_tokens} · "
        f"{runs} runs, medians · {config.n_threads} threads · n_ctx {config.n_ctx}"
    )
    print(f"{'path':<28}{'TTFT ms':>10}{'decode tok/s':>15}{'total s':>10}{'tokens':>8}")
    for label, ttft_ms, rate, total, tokens in rows:
        print(f"{label:<28}{ttft_ms:>10.1f}{rate:>15.1f}{total:>10.2f}{tokens:>8d}")
    (_, d_ttft, d_rate, d_total, _), (_, b_ttft, b_rate, b_total, _) = rows
    print(f"{'ratio backend/direct':<28}{b_ttft / d_ttft:>9.2f}x{b_rate / d_rate:>14.2f}x{b_total / d_total:>9.2f}x")


def compare_models(settings: Settings, *, eval_file: Path, models: list[str], max_tokens: int) -> None:
    items = [json.loads(line) for line in eval_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    summaries = [item for item in items if item.get("kind") == "summary"]
    for model in models:
        backend = LiteLLMBackend(settings.model_copy(update={"model": model}))
        rates: list[float] = []
        mentioned = expected = 0
        print(f"\n=== {model} ===")
        for item in summaries:
            title = item["gold_titles"][0]
            generation = backend.generate(summary_messages(title, item["question"]), max_tokens=max_tokens)
            timing, text = timed(generation, backend.count_tokens)
            rates.append(timing.decode_tokens_per_s)
            hits = [term for term in item["must_mention"] if term.lower() in text.lower()]
            mentioned += len(hits)
            expected += len(item["must_mention"])
            print(f"\n[{item['id']}] {title}\n  {timing.decode_tokens_per_s:.0f} tok/s, {timing.tokens} tokens, "
                  f"mentions {len(hits)}/{len(item['must_mention'])} {hits}\n  {' '.join(text.split())}")  # fmt: skip
        print(f"\n{model}: median decode {statistics.median(rates):.0f} tok/s, expected terms {mentioned}/{expected}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_LOCAL_MODEL, choices=[s.model_string for s in LOCAL_MODELS.values()])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="0: every core")
    parser.add_argument("--compare", action="store_true", help="summary quality and speed across local models")
    parser.add_argument(
        "--eval", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev.jsonl"
    )
    args = parser.parse_args()

    with TemporaryDirectory() as scratch:
        settings = Settings(
            model=args.model,
            data_dir=Path(os.environ.get("ASSISTANT_DATA_DIR", scratch)),
            local_threads=args.threads,
            temperature=0.0,
        )
        if args.compare:
            models = [spec.model_string for spec in LOCAL_MODELS.values()]
            compare_models(settings, eval_file=args.eval, models=models, max_tokens=max(args.max_tokens, 160))
        else:
            benchmark_overhead(settings, runs=args.runs, max_tokens=args.max_tokens)


if __name__ == "__main__":
    main()
