from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.schema import Paper
from assistant.settings import SAMPLE_COLLECTION
from assistant.text import sentence_spans, split_sentences
from assistant.tokens import count_tokens
from ingestion.chunking import chunk_paper, chunk_spans
from ingestion.normalize import build_paper
from ingestion.readers import read_path


@pytest.fixture(scope="module")
def sample_papers() -> list[Paper]:
    return read_path(SAMPLE_COLLECTION).papers


def _paper(abstract: str) -> Paper:
    return build_paper(title="A Title", abstract=abstract, source="test")


# --- sentences ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        (
            "Tasks (e.g. navigation) and more, i.e. shopping. Next.",
            ["Tasks (e.g. navigation) and more, i.e. shopping.", "Next."],
        ),
        ("As Smith et al. Showed in 2020, it works. Yes.", ["As Smith et al. Showed in 2020, it works.", "Yes."]),
        (
            "See Fig. 3 and Eq. 2 and Sec. 4.1 for details. Done.",
            ["See Fig. 3 and Eq. 2 and Sec. 4.1 for details.", "Done."],
        ),
        ("Pass@1 rose by 16.59% on average. And 0.5 too.", ["Pass@1 rose by 16.59% on average.", "And 0.5 too."]),
        ("Works in the U.S. Army and w.r.t. costs. Fine.", ["Works in the U.S. Army and w.r.t. costs.", "Fine."]),
        ('He said "stop." Then left. (Really.) Ok.', ['He said "stop."', "Then left.", "(Really.)", "Ok."]),
        ("Code at github.com. We release it.", ["Code at github.com.", "We release it."]),
        ("Accuracy was 93.5. We then", ["Accuracy was 93.5.", "We then"]),
        ("Yahoo! is a name. Really!", ["Yahoo! is a name.", "Really!"]),
        ("First paragraph\n\nsecond paragraph", ["First paragraph", "second paragraph"]),
        ("  Padded.   Text.  ", ["Padded.", "Text."]),
        ("", []),
        ("   ", []),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


def test_sentence_spans_point_into_the_text() -> None:
    text = "One. Two words.  Three"
    assert [text[start:end] for start, end in sentence_spans(text)] == ["One.", "Two words.", "Three"]


# --- chunks of the sample ---------------------------------------------------------------------


def test_sample_chunks_respect_the_limit_and_are_mostly_one_or_two(sample_papers: list[Paper]) -> None:
    counts = []
    for paper in sample_papers:
        chunks = chunk_paper(paper)
        counts.append(len(chunks))
        for index, chunk in enumerate(chunks):
            assert chunk.chunk_id == f"{paper.paper_id}:{index}"
            assert (chunk.paper_id, chunk.index, chunk.title) == (paper.paper_id, index, paper.title)
            assert chunk.token_count == count_tokens(chunk.text) <= 200
            assert chunk.text in paper.abstract
    assert max(counts) <= 3
    assert sum(count <= 2 for count in counts) >= 0.9 * len(counts)


def test_sample_chunks_are_whole_sentences_with_sentence_overlap(sample_papers: list[Paper]) -> None:
    for paper in sample_papers:
        sentences = split_sentences(paper.abstract)
        chunks = chunk_paper(paper)
        for chunk in chunks:
            assert split_sentences(chunk.text) == [s for s in sentences if s in chunk.text]
            assert chunk.text.startswith(tuple(sentences)) and chunk.text.endswith(tuple(sentences))
        for earlier, later in pairwise(chunks):
            shared = [s for s in split_sentences(later.text) if s in split_sentences(earlier.text)]
            assert count_tokens(" ".join(shared)) <= 40
        assert all(any(sentence in chunk.text for chunk in chunks) for sentence in sentences)


def test_chunk_ids_are_stable_across_runs(sample_papers: list[Paper]) -> None:
    paper = sample_papers[0]
    assert chunk_paper(paper) == chunk_paper(paper.model_copy())


def test_short_abstract_is_one_chunk_equal_to_the_abstract() -> None:
    paper = _paper("Short abstract. Two sentences.")
    (chunk,) = chunk_paper(paper)
    assert chunk.text == paper.abstract
    assert chunk.chunk_id == f"{paper.paper_id}:0"


def test_overlap_carries_trailing_sentences() -> None:
    sentences = [f"Sentence number {n} says something about topic {n}." for n in range(12)]
    text = " ".join(sentences)
    chunks = chunk_paper(_paper(text), chunk_tokens=40, overlap_tokens=15)
    for earlier, later in pairwise(chunks):
        last_sentence = split_sentences(earlier.text)[-1]
        assert later.text.startswith(last_sentence)
        assert later.token_count <= 40
    no_overlap = chunk_paper(_paper(text), chunk_tokens=40, overlap_tokens=0)
    assert " ".join(chunk.text for chunk in no_overlap) == text


