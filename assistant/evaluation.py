"""Measure retrieval and answers against a JSON Lines evaluation set.

Each line of the evaluation file is one question::

    {"id": "d02", "kind": "lookup", "question": "...", "gold_titles": ["..."], "must_mention": ["..."]}

``kind`` is one of lookup, numeric, compare, summary, multi or unanswerable; ``gold_titles``
name the papers that answer the question (none for unanswerable items); ``must_mention``
lists terms a good answer contains. Other fields (``note``...) are ignored.

Dated questions ("which papers on X came out last week?") are of kind ``dated`` (gold papers
listed in the range) or ``dated_none`` (nothing on the topic in the range: the reply must
decline), with the range the question means, ``"range": {"start": "YYYY-MM-DD", "end": ...}``,
and ``"relative": true`` when the question counts from the newest day held ("last week"). They
go through :meth:`PaperAssistant.respond`, which reads the range from the question; retrieval is
measured as the reply retrieves (the question without its date phrase, filtered to the range it
names). For them the report adds: whether the range read is the item's, and the share of cited
papers listed outside the item's range (pooled over citations; the target is 0).

For every item :func:`evaluate` measures

* retrieval: recall@1 and recall@k of the gold papers in ``Retriever.search(question, k)``
  and the reciprocal rank of the first gold paper (0 when none is in the top k);
* answers (unless ``retrieval_only``): the route a user gets (compare and summary items go
  through :meth:`PaperAssistant.respond`, every other kind through
  :meth:`PaperAssistant.answer`), citation precision (cited papers that are gold, for
  items with gold papers that cite something) and recall (gold papers cited),
  must-mention coverage (case-insensitive substrings of the reply's text), whether it
  declined (refused, or asked back which paper was meant) and whether that was right,
  the share of claim sentences the support check flagged, whether the model's text was
  replaced by source sentences (a fallback), and tokens and seconds.

Aggregates are means over the items where a metric is defined (per item, so an item with
two gold papers weighs as much as one with one), except the unsupported share, which is
pooled over sentences. Refusal accuracy counts both directions over all items.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.dates import find_days
from assistant.errors import InvalidInput
from assistant.features.summarize import SummaryCache
from assistant.schema import Answer, Comparison, DateRange, Summary
from assistant.settings import Settings
from assistant.support import is_meta, split_units

if TYPE_CHECKING:
    from assistant.service import PaperAssistant

Kind = Literal["lookup", "numeric", "compare", "summary", "multi", "unanswerable", "dated", "dated_none"]
KINDS: tuple[str, ...] = ("lookup", "numeric", "compare", "summary", "multi", "unanswerable", "dated", "dated_none")
# Kinds that go through respond(), the router a chat user meets; the rest are plain questions.
ROUTED_KINDS = frozenset({"compare", "summary", "dated", "dated_none"})
DATED_KINDS = frozenset({"dated", "dated_none"})
DECLINING_KINDS = frozenset({"unanswerable", "dated_none"})
"""Kinds whose right reply is a decline."""

ProgressCallback = Callable[[int, int], None]
"""Called with (items done, items in all), before the first item and after each."""


class EvalFileError(InvalidInput):
    """The evaluation file cannot be used; the message names the file and the line."""


class EvalItem(BaseModel):
    """One question of the evaluation set."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1)
    kind: Kind
    question: str = Field(min_length=1)
    gold_titles: list[str] = Field(default_factory=list)
    must_mention: list[str] = Field(default_factory=list)
    days: DateRange | None = Field(default=None, alias="range", description="The days a dated question means")
    relative: bool = Field(default=False, description="The question counts from the newest day held")


class RetrievedPaper(BaseModel):
    paper_id: str
    title: str
    gold: bool


