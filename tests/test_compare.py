"""Comparisons: a 5-aspect table over whole abstracts, cell fallbacks, and a grounded narrative."""

from __future__ import annotations

import json
import re

import pytest

from assistant.extracts import ASPECTS
from assistant.features.compare import (
    ASPECT_KEYS,
    CELL_MAX_CHARS,
    NOT_STATED,
    askable_aspects,
    comparison_markdown,
    paper_schema,
    stream_comparison,
)
from assistant.llm import FakeLLM
from assistant.schema import Paper
from assistant.settings import Settings
from tests.feature_calls import compare

MARKER = re.compile(r"\s*\[\d+\]")


@pytest.fixture(scope="module")
def atlas(sample_store) -> Paper:
    return next(s.paper for s in sample_store.list_papers() if s.paper.title.startswith("Knowledge Composition"))


@pytest.fixture(scope="module")
def tangent(sample_store) -> Paper:
    return next(
        s.paper for s in sample_store.list_papers() if s.paper.title.startswith("Task Arithmetic in the Tangent")
    )


@pytest.fixture(scope="module")
def embedder(sample_store):
    return sample_store.embedder


ATLAS_CELLS = {
    "Problem": "Answer: Whether parameter blocks of task vectors can be used to enhance knowledge composition and transfer.",
    "Approach": "aTLAS linearly combines parameter blocks with different learned coefficients.",
    "Data / benchmarks": "not stated",
    "Key results": "aTLAS reaches 99.9% accuracy on ImageNet with 4 GPUs.",  # invented: must not reach the table
    "Limitations": "The main limitation is that it needs 8 GPUs.",  # the abstract names none: never asked
}


def asked(paper: Paper) -> list[str]:
    """The aspects a model is asked about: those the abstract has anything to say on."""
    return [a.name for a in askable_aspects(paper.abstract)]


def paper_json(cells: dict[str, str]) -> str:
    """A model's JSON reply for one paper (aspect name -> text; the rest "not stated")."""
    keys = {name: key for key, name in ASPECT_KEYS.items()}
    return json.dumps({keys[a.name]: cells.get(a.name, "not stated") for a in ASPECTS})


def replies(atlas: Paper, tangent: Paper, narrative: str, atlas_cells: dict[str, str] | None = None) -> list[str]:
    return [paper_json(atlas_cells or {}), paper_json({}), narrative]


GROUNDED_NARRATIVE = (
    "aTLAS linearly combines parameter blocks of task vectors with learned coefficients [1]. "
    "The tangent space paper fine-tunes models in their tangent space to disentangle weights [2]."
)


def test_needs_two_to_four_distinct_papers(atlas: Paper, tangent: Paper, settings: Settings, embedder) -> None:
    with pytest.raises(ValueError, match="2 to 4 papers, got 1"):
        compare([atlas], backend=FakeLLM(), settings=settings, embedder=embedder)
    five = [atlas, tangent, *(atlas.model_copy(update={"paper_id": f"copy-{i}"}) for i in range(3))]
    with pytest.raises(ValueError, match="2 to 4 papers, got 5"):
        compare(five, backend=FakeLLM(), settings=settings, embedder=embedder)
    with pytest.raises(ValueError, match="same paper"):
        compare([atlas, atlas], backend=FakeLLM(), settings=settings, embedder=embedder)


def test_table_shape_cells_cite_their_paper_and_bad_cells_fall_back(
    atlas: Paper, tangent: Paper, settings: Settings, embedder
) -> None:
    backend = FakeLLM(*replies(atlas, tangent, GROUNDED_NARRATIVE, ATLAS_CELLS))
    comparison = compare([atlas, tangent], backend=backend, settings=settings, embedder=embedder)
    assert len(backend.history) == 3  # one call per paper, then the narrative
    schemas = [call["json_schema"] for call in backend.calls[:2]]
    assert schemas == [paper_schema(askable_aspects(atlas.abstract)), paper_schema(askable_aspects(tangent.abstract))]
    assert "Limitations" not in asked(atlas) and "limitations" not in schemas[0]["required"]  # never asked
    assert all(field["maxLength"] == CELL_MAX_CHARS for field in schemas[0]["properties"].values())

    assert [p.paper_id for p in comparison.papers] == [atlas.paper_id, tangent.paper_id]
    assert [a.aspect for a in comparison.aspects] == [a.name for a in ASPECTS]
    for aspect in comparison.aspects:
        assert set(aspect.cells) == {atlas.paper_id, tangent.paper_id}
        for n, paper in enumerate((atlas, tangent), start=1):
            cell = aspect.cells[paper.paper_id]
            assert cell == NOT_STATED or f"[{n}]" in cell
            assert f"[{3 - n}]" not in cell

    cells = {a.aspect: a.cells for a in comparison.aspects}
    # Grounded model answers are kept, with the citation before the full stop.
    assert (
        cells["Approach"][atlas.paper_id]
        == "aTLAS linearly combines parameter blocks with different learned coefficients [1]."
    )
    # Invented numbers never reach the table; fallbacks quote the paper's own abstract.
    assert "99.9" not in comparison_markdown(comparison) and "8 GPUs" not in comparison_markdown(comparison)
    assert cells["Limitations"] == {atlas.paper_id: NOT_STATED, tangent.paper_id: NOT_STATED}
    abstracts = {atlas.paper_id: " ".join(atlas.abstract.split()), tangent.paper_id: " ".join(tangent.abstract.split())}
    for aspect in comparison.aspects:
        for paper_id, cell in aspect.cells.items():
            if (aspect.aspect in ("Problem", "Approach") and paper_id == atlas.paper_id) or cell == NOT_STATED:
                continue
            quoted = MARKER.sub("", cell).rstrip(".…").strip()
            assert quoted.casefold() in abstracts[paper_id].casefold(), (aspect.aspect, cell)
    # The tangent paper's cells were all "not stated" by the model: each is quoted or honestly empty.
    assert sum(cell[tangent.paper_id] != NOT_STATED for cell in cells.values()) >= 3
    assert "cells quote the abstract" in comparison.notices[0]
    assert comparison.narrative == GROUNDED_NARRATIVE and comparison.unsupported == []
    assert comparison.model == "fake/echo"


