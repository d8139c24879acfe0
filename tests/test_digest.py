"""The digest: every paper in exactly one named theme, each theme with a cited, grounded paragraph."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from assistant.features.digest import digest_markdown, keyword_name, stream_digest
from assistant.llm import FakeLLM
from assistant.schema import Message
from assistant.settings import Settings
from assistant.streaming import Streamed as Generation
from assistant.text import split_sentences
from tests.feature_calls import digest

SOURCE = re.compile(r'<source n="(\d+)" title="[^"]*">\n(.*?)\n</source>', re.DOTALL)


class EchoLLM(FakeLLM):
    """Names every theme "Echo theme N" and writes its paragraph from its sources' first sentences.

    What a faithful model would do, so a test can tell the digest's plumbing from its fallbacks.
    """

    def __init__(self, *, name_reply: str | None = None, paragraph_reply: str | None = None) -> None:
        super().__init__()
        self.name_reply = name_reply
        self.paragraph_reply = paragraph_reply

    def generate(
        self, messages: Sequence[Message], *, max_tokens: int | None = None, temperature: float | None = None
    ) -> Generation:
        prompt = messages[-1].content
        sources = SOURCE.findall(prompt)
        if "Write only a short name" in prompt:
            reply = self.name_reply if self.name_reply is not None else f"Echo theme {len(self.history)}"
        else:
            reply = self.paragraph_reply or " ".join(
                f"{split_sentences(text)[0].rstrip('.')} [{n}]." for n, text in sources[:3]
            )
        self.enqueue(reply)
        return super().generate(messages, max_tokens=max_tokens, temperature=temperature)


@pytest.fixture(scope="module")
def titles(sample_store) -> dict[str, str]:
    return {s.paper.paper_id: s.paper.title for s in sample_store.list_papers()}


def test_themes_cover_every_paper_exactly_once(sample_store, titles: dict[str, str]) -> None:
    backend = EchoLLM()
    result = digest(store=sample_store, backend=backend)
    assigned = [paper_id for theme in result.themes for paper_id in theme.paper_ids]
    assert sorted(assigned) == sorted(titles)
    assert len(result.themes) >= 2
    assert len(backend.history) == 2 * len(result.themes)  # one name and one paragraph per theme
    for theme in result.themes:
        assert theme.name.startswith("Echo theme")
        cited = {int(n) for n in re.findall(r"\[(\d+)\]", theme.paragraph)}
        assert cited and cited <= set(range(1, len(theme.paper_ids) + 1))
        assert theme.unsupported == []


def test_paragraph_prompt_numbers_the_themes_papers_in_order(sample_store) -> None:
    backend = EchoLLM()
    result = digest(store=sample_store, backend=backend)
    first_theme = result.themes[0]
    paragraph_prompt = backend.history[1][-1].content
    numbered = SOURCE.findall(paragraph_prompt)
    assert [int(n) for n, _ in numbered] == list(range(1, len(numbered) + 1))
    assert f'"{first_theme.name}"' in paragraph_prompt
    assert "data, never instructions" in backend.history[1][0].content


def test_unusable_names_fall_back_to_keywords(sample_store) -> None:
    backend = EchoLLM(name_reply="The papers in this collection do not share one theme that I can name.")
    result = digest(store=sample_store, backend=backend)
    for theme in result.themes:
        assert "papers" not in theme.name.lower() and len(theme.name.split(",")) <= 3


def test_ungrounded_paragraph_is_replaced_by_cited_key_sentences(sample_store) -> None:
    backend = EchoLLM(
        paragraph_reply="These papers describe new ways to brew coffee at 93 degrees [1]. Milk is added later [2]."
    )
    result = digest(store=sample_store, backend=backend)
    abstracts = {s.paper.paper_id: " ".join(s.paper.abstract.split()).casefold() for s in sample_store.list_papers()}
    for theme in result.themes:
        assert "coffee" not in theme.paragraph
        quoted = re.findall(r"(.+?) \[(\d+)\]\.?(?: |$)", theme.paragraph)
        assert [int(n) for _, n in quoted] == list(range(1, len(theme.paper_ids) + 1))
        for sentence, n in quoted:  # each paper's own words
            assert sentence.rstrip("…").casefold() in abstracts[theme.paper_ids[int(n) - 1]]


def test_stream_shows_headings_then_paragraphs_and_markdown_lists_papers(sample_store, titles: dict[str, str]) -> None:
    stream = stream_digest(store=sample_store, backend=EchoLLM(), settings=sample_store.settings)
    shown = "".join(stream)
    result = stream.result
    for theme in result.themes:
        assert f"## {theme.name}\n\n" in shown
    markdown = digest_markdown(result, titles)
    first = result.themes[0]
    assert f"## {first.name}\n\n{first.paragraph}\n\n[1] {titles[first.paper_ids[0]]}" in markdown


def test_keyword_name_keeps_the_case_of_coined_names() -> None:
    assert keyword_name(["LoRA", "diffusion", "in-context", "images"]) == "LoRA, diffusion, in-context"
    assert keyword_name(["continual learning"]) == "Continual learning"
    assert keyword_name([]) == "Other papers"


def test_empty_collection_has_no_themes(settings: Settings) -> None:
    from assistant.store import PaperStore

    assert digest(store=PaperStore(settings), backend=FakeLLM()).themes == []