class ItemResult(BaseModel):
    """What happened to one item, with its metrics (None where a metric does not apply)."""

    id: str
    kind: str
    question: str
    line: int
    gold_ids: list[str] = Field(default_factory=list)

    # --- retrieval ---
    retrieved: list[RetrievedPaper] = Field(default_factory=list)
    recall_at_1: float | None = None
    recall_at_k: float | None = None
    reciprocal_rank: float | None = None
    retrieval_seconds: float = 0.0

    # --- dated questions ---
    days_read: DateRange | None = Field(default=None, description="The range the assistant read from the question")
    range_correct: bool | None = Field(
        default=None, description="days_read holds the same papers as the item's range (weekends hold none)"
    )
    cited_outside_range: int | None = Field(default=None, description="Cited papers listed outside the item's range")

    # --- the reply (absent when retrieval only) ---
    route: str | None = Field(default=None, description="answer, refusal, comparison, summary, clarification or error")
    text: str | None = None
    cited_ids: list[str] = Field(default_factory=list)
    citation_precision: float | None = None
    citation_recall: float | None = None
    mention_coverage: float | None = None
    missing_mentions: list[str] = Field(default_factory=list)
    declined: bool | None = Field(default=None, description="Refused, or asked back instead of answering")
    refusal_correct: bool | None = None
    claims: int = Field(default=0, description="Claim sentences the support check judged")
    unsupported: list[str] = Field(default_factory=list)
    unsupported_share: float | None = None
    fallback: bool = Field(default=False, description="The model's text was replaced by source sentences")
    outcome: str | None = Field(default=None, description="What the user got (assistant.outcomes.Outcome)")
    reason: str | None = Field(default=None, description="Why, as a code (assistant.outcomes.Reason)")
    notices: list[str] = Field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    error: str | None = None


class Metrics(BaseModel):
    """Aggregates over a group of items (all of them, or one kind)."""

    items: int = 0
    retrieval_items: int = Field(default=0, description="Items with gold papers")
    recall_at_1: float | None = None
    recall_at_k: float | None = None
    mrr: float | None = None
    answered_items: int = Field(default=0, description="Items whose reply was generated without an error")
    citation_precision: float | None = None
    citation_recall: float | None = None
    mention_coverage: float | None = None
    refusal_accuracy: float | None = None
    wrong_refusals: int = Field(default=0, description="Answerable items declined")
    missed_refusals: int = Field(default=0, description="Unanswerable items answered")
    unsupported_share: float | None = None
    fallback_rate: float | None = None
    prompt_tokens_per_question: float | None = None
    completion_tokens_per_question: float | None = None
    seconds_per_question: float | None = None
    retrieval_ms_per_question: float | None = None
    errors: int = 0
    range_accuracy: float | None = Field(default=None, description="Dated items whose range was read right")
    outside_range_share: float | None = Field(
        default=None, description="Of the papers dated replies cite, the share listed outside the item's range"
    )
    decline_rate: float | None = Field(default=None, description="Share of the replies that declined")


class EvalReport(BaseModel):
    path: str
    k: int
    retrieval_only: bool
    model: str | None = None
    hybrid: bool
    papers_in_collection: int
    seconds: float
    items: list[ItemResult]
    overall: Metrics
    by_kind: dict[str, Metrics]


# --- reading the file ----------------------------------------------------------------------------
def _normal_title(title: str) -> str:
    return " ".join(title.split()).casefold()