def test_each_paper_prompt_has_its_whole_abstract_and_the_aspects_it_can_answer(
    atlas: Paper, tangent: Paper, settings: Settings, embedder
) -> None:
    backend = FakeLLM(*replies(atlas, tangent, GROUNDED_NARRATIVE))
    compare([atlas, tangent], backend=backend, settings=settings, embedder=embedder)
    for messages, (paper, n) in zip(backend.history, [(atlas, 1), (tangent, 2)], strict=False):
        prompt = messages[-1].content
        assert prompt.startswith(f'<source n="{n}" title="{paper.title}">')
        assert " ".join(paper.abstract.split()) in " ".join(prompt.split())
        keys = {key for key, name in ASPECT_KEYS.items() if name in asked(paper)}
        assert {key for key in ASPECT_KEYS if f'"{key}"' in prompt} == keys
    narrative_prompt = backend.history[2][-1].content
    assert '<source n="1"' in narrative_prompt and '<source n="2"' in narrative_prompt
    assert "Approach:" in narrative_prompt


def test_ungrounded_narrative_is_rebuilt_from_the_table(
    atlas: Paper, tangent: Paper, settings: Settings, embedder
) -> None:
    backend = FakeLLM(*replies(atlas, tangent, "Both papers are about cooking pasta in 7 minutes [1][2].", ATLAS_CELLS))
    comparison = compare([atlas, tangent], backend=backend, settings=settings, embedder=embedder)
    assert "pasta" not in comparison.narrative
    assert "rebuilt from the table" in comparison.notices[-1]
    assert "[1]" in comparison.narrative and "[2]" in comparison.narrative
    assert comparison.narrative.startswith("Common ground: both deal with task arithmetic")
    assert "Where they differ:" in comparison.narrative and "parameter blocks" in comparison.narrative


def test_stream_sends_the_table_then_the_narrative(atlas: Paper, tangent: Paper, settings: Settings, embedder) -> None:
    stream = stream_comparison(
        [atlas, tangent],
        backend=FakeLLM(*replies(atlas, tangent, GROUNDED_NARRATIVE)),
        settings=settings,
        embedder=embedder,
    )
    pieces = list(stream)
    assert pieces[0].startswith(
        "| Aspect | Knowledge Composition using Task Vectors with… [1] | Task Arithmetic in the Tangent Space [2] |"
    )
    assert "".join(pieces[1:]) == GROUNDED_NARRATIVE
    assert comparison_markdown(stream.result).startswith(pieces[0].strip())


def test_a_sentence_repeated_for_every_aspect_is_used_once(
    atlas: Paper, tangent: Paper, settings: Settings, embedder
) -> None:
    same = "aTLAS linearly combines parameter blocks with different learned coefficients."
    comparison = compare(
        [atlas, tangent],
        backend=FakeLLM(*replies(atlas, tangent, GROUNDED_NARRATIVE, dict.fromkeys(asked(atlas), same))),
        settings=settings,
        embedder=embedder,
    )
    atlas_cells = [aspect.cells[atlas.paper_id] for aspect in comparison.aspects]
    assert atlas_cells[0] == "aTLAS linearly combines parameter blocks with different learned coefficients [1]."
    assert all(not cell.startswith("aTLAS linearly combines") for cell in atlas_cells[1:])


def test_ungrounded_narrative_sentences_are_left_out(
    atlas: Paper, tangent: Paper, settings: Settings, embedder
) -> None:
    narrative = GROUNDED_NARRATIVE + " Both were tested on 9 quantum computers [1][2]."
    comparison = compare(
        [atlas, tangent], backend=FakeLLM(*replies(atlas, tangent, narrative)), settings=settings, embedder=embedder
    )
    assert comparison.narrative == GROUNDED_NARRATIVE
    assert "1 sentence(s) of the model's narrative were left out" in comparison.notices[-1]
