from __future__ import annotations

import ast
import re
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistant.schema import Paper
from ingestion.duplicates import deduplicate
from ingestion.errors import InvalidRecord
from ingestion.normalize import (
    build_paper,
    make_paper_id,
    normalize_arxiv_id,
    normalize_text,
    title_key,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  many   spaces\n\nand\tlines  ", "many spaces and lines"),
        ("cafe\u0301", "caf\u00e9"),  # NFC
        ("bell\x07 and\x00nul", "bell andnul"),
        ("soft\u00adhyphen zero\u200bwidth \ufeffbom", "softhyphen zerowidth bom"),
        ("less than 5\\% of heads", "less than 5% of heads"),
        ("R\\&D and snake\\_case and \\#1", "R&D and snake_case and #1"),
        ("a \\textbf{bold} and \\emph{new} idea", "a bold and new idea"),
        ("see Fig.~3 by Smith et~al.", "see Fig. 3 by Smith et al."),
        ("by ~33.5% in NYUD-v2", "by ~33.5% in NYUD-v2"),
        ("https://example.org/~user/page", "https://example.org/~user/page"),
        ("loss $\\mathcal{O}(n^2)$ with \\% kept outside only", "loss $\\mathcal{O}(n^2)$ with % kept outside only"),
        ("math $a\\_b$ stays", "math $a\\_b$ stays"),
        ("Mixture of Tunable Experts -- Behavior", "Mixture of Tunable Experts -- Behavior"),
        ("lone \ud800 surrogate", "lone surrogate"),
        ("non\u00a0breaking\u2009thin", "non breaking thin"),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@given(st.text())
def test_normalize_text_is_idempotent_and_encodable(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    once.encode("utf-8")  # no lone surrogates survive
    assert once == once.strip()
    assert "  " not in once


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2407.12345", "2407.12345"),
        ("arXiv:2407.12345v2", "2407.12345"),
        ("ARXIV:2202.06258", "2202.06258"),
        ("https://arxiv.org/abs/2408.04887v1", "2408.04887"),
        ("http://arxiv.org/pdf/2408.04887.pdf", "2408.04887"),
        ("0704.0001", "0704.0001"),
        ("hep-th/9901001v3", "hep-th/9901001"),
        ("math.GT/0309136", "math.GT/0309136"),
        ("p17", None),
        ("2407.123", None),
        ("10.1145/3394486", None),
        ("", None),
    ],
)
def test_normalize_arxiv_id(raw: str, expected: str | None) -> None:
    assert normalize_arxiv_id(raw) == expected


def test_title_key_ignores_case_punctuation_and_spacing() -> None:
    assert (
        title_key("TRAD:  Enhancing LLM-Agents_with \\textbf{Retrieval}") == "trad enhancing llm agents with retrieval"
    )
    assert title_key("∑?") == "∑?"


def test_paper_id_is_the_arxiv_id_when_known() -> None:
    assert make_paper_id("Any title", "arXiv:2407.12345v2") == "2407.12345"
    assert make_paper_id("Any title", "hep-th/9901001") == "hep-th_9901001"
    with pytest.raises(ValueError, match="not an arXiv id"):
        make_paper_id("Any title", "p17")


def test_paper_id_slug_is_stable_readable_and_safe() -> None:
    title = "Knowledge Composition using Task Vectors with Learned Anisotropic Scaling"
    paper_id = make_paper_id(title)
    assert paper_id == make_paper_id(title)
    assert re.fullmatch(
        r"knowledge-composition-using-task-vectors-with-learned-anisotropic-scaling-[0-9a-f]{6}", paper_id
    )
    # Case, punctuation and spacing do not change the id; words do.
    assert make_paper_id("knowledge composition: using task-vectors, with learned anisotropic SCALING") == paper_id
    assert make_paper_id(title + " Revisited") != paper_id


@given(st.text())
def test_paper_id_is_short_and_url_safe(title: str) -> None:
    paper_id = make_paper_id(title)
    assert len(paper_id) <= 80
    assert re.fullmatch(r"[a-z0-9-]+", paper_id)


def test_paper_id_of_a_title_without_latin_letters_still_distinguishes_titles() -> None:
    ids = [make_paper_id(title) for title in ("注意力就是你所需要的", "扩散模型", "∇∇∇", "∑?")]
    assert all(paper_id.startswith("paper-") for paper_id in ids)
    assert len(set(ids)) == len(ids)


def test_titles_of_symbols_only_are_papers_and_stay_apart() -> None:
    kept = deduplicate([_paper("∇∇∇"), _paper("∑?"), _paper("∇∇∇", abstract="Longer abstract.")])
    assert [(paper.title, paper.abstract) for paper in kept] == [("∇∇∇", "Longer abstract."), ("∑?", "An abstract.")]