def load_items(path: Path) -> list[tuple[int, EvalItem]]:
    """``(line number, item)`` of every non-blank line; any malformed line raises EvalFileError."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalFileError(f"cannot read the evaluation file {path}: {exc}") from exc
    items: list[tuple[int, EvalItem]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalFileError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(record, dict):
            raise EvalFileError(f"{where}: expected a JSON object, got {type(record).__name__}")
        try:
            item = EvalItem.model_validate(record)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'record'}: {error['msg']}" for error in exc.errors()
            )
            raise EvalFileError(f"{where}: {details}") from exc
        if item.kind in DECLINING_KINDS and item.gold_titles:
            article = "an" if item.kind[0] in "aeiou" else "a"
            raise EvalFileError(f"{where}: {article} {item.kind} item cannot have gold_titles")
        if item.kind not in DECLINING_KINDS and not item.gold_titles:
            raise EvalFileError(f"{where}: a {item.kind} item needs at least one entry in gold_titles")
        if (item.kind in DATED_KINDS) != (item.days is not None):
            needs = "needs" if item.kind in DATED_KINDS else "cannot have"
            raise EvalFileError(f'{where}: a {item.kind} item {needs} a range {{"start", "end"}}')
        if item.id in seen:
            raise EvalFileError(f"{where}: id {item.id!r} is already used on line {seen[item.id]}")
        seen[item.id] = number
        items.append((number, item))
    if not items:
        raise EvalFileError(f"{path} holds no evaluation items")
    return items


# --- metric arithmetic (pure functions, tested on hand-made cases) ----------------------------------
def recall_at(ranked_ids: Sequence[str], gold_ids: Sequence[str], k: int) -> float | None:
    """Share of the gold papers among the first ``k`` retrieved; None without gold papers."""
    gold = set(gold_ids)
    if not gold:
        return None
    return len(gold & set(ranked_ids[:k])) / len(gold)


def reciprocal_rank(ranked_ids: Sequence[str], gold_ids: Sequence[str]) -> float | None:
    """1 / rank of the first gold paper in ``ranked_ids`` (0 when none is there); None without gold papers."""
    gold = set(gold_ids)
    if not gold:
        return None
    return next((1.0 / rank for rank, paper_id in enumerate(ranked_ids, start=1) if paper_id in gold), 0.0)


def citation_precision(cited_ids: Sequence[str], gold_ids: Sequence[str]) -> float | None:
    """Share of the distinct cited papers that are gold; None when nothing is cited or there is no gold."""
    cited = set(cited_ids)
    if not cited or not gold_ids:
        return None
    return len(cited & set(gold_ids)) / len(cited)


def citation_recall(cited_ids: Sequence[str], gold_ids: Sequence[str]) -> float | None:
    """Share of the gold papers that are cited; None without gold papers."""
    gold = set(gold_ids)
    if not gold:
        return None
    return len(gold & set(cited_ids)) / len(gold)


def missing_mentions(text: str, must_mention: Sequence[str]) -> list[str]:
    """The terms of ``must_mention`` that ``text`` does not contain (case-insensitive substrings)."""
    folded = text.casefold()
    return [term for term in must_mention if term.casefold() not in folded]


def mention_coverage(text: str, must_mention: Sequence[str]) -> float | None:
    if not must_mention:
        return None
    return 1.0 - len(missing_mentions(text, must_mention)) / len(must_mention)


def refusal_correct(kind: str, declined: bool) -> bool:
    """Declining is right exactly for unanswerable items (and dated ones with nothing in their range)."""
    return declined == (kind in DECLINING_KINDS)


def claim_count(text: str) -> int:
    """Sentences of ``text`` that the support check judges (hedges and headings are not claims)."""
    return sum(1 for unit in split_units(text) if not (unit.meta or is_meta(unit.text)))


def _mean(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


def aggregate(results: Sequence[ItemResult]) -> Metrics:
    """Metrics of a group of item results."""
    with_gold = [r for r in results if r.gold_ids]
    replied = [r for r in results if r.route is not None and r.route != "error"]
    judged = [r for r in replied if r.claims]
    metrics = Metrics(
        items=len(results),
        retrieval_items=len(with_gold),
        recall_at_1=_mean([r.recall_at_1 for r in with_gold]),
        recall_at_k=_mean([r.recall_at_k for r in with_gold]),
        mrr=_mean([r.reciprocal_rank for r in with_gold]),
        retrieval_ms_per_question=_mean([1000 * r.retrieval_seconds for r in results]),
        errors=sum(1 for r in results if r.route == "error"),
    )
    if replied:
        claims = sum(r.claims for r in judged)
        metrics = metrics.model_copy(
            update={
                "answered_items": len(replied),
                "citation_precision": _mean([r.citation_precision for r in replied]),
                "citation_recall": _mean([r.citation_recall for r in replied]),
                "mention_coverage": _mean([r.mention_coverage for r in replied]),
                "refusal_accuracy": _mean([float(r.refusal_correct) for r in replied if r.refusal_correct is not None]),
                "wrong_refusals": sum(1 for r in replied if r.declined and r.kind not in DECLINING_KINDS),
                "missed_refusals": sum(1 for r in replied if not r.declined and r.kind in DECLINING_KINDS),
                "unsupported_share": sum(len(r.unsupported) for r in judged) / claims if claims else None,
                "fallback_rate": _mean([float(r.fallback) for r in replied if not r.declined]),
                "prompt_tokens_per_question": _mean([float(r.prompt_tokens) for r in replied]),
                "completion_tokens_per_question": _mean([float(r.completion_tokens) for r in replied]),
                "seconds_per_question": _mean([r.seconds for r in replied]),
                "decline_rate": _mean([float(bool(r.declined)) for r in replied]),
            }
        )
    dated = [r for r in results if r.range_correct is not None]
    if dated:
        cited = sum(len(r.cited_ids) for r in dated if r.cited_outside_range is not None)
        outside = sum(r.cited_outside_range or 0 for r in dated)
        metrics = metrics.model_copy(
            update={
                "range_accuracy": _mean([float(bool(r.range_correct)) for r in dated]),
                "outside_range_share": outside / cited if cited else (0.0 if replied else None),
            }
        )
    return metrics


# --- running --------------------------------------------------------------------------------
_FALLBACK_NOTICE_WORDS = ("rebuilt from the table",)
"""How a comparison says its narrative is the abstracts' words; answers and summaries say it with ``extractive``."""


