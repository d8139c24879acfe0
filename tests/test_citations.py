"""The one citation grammar: markers in every shape a model writes, and what is done with them."""

from __future__ import annotations

import pytest

from assistant.citations import (
    cited_numbers,
    insert,
    markers_to_sentence_ends,
    name_paper_markers,
    numbers_in_marker,
    renumber,
    settle,
    strip_markers,
    validate,
)
from assistant.schema import Source

SOURCES = [Source(n=n, paper_id=f"p{n}", title=f"Paper {n}", text="...") for n in (1, 2, 3)]


@pytest.mark.parametrize(
    ("inside", "numbers"),
    [
        ("1", [1]),
        ("1, 2", [1, 2]),
        ("1-3", [1, 2, 3]),
        ("3–1", [3, 1]),
        ("Source 2", [2]),
        ("1 and 3", [1, 3]),
        ("1-50", [1, 50]),
    ],
)
def test_a_markers_numbers_include_ranges(inside: str, numbers: list[int]) -> None:
    assert numbers_in_marker(inside.replace("Source ", "")) == numbers or numbers_in_marker(inside) == numbers


def test_cited_numbers_in_reading_order_each_once() -> None:
    assert cited_numbers("C [3]. A [1-2]. C again [S3] and [source 1].") == [3, 1, 2]


def test_validate_keeps_real_sources_sorted_and_drops_dangling_ones() -> None:
    text, citations = validate("Both do X [2, 1]. Nothing here [7]. Range [1-3].", SOURCES)
    assert text == "Both do X [1][2]. Nothing here. Range [1][2][3]."
    assert [c.n for c in citations] == [1, 2, 3]


def test_strip_insert_and_renumber() -> None:
    assert strip_markers("It works [1][2]. Again [3].") == "It works. Again."
    assert insert("It works.", 2) == "It works [2]." and insert("Does it?", 1) == "Does it [1]?"
    assert insert("No stop", 3) == "No stop [3]"
    assert renumber("A [1]. B [2]. C [3].", {1: 2, 2: 1}) == "A [2]. B [1]. C."


def test_settle_keeps_the_sources_that_ground_the_sentence() -> None:
    assert settle("It works [1][2].", [1, 2], {2: 0.8}) == "It works [2]."
    assert settle("It works.", [], {1: 0.7, 3: 0.9}) == "It works [3]."
    assert settle("It works [1].", [1], {1: 0.9}) is None  # already right
    assert settle("It works [1][2].", [1, 2], {}) is None  # none grounds it alone: judged as written


NAMES = {1: "Relevance Filtering", 2: "BT^2"}


def test_markers_opening_sentences_move_to_their_ends_and_stand_for_their_subject() -> None:
    reply = "[1] introduces a relevance filter for ANN search.[2] proposes backward-compatible training. [1][2] Both use embeddings."
    assert markers_to_sentence_ends(reply, NAMES) == (
        "Relevance Filtering introduces a relevance filter for ANN search [1]. "
        "BT^2 proposes backward-compatible training [2]. Both use embeddings [1][2]."
    )
    assert markers_to_sentence_ends("[1] Our loss reduces overlap.", NAMES) == "Our loss reduces overlap [1]."
    assert markers_to_sentence_ends("[2] A title", NAMES) == "A title [2]"


def test_a_reply_in_the_usual_style_is_left_as_written() -> None:
    usual = "It scales task vectors [1]. It works.[2] Another sentence."
    assert markers_to_sentence_ends(usual, NAMES) == usual
    assert markers_to_sentence_ends("[1] It works [1].", NAMES) == "It works [1]."  # cited once, not twice


def test_markers_written_as_the_papers_names_get_the_names() -> None:
    assert name_paper_markers("[1] and [2] differ in their approach [1][2].", NAMES) == (
        "Relevance Filtering [1] and BT^2 [2] differ in their approach [1][2]."
    )
    assert name_paper_markers("It filters results [1], while [2] trains models.", NAMES) == (
        "It filters results [1], while BT^2 [2] trains models."
    )
    cited = "It filters results [1] and trains models [2]. Both work [1][2]."
    assert name_paper_markers(cited, NAMES) == cited
    assert name_paper_markers("Unlike [3], it works.", NAMES) == "Unlike [3], it works."  # no such paper


def test_markers_after_a_full_stop_go_before_it() -> None:
    sources = [Source(n=n, paper_id=f"p{n}", title=f"Paper {n}", text="") for n in (1, 2)]
    text, _ = validate("It uses gzip. [1] It scales. [1][2]\nNext line.", sources)
    assert text == "It uses gzip [1]. It scales [1][2].\nNext line."
    kept = "As in Smith et al. [1] show, it works [2]."
    assert validate(kept, sources)[0] == kept  # a lower-case word follows: the marker is mid-sentence