def test_build_paper_cleans_and_derives_fields() -> None:
    paper = build_paper(
        title="  Flowformer:  Linearizing Transformers ",
        abstract="Linear\n complexity in 5\\% of the time.",
        authors=[{"name": "Haixu Wu"}, " Jialong Wu ", ""],
        published="2022-02-13T10:00:00.000Z",
        arxiv_id="arXiv:2202.06258v2",
        source="papers.json",
    )
    assert paper == Paper(
        paper_id="2202.06258",
        title="Flowformer: Linearizing Transformers",
        abstract="Linear complexity in 5% of the time.",
        authors=["Haixu Wu", "Jialong Wu"],
        published=date(2022, 2, 13),
        url="https://arxiv.org/abs/2202.06258",
        arxiv_id="2202.06258",
        source="papers.json",
    )


def test_build_paper_splits_author_text() -> None:
    paper = build_paper(title="T", abstract="A.", authors="Ann Lee, Bo Chen; Cy Diaz and Dee Eze", source="s")
    assert paper.authors == ["Ann Lee", "Bo Chen", "Cy Diaz", "Dee Eze"]


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"title": None}, "title", "missing title"),
        ({"title": "   "}, "title", "empty title"),
        ({"title": ["a"]}, "title", "title must be text, found a list"),
        ({"abstract": None}, "abstract", "missing abstract"),
        ({"abstract": {"en": "x"}}, "abstract", "abstract must be text, found an object"),
        ({"abstract": "bad \ufffd byte"}, "abstract", "not valid UTF-8"),
        ({"abstract": "word " * 5000}, "abstract", "24,999 characters long"),
        ({"title": "t" * 501}, "title", "at most 500"),
        ({"authors": 42}, "authors", "authors must be a list or comma-separated text, found a number"),
        ({"authors": ["ok", ["nested"]]}, "authors", "author 2 must be a name"),
        ({"published": "Aug 19"}, "published", "'Aug 19' is not an ISO date"),
        ({"published": 20250819}, "published", "found a number"),
        ({"url": "javascript:alert(1)"}, "url", "not an http(s) link"),
        ({"url": 7}, "url", "url must be text"),
        ({"arxiv_id": 2407.1}, "arxiv_id", "arxiv_id must be text"),
        ({"arxiv_id": "p17"}, "arxiv_id", "'p17' is not an arXiv id"),
    ],
)
def test_build_paper_rejects_bad_fields(fields: dict[str, object], field: str, reason: str) -> None:
    values: dict[str, object] = {"title": "A title", "abstract": "An abstract.", **fields}
    with pytest.raises(InvalidRecord) as caught:
        build_paper(source="s", **values)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert reason in caught.value.reason


def _paper(title: str, abstract: str = "An abstract.", **fields: object) -> Paper:
    return build_paper(title=title, abstract=abstract, source="s", **fields)


def test_deduplicate_by_title_ignores_case_and_punctuation_and_keeps_first_position() -> None:
    papers = [
        _paper("Inverse Scaling: When Bigger Isn't Better"),
        _paper("Another Paper"),
        _paper("inverse scaling -- when bigger isn't better", abstract="A longer abstract wins."),
    ]
    kept = deduplicate(papers)
    assert [paper.title for paper in kept] == ["inverse scaling -- when bigger isn't better", "Another Paper"]
    assert kept[0].abstract == "A longer abstract wins."


def test_deduplicate_by_arxiv_id_even_when_titles_differ() -> None:
    kept = deduplicate([_paper("Old title", arxiv_id="2407.12345v1"), _paper("New title", arxiv_id="2407.12345v2")])
    assert len(kept) == 1


def test_deduplicate_merges_metadata_from_both_copies() -> None:
    scraped = _paper("Flowformer", abstract="The full abstract, a little longer.")
    from_feed = _paper("Flowformer", abstract="The full abstract.", arxiv_id="2202.06258", authors=["Haixu Wu"])
    (merged,) = deduplicate([scraped, from_feed])
    assert merged.abstract == "The full abstract, a little longer."
    assert merged.arxiv_id == "2202.06258"
    assert merged.paper_id == "2202.06258"
    assert merged.authors == ["Haixu Wu"]
    assert merged.url == "https://arxiv.org/abs/2202.06258"


def test_deduplicate_prefers_more_metadata_when_abstracts_tie() -> None:
    bare = _paper("Same", abstract="Same text.")
    rich = _paper("Same", abstract="Same text.", authors=["A"], published="2025-08-19")
    assert deduplicate([bare, rich]) == [rich]


def test_same_title_with_different_arxiv_ids_stays_apart() -> None:
    kept = deduplicate([_paper("Survey", arxiv_id="2401.00001"), _paper("Survey", arxiv_id="2402.00002")])
    assert [paper.arxiv_id for paper in kept] == ["2401.00001", "2402.00002"]


def test_ingestion_modules_import_each_other_without_a_cycle() -> None:
    """Every import counts, a deferred one inside a function too: a cycle means no module is the home of what both need."""
    package = Path(__file__).parent.parent / "ingestion"
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ingestion."):
                imported.add(node.module.removeprefix("ingestion."))
            elif isinstance(node, ast.Import):
                imported.update(
                    a.name.removeprefix("ingestion.") for a in node.names if a.name.startswith("ingestion.")
                )
        graph[path.stem] = imported

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    assert [module for module in graph if reaches(module, module, set())] == []
