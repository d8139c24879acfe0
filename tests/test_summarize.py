"""One-paragraph summaries: shape, word bounds, fallbacks, and the cache's key."""

from __future__ import annotations

import pytest

from assistant.embeddings import build_embedder
from assistant.extracts import SUMMARY_MAX_WORDS as MAX_WORDS
from assistant.extracts import SUMMARY_MIN_WORDS as MIN_WORDS
from assistant.extracts import one_paragraph
from assistant.features.summarize import SummaryCache, stream_summary
from assistant.llm import FakeLLM, build_backend
from assistant.prompts import load_prompt
from assistant.schema import Paper
from assistant.settings import Settings
from assistant.text import split_sentences, word_count
from tests.feature_calls import summarize


@pytest.fixture(scope="module")
def atlas(sample_store) -> Paper:
    return next(s.paper for s in sample_store.list_papers() if s.paper.title.startswith("Knowledge Composition"))


@pytest.fixture(scope="module")
def embedder(sample_store):
    return sample_store.embedder


def markdown_reply(paper: Paper, sentences: int = 4) -> str:
    """What a chatty model sends: a heading, a label, bullets and bold around real abstract sentences."""
    chosen = split_sentences(paper.abstract)[:sentences]
    bullets = "\n".join(f"- **{sentence}**" for sentence in chosen)
    return f"## {paper.title}\n\nSummary:\n{bullets}"


# --- shaping -----------------------------------------------------------------------------
def test_one_paragraph_strips_markdown_and_joins_lines() -> None:
    text = one_paragraph(
        "# Title\n\n**Summary:** First point here.\n- Second point, *emphasised*.\n1. Third point [2]."
    )
    assert text == "First point here. Second point, emphasised. Third point."


def test_one_paragraph_drops_a_title_line_and_an_unfinished_last_sentence() -> None:
    text = one_paragraph("A Great Paper Title\nIt solves a problem. It uses a method. It was cut off in the mid")
    assert text == "It solves a problem. It uses a method."


def test_one_paragraph_trims_at_a_sentence_boundary() -> None:
    sentence = "This sentence has exactly ten words in it, you see."
    text = one_paragraph(" ".join([sentence] * 20), max_words=45)
    assert word_count(text) == 40 and text.endswith("see.")


def test_one_paragraph_cuts_a_single_run_on_sentence() -> None:
    text = one_paragraph("word " * 400, max_words=150)
    assert word_count(text) == 150 and text.endswith("…")


# --- summaries ---------------------------------------------------------------------------
def test_summary_is_one_plain_paragraph_within_bounds(atlas: Paper, settings: Settings, embedder) -> None:
    backend = FakeLLM(markdown_reply(atlas))
    summary = summarize(atlas, backend=backend, settings=settings, embedder=embedder)
    assert "\n" not in summary.summary and "**" not in summary.summary and "#" not in summary.summary
    assert MIN_WORDS <= word_count(summary.summary) <= MAX_WORDS
    assert not summary.extractive and not summary.cached and summary.notices == []
    assert summary.unsupported == []
    assert summary.summary.startswith("Pre-trained models produce strong generic representations")
    # The whole abstract was in the prompt, fenced as data.
    user = backend.last_messages[-1].content
    assert user.startswith(f'<source n="1" title="{atlas.title}">')
    assert " ".join(atlas.abstract.split()[-25:]) in " ".join(user.split())


def test_too_short_a_summary_falls_back_to_abstract_sentences(atlas: Paper, settings: Settings, embedder) -> None:
    summary = summarize(atlas, backend=FakeLLM("aTLAS scales task vectors."), settings=settings, embedder=embedder)
    assert summary.extractive
    assert MIN_WORDS <= word_count(summary.summary) <= MAX_WORDS
    assert "shorter than 60 words" in summary.notices[0]
    abstract = " ".join(atlas.abstract.split())
    assert all(sentence in abstract for sentence in split_sentences(summary.summary))


