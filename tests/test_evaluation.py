"""The evaluation harness: metric arithmetic, file errors, retrieval on the sample collection, a scripted full run."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from assistant.evaluation import (
    EvalFileError,
    EvalReport,
    ItemResult,
    aggregate,
    citation_precision,
    citation_recall,
    claim_count,
    evaluate,
    format_report,
    load_items,
    mention_coverage,
    missing_mentions,
    recall_at,
    reciprocal_rank,
    refusal_correct,
)
from assistant.llm import FakeLLM
from assistant.schema import Message
from assistant.service import PaperAssistant
from assistant.streaming import Streamed as Generation
from tests.conftest import DEV_SET

PRD = "Prototype-Sample Relation Distillation: Towards Replay-Free Continual Learning"
USCD = "USCD: Improving Code Generation of LLMs by Uncertainty-Aware Selective Contrastive Decoding"
ATLAS = "Knowledge Composition using Task Vectors with Learned Anisotropic Scaling"
TANGENT = "Task Arithmetic in the Tangent Space: Improved Editing of Pre-Trained Models"
ECMTA = "Efficient Controllable Multi-Task Architectures"


def write_jsonl(path: Path, records: Sequence[dict | str]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


# --- metric arithmetic on hand-made cases ---------------------------------------------------------
def test_recall_and_reciprocal_rank() -> None:
    ranked = ["a", "b", "c", "d", "e", "f"]
    assert recall_at(ranked, ["a"], 1) == 1.0
    assert recall_at(ranked, ["b"], 1) == 0.0
    assert recall_at(ranked, ["a", "c"], 1) == 0.5  # two gold papers: one slot finds at most half
    assert recall_at(ranked, ["a", "f"], 5) == 0.5
    assert recall_at(ranked, ["a", "f"], 6) == 1.0
    assert recall_at(ranked, [], 5) is None
    assert reciprocal_rank(ranked, ["c", "e"]) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranked, ["z"]) == 0.0
    assert reciprocal_rank(ranked, []) is None
    assert reciprocal_rank([], ["a"]) == 0.0


def test_citation_precision_and_recall() -> None:
    assert citation_precision(["a", "b"], ["a"]) == 0.5
    assert citation_precision(["a", "a"], ["a", "b"]) == 1.0  # the same paper cited twice counts once
    assert citation_precision([], ["a"]) is None  # nothing cited: precision undefined, recall 0
    assert citation_precision(["a"], []) is None  # unanswerable items have no gold
    assert citation_recall([], ["a"]) == 0.0
    assert citation_recall(["a", "x"], ["a", "b"]) == 0.5
    assert citation_recall(["a"], []) is None


def test_must_mention_is_a_case_insensitive_substring() -> None:
    text = "MULTI-LANE uses Prompt Tuning for multi-label learning; up 16.59% [1]."
    assert missing_mentions(text, ["multi-label", "prompt tuning", "16.59%", "prototype"]) == ["prototype"]
    assert mention_coverage(text, ["multi-label", "prompt tuning", "16.59%", "prototype"]) == 0.75
    assert mention_coverage(text, ["concatenat"]) == 0.0
    assert mention_coverage(text, []) is None


def test_refusal_is_right_in_both_directions() -> None:
    assert refusal_correct("unanswerable", declined=True)
    assert not refusal_correct("unanswerable", declined=False)
    assert refusal_correct("lookup", declined=False)
    assert not refusal_correct("compare", declined=True)


def test_claims_exclude_hedges_and_headings() -> None:
    assert claim_count("USCD raises pass@1 by 16.59% [1]. ZIP-FIT selects data with gzip [2].") == 2
    assert claim_count("The collection does not say.") == 0


def _result(kind: str, **fields: object) -> ItemResult:
    return ItemResult(id=f"x{len(fields)}", kind=kind, question="q", line=1, **fields)  # type: ignore[arg-type]


def test_aggregate_averages_per_item_and_pools_sentences() -> None:
    results = [
        _result("lookup", gold_ids=["a"], recall_at_1=1.0, recall_at_k=1.0, reciprocal_rank=1.0, route="answer",
                declined=False, refusal_correct=True, citation_precision=1.0, citation_recall=1.0, mention_coverage=0.5,
                claims=4, unsupported=["s1"], prompt_tokens=100, completion_tokens=10, seconds=2.0),
        _result("multi", gold_ids=["a", "b"], recall_at_1=0.5, recall_at_k=0.5, reciprocal_rank=0.5, route="answer",
                declined=False, refusal_correct=True, citation_precision=0.5, citation_recall=0.5, mention_coverage=1.0,
                claims=1, unsupported=["s2"], fallback=False, prompt_tokens=300, completion_tokens=30, seconds=4.0),
        _result("lookup", gold_ids=["c"], recall_at_1=0.0, recall_at_k=1.0, reciprocal_rank=0.5, route="refusal",
                declined=True, refusal_correct=False, citation_recall=0.0, mention_coverage=0.0, seconds=0.0),
        _result("unanswerable", route="answer", declined=False, refusal_correct=False, claims=0, fallback=True,
                seconds=0.0),
        _result("unanswerable", route="refusal", declined=True, refusal_correct=True, seconds=0.0),
        _result("lookup", gold_ids=["d"], recall_at_1=1.0, recall_at_k=1.0, reciprocal_rank=1.0, route="error",
                error="LLMError: down"),
    ]  # fmt: skip
    metrics = aggregate(results)
    assert metrics.items == 6 and metrics.retrieval_items == 4 and metrics.answered_items == 5 and metrics.errors == 1
    assert metrics.recall_at_1 == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert metrics.mrr == pytest.approx((1 + 0.5 + 0.5 + 1) / 4)
    assert metrics.citation_precision == pytest.approx(0.75)  # only items that cite something
    assert metrics.citation_recall == pytest.approx(0.5)  # (1 + 0.5 + 0) / 3: the refusal cited nothing
    assert metrics.refusal_accuracy == pytest.approx(3 / 5)  # the errored item is not judged
    assert (metrics.wrong_refusals, metrics.missed_refusals) == (1, 1)
    assert metrics.unsupported_share == pytest.approx(2 / 5)  # pooled over sentences, not 0.625 per item
    assert metrics.fallback_rate == pytest.approx(1 / 3)  # over the replies that were not declined
    assert metrics.prompt_tokens_per_question == pytest.approx(80)
    assert metrics.seconds_per_question == pytest.approx(1.2)


def test_aggregate_of_retrieval_only_results_has_no_reply_metrics() -> None:
    metrics = aggregate([_result("lookup", gold_ids=["a"], recall_at_1=1.0, recall_at_k=1.0, reciprocal_rank=1.0)])
    assert metrics.recall_at_k == 1.0
    assert metrics.answered_items == 0 and metrics.citation_precision is None and metrics.refusal_accuracy is None


# --- the file -------------------------------------------------------------------------------
def test_items_are_read_with_line_numbers_and_blank_lines_skipped(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "eval.jsonl",
        [{"id": "a", "kind": "lookup", "question": "q?", "gold_titles": ["T"], "note": "ignored"}, "",
         {"id": "b", "kind": "unanswerable", "question": "r?"}],
    )  # fmt: skip
    items = load_items(path)
    assert [(line, item.id) for line, item in items] == [(1, "a"), (3, "b")]
    assert items[1][1].gold_titles == [] and items[1][1].must_mention == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "b", "kind": "lookup", "question": "q?", "gold_titles": ["T"]', "line 2: not valid JSON"),
        ('["b", "lookup"]', "line 2: expected a JSON object"),
        ('{"id": "b", "kind": "lookup", "gold_titles": ["T"]}', "line 2: question: Field required"),
        ('{"id": "b", "kind": "trivia", "question": "q?", "gold_titles": ["T"]}', "line 2: kind:"),
        ('{"id": "b", "kind": "lookup", "question": "q?", "gold_titles": "T"}', "line 2: gold_titles"),
        ('{"id": "b", "kind": "lookup", "question": "q?"}', "line 2: a lookup item needs at least one"),
        ('{"id": "b", "kind": "unanswerable", "question": "q?", "gold_titles": ["T"]}', "line 2: an unanswerable item"),
        (
            '{"id": "a", "kind": "lookup", "question": "q?", "gold_titles": ["T"]}',
            "line 2: id 'a' is already used on line 1",
        ),
    ],
)
def test_a_malformed_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    first = json.dumps({"id": "a", "kind": "lookup", "question": "q?", "gold_titles": ["T"]})
    path = write_jsonl(tmp_path / "eval.jsonl", [first, line])
    with pytest.raises(EvalFileError, match=re.escape(message)):
        load_items(path)


def test_a_missing_or_empty_file_is_an_eval_file_error(tmp_path: Path) -> None:
    with pytest.raises(EvalFileError, match="cannot read"):
        load_items(tmp_path / "absent.jsonl")
    with pytest.raises(EvalFileError, match="no evaluation items"):
        load_items(write_jsonl(tmp_path / "empty.jsonl", [""]))


def test_a_gold_title_outside_the_collection_is_named_with_its_line(tmp_path: Path, sample_settings) -> None:
    path = write_jsonl(
        tmp_path / "eval.jsonl",
        [{"id": "a", "kind": "lookup", "question": "replay-free continual learning", "gold_titles": [PRD]},
         {"id": "b", "kind": "lookup", "question": "q?", "gold_titles": ["A Paper Nobody Wrote"]}],
    )  # fmt: skip
    with pytest.raises(EvalFileError, match=r"line 2: gold title not in the collection: 'A Paper Nobody Wrote'"):
        evaluate(path, settings=sample_settings, retrieval_only=True)


def test_an_empty_collection_is_reported_before_any_question(tmp_path: Path, settings) -> None:
    path = write_jsonl(tmp_path / "eval.jsonl", [{"id": "a", "kind": "lookup", "question": "q?", "gold_titles": [PRD]}])
    with pytest.raises(EvalFileError, match="is empty: ingest the papers first"):
        evaluate(path, settings=settings, retrieval_only=True)


# --- retrieval only, on the real sample collection ------------------------------------------------
HAND_MADE = [
    {"id": "h1", "kind": "lookup", "question": "Which continual learning method distills prototype-sample relations without replay?",
     "gold_titles": [PRD], "must_mention": ["Catastrophic Forgetting", "prototype"]},
    {"id": "h2", "kind": "numeric", "question": "By how much does uncertainty-aware selective contrastive decoding raise pass@1?",
     "gold_titles": [USCD], "must_mention": ["16.59%"]},
    {"id": "h3", "kind": "compare", "question": f'Compare "{ATLAS}" with "{TANGENT}".', "gold_titles": [ATLAS, TANGENT],
     "must_mention": ["task vectors"]},
    {"id": "h4", "kind": "summary", "question": f'Summarize "{ECMTA}" in one paragraph.', "gold_titles": [ECMTA],
     "must_mention": ["slimmable"]},
    {"id": "h5", "kind": "unanswerable", "question": "Is there anything about federated learning with differential privacy guarantees?"},
    {"id": "h6", "kind": "unanswerable", "question": "Which paper trains a video diffusion model with temporal attention for long clips?"},
]  # fmt: skip


def test_retrieval_only_on_the_sample_collection(tmp_path: Path, sample_settings) -> None:
    calls: list[tuple[int, int]] = []
    report = evaluate(
        write_jsonl(tmp_path / "eval.jsonl", HAND_MADE),
        settings=sample_settings,
        retrieval_only=True,
        progress=lambda done, total: calls.append((done, total)),
    )
    print(format_report(report))
    assert calls == [(i, 6) for i in range(7)]
    assert report.model is None and report.papers_in_collection == 46
    by_id = {item.id: item for item in report.items}
    assert by_id["h1"].recall_at_1 == 1.0 and by_id["h1"].retrieved[0].title == PRD and by_id["h1"].retrieved[0].gold
    assert by_id["h3"].recall_at_k == 1.0 and by_id["h3"].recall_at_1 == 0.5
    assert by_id["h5"].recall_at_k is None and by_id["h5"].route is None
    assert report.overall.retrieval_items == 4 and report.overall.recall_at_k == 1.0
    assert report.by_kind["unanswerable"].recall_at_k is None
    assert "recall@5" in format_report(report) and "Replies" not in format_report(report)


def test_retrieval_only_on_the_dev_set(sample_settings) -> None:
    report = evaluate(DEV_SET, settings=sample_settings, retrieval_only=True)
    print(format_report(report))
    assert report.overall.items == 30 and report.overall.retrieval_items == 27
    # Measured 0.96 (two "multi" questions miss one of their two papers at k=5); a guard, not the bar.
    assert report.overall.recall_at_k is not None and report.overall.recall_at_k >= 0.9
    assert report.overall.mrr is not None and report.overall.mrr >= 0.9
    assert EvalReport.model_validate_json(report.model_dump_json()) == report


# --- a full run with a scripted model ---------------------------------------------------------------
_SOURCE = re.compile(r'<source n="(\d+)" title="[^"]*">\n(.*?)\n</source>', re.DOTALL)


class CitingLLM(FakeLLM):
    """Replies with the opening sentences of its first source, cited as [n]; NOT COVERED for video diffusion."""

    def generate(self, messages: Sequence[Message], **options: object) -> Generation:
        prompt = "\n".join(message.content for message in messages)
        source = _SOURCE.search(prompt)
        if "video diffusion" in prompt:
            self.enqueue("NOT COVERED")
        elif source is not None:
            n, text = source.group(1), source.group(2)
            sentences = re.split(r"(?<=[.!?])\s+", text)
            self.enqueue(" ".join(sentence.rstrip(".") + f" [{n}]." for sentence in sentences[:2]))
        return super().generate(messages, **options)


def test_a_full_run_with_a_scripted_model(tmp_path: Path, sample_store) -> None:
    backend = CitingLLM()
    assistant = PaperAssistant(sample_store.settings, store=sample_store, backend=backend)
    cache = assistant.summary_cache
    report = evaluate(write_jsonl(tmp_path / "eval.jsonl", HAND_MADE), assistant=assistant)
    print(format_report(report))
    by_id = {item.id: item for item in report.items}
    ids = {paper.title: paper.paper_id for paper in assistant.papers()}

    assert report.model == "fake/echo" and not report.retrieval_only
    assert assistant.summary_cache is cache  # the temporary cache is swapped back
    # Plain questions are answered, citing the first source: the top retrieved paper.
    lookup = by_id["h1"]
    assert lookup.route == "answer" and lookup.cited_ids == [ids[PRD]]
    assert lookup.citation_precision == 1.0 and lookup.citation_recall == 1.0
    # The reply quotes two sentences of the abstract (the model's, or the support check's
    # extractive stand-in): coverage must be the share of must-mention terms it contains.
    mentioned = [term for term in HAND_MADE[0]["must_mention"] if term.lower() in (lookup.text or "").lower()]
    assert lookup.mention_coverage == len(mentioned) / len(HAND_MADE[0]["must_mention"])
    assert lookup.missing_mentions == [t for t in HAND_MADE[0]["must_mention"] if t not in mentioned]
    assert lookup.refusal_correct is True
    assert lookup.prompt_tokens > 0 and lookup.completion_tokens > 0 and lookup.seconds > 0
    assert lookup.claims >= 1 and lookup.unsupported_share is not None
    assert by_id["h2"].route == "answer" and by_id["h2"].cited_ids == [ids[USCD]]
    # Compare and summary questions take the route a chat user gets.
    compare = by_id["h3"]
    assert compare.route == "comparison" and set(compare.cited_ids) == {ids[ATLAS], ids[TANGENT]}
    assert compare.citation_precision == 1.0 and compare.citation_recall == 1.0
    summary = by_id["h4"]
    assert summary.route == "summary" and summary.cited_ids == [ids[ECMTA]] and summary.mention_coverage == 1.0
    # Unanswerable: refused before the model (nothing close) or by the model (NOT COVERED).
    assert by_id["h5"].route == "refusal" and by_id["h5"].prompt_tokens == 0 and by_id["h5"].refusal_correct
    assert by_id["h6"].route == "refusal" and by_id["h6"].refusal_correct
    assert by_id["h6"].citation_precision is None and by_id["h6"].citation_recall is None

    overall = report.overall
    assert overall.refusal_accuracy == 1.0 and overall.errors == 0
    assert overall.citation_precision == 1.0 and overall.citation_recall == 1.0
    assert set(report.by_kind) == {"lookup", "numeric", "compare", "summary", "unanswerable"}
    assert report.by_kind["compare"].prompt_tokens_per_question > report.by_kind["lookup"].prompt_tokens_per_question
    text = format_report(report)
    assert "Replies" in text and "refusal acc" in text and "fake/echo" in text


def test_a_failing_model_is_counted_per_item_not_fatal(tmp_path: Path, sample_store) -> None:
    from assistant.errors import LLMError

    backend = FakeLLM(LLMError("the model server is down"))
    assistant = PaperAssistant(sample_store.settings, store=sample_store, backend=backend)
    report = evaluate(write_jsonl(tmp_path / "eval.jsonl", HAND_MADE[:1] + HAND_MADE[4:5]), assistant=assistant)
    by_id = {item.id: item for item in report.items}
    assert by_id["h1"].route == "error" and "model server is down" in (by_id["h1"].error or "")
    assert by_id["h5"].route == "refusal"
    assert report.overall.errors == 1 and report.overall.answered_items == 1
    assert "error: LLMError" in format_report(report)
