"""Comparisons: a 5-aspect table over whole abstracts, cell fallbacks, and a grounded narrative."""

from __future__ import annotations

import re

import pytest

from assistant.backend import FakeLLM
from assistant.compare import ASPECTS, NOT_STATED, compare, comparison_markdown, stream_comparison
from assistant.models import Paper
from assistant.settings import Settings

MARKER = re.compile(r"\s*\[\d+\]")


@pytest.fixture(scope="module")
def atlas(sample_store) -> Paper:  # noqa: ANN001
    return next(s.paper for s in sample_store.list_papers() if s.paper.title.startswith("Knowledge Composition"))


@pytest.fixture(scope="module")
def tangent(sample_store) -> Paper:  # noqa: ANN001
    return next(s.paper for s in sample_store.list_papers() if s.paper.title.startswith("Task Arithmetic in the Tangent"))


@pytest.fixture(scope="module")
def embedder(sample_store):  # noqa: ANN001, ANN201
    return sample_store.embedder


ATLAS_CELLS = [
    "Answer: Whether parameter blocks of task vectors can be used to enhance knowledge composition and transfer.",
    "aTLAS linearly combines parameter blocks with different learned coefficients.",
    "not stated",
    "aTLAS reaches 99.9% accuracy on ImageNet with 4 GPUs.",  # invented: must not reach the table
    "",
]
GROUNDED_NARRATIVE = (
    "aTLAS linearly combines parameter blocks of task vectors with learned coefficients [1]. "
    "The tangent space paper fine-tunes models in their tangent space to disentangle weights [2]."
)


def test_needs_two_to_four_distinct_papers(atlas: Paper, tangent: Paper, settings: Settings, embedder) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="2 to 4 papers, got 1"):
        compare([atlas], backend=FakeLLM(), settings=settings, embedder=embedder)
    five = [atlas, tangent, *(atlas.model_copy(update={"paper_id": f"copy-{i}"}) for i in range(3))]
    with pytest.raises(ValueError, match="2 to 4 papers, got 5"):
        compare(five, backend=FakeLLM(), settings=settings, embedder=embedder)
    with pytest.raises(ValueError, match="same paper"):
        compare([atlas, atlas], backend=FakeLLM(), settings=settings, embedder=embedder)


def test_table_shape_cells_cite_their_paper_and_bad_cells_fall_back(
    atlas: Paper, tangent: Paper, settings: Settings, embedder  # noqa: ANN001
) -> None:
    backend = FakeLLM(*ATLAS_CELLS, *["not stated"] * 5, GROUNDED_NARRATIVE)
    comparison = compare([atlas, tangent], backend=backend, settings=settings, embedder=embedder)

    assert [p.paper_id for p in comparison.papers] == [atlas.paper_id, tangent.paper_id]
    assert [a.aspect for a in comparison.aspects] == [a.name for a in ASPECTS]
    for aspect in comparison.aspects:
        assert set(aspect.cells) == {atlas.paper_id, tangent.paper_id}
        for n, paper in enumerate((atlas, tangent), start=1):
            cell = aspect.cells[paper.paper_id]
            assert cell == NOT_STATED or f"[{n}]" in cell
            assert not (f"[{3 - n}]" in cell)

    cells = {a.aspect: a.cells for a in comparison.aspects}
    # Grounded model answers are kept, with the citation before the full stop.
    assert cells["Approach"][atlas.paper_id] == "aTLAS linearly combines parameter blocks with different learned coefficients [1]."
    # The invented number never reaches the table; fallbacks quote the paper's own abstract.
    assert "99.9" not in comparison_markdown(comparison)
    abstracts = {atlas.paper_id: " ".join(atlas.abstract.split()), tangent.paper_id: " ".join(tangent.abstract.split())}
    for aspect in comparison.aspects:
        for paper_id, cell in aspect.cells.items():
            if aspect.aspect in ("Problem", "Approach") and paper_id == atlas.paper_id or cell == NOT_STATED:
                continue
            quoted = MARKER.sub("", cell).rstrip(".…").strip()
            assert quoted.casefold() in abstracts[paper_id].casefold(), (aspect.aspect, cell)
    # The tangent paper's cells were all "not stated" by the model: each is quoted or honestly empty.
    assert sum(cell[tangent.paper_id] != NOT_STATED for cell in cells.values()) >= 3
    assert "cells quote the abstract" in comparison.notices[0]
    assert comparison.narrative == GROUNDED_NARRATIVE and comparison.unsupported == []
    assert comparison.model == "fake/echo"