def test_ungrounded_summary_is_replaced_and_flagged(atlas: Paper, settings: Settings, embedder) -> None:
    invented = (
        "This paper presents a new recipe for sourdough bread that rises in half the usual time. "
        "The authors bake 500 loaves in 12 bakeries across Italy and France. "
        "They report that a longer cold fermentation gives a more open crumb and a darker crust. "
        "Tasters preferred the new loaves in 87% of blind comparisons against a supermarket baguette. "
        "The recipe needs only flour, water, salt and a mature starter kept at room temperature."
    )
    summary = summarize(atlas, backend=FakeLLM(invented), settings=settings, embedder=embedder)
    assert summary.extractive and "sourdough" not in summary.summary
    assert "not grounded" in summary.notices[0]


def test_summary_streams_the_model_text(atlas: Paper, settings: Settings, embedder) -> None:
    stream = stream_summary(
        atlas,
        backend=FakeLLM(markdown_reply(atlas)),
        settings=settings,
        embedder=embedder,
        cache=SummaryCache.in_folder(settings.store.data_dir),
    )
    assert "".join(stream) == markdown_reply(atlas)
    assert stream.result.summary.startswith("Pre-trained models")


# --- cache ---------------------------------------------------------------------------------
def test_second_call_is_cached_and_makes_no_model_call(atlas: Paper, settings: Settings, embedder) -> None:
    backend = FakeLLM(markdown_reply(atlas))
    first = summarize(atlas, backend=backend, settings=settings, embedder=embedder)
    again = summarize(atlas, backend=backend, settings=settings, embedder=embedder)
    assert again.cached and not first.cached
    assert again.summary == first.summary
    assert len(backend.history) == 1
    assert (settings.store.data_dir / "summaries.sqlite3").exists()


def test_cache_survives_a_new_cache_object(atlas: Paper, settings: Settings, embedder) -> None:
    summarize(
        atlas,
        backend=FakeLLM(markdown_reply(atlas)),
        settings=settings,
        embedder=embedder,
        cache=SummaryCache.in_folder(settings.store.data_dir),
    )
    backend = FakeLLM()
    assert summarize(
        atlas,
        backend=backend,
        settings=settings,
        embedder=embedder,
        cache=SummaryCache.in_folder(settings.store.data_dir),
    ).cached
    assert backend.history == []


def test_another_model_misses_the_cache(atlas: Paper, settings: Settings, embedder) -> None:
    summarize(atlas, backend=FakeLLM(markdown_reply(atlas)), settings=settings, embedder=embedder)
    other = FakeLLM(markdown_reply(atlas, 5), model="fake/other")
    summary = summarize(atlas, backend=other, settings=settings, embedder=embedder)
    assert not summary.cached and len(other.history) == 1 and summary.model == "fake/other"


def test_changed_abstract_misses_the_cache(atlas: Paper, settings: Settings, embedder) -> None:
    backend = FakeLLM(markdown_reply(atlas), markdown_reply(atlas))
    summarize(atlas, backend=backend, settings=settings, embedder=embedder)
    edited = atlas.model_copy(update={"abstract": atlas.abstract + " We release our code."})
    assert edited.content_hash != atlas.content_hash
    assert not summarize(edited, backend=backend, settings=settings, embedder=embedder).cached
    assert len(backend.history) == 2


def test_new_prompt_version_misses_the_cache(
    atlas: Paper, settings: Settings, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = FakeLLM(markdown_reply(atlas), markdown_reply(atlas))
    summarize(atlas, backend=backend, settings=settings, embedder=embedder)
    bumped = load_prompt("summarize").model_copy(update={"version": load_prompt("summarize").version + 1})
    monkeypatch.setattr("assistant.features.summarize.load_prompt", lambda name, directory=None: bumped)
    assert not summarize(atlas, backend=backend, settings=settings, embedder=embedder).cached
    assert len(backend.history) == 2


def test_the_model_the_settings_name_writes_it(atlas: Paper, tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, model="fake")
    summary = summarize(atlas, backend=build_backend(settings), settings=settings, embedder=build_embedder(settings))
    assert summary.model == "fake" and summary.extractive  # the fake's stock reply is too short
