"""Date phrases in chat messages: the days they name, read from the newest day held, and no false dates."""

from __future__ import annotations

import time
from datetime import date

import pytest

from assistant.dates import between_text, days_between, find_days, week_of
from assistant.errors import InvalidInput
from assistant.schema import DateRange

NEWEST = date(2026, 8, 21)  # a Friday, the archive's newest day


@pytest.mark.parametrize(
    ("message", "start", "end", "relative", "rest"),
    [
        ("Which papers came out on 10 June 2025?", "2025-06-10", "2025-06-10", False, "Which papers?"),
        ("What robotics papers came out on 3 March 2025?", "2025-03-03", "2025-03-03", False, "What robotics papers?"),
        (
            "What appeared in the week of 2 December 2024 on agents?",
            "2024-12-02",
            "2024-12-08",
            False,
            "What on agents?",
        ),
        ("papers on agents during March 2026", "2026-03-01", "2026-03-31", False, "papers on agents"),
        (
            "Which papers on model merging appeared between March and May 2026?",
            "2026-03-01",
            "2026-05-31",
            False,
            "Which papers on model merging?",
        ),
        ("What came out in early 2025 on RLHF?", "2025-01-01", "2025-04-30", False, "What on RLHF?"),
        (
            "Which papers on KV-cache compression were listed in the first week of March 2026?",
            "2026-03-01",
            "2026-03-07",
            False,
            "Which papers on KV-cache compression?",
        ),
        ("papers on RL from 2025-06-02 to 2025-06-06", "2025-06-02", "2025-06-06", False, "papers on RL"),
        ("papers listed on 2025-06-10 about video", "2025-06-10", "2025-06-10", False, "papers about video"),
        ("June 10, 2025 papers about video", "2025-06-10", "2025-06-10", False, "papers about video"),
        ("In 2025, which papers used LoRA?", "2025-01-01", "2025-12-31", False, "which papers used LoRA?"),
        ("agents in Q1 2025", "2025-01-01", "2025-03-31", False, "agents"),
        ("speculative decoding in late March 2026", "2026-03-21", "2026-03-31", False, "speculative decoding"),
        # relative: from the newest day held, 2026-08-21 (a Friday)
        (
            "What came out last week on speculative decoding?",
            "2026-08-10",
            "2026-08-16",
            True,
            "What on speculative decoding?",
        ),
        ("Anything yesterday about robots?", "2026-08-20", "2026-08-20", True, "Anything about robots?"),
        ("What's new today about agents?", "2026-08-21", "2026-08-21", True, "what about agents?"),
        ("papers on diffusion since Monday", "2026-08-17", "2026-08-21", True, "papers on diffusion"),
        ("diffusion papers in the last three days", "2026-08-19", "2026-08-21", True, "diffusion papers"),
        ("papers from the past two weeks on agents", "2026-08-08", "2026-08-21", True, "papers on agents"),
        ("What's new?", "2026-08-21", "2026-08-21", True, ""),
        ("anything on world models this month?", "2026-08-01", "2026-08-21", True, "anything on world models?"),
    ],
)
def test_date_phrases_name_their_days(message: str, start: str, end: str, relative: bool, rest: str) -> None:
    found = find_days(message, NEWEST)
    assert found is not None
    assert found.days == DateRange(start=date.fromisoformat(start), end=date.fromisoformat(end))
    assert found.relative is relative
    assert found.message == rest


@pytest.mark.parametrize(
    "message",
    [
        "How does GPT-4 compare with Llama 3?",
        "Which 2 papers use LoRA?",
        "What is the top-5 accuracy?",
        "Which method converges in 2 steps?",
        "Which method may reduce hallucination?",
        "What does the March benchmark measure?",
        "Which paper uses 2048 tokens?",
        "How is the second stage trained?",
        "What accuracy does it reach on MMLU in 5-shot?",
        "Which paper trains on 2 million images?",
        "What is new in Qwen2.5?",
        "How many days does training take?",
        "Which model scores 90.2% on HumanEval?",
        "Is Mamba better than transformers in 2 of 3 tasks?",
        "What did the last paper say?",
        "Which papers were trained in 2000 steps?",
    ],
)
def test_questions_without_dates_have_none(message: str) -> None:
    assert find_days(message, NEWEST) is None


def test_relative_phrases_count_from_the_newest_day_held_and_say_so() -> None:
    found = find_days("What came out last week on speculative decoding?", NEWEST)
    assert found is not None
    assert found.reading == (
        "“last week” read as 2026-08-10 to 2026-08-16, counted from the newest day held, 2026-08-21"
    )
    # The same words on a collection last updated in March name other days: the clock is not read.
    older = find_days("What came out last week on speculative decoding?", date(2025, 3, 7))
    assert older is not None and older.days == DateRange(start=date(2025, 2, 24), end=date(2025, 3, 2))


def test_a_month_or_day_without_a_year_is_the_latest_one_held() -> None:
    march = find_days("papers on agents during March", NEWEST)
    december = find_days("papers on agents in December", NEWEST)
    day = find_days("papers on 10 December", NEWEST)
    assert march is not None and march.days.start == date(2026, 3, 1)
    assert december is not None and december.days.start == date(2025, 12, 1)
    assert day is not None and day.days.start == date(2025, 12, 10)


def test_a_day_that_does_not_exist_is_no_date() -> None:
    assert find_days("What came out on 30 February 2026?", NEWEST) is None


def test_parsing_is_fast() -> None:
    messages = ["Which papers on model merging appeared between March and May 2026?", "How does GPT-4 compare?"]
    started = time.perf_counter()
    for _ in range(500):
        for message in messages:
            find_days(message, NEWEST)
    assert (time.perf_counter() - started) / 1000 < 0.005  # generous: about 0.2 ms here


def test_ranges_from_options() -> None:
    assert days_between(None, None) is None
    assert days_between(date(2025, 1, 1), None) == DateRange(start=date(2025, 1, 1), end=date.max)
    assert week_of(date(2024, 12, 4)) == DateRange(start=date(2024, 12, 2), end=date(2024, 12, 8))
    assert between_text(DateRange(start=date(2025, 1, 1), end=date.max)) == "since 2025-01-01"
    with pytest.raises(InvalidInput, match="starts after it ends"):
        days_between(date(2025, 2, 1), date(2025, 1, 1))
