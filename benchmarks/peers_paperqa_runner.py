"""Run PaperQA2 on a set of abstracts and questions; executed by PaperQA2's own environment.

``benchmarks/peers.py`` starts this with ``benchmarks/.venv-peers/bin/python`` (never the
project's environment: PaperQA2's pins stay out of it) and exchanges JSON files::

    .venv-peers/bin/python benchmarks/peers_paperqa_runner.py JOB.json RESULT.json

JOB.json::

    {"papers": [{"paper_id", "title", "file"}],
     "questions": [{"id", "kind", "question"}],
     "llm": "openai/NAME", "api_base": "http://127.0.0.1:PORT/v1",
     "embedding": "openai/minilm", "embedding_api_base": "http://127.0.0.1:PORT2/v1" | null,
     "evidence_k", "answer_max_sources", "max_tokens", "llm_timeout_s",
     "question_timeout_s", "deadline_s"}

The path is PaperQA2's plain, non-agentic one: ``Docs.aadd`` per abstract, then per question
``Docs.aget_evidence`` (retrieve ``evidence_k`` chunks, one summary-LLM call each, which must
come back as JSON ``{"summary", "relevance_score"}``) and ``Docs.aquery`` (one answer call over
the best ``answer_max_sources`` contexts). The two steps are called one after the other,
exactly as ``aquery`` would, so a failure can be attributed to its step.

PaperQA2 swallows a failed evidence summary (bad JSON, timeout, request error): it logs it
and drops that context. Those log records are counted here per question, by exception type,
so the report can say what failed and where. An exception that escapes a step is caught per
question and reported with its type and the step.

RESULT.json: ``{"paperqa_version", "settings", "add_seconds", "add_error", "items": [...]}`` with
per item ``id, answer, raw_answer, cited_ids, context_ids, declined, seconds, evidence_seconds,
answer_seconds, error, error_step, evidence_calls, contexts_kept, context_failures, failure_examples,
prompt_tokens, completion_tokens``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any


def _offline_environment() -> None:
    """No downloads at run time: litellm's bundled cost map and tiktoken encodings, no hub."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OPENAI_API_KEY", "sk-no-key-required")
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        spec = importlib.util.find_spec("litellm")
        if spec is not None and spec.submodule_search_locations:
            bundled = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
            if bundled.is_dir():
                os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)


_offline_environment()

from paperqa import Docs, Settings  # noqa: E402  (after the offline environment is set)
from paperqa.prompts import CANNOT_ANSWER_PHRASE  # noqa: E402


class FailureCounter(logging.Handler):
    """Counts the context failures PaperQA2 logs (and swallows) while gathering evidence."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.reset()

    def reset(self) -> None:
        self.counts: dict[str, int] = {}
        self.examples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            name = type(exc).__name__
            cause = exc.__cause__
            if cause is not None:
                name += f" <- {type(cause).__name__}"
            detail = str(exc)
        else:
            name = f"{record.name}:{record.levelname}"
            detail = record.getMessage()
        self.counts[name] = self.counts.get(name, 0) + 1
        if len(self.examples) < 3:
            self.examples.append(f"{name}: {' '.join(detail.split())[:300]}")


def _llm_config(job: dict[str, Any]) -> dict[str, Any]:
    """A LiteLLM Router config for the served model (PaperQA2's README 'Locally Hosted' recipe)."""
    return {
        "model_list": [
            {
                "model_name": job["llm"],
                "litellm_params": {
                    "model": job["llm"],
                    "api_base": job["api_base"],
                    "api_key": "sk-no-key-required",
                    "temperature": 0.0,
                    "max_tokens": job["max_tokens"],
                    "timeout": job["llm_timeout_s"],
                },
            }
        ],
        # A retry after a timeout would only double the time on two shared cores.
        "router_kwargs": {"num_retries": 0, "timeout": job["llm_timeout_s"]},
    }


def build_settings(job: dict[str, Any]) -> Settings:
    llm_config = _llm_config(job)
    embedding_config: dict[str, Any] | None = None
    if job.get("embedding_api_base"):
        embedding_config = {
            "kwargs": {
                "api_base": job["embedding_api_base"],
                "api_key": "sk-no-key-required",
                "timeout": 120,
                "num_retries": 0,
            },
            "batch_size": 16,
        }
    settings = Settings(
        llm=job["llm"],
        llm_config=llm_config,
        summary_llm=job["llm"],
        summary_llm_config=llm_config,
        embedding=job["embedding"],
        embedding_config=embedding_config,
        temperature=0.0,
    )
    settings.answer.evidence_k = job["evidence_k"]
    settings.answer.answer_max_sources = job["answer_max_sources"]
    # The local server answers one request at a time; more in flight would only queue (and time out).
    settings.answer.max_concurrent_requests = 1
    # Our own calls already ran the evidence step; don't let aquery silently run it again.
    settings.answer.get_evidence_if_no_contexts = False
    # Offline: no Crossref/Semantic Scholar look-ups and no LLM citation inference; the title is the citation.
    settings.parsing.use_doc_details = False
    settings.parsing.multimodal = False
    return settings


async def add_papers(docs: Docs, papers: list[dict[str, Any]], settings: Settings) -> None:
    for paper in papers:
        await docs.aadd(
            Path(paper["file"]),
            citation=paper["title"],
            docname=paper["docname"],
            dockey=paper["paper_id"],
            settings=settings,
        )


async def answer_one(
    docs: Docs,
    question: dict[str, Any],
    settings: Settings,
    counter: FailureCounter,
    timeout_s: float,
    *,
    budget_bound: bool,
) -> dict[str, Any]:
    """One question through the evidence and answer steps; ``budget_bound``: the timeout is the run's deadline."""
    counter.reset()
    result: dict[str, Any] = {"id": question["id"], "error": None, "error_step": None}
    started = time.perf_counter()
    step = "evidence (Docs.aget_evidence: retrieval + one summary-LLM JSON call per chunk)"
    session = None
    try:
        async with asyncio.timeout(timeout_s):
            session = await docs.aget_evidence(question["question"], settings=settings)
            result["evidence_seconds"] = time.perf_counter() - started
            result["contexts_kept"] = len(session.contexts)
            step = "answer (Docs.aquery: one answer-LLM call over the kept contexts)"
            answer_started = time.perf_counter()
            session = await docs.aquery(session, settings=settings)
            result["answer_seconds"] = time.perf_counter() - answer_started
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, TimeoutError) and not str(exc) and budget_bound:
            # Cut by the run's time budget, not a failure of PaperQA2: reported as skipped.
            result["skipped"] = f"the time budget ran out during this question ({step.split(' ')[0]} step)"
        else:
            name = (
                f"Timeout after {timeout_s:.0f} s (question_timeout_s)"
                if isinstance(exc, TimeoutError) and not str(exc)
                else type(exc).__name__
            )
            result["error"] = f"{name}: {' '.join(str(exc).split())[:400]}".rstrip(": ")
            result["error_step"] = step
            result["traceback_tail"] = traceback.format_exc(limit=6)[-1500:]
    result["seconds"] = time.perf_counter() - started
    result["evidence_calls"] = settings.answer.evidence_k
    result["context_failures"] = dict(counter.counts)
    result["failure_examples"] = list(counter.examples)
    if session is not None and result["error"] is None and not result.get("skipped"):
        raw = session.raw_answer or ""
        # Cited = contexts whose key the answer uses (PaperQA2's own `used_contexts`), in order of first use.
        used = sorted((c for c in session.contexts if c.id in raw), key=lambda c: raw.find(c.id))
        result.update(
            answer=session.answer,
            raw_answer=raw,
            cited_ids=list(dict.fromkeys(c.text.doc.dockey for c in used)),
            context_ids=list(dict.fromkeys(c.text.doc.dockey for c in session.contexts)),
            context_scores=[[c.text.doc.dockey, c.score] for c in session.contexts],
            declined=CANNOT_ANSWER_PHRASE.casefold() in (session.answer or "").casefold(),
            prompt_tokens=sum(counts[0] for counts in session.token_counts.values()),
            completion_tokens=sum(counts[1] for counts in session.token_counts.values()),
        )
    return result


