"""One plan per message: the rules read a question's route and shape once, and the table decides outcomes."""

from __future__ import annotations

import json
from datetime import date

import pytest

from assistant.llm.fake import FakeLLM
from assistant.outcomes import OUTCOMES, Outcome, Reason, Route, Shape, outcome_for
from assistant.plan import ModelPlanner, RulesPlanner, answer_shape, asks_for_summary, within_days
from assistant.prompts import load_prompt
from assistant.resolve import AmbiguousMention, Resolution
from assistant.schema import DateRange, Paper

ZIP_FIT = Paper(
    paper_id="zip", title="ZIP-FIT: Embedding-Free Data Selection via Compression-Based Alignment", abstract="gzip."
)


@pytest.mark.parametrize(
    ("question", "shape"),
    [
        # "Which paper trains models" asks for one paper ("models" is not the thing asked for), and a
        # hyphenated word between "which" and "paper" does not hide the question's kind.
        ("Which paper trains models with federated learning?", Shape.ONE_PAPER),
        ("Which LLM-agent paper chooses its demonstrations step by step?", Shape.ONE_PAPER),
        ("Is there a paper on concept erasure?", Shape.ONE_PAPER),
        ("Which papers evaluate LLM-based agents on Mind2Web?", Shape.PAPERS),
        ("What methods reduce hallucination?", Shape.PAPERS),
        ("Which state-of-the-art works compress prompts?", Shape.PAPERS),
        ("How does aTLAS combine task vectors?", Shape.EXPLANATION),
        ("How much faster does ZIP-FIT reach its lowest loss?", Shape.FIGURE),
        ("What accuracy does a model trained on selected data reach?", Shape.FIGURE),
        # Misjudged by the old per-feature patterns: "one of these papers" asks for one paper.
        ("Which one of these papers uses LoRA?", Shape.ONE_PAPER),
    ],
)
def test_the_shape_of_the_answer(question: str, shape: Shape) -> None:
    assert answer_shape(question) is shape


def test_a_question_that_names_its_paper_does_not_ask_which_paper() -> None:
    # Read as "which model ..." before: the answer is about ZIP-FIT, not which paper.
    assert answer_shape("What model sizes does ZIP-FIT test?", [ZIP_FIT]) is Shape.EXPLANATION
    assert answer_shape("What model sizes does ZIP-FIT test?") is Shape.ONE_PAPER


@pytest.mark.parametrize(
    ("message", "summary"),
    [
        ("Summarize the BIG-bench paper.", True),
        ("What is Rep-MTL about? A short paragraph summary please.", True),
        ("What is the strawberry letter-counting paper about, in a nutshell?", True),
        ("Can you give me a short overview of Breaking Focus?", True),
        ("tl;dr of TaskExpert?", True),
        ('What is "Is It Really Long Context if All You Need Is Retrieval?" about?', True),
        ("What is the paper on addressing negative transfer in diffusion models about?", True),
        # A part of the paper, not the paper: a question about the figure.
        ("What is the overview figure in aTLAS about?", False),
        ("What does aTLAS learn?", False),
    ],
)
def test_a_summary_is_asked_of_the_paper_as_a_whole(message: str, summary: bool) -> None:
    assert asks_for_summary(message) is summary


def test_the_rules_route_comparisons_and_summaries() -> None:
    rules = RulesPlanner()
    assert rules.intent("Compare aTLAS and ZIP-FIT", [])[0].route is Route.COMPARISON
    assert rules.intent("Summarize ZIP-FIT", [ZIP_FIT])[0].route is Route.SUMMARY
    assert rules.intent("What is the overview figure in aTLAS about?", [])[0].route is Route.ANSWER


def test_the_model_planner_takes_a_valid_plan_and_falls_back_to_the_rules() -> None:
    backend = FakeLLM()
    planner = ModelPlanner(backend, load_prompt("plan"))
    backend.enqueue(json.dumps({"route": "answer", "shape": "figure"}))
    intent, _ = planner.intent("Which paper uses gzip?", [])
    assert (intent.route, intent.shape) == (Route.ANSWER, Shape.FIGURE)
    assert backend.calls[-1]["json_schema"] is not None
    backend.enqueue('{"route": "digest"}')  # not a plan: the rules decide
    intent, _ = planner.intent("Which paper uses gzip?", [])
    assert (intent.route, intent.shape) == (Route.ANSWER, Shape.ONE_PAPER)


def test_every_shape_has_an_outcome_for_every_verdict_of_the_answer() -> None:
    answer_verdicts = set(Reason) - {
        Reason.AMBIGUOUS_NAME,
        Reason.UNKNOWN_NAME,
        Reason.COMPARED,
        Reason.SUMMARIZED,
        Reason.SUMMARY_UNGROUNDED,
    }
    assert {(shape, reason) for shape in Shape for reason in answer_verdicts} <= set(OUTCOMES)
    assert outcome_for(Shape.ONE_PAPER, Reason.RESTATED_CLEAR_PAPER) is Outcome.ANSWER_UNDER_TITLE
    assert outcome_for(Shape.EXPLANATION, Reason.RESTATED_CLEAR_PAPER) is Outcome.DECLINE
    assert outcome_for(Shape.PAPERS, Reason.UNGROUNDED) is Outcome.ONE_LINE_PER_PAPER
    assert outcome_for(Shape.FIGURE, Reason.UNGROUNDED) is Outcome.ABSTRACT_SENTENCES


def _listed(title: str, day: date) -> Paper:
    return Paper(paper_id=title.lower().replace(" ", "-"), title=title, abstract=f"{title} is studied.", listed=day)


def test_a_dated_question_reads_an_ambiguous_name_among_the_papers_of_its_days() -> None:
    catalog = [
        _listed("Gaussian Splatting for Dynamic Scenes", date(2026, 3, 2)),
        _listed("Gaussian Splatting in the Wild", date(2025, 1, 7)),
        _listed("Gaussian Splatting Meets Physics", date(2024, 6, 3)),
    ]
    # Over the whole collection the name fits all three papers.
    resolution = Resolution(ambiguous=[AmbiguousMention(mention="Gaussian Splatting", candidates=catalog)])
    one_day = within_days(resolution, DateRange(start=date(2026, 3, 1), end=date(2026, 3, 7)))
    assert [paper.title for paper in one_day.matched] == ["Gaussian Splatting for Dynamic Scenes"]
    assert not one_day.ambiguous
    no_day = within_days(resolution, DateRange(start=date(2023, 1, 1), end=date(2023, 1, 7)))
    assert not no_day.ambiguous and not no_day.matched, "fitting none of the days, it is only a topic word"
    two_days = within_days(resolution, DateRange(start=date(2025, 1, 1), end=date(2026, 3, 7)))
    assert [len(mention.candidates) for mention in two_days.ambiguous] == [2]