def replaced_by_extracts(result: Any) -> bool:
    """Whether the model's text of any reply was replaced by source sentences (or rebuilt from the table)."""
    notices = list(getattr(result, "notices", []))
    return bool(getattr(result, "extractive", False)) or any(
        word in notice for notice in notices for word in _FALLBACK_NOTICE_WORDS
    )


def _reply_fields(result: Any, turn_kind: str | None) -> dict[str, Any]:
    """Route, checked text, unsupported sentences, fallback and usage of any reply object."""
    if isinstance(result, Answer):
        route, checked = ("refusal" if result.refused else "answer"), result.text
    elif isinstance(result, Comparison):
        route, checked = "comparison", result.narrative
    elif isinstance(result, Summary):
        route, checked = "summary", result.summary
    else:  # a clarification: the reply asks which paper was meant
        route, checked = turn_kind or "clarification", ""
    notices = list(getattr(result, "notices", []))
    usage = getattr(result, "usage", None)
    declined = route in ("refusal", "clarification")
    fallback = replaced_by_extracts(result)
    claims = 0 if declined or fallback or not checked else claim_count(checked)
    unsupported = list(getattr(result, "unsupported", []))
    return {
        "route": route,
        "declined": declined,
        "fallback": fallback,
        "claims": max(claims, len(unsupported)),
        "unsupported": unsupported,
        "notices": notices,
        "prompt_tokens": usage.prompt_tokens if usage is not None else 0,
        "completion_tokens": usage.completion_tokens if usage is not None else 0,
    }


def _run_reply(assistant: PaperAssistant, item: EvalItem) -> tuple[dict[str, Any], str, list[str]]:
    """The reply a user would get: (fields, full text shown, cited paper ids in citation order)."""
    if item.kind in ROUTED_KINDS:
        reply = assistant.respond(item.question).result
        fields = _reply_fields(reply.result, reply.kind) | {"outcome": reply.outcome, "reason": reply.reason}
        text = reply.text
        citations = reply.citations
    else:
        result = assistant.answer(item.question)
        fields = _reply_fields(result, None) | {"outcome": result.outcome, "reason": result.reason}
        text = result.text
        citations = result.citations
    cited = list(dict.fromkeys(citation.paper_id for citation in citations))
    return fields, text, cited


