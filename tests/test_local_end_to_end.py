"""The default local model (Qwen2.5-Coder-1.5B via llama-cpp-python) on the sample collection.

What must hold whatever a small model writes: every citation points to a source, refusals
are honest, summaries are one paragraph of 60-150 words, and no number reaches the reader
as the collection's unless a source contains it (or the sentence is flagged as
unsupported). A handful of requests, replies kept short, so that this runs in a few
minutes on two cores; whole evaluations are benchmarks (README, "Retrieval and evaluation").
"""

from __future__ import annotations

import re

import pytest

from assistant.extracts import SUMMARY_MAX_WORDS as MAX_WORDS
from assistant.extracts import SUMMARY_MIN_WORDS as MIN_WORDS
from assistant.features.compare import NOT_STATED
from assistant.schema import Source
from assistant.service import PaperAssistant
from assistant.settings import DEFAULT_LOCAL_MODEL, Settings
from assistant.text import numbers_in, split_sentences, word_count

pytest.importorskip("llama_cpp", reason="the local model needs llama-cpp-python: pip install -e '.[local]'")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def assistant(sample_settings: Settings) -> PaperAssistant:
    from assistant.llm.litellm_backend import LiteLLMBackend

    settings = sample_settings.replace(**{"max_answer_tokens": 120})
    backend = LiteLLMBackend.from_settings(settings)
    assert backend.model == DEFAULT_LOCAL_MODEL
    return PaperAssistant(settings, backend=backend)


def unflagged_numbers_are_in_the_sources(text: str, unsupported: list[str], sources: list[Source]) -> None:
    known = set().union(*(numbers_in(f"{s.title} {s.text}") for s in sources)) if sources else set()
    for sentence in split_sentences(text):
        if sentence in unsupported:
            continue
        plain = re.sub(r"\[\d+\]", "", sentence)
        assert numbers_in(plain) <= known, f"unflagged number not in any source: {sentence!r}"


def test_ask_gives_a_cited_answer_or_an_honest_refusal(assistant: PaperAssistant) -> None:
    turn = assistant.respond("Which paper selects training data for a target task by compressing text?")
    text = "".join(turn)
    assert text.strip()
    answer = turn.result
    assert turn.result.kind in ("answer", "refusal") and answer.model.startswith("local/")
    source_numbers = {s.n for s in answer.sources}
    assert all(c.n in source_numbers for c in answer.citations)
    assert set(re.findall(r"\[(\d+)\]", turn.result.text)) <= {str(n) for n in source_numbers}
    if turn.result.kind == "refusal":
        assert answer.citations == []
    else:
        assert answer.citations, "an answer that is not a refusal cites its sources"
        unflagged_numbers_are_in_the_sources(turn.result.text, answer.unsupported, answer.sources)


def test_off_topic_question_is_refused_without_the_model(assistant: PaperAssistant) -> None:
    turn = assistant.respond("Which paper studies federated learning with differential privacy guarantees?")
    assert turn.result.kind == "refusal" and turn.result.result.usage.completion_tokens == 0


def test_summary_is_one_paragraph_of_60_to_150_words(assistant: PaperAssistant) -> None:
    summary = assistant.summarize("ZIP-FIT")
    assert "\n" not in summary.summary
    assert MIN_WORDS <= word_count(summary.summary) <= MAX_WORDS
    paper = assistant.paper("ZIP-FIT")
    unflagged_numbers_are_in_the_sources(
        summary.summary,
        summary.unsupported,
        [Source(n=1, paper_id=paper.paper_id, title=paper.title, text=paper.abstract)],
    )
    assert assistant.summarize("ZIP-FIT").cached


def test_compare_two_papers(assistant: PaperAssistant) -> None:
    comparison = assistant.compare(["ZIP-FIT", "Bonito"])
    papers = [assistant.paper(ref.paper_id) for ref in comparison.papers]
    assert len(comparison.aspects) == 5
    for aspect in comparison.aspects:
        for n, paper in enumerate(papers, start=1):
            cell = aspect.cells[paper.paper_id]
            assert cell == NOT_STATED or cell.rstrip(".").endswith(f"[{n}]")
            if cell != NOT_STATED:
                assert numbers_in(re.sub(r"\[\d+\]", "", cell)) <= numbers_in(paper.abstract)
    assert comparison.narrative
    sources = [Source(n=n, paper_id=p.paper_id, title=p.title, text=p.abstract) for n, p in enumerate(papers, start=1)]
    unflagged_numbers_are_in_the_sources(comparison.narrative, comparison.unsupported, sources)


def test_digest_covers_every_paper(assistant: PaperAssistant) -> None:
    digest = assistant.digest()
    assigned = sorted(pid for theme in digest.themes for pid in theme.paper_ids)
    assert assigned == sorted(p.paper_id for p in assistant.papers())
    for theme in digest.themes:
        assert theme.name and theme.paragraph
        cited = {int(n) for n in re.findall(r"\[(\d+)\]", theme.paragraph)}
        assert cited <= set(range(1, len(theme.paper_ids) + 1))
        members = [assistant.paper(pid) for pid in theme.paper_ids]
        sources = [
            Source(n=n, paper_id=p.paper_id, title=p.title, text=p.abstract) for n, p in enumerate(members, start=1)
        ]
        unflagged_numbers_are_in_the_sources(theme.paragraph, theme.unsupported, sources)