def test_overlap_that_would_not_leave_room_for_a_new_sentence_is_dropped() -> None:
    text = "Short one. " + "A much longer sentence that fills nearly the whole chunk on its own here. " * 2
    assert all(tokens <= 24 for _, _, tokens in chunk_spans(text.strip(), chunk_tokens=24, overlap_tokens=23))


def test_a_sentence_longer_than_a_chunk_is_split_on_token_boundaries() -> None:
    long_sentence = "word " * 500 + "end."
    chunks = chunk_paper(_paper(f"Intro sentence. {long_sentence} Outro sentence."), chunk_tokens=64, overlap_tokens=8)
    assert all(chunk.token_count <= 64 for chunk in chunks)
    assert len(chunks) >= 8
    assert chunks[0].text.startswith("Intro sentence.")
    assert chunks[-1].text.endswith("Outro sentence.")
    # Cuts fall between words, not inside them.
    assert all(chunk.text.split()[0] in {"Intro", "word", "end.", "Outro"} for chunk in chunks)


def test_a_sentence_without_spaces_is_still_split() -> None:
    text = "x" * 3000 + "\u4e2d\u6587" * 300 + "\U0001f600" * 50
    spans = chunk_spans(text, chunk_tokens=8, overlap_tokens=0)
    assert all(tokens == count_tokens(text[start:end]) <= 8 for start, end, tokens in spans)
    assert "".join(text[start:end] for start, end, _ in spans) == text


@pytest.mark.parametrize(("chunk_tokens", "overlap_tokens"), [(7, 0), (200, 200), (200, -1)])
def test_invalid_sizes_are_rejected(chunk_tokens: int, overlap_tokens: int) -> None:
    with pytest.raises(ValueError):
        chunk_paper(_paper("Text."), chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)


def test_whitespace_only_abstract_has_no_chunks() -> None:
    paper = Paper(paper_id="p", title="T", abstract=" \n ")
    assert chunk_paper(paper) == []


# --- properties --------------------------------------------------------------------------------

_WORD = st.one_of(
    st.sampled_from(
        ["the", "model", "e.g. the", "et al.", "Fig. 3", "16.59%", "(i)", "LLMs", "\u00e9t\u00e9", "\u4e2d\u6587"]
    ),
    st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12),
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=40, max_size=400),  # a "word" longer than small chunks
)


@st.composite
def _documents(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Text and the sentences it was made of; each sentence starts with a marker and ends with "end"."""
    sentences = [
        " ".join([f"S{n}", *draw(st.lists(_WORD, max_size=30)), "end"]) + draw(st.sampled_from([".", "!", "?"]))
        for n in range(draw(st.integers(1, 15)))
    ]
    gaps = draw(st.lists(st.sampled_from([" ", "  ", "\n", "\n\n"]), min_size=len(sentences), max_size=len(sentences)))
    return "".join(gap + sentence for gap, sentence in zip(gaps, sentences, strict=True)), sentences


_SIZES = st.integers(8, 300).flatmap(lambda size: st.tuples(st.just(size), st.integers(0, size - 1)))


def _check_spans(text: str, spans: list[tuple[int, int, int]], chunk_tokens: int, overlap_tokens: int) -> None:
    assert (spans == []) == (text.strip() == "")
    if not spans:
        return
    assert spans[0][0] == len(text) - len(text.lstrip())
    assert spans[-1][1] == len(text.rstrip())
    for start, end, tokens in spans:
        assert text[start:end] == text[start:end].strip() != ""
        assert tokens == count_tokens(text[start:end]) <= chunk_tokens
    for (start, end, _), (next_start, next_end, _) in pairwise(spans):
        assert start < next_start and end < next_end
        if next_start >= end:
            assert text[end:next_start].strip() == ""  # nothing between two chunks is lost
        else:
            assert count_tokens(text[next_start:end]) <= overlap_tokens


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_documents(), sizes=_SIZES)
def test_every_sentence_is_in_a_chunk_and_chunks_stay_within_the_limit(
    document: tuple[str, list[str]], sizes: tuple[int, int]
) -> None:
    text, sentences = document
    assert split_sentences(text) == sentences  # abbreviations, decimals and "Fig. 3" do not end sentences
    chunks = chunk_paper(Paper(paper_id="p", title="T", abstract=text), *sizes)
    _check_spans(text, chunk_spans(text, *sizes), *sizes)
    for sentence in sentences:
        if count_tokens(sentence) <= sizes[0]:
            assert any(sentence in chunk.text for chunk in chunks)
    # Longer sentences are cut into pieces; _check_spans showed that nothing between chunks is lost.


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=800), sizes=_SIZES)
def test_arbitrary_text_chunks_within_the_limit(text: str, sizes: tuple[int, int]) -> None:
    _check_spans(text, chunk_spans(text, *sizes), *sizes)
