"""Words of a question that no abstract uses: found exactly, weighed by meaning, told to the reader."""

from __future__ import annotations

import pytest

from assistant.coverage import absent_words, content_words, uncovered_notice, uncovered_words
from assistant.llm import FakeLLM
from assistant.retrieval import Vocabulary
from tests.feature_calls import answer

VOCABULARY = Vocabulary({"diffus", "model", "imag", "compress", "custom", "attent", "layer", "generat", "imag|model"})


def test_content_words_drop_question_words_and_repeats():
    assert content_words("Which paper generates images, and which paper generates video?") == [
        "generates",
        "images",
        "video",
    ]


def test_absent_words_are_checked_part_by_part_and_by_kin():
    assert absent_words("a video diffusion model", VOCABULARY) == ["video"]
    # A compound is absent only when none of its parts is known.
    assert absent_words("customer-service agents", VOCABULARY) == ["agents"]
    assert absent_words("cross-modal agents", VOCABULARY) == ["cross-modal", "agents"]
    # The stemmer keeps "compressor" apart from "compress"; a reader would not.
    assert absent_words("an off-the-shelf compressor", VOCABULARY) == ["off-the-shelf"]
    # Kin is found among single words only, by their first letters.
    assert list(VOCABULARY.words_starting("imag")) == ["imag"]
    assert "imag|model" in VOCABULARY


class CountingEmbedder:
    def __init__(self, embedder):
        self.embedder = embedder
        self.calls = 0

    def __call__(self, texts: list[str]):
        self.calls += 1
        return self.embedder(texts)


def test_only_the_words_that_carry_the_question_are_reported(sample_retriever) -> None:
    embedder = CountingEmbedder(sample_retriever.store.embedder)
    vocabulary = sample_retriever.vocabulary()
    question = (
        "Which paper introduces a video diffusion model with temporal attention layers for generating long clips?"
    )
    assert uncovered_words(question, vocabulary, embedder) == ["video"]
    assert embedder.calls == 1
    # Every word known: no embedder call at all.
    assert uncovered_words("How does aTLAS combine task vectors?", vocabulary, embedder) == []
    assert embedder.calls == 1


@pytest.mark.parametrize(
    ("words", "notice"),
    [
        (
            ["video"],
            "No abstract in the collection mentions “video”, so this answer cannot speak to that part of the question.",
        ),
        (
            ["Mamba", "perplexity"],
            "No abstract in the collection mentions “Mamba” or “perplexity”, so this answer cannot speak to that part of the question.",
        ),
    ],
)
def test_notice_wording(words: list[str], notice: str) -> None:
    assert uncovered_notice(words) == notice


def test_an_answer_says_which_key_word_no_abstract_mentions(sample_retriever) -> None:
    backend = FakeLLM("Several papers study diffusion models for images [1].")
    result = answer(
        "Which paper introduces a video diffusion model with temporal attention layers?",
        retriever=sample_retriever,
        backend=backend,
    )
    # An ungrounded reply declines, saying so; a grounded one keeps the notice.
    assert result.refused and "no abstract mentions “video”" in result.text
    grounded = answer(
        "Which paper introduces a video diffusion model with temporal attention layers?",
        retriever=sample_retriever,
        backend=FakeLLM(
            "A-STAR proposes two test-time attention-based loss functions for text-to-image diffusion [1]."
        ),
    )
    assert not grounded.refused and any("mentions “video”" in notice for notice in grounded.notices)


def test_a_question_about_a_named_paper_gets_no_such_notice(sample_retriever) -> None:
    backend = FakeLLM("aTLAS linearly combines parameter blocks with different learned coefficients [1].")
    result = answer("Explain aTLAS to a zoologist.", retriever=sample_retriever, backend=backend)
    assert not any("No abstract in the collection mentions" in notice for notice in result.notices)
    covered = answer("How does aTLAS combine task vectors?", retriever=sample_retriever, backend=FakeLLM("x [1]."))
    assert not any("No abstract in the collection mentions" in notice for notice in covered.notices)


def test_a_loose_match_missing_the_key_word_is_declined_before_the_model(sample_retriever) -> None:
    backend = FakeLLM()
    result = answer(
        "Which paper benchmarks LLMs on medical question answering?", retriever=sample_retriever, backend=backend
    )
    assert result.refused
    assert result.text.startswith("The collection does not cover this question: no abstract mentions “medical”")
    assert backend.history == []