def _evaluate_item(
    assistant: PaperAssistant,
    line: int,
    item: EvalItem,
    gold_ids: list[str],
    *,
    k: int,
    retrieval_only: bool,
) -> ItemResult:
    started = time.perf_counter()
    dated = None
    if item.kind in DATED_KINDS:
        newest = assistant.retriever.newest_day()
        dated = find_days(item.question, newest) if newest is not None else None
    query = dated.message if dated is not None and dated.message else item.question
    hits = assistant.retriever.search(query, k, days=dated.days if dated else None)
    retrieval_seconds = time.perf_counter() - started
    ranked = [hit.paper.paper_id for hit in hits]
    gold = set(gold_ids)
    result = ItemResult(
        id=item.id,
        kind=item.kind,
        question=item.question,
        line=line,
        gold_ids=gold_ids,
        retrieved=[
            RetrievedPaper(paper_id=h.paper.paper_id, title=h.paper.title, gold=h.paper.paper_id in gold) for h in hits
        ],
        recall_at_1=recall_at(ranked, gold_ids, 1),
        recall_at_k=recall_at(ranked, gold_ids, k),
        reciprocal_rank=reciprocal_rank(ranked, gold_ids),
        retrieval_seconds=retrieval_seconds,
    )
    if item.days is not None:
        # Right when it reads the same papers: "last week" as Monday to Sunday or to Friday holds the same days.
        same = dated is not None and (
            dated.days == item.days
            or assistant.retriever.papers_by_day(dated.days) == assistant.retriever.papers_by_day(item.days)
        )
        result = result.model_copy(update={"days_read": dated.days if dated else None, "range_correct": same})
    if retrieval_only:
        return result

    started = time.perf_counter()
    try:
        fields, text, cited = _run_reply(assistant, item)
    except Exception as exc:  # one failing question must not lose a long run: it is counted and shown
        return result.model_copy(
            update={"route": "error", "error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - started}
        )
    seconds = time.perf_counter() - started
    if item.days is not None:
        papers = assistant.store.get_papers(cited)
        outside = sum(1 for pid in cited if pid in papers and not item.days.contains(papers[pid].day))
        result = result.model_copy(update={"cited_outside_range": outside})
    claims = fields["claims"]
    missing = missing_mentions(text, item.must_mention)
    return result.model_copy(
        update={
            **fields,
            "text": text,
            "seconds": seconds,
            "cited_ids": cited,
            "citation_precision": citation_precision(cited, gold_ids),
            "citation_recall": citation_recall(cited, gold_ids),
            # A decline answers nothing: the titles it lists earn no coverage.
            "mention_coverage": 0.0
            if fields["declined"] and item.must_mention
            else mention_coverage(text, item.must_mention),
            "missing_mentions": list(item.must_mention) if fields["declined"] else missing,
            "refusal_correct": refusal_correct(item.kind, fields["declined"]),
            "unsupported_share": len(fields["unsupported"]) / claims if claims else None,
        }
    )


def _gold_ids(path: Path, items: Sequence[tuple[int, EvalItem]], titles: dict[str, list[str]]) -> dict[str, list[str]]:
    resolved: dict[str, list[str]] = {}
    for line, item in items:
        ids: list[str] = []
        for title in item.gold_titles:
            matches = titles.get(_normal_title(title), [])
            if not matches:
                raise EvalFileError(
                    f"{path} line {line}: gold title not in the collection: {title!r} "
                    "(ingest the papers the evaluation set is about, or fix the title)"
                )
            ids.extend(pid for pid in matches if pid not in ids)
        resolved[item.id] = ids
    return resolved


def evaluate(
    path: Path,
    *,
    assistant: PaperAssistant | None = None,
    settings: Settings | None = None,
    retrieval_only: bool = False,
    k: int = 5,
    progress: ProgressCallback | None = None,
) -> EvalReport:
    """Run every item of the JSONL file at ``path`` against the collection and aggregate the metrics.

    ``assistant`` (or one built from ``settings`` when it is None) supplies the store, retriever and model. A
    malformed line, a gold title missing from the collection or an empty collection raises
    :class:`EvalFileError` before any question is asked. Summaries are generated afresh (a
    temporary summary cache), so cached summaries do not hide the model's cost.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    path = Path(path)
    items = load_items(path)
    if assistant is None:
        if settings is None:
            raise ValueError("evaluate needs an assistant, or the settings to build one")
        from assistant.service import PaperAssistant

        assistant = PaperAssistant(settings)
    settings = assistant.settings

    catalog = assistant.papers()
    if not catalog:
        raise EvalFileError(
            f"the collection '{settings.store.collection}' in {assistant.store.location} is empty: ingest the papers first (`paper-assistant ingest --sample` for the bundled Daily Papers sample)"
        )
    titles: dict[str, list[str]] = {}
    for paper in catalog:
        titles.setdefault(_normal_title(paper.title), []).append(paper.paper_id)
    gold = _gold_ids(path, items, titles)

    started = time.perf_counter()
    results: list[ItemResult] = []
    if progress is not None:
        progress(0, len(items))
    with _fresh_summary_cache(assistant) if not retrieval_only else nullcontext():
        for line, item in items:
            results.append(_evaluate_item(assistant, line, item, gold[item.id], k=k, retrieval_only=retrieval_only))
            if progress is not None:
                progress(len(results), len(items))
    by_kind = {
        kind: aggregate([r for r in results if r.kind == kind])
        for kind in KINDS
        if any(r.kind == kind for r in results)
    }
    return EvalReport(
        path=str(path),
        k=k,
        retrieval_only=retrieval_only,
        model=None if retrieval_only else _model_name(assistant),
        hybrid=settings.retrieval.hybrid,
        papers_in_collection=len(catalog),
        seconds=time.perf_counter() - started,
        items=results,
        overall=aggregate(results),
        by_kind=by_kind,
    )


def _model_name(assistant: PaperAssistant) -> str:
    try:
        return assistant.backend.model
    except Exception:  # the model could not even be built: every item carries the error
        return assistant.settings.llm.model


@contextmanager
def _fresh_summary_cache(assistant: PaperAssistant) -> Iterator[None]:
    """The assistant's summary cache swapped for an empty temporary one while evaluating."""
    saved = assistant.summary_cache
    with tempfile.TemporaryDirectory(prefix="paper-assistant-eval-") as folder:
        assistant.summary_cache = SummaryCache.in_folder(Path(folder))
        try:
            yield
        finally:
            assistant.summary_cache = saved


# --- printing -------------------------------------------------------------------------------
def _cell(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        )

    return "\n".join([line(header), "  ".join("-" * width for width in widths), *(line(row) for row in rows)])


def format_report(report: EvalReport) -> str:
    """Readable tables: retrieval and replies per kind and overall, then every item that fell short."""
    groups = [*report.by_kind.items(), ("overall", report.overall)]
    k = report.k
    parts = [
        f"Evaluation of {report.path}: {report.overall.items} questions, {report.papers_in_collection} papers in the "
        f"collection, {'hybrid' if report.hybrid else 'dense'} retrieval"
        + ("" if report.retrieval_only else f", model {report.model}")
        + f", {report.seconds:.1f} s",
        "",
        "Retrieval",
        _table(
            ["kind", "n", "with gold", "recall@1", f"recall@{k}", f"MRR@{k}", "ms/q"],
            [
                [name, str(m.items), str(m.retrieval_items), _cell(m.recall_at_1), _cell(m.recall_at_k), _cell(m.mrr),
                 _cell(m.retrieval_ms_per_question, 0)]
                for name, m in groups
            ],
        ),
    ]  # fmt: skip
    if not report.retrieval_only:
        parts += [
            "",
            "Replies",
            _table(
                ["kind", "n", "cite prec", "cite rec", "mentions", "refusal acc", "unsupported", "fallback",
                 "prompt tok/q", "compl tok/q", "s/q", "errors"],
                [
                    [name, str(m.items), _cell(m.citation_precision), _cell(m.citation_recall), _cell(m.mention_coverage),
                     _cell(m.refusal_accuracy), _cell(m.unsupported_share), _cell(m.fallback_rate),
                     _cell(m.prompt_tokens_per_question, 0), _cell(m.completion_tokens_per_question, 0),
                     _cell(m.seconds_per_question, 1), str(m.errors)]
                    for name, m in groups
                ],
            ),
            f"refusals: {report.overall.wrong_refusals} answerable question(s) declined, "
            f"{report.overall.missed_refusals} unanswerable question(s) answered",
        ]  # fmt: skip
    dated_groups = [(name, m) for name, m in report.by_kind.items() if name in DATED_KINDS]
    if dated_groups:
        parts += [
            "",
            "Dated questions",
            _table(
                ["kind", "n", "range read right", f"recall@{k}", "cite rec", "cited outside range", "declined"],
                [
                    [name, str(m.items), _cell(m.range_accuracy), _cell(m.recall_at_k), _cell(m.citation_recall),
                     _cell(m.outside_range_share), _cell(m.decline_rate)]
                    for name, m in dated_groups
                ],
            ),
        ]  # fmt: skip
    shortfalls = [line for result in report.items for line in _shortfalls(result, k)]
    if shortfalls:
        parts += ["", "Items that fell short", *shortfalls]
    return "\n".join(parts)


def _shortfalls(result: ItemResult, k: int) -> list[str]:
    problems: list[str] = []
    if result.recall_at_k is not None and result.recall_at_k < 1:
        found = ", ".join(p.title[:50] for p in result.retrieved[:3])
        problems.append(f"recall@{k} {result.recall_at_k:.2f} (top: {found})")
    if result.error:
        problems.append(f"error: {result.error}")
    if result.refusal_correct is False:
        problems.append(f"{'declined' if result.declined else 'answered'} ({result.route})")
    if result.citation_precision is not None and result.citation_precision < 1:
        problems.append(f"cites non-gold papers (precision {result.citation_precision:.2f})")
    if result.citation_recall is not None and result.citation_recall < 1 and not result.declined:
        problems.append(f"citation recall {result.citation_recall:.2f}")
    if result.range_correct is False:
        read = f"{result.days_read.start} to {result.days_read.end}" if result.days_read else "no date"
        problems.append(f"range read as {read}")
    if result.cited_outside_range:
        problems.append(f"cites {result.cited_outside_range} paper(s) listed outside the range")
    if result.missing_mentions:
        problems.append("missing " + ", ".join(repr(term) for term in result.missing_mentions))
    if result.unsupported:
        problems.append(f"{len(result.unsupported)}/{result.claims} sentences unsupported")
    if result.fallback:
        problems.append("model text replaced by source sentences")
    if not problems:
        return []
    return [f"  {result.id} ({result.kind}, {result.route or 'retrieval'}): " + "; ".join(problems)]
