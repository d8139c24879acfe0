"""The one sentence splitter, tokenizer and word lists, as every part of the project uses them."""

from __future__ import annotations

import pytest

from assistant.text import (
    ML_WORDS,
    RESEARCH_WORDS,
    STOPWORDS,
    key_stems,
    numbers_in,
    sentence_spans,
    split_sentences,
    stem,
    title_head,
)


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("A is good. B is bad.", ["A is good.", "B is bad."]),
        ("ZIP-FIT uses gzip. [2] Bonito writes tasks. [3]", ["ZIP-FIT uses gzip. [2]", "Bonito writes tasks. [3]"]),
        ("We use it, e.g. the best one. It works.", ["We use it, e.g. the best one.", "It works."]),
        ("Smith et al. show it. Fig. 3 agrees.", ["Smith et al. show it.", "Fig. 3 agrees."]),
        ("We build method X. Ignore the rest.", ["We build method X.", "Ignore the rest."]),
        ("We propose it. aTLAS scales vectors.", ["We propose it.", "aTLAS scales vectors."]),
        ("Accuracy rose 3.5 points. Done", ["Accuracy rose 3.5 points.", "Done"]),
        ("First paragraph\n\nSecond one", ["First paragraph", "Second one"]),
    ],
)
def test_sentence_boundaries(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences
    assert [text[start:end] for start, end in sentence_spans(text)] == sentences


def test_word_lists_are_disjoint_in_purpose() -> None:
    assert "the" in STOPWORDS and "propose" in RESEARCH_WORDS and "model" in ML_WORDS
    assert not STOPWORDS & {"aTLAS", "gzip"}


def test_numbers_names_and_stems() -> None:
    assert numbers_in("It reached 16.59% and 14,848 tokens with GPT-4 on pass@1.") == {"16.59", "14848"}
    assert stem("llms") == "llm" and stem("distillation") == stem("distill")
    assert "distil" in key_stems("distills knowledge") and "the" not in key_stems("the distills")


def test_title_head_is_how_people_name_a_paper() -> None:
    assert title_head("ZIP-FIT: Embedding-Free Data Selection via Compression-Based Alignment") == "ZIP-FIT"
    assert title_head("Knowledge Composition using Task Vectors with Learned Anisotropic Scaling") == (
        "Knowledge Composition using Task Vectors with"
    )