async def run(job: dict[str, Any]) -> dict[str, Any]:
    import paperqa

    deadline = time.monotonic() + float(job["deadline_s"])
    settings = build_settings(job)
    counter = FailureCounter()
    for name in ("paperqa", "lmi", "LiteLLM", "litellm"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.ERROR)
        logger.propagate = False  # counted here, not printed: each one carries a long traceback
        logger.addHandler(counter)
    out: dict[str, Any] = {
        "paperqa_version": getattr(paperqa, "__version__", "?"),
        "settings": {
            "path": "plain Docs.aadd / Docs.aget_evidence / Docs.aquery (no agent)",
            "llm": job["llm"],
            "summary_llm": job["llm"],
            "embedding": job["embedding"],
            "evidence_k": settings.answer.evidence_k,
            "answer_max_sources": settings.answer.answer_max_sources,
            "evidence_relevance_score_cutoff": settings.answer.evidence_relevance_score_cutoff,
            "use_json": settings.prompts.use_json,
            "chunk_chars": settings.parsing.reader_config.get("chunk_chars"),
            "overlap": settings.parsing.reader_config.get("overlap"),
            "max_tokens": job["max_tokens"],
            "temperature": settings.temperature,
        },
        "items": [],
        "add_error": None,
    }
    docs = Docs()
    started = time.perf_counter()
    try:
        await add_papers(docs, job["papers"], settings)
    except Exception as exc:
        out["add_error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]} (step: Docs.aadd)"
    out["add_seconds"] = time.perf_counter() - started
    out["texts"] = len(docs.texts)
    for question in job["questions"]:
        if out["add_error"]:
            out["items"].append(
                {"id": question["id"], "error": out["add_error"], "error_step": "Docs.aadd", "seconds": 0.0}
            )
            continue
        left = deadline - time.monotonic()
        done = [i["seconds"] for i in out["items"] if not i.get("skipped") and not i.get("error")]
        typical = sum(done) / len(done) if done else 0.0
        if left < 5 or left < 0.8 * typical:
            reason = f"time budget: {left:.0f} s left, a question took {typical:.0f} s on average"
            out["items"].append({"id": question["id"], "skipped": reason, "seconds": 0.0})
            print(f"paperqa {question['id']}: skipped ({reason})", file=sys.stderr, flush=True)
            continue
        question_timeout = float(job["question_timeout_s"])
        item = await answer_one(
            docs, question, settings, counter, min(question_timeout, left), budget_bound=left < question_timeout
        )
        out["items"].append(item)
        state = (
            f"skipped ({item['skipped']})" if item.get("skipped")
            else "error" if item["error"]
            else "declined" if item.get("declined")
            else f"cited {item.get('cited_ids')}"
        )  # fmt: skip
        print(
            f"paperqa {question['id']}: {item['seconds']:.1f} s, {state}, context failures {item['context_failures']}",
            file=sys.stderr,
            flush=True,
        )
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: peers_paperqa_runner.py JOB.json RESULT.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    # A question cut by its timeout leaves PaperQA2's pending summary coroutines unawaited; harmless.
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
    result = asyncio.run(run(job))
    Path(argv[1]).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