def test_each_cell_prompt_has_the_whole_abstract_and_one_aspect(
    atlas: Paper, tangent: Paper, settings: Settings, embedder  # noqa: ANN001
) -> None:
    backend = FakeLLM(*["not stated"] * 10, GROUNDED_NARRATIVE)
    compare([atlas, tangent], backend=backend, settings=settings, embedder=embedder)
    cell_prompts = [messages[-1].content for messages in backend.history[:10]]
    for index, prompt in enumerate(cell_prompts):
        paper, n = (atlas, 1) if index < 5 else (tangent, 2)
        assert prompt.startswith(f'<source n="{n}" title="{paper.title}">')
        assert " ".join(paper.abstract.split()) in " ".join(prompt.split())
        assert f"Question: {ASPECTS[index % 5].question}" in prompt
    narrative_prompt = backend.history[10][-1].content
    assert '<source n="1"' in narrative_prompt and '<source n="2"' in narrative_prompt
    assert "Approach:" in narrative_prompt


def test_ungrounded_narrative_is_rebuilt_from_the_table(atlas: Paper, tangent: Paper, settings: Settings, embedder) -> None:  # noqa: ANN001
    backend = FakeLLM(*ATLAS_CELLS, *["not stated"] * 5, "Both papers are about cooking pasta in 7 minutes [1][2].")
    comparison = compare([atlas, tangent], backend=backend, settings=settings, embedder=embedder)
    assert "pasta" not in comparison.narrative
    assert "rebuilt from the table" in comparison.notices[-1]
    assert "[1]" in comparison.narrative and "[2]" in comparison.narrative
    assert comparison.narrative.startswith("Common ground: both deal with task arithmetic")
    assert "Where they differ:" in comparison.narrative and "parameter blocks" in comparison.narrative


def test_stream_sends_the_table_then_the_narrative(atlas: Paper, tangent: Paper, settings: Settings, embedder) -> None:  # noqa: ANN001
    stream = stream_comparison(
        [atlas, tangent], backend=FakeLLM(*["not stated"] * 10, GROUNDED_NARRATIVE), settings=settings, embedder=embedder
    )
    pieces = list(stream)
    assert pieces[0].startswith("| Aspect | Knowledge Composition using Task Vectors with… [1] | Task Arithmetic in the Tangent Space [2] |")
    assert "".join(pieces[1:]) == GROUNDED_NARRATIVE
    assert comparison_markdown(stream.result).startswith(pieces[0].strip())


def test_a_sentence_repeated_for_every_aspect_is_used_once(atlas: Paper, tangent: Paper, settings: Settings, embedder) -> None:  # noqa: ANN001
    same = "aTLAS linearly combines parameter blocks with different learned coefficients."
    comparison = compare(
        [atlas, tangent], backend=FakeLLM(*[same] * 5, *["not stated"] * 5, GROUNDED_NARRATIVE), settings=settings, embedder=embedder
    )
    atlas_cells = [aspect.cells[atlas.paper_id] for aspect in comparison.aspects]
    assert atlas_cells[0] == "aTLAS linearly combines parameter blocks with different learned coefficients [1]."
    assert all(not cell.startswith("aTLAS linearly combines") for cell in atlas_cells[1:])
