"""The installed local models head to head: speed, memory, prefix reuse, JSON-schema decoding.

For each model (weights from ``assistant.llm.weights``, joined and verified first),
llama-cpp-python is called directly with ``n_threads=2`` and ``n_ctx=4096``, in a fresh
process per model so its peak RSS is its own. Sampling is greedy with the app's repeat
penalty; prompts carry the model's own chat template (from the GGUF metadata).

1. Speed: a RAG prompt of ~800 tokens (instructions, five passages of the sample
   collection numbered [1]..[5], a question asking for a summary of each), a reply of up
   to 160 tokens: prompt-eval tokens/s, time to first token, decode tokens/s, total,
   peak RSS.
2. Prefix reuse (replies of 16 tokens, only the time to first token matters): a second
   question over the same passages (same ~700-token prefix), asked (a) from a reset
   model, (b) right after the first question on the same Llama object (llama-cpp-python
   keeps the KV cache of the longest common prefix of its previous input), (c) after a
   question over other passages came in between, (d) the same with a ``LlamaRAMCache``
   set, which saves the state after every reply and restores the best-matching one; what
   saving costs per reply, and how large a saved state is.
3. JSON: five aspects (problem, approach, data, results, limitations) of each of three
   papers, asked for as JSON (a) free, (b) constrained by a JSON schema through
   ``LlamaGrammar.from_json_schema``, (c) the same schema with ``maxLength`` on each
   value, so that a reply of ordinary prose closes within its token budget: how many parse
   and match the schema, how many ran into the token limit, seconds and tokens per reply.

    python benchmarks/local_models.py                      # SmolLM2 and both Qwen2.5-Coder models
    python benchmarks/local_models.py --models gemma3-270m --cache-dir /tmp/models

One run per measurement: compare models within a run. The load average it prints says how
much else the machine was running (this benchmark itself adds about 2).

Measured here (2 shared cores, 1-minute load 0.3 → 5 during the run, 14 min in all):

| | SmolLM2-135M | Qwen2.5-Coder-0.5B | Qwen2.5-Coder-1.5B |
| --- | ---: | ---: | ---: |
| prompt eval, tokens/s (~760-token prompt) | 135 | 88 | 46 |
| time to first token / decode tokens/s | 5.7 s / 40.8 | 8.5 s / 14.6 | 16.4 s / 6.7 |
| total for the reply (tokens) | 8.1 s (99) | 19.4 s (160) | 40.1 s (160) |
| peak RSS | 288 MiB | 700 MiB | 1,958 MiB |
| 2nd question, same passages: reset model → same Llama object | 5.73 → 0.18 s | 8.39 → 0.35 s | 16.32 → 0.44 s |
| other passages in between: no cache → LlamaRAMCache | 3.07 → 0.83 s | 8.21 → 2.18 s | 10.71 → 2.59 s |
| LlamaRAMCache: save per reply, size of a state | +0.22 s, 114 MiB | +0.95 s, 306 MiB | +1.61 s, 319 MiB |
| JSON valid of 3: free (after unfencing) | 0 (0) | 2 (2) | 0 (3) |
| JSON valid of 3: schema / schema with maxLength | 3 / 3 | 2 / 3 | 3 / 3 |
| seconds per JSON reply: free / schema / maxLength | 8.7 / 6.9 / 6.8 | 22.3 / 33.2 / 20.2 | 40.0 / 23.4 / 23.5 |

Same-object prefix reuse is automatic and evaluates only the ~25 new tokens. A saved
state holds llama-cpp-python's copy of the logits (512 × vocabulary floats: 297 MiB for
Qwen) besides the KV cache, and LlamaRAMCache's capacity counts only the KV cache. The
schema made every reply parse except one Qwen 0.5B reply that copied the abstract into a
value until it hit the token limit; ``maxLength`` closes such a reply, cutting the value
mid-word. Validity is not truthfulness: SmolLM2's schema-valid values are invented
("approach": "Trouble-Riding").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from platformdirs import user_data_dir
from pydantic import BaseModel

from assistant.llm.weights import WEIGHTS, WeightsError, ensure_weights

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaGrammar
    from llama_cpp.llama_types import CreateCompletionStreamResponse

SAMPLE_COLLECTION = Path(__file__).resolve().parents[1] / "assistant" / "data" / "daily_papers_aug19.txt"
DEFAULT_MODELS = ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct")
N_THREADS = 2
N_CTX = 4096
REPLY_TOKENS = 160
PREFIX_PROBE_TOKENS = 16
JSON_REPLY_TOKENS = 320
REPEAT_PENALTY = 1.1  # the app's local provider
PASSAGE_CHARS = 800  # five passages of up to this length: prompts of 748 (Qwen) and 767 (SmolLM2) tokens
RAM_CACHE_BYTES = 1 << 30

SYSTEM = (
    "You answer questions about research papers using only the numbered passages the user gives you. "
    "Cite the passages you use as [n]. If the passages do not answer the question, say so."
)
SUMMARY_QUESTION = "Summarise what each of the five papers proposes and how it is evaluated, citing each as [n]."
PREFIX_QUESTION = "Which of these papers is about LLM agents, and how does it choose its in-context examples?"
OTHER_QUESTION = "Which of these papers studies continual learning, and what does it avoid storing?"
ASPECTS = ("problem", "approach", "data", "results", "limitations")
COMPARISON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {aspect: {"type": "string"} for aspect in ASPECTS},
    "required": list(ASPECTS),
    "additionalProperties": False,
}
# Five values of at most 200 characters (~50 tokens each) and the keys fit JSON_REPLY_TOKENS.
VALUE_MAX_CHARS = 200
BOUNDED_COMPARISON_SCHEMA: dict[str, Any] = {
    **COMPARISON_SCHEMA,
    "properties": {aspect: {"type": "string", "maxLength": VALUE_MAX_CHARS} for aspect in ASPECTS},
}
JSON_SYSTEM = (
    "You describe research papers from their abstracts, using only what the abstract states; "
    'write "not stated" for an aspect it does not mention. Reply with a JSON object only.'
)
JSON_PAPERS = (0, 1, 3)  # aTLAS, TRAD, MUSCLE


class Run(BaseModel):
    prompt_tokens: int
    # From llama.cpp's own counters: prompt tokens it evaluated (the rest came from its KV
    # cache or a restored state), and the time that took.
    evaluated_tokens: int
    prompt_eval_s: float
    first_token_s: float
    total_s: float
    # Tokens sampled, from llama.cpp's count of decoded tokens (re-tokenizing the text would
    # undercount grammar-constrained replies, which are often built of shorter tokens).
    reply_tokens: int
    finish_reason: str  # "length" when the reply reached max_tokens
    text: str

    @property
    def decode_tokens_per_s(self) -> float:
        decode_s = self.total_s - self.first_token_s
        return (self.reply_tokens - 1) / decode_s if self.reply_tokens > 1 and decode_s > 0 else 0.0


class JsonRuns(BaseModel):
    valid: int  # parses as it is and has exactly the five aspects, each a non-empty string
    valid_unfenced: int  # the same after removing a Markdown code fence around it
    cut_off: int  # replies that reached JSON_REPLY_TOKENS
    grammar_build_s: float
    seconds: list[float]
    reply_tokens: list[int]
    texts: list[str]


class ModelReport(BaseModel):
    name: str
    load_average: tuple[float, float]  # 1-minute load average before and after: this run adds about 2
    load_s: float
    speed: Run
    peak_rss_after_speed_mib: float
    peak_rss_mib: float  # at the end, with the LlamaRAMCache's saved states
    shared_prefix_tokens: int
    prefix_cold: Run
    prefix_after_same_passages: Run
    prefix_after_other_passages: Run
    prefix_after_other_passages_ram_cache: Run
    ram_cache_save_s: float  # extra seconds a reply took to save its state into the LlamaRAMCache
    ram_cache_state_mib: float  # one saved state: the KV cache and llama-cpp-python's copy of the logits
    json_free: JsonRuns
    json_schema: JsonRuns
    json_bounded_schema: JsonRuns


# --------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------


def sample_papers() -> list[tuple[str, str]]:
    """(title, abstract) pairs of the sample collection: paragraphs after the 'Aug 19' line, in pairs."""
    paragraphs = [p.strip() for p in SAMPLE_COLLECTION.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    body = paragraphs[paragraphs.index("Aug 19") + 1 :]
    return list(zip(body[0::2], body[1::2], strict=False))


def passage(abstract: str) -> str:
    """The abstract's leading sentences, up to PASSAGE_CHARS: a retrieved chunk's worth."""
    sentences = re.split(r"(?<=[.!?])\s+", abstract)
    kept: list[str] = []
    for sentence in sentences:
        if kept and len(" ".join([*kept, sentence])) > PASSAGE_CHARS:
            break
        kept.append(sentence)
    return " ".join(kept)


def rag_messages(papers: Sequence[tuple[str, str]], question: str) -> list[dict[str, str]]:
    numbered = "\n\n".join(f"[{n}] {title}\n{passage(abstract)}" for n, (title, abstract) in enumerate(papers, 1))
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Passages:\n\n{numbered}\n\nQuestion: {question}"},
    ]


def json_messages(title: str, abstract: str) -> list[dict[str, str]]:
    keys = ", ".join(f'"{aspect}"' for aspect in ASPECTS)
    return [
        {"role": "system", "content": JSON_SYSTEM},
        {
            "role": "user",
            "content": f"Title: {title}\nAbstract: {abstract}\n\n"
            f"Describe this paper as a JSON object with exactly the keys {keys}; each value is one short sentence.",
        },
    ]


# --------------------------------------------------------------------------------------
# One model, in its own process
# --------------------------------------------------------------------------------------


class ChatModel:
    """A Llama with its GGUF chat template applied, timing each streamed completion."""

    def __init__(self, path: Path) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        start = time.perf_counter()
        self.llama: Llama = Llama(
            model_path=str(path), n_ctx=N_CTX, n_threads=N_THREADS, n_threads_batch=N_THREADS, verbose=False
        )
        self.load_s = time.perf_counter() - start
        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise SystemExit(f"{path.name} has no chat template; this benchmark compares chat models")
        self.formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(self.llama.token_eos()),
            bos_token=self._token_text(self.llama.token_bos()),
            stop_token_ids=[self.llama.token_eos()],
        )

    def _token_text(self, token_id: int) -> str:
        return "" if token_id < 0 else self.llama.detokenize([token_id], special=True).decode("utf-8", "ignore")

    def encode(self, messages: list[dict[str, str]]) -> tuple[list[int], list[str]]:
        formatted = self.formatter(messages=messages)  # type: ignore[arg-type]
        tokens = self.llama.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        stop = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop] if formatted.stop else []
        return tokens, stop

    def complete(self, messages: list[dict[str, str]], max_tokens: int, *, grammar: LlamaGrammar | None = None) -> Run:
        import llama_cpp

        tokens, stop = self.encode(messages)
        llama_cpp.llama_perf_context_reset(self.llama.ctx)
        pieces: list[str] = []
        finish_reason = "none"
        first_token_s: float | None = None
        start = time.perf_counter()
        stream = cast(
            "Iterator[CreateCompletionStreamResponse]",
            self.llama.create_completion(
                prompt=tokens,
                max_tokens=max_tokens,
                temperature=0.0,
                repeat_penalty=REPEAT_PENALTY,
                stop=stop,
                stream=True,
                grammar=grammar,
            ),
        )
        for chunk in stream:
            if first_token_s is None:
                first_token_s = time.perf_counter() - start
            choice = chunk["choices"][0]
            pieces.append(choice["text"])
            finish_reason = choice["finish_reason"] or finish_reason
        total_s = time.perf_counter() - start
        perf = llama_cpp.llama_perf_context(self.llama.ctx)
        return Run(
            prompt_tokens=len(tokens),
            evaluated_tokens=perf.n_p_eval,
            prompt_eval_s=perf.t_p_eval_ms / 1000,
            first_token_s=first_token_s or total_s,
            total_s=total_s,
            # Every sampled token but the last is decoded; a reply that ended on end-of-turn
            # did not keep that last token.
            reply_tokens=perf.n_eval + (finish_reason == "length"),
            finish_reason=finish_reason,
            text="".join(pieces),
        )

    def complete_cold(self, messages: list[dict[str, str]], max_tokens: int, **kwargs: Any) -> Run:
        self.llama.reset()  # forget the previous input: the whole prompt is evaluated
        return self.complete(messages, max_tokens, **kwargs)


def conforms(text: str) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return (
        isinstance(value, dict)
        and set(value) == set(ASPECTS)
        and all(isinstance(v, str) and v.strip() for v in value.values())
    )


def unfenced(text: str) -> str:
    match = re.fullmatch(r"\s*```(?:json)?\s*(.*?)\s*```\s*", text, flags=re.DOTALL)
    return match.group(1) if match else text


def json_runs(model: ChatModel, papers: list[tuple[str, str]], schema: dict[str, Any] | None) -> JsonRuns:
    from llama_cpp import LlamaGrammar

    start = time.perf_counter()
    grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False) if schema else None
    grammar_build_s = time.perf_counter() - start
    runs = [model.complete_cold(json_messages(*papers[i]), JSON_REPLY_TOKENS, grammar=grammar) for i in JSON_PAPERS]
    return JsonRuns(
        valid=sum(conforms(run.text) for run in runs),
        valid_unfenced=sum(conforms(unfenced(run.text)) for run in runs),
        cut_off=sum(run.finish_reason == "length" for run in runs),
        grammar_build_s=grammar_build_s,
        seconds=[run.total_s for run in runs],
        reply_tokens=[run.reply_tokens for run in runs],
        texts=[run.text for run in runs],
    )


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(name: str, path: Path) -> ModelReport:
    from llama_cpp import LlamaRAMCache

    load_before = os.getloadavg()[0]
    papers = sample_papers()
    passages_a, passages_b = papers[0:5], papers[5:10]
    model = ChatModel(path)
    model.complete_cold([{"role": "user", "content": "Hello"}], 4)  # pages the weights in; not measured

    speed = model.complete_cold(rag_messages(passages_a, SUMMARY_QUESTION), REPLY_TOKENS)
    peak_rss_after_speed = peak_rss_mib()

    first_question = rag_messages(passages_a, SUMMARY_QUESTION)
    second_question = rag_messages(passages_a, PREFIX_QUESTION)
    other_passages = rag_messages(passages_b, OTHER_QUESTION)
    prefix_cold = model.complete_cold(second_question, PREFIX_PROBE_TOKENS)
    first_plain = model.complete_cold(first_question, PREFIX_PROBE_TOKENS)
    after_same = model.complete(second_question, PREFIX_PROBE_TOKENS)
    model.complete(other_passages, PREFIX_PROBE_TOKENS)
    after_other = model.complete(second_question, PREFIX_PROBE_TOKENS)
    ram_cache = LlamaRAMCache(capacity_bytes=RAM_CACHE_BYTES)
    model.llama.set_cache(ram_cache)
    first_cached = model.complete_cold(first_question, PREFIX_PROBE_TOKENS)
    model.complete(other_passages, PREFIX_PROBE_TOKENS)
    after_other_cached = model.complete(second_question, PREFIX_PROBE_TOKENS)
    model.llama.set_cache(None)
    states = list(ram_cache.cache_state.values())
    state_bytes = sum(state.llama_state_size + state.scores.nbytes for state in states) / len(states)

    json_free = json_runs(model, papers, None)
    json_schema = json_runs(model, papers, COMPARISON_SCHEMA)
    json_bounded_schema = json_runs(model, papers, BOUNDED_COMPARISON_SCHEMA)

    first_tokens = model.encode(first_question)[0]
    second_tokens = model.encode(second_question)[0]
    return ModelReport(
        name=name,
        load_average=(load_before, os.getloadavg()[0]),
        load_s=model.load_s,
        speed=speed,
        peak_rss_after_speed_mib=peak_rss_after_speed,
        peak_rss_mib=peak_rss_mib(),
        shared_prefix_tokens=model.llama.longest_token_prefix(first_tokens, second_tokens),
        prefix_cold=prefix_cold,
        prefix_after_same_passages=after_same,
        prefix_after_other_passages=after_other,
        prefix_after_other_passages_ram_cache=after_other_cached,
        ram_cache_save_s=(first_cached.total_s - first_cached.first_token_s)
        - (first_plain.total_s - first_plain.first_token_s),
        ram_cache_state_mib=state_bytes / 2**20,
        json_free=json_free,
        json_schema=json_schema,
        json_bounded_schema=json_bounded_schema,
    )


# --------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------


def print_tables(reports: list[ModelReport]) -> None:
    print(
        f"\n## Speed and memory ({N_THREADS} threads, n_ctx {N_CTX}, RAG prompt, reply up to {REPLY_TOKENS} tokens)\n"
    )
    print(
        "| model | load s | prompt tok | prompt eval tok/s | first token s | decode tok/s | reply tok | total s "
        "| peak RSS MiB | load avg before/after |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in reports:
        s = r.speed
        print(
            f"| {r.name} | {r.load_s:.2f} | {s.prompt_tokens} | {s.evaluated_tokens / s.prompt_eval_s:.0f} "
            f"| {s.first_token_s:.2f} | {s.decode_tokens_per_s:.1f} | {s.reply_tokens} | {s.total_s:.2f} "
            f"| {r.peak_rss_after_speed_mib:,.0f} | {r.load_average[0]:.1f} / {r.load_average[1]:.1f} |"
        )

    print("\n## Prefix reuse: time to first token of a second question over the same passages\n")
    print(
        "| model | prompt tok (shared) | reset model | right after 1st question | after other passages "
        "| same, LlamaRAMCache | cache: save per reply, MiB per state, peak RSS |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in reports:
        cells = [
            r.prefix_cold,
            r.prefix_after_same_passages,
            r.prefix_after_other_passages,
            r.prefix_after_other_passages_ram_cache,
        ]
        timed = " | ".join(f"{run.first_token_s:.2f} s ({run.evaluated_tokens} evaluated)" for run in cells)
        print(
            f"| {r.name} | {r.prefix_cold.prompt_tokens} ({r.shared_prefix_tokens}) | {timed} "
            f"| {r.ram_cache_save_s:+.2f} s, {r.ram_cache_state_mib:,.0f}, {r.peak_rss_mib:,.0f} |"
        )

    n = len(JSON_PAPERS)
    print(
        f"\n## JSON: five aspects of {n} papers; valid = parses and has exactly the five keys "
        f"(after removing a code fence); cut off = reached {JSON_REPLY_TOKENS} tokens\n"
    )
    print("| model | decoding | valid | cut off | s / reply | tok / reply | grammar build ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in reports:
        variants = [
            ("free", r.json_free),
            ("JSON schema", r.json_schema),
            (f"schema, values ≤ {VALUE_MAX_CHARS} chars", r.json_bounded_schema),
        ]
        for label, runs in variants:
            print(
                f"| {r.name} | {label} | {runs.valid}/{n} ({runs.valid_unfenced}/{n}) | {runs.cut_off} "
                f"| {sum(runs.seconds) / n:.1f} | {sum(runs.reply_tokens) / n:.0f} "
                f"| {runs.grammar_build_s * 1000:.1f} |"
            )

    print("\n## Replies\n")
    for r in reports:
        print(f"### {r.name}\n\nsummary: {r.speed.text.strip()}\n")
        for label, runs in (("free", r.json_free), ("schema", r.json_schema), ("bounded", r.json_bounded_schema)):
            for paper, text in zip(JSON_PAPERS, runs.texts, strict=True):
                print(f"JSON {label}, paper {paper}: {text.strip()}\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=sorted(WEIGHTS))
    default_cache = Path(os.environ.get("ASSISTANT_DATA_DIR") or user_data_dir("paper-assistant", appauthor=False))
    parser.add_argument("--cache-dir", type=Path, default=default_cache / "models")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: measure one model, print JSON
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(measure(args.one, args.path).model_dump_json())
        return

    reports: list[ModelReport] = []
    for name in args.models:
        try:
            path = ensure_weights(WEIGHTS[name], args.cache_dir)
        except WeightsError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        print(f"measuring {name} ({path})", file=sys.stderr, flush=True)
        child = subprocess.run(
            [sys.executable, __file__, "--one", name, "--path", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            print(f"{name} failed:\n{child.stderr[-2000:]}", file=sys.stderr)
            continue
        reports.append(ModelReport.model_validate_json(child.stdout.strip().splitlines()[-1]))
    print_tables(reports)


if __name__ == "__main__":
    main()
