"""BibTeX export: keys, escaping, fields, checked with a real BibTeX parser (bibtexparser 2)."""

from __future__ import annotations

import json
from pathlib import Path

import bibtexparser
import pytest
from bibtexparser.middlewares import LatexDecodingMiddleware
from hypothesis import given
from hypothesis import strategies as st

from assistant.bibtex import bibtex_keys, key_base, papers_bibtex
from assistant.schema import Paper


def _paper(title: str, paper_id: str = "1706.03762", **fields: object) -> Paper:
    return Paper.model_validate({"paper_id": paper_id, "title": title, "abstract": "An abstract.", **fields})


def _parsed(text: str) -> list[dict[str, str]]:
    library = bibtexparser.parse_string(text, append_middleware=[LatexDecodingMiddleware()])
    assert library.failed_blocks == []
    return [
        {"key": entry.key, "type": entry.entry_type, **{f.key: f.value for f in entry.fields}}
        for entry in library.entries
    ]


def test_an_arxiv_paper_gets_a_readable_key_and_the_arxiv_fields() -> None:
    paper = _paper(
        "Attention Is All You Need",
        authors=["Ashish Vaswani", "Noam Shazeer"],
        published="2017-06-12",
        listed="2017-06-14",
        arxiv_id="1706.03762",
    )
    (entry,) = _parsed(papers_bibtex([paper]))
    assert entry == {
        "key": "vaswani2017attention",
        "type": "misc",
        "title": "Attention Is All You Need",
        "author": "Ashish Vaswani and Noam Shazeer",
        "year": "2017",
        "month": "jun",
        "eprint": "1706.03762",
        "archivePrefix": "arXiv",
        "url": "https://arxiv.org/abs/1706.03762",
    }


def test_year_and_month_come_from_the_listed_day_when_the_publication_date_is_unknown() -> None:
    (entry,) = _parsed(papers_bibtex([_paper("On the Road", listed="2025-08-19", authors=["José Núñez"])]))
    assert (entry["key"], entry["year"], entry["month"]) == ("nunez2025road", "2025", "aug")
    (undated,) = _parsed(papers_bibtex([_paper("The", paper_id="p-1")]))
    assert undated["key"] == "the" and "year" not in undated and "month" not in undated


def test_latex_specials_are_escaped_and_math_is_kept() -> None:
    title = "R&D at 50% of #1 ~ {braces} back\\slash under_score with $x^{2}_i$ and a lone $ sign"
    (entry,) = _parsed(papers_bibtex([_paper(title, authors=["Smith, Jr., John", "Ann Anderson"])]))
    assert entry["title"] == title
    assert entry["author"] == "Smith, Jr., John and Ann Anderson"
    raw = papers_bibtex([_paper(title)])
    assert r"R\&D at 50\% of \#1" in raw and "$x^{2}_i$" in raw and r"lone \$ sign" in raw


def test_keys_are_unique_and_do_not_depend_on_the_order_asked() -> None:
    papers = [
        _paper("Attention Is All You Need", paper_id=pid, authors=["Ashish Vaswani"], published="2017-06-12")
        for pid in ("1706.03762", "1706.00001", "1706.09999")
    ]
    keys = bibtex_keys(papers)
    assert keys == {
        "1706.00001": "vaswani2017attention",
        "1706.03762": "vaswani2017attentionb",
        "1706.09999": "vaswani2017attentionc",
    }
    assert bibtex_keys(list(reversed(papers))) == keys
    assert [entry["key"] for entry in _parsed(papers_bibtex(papers))] == [keys[p.paper_id] for p in papers]


@given(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=80),
    st.lists(
        st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30), max_size=3
    ),
)
def test_any_text_gives_an_entry_that_parses(title: str, authors: list[str]) -> None:
    if not title.strip():
        return
    paper = _paper(title.strip(), authors=[a for a in authors if a.strip()], published="2024-01-02")
    library = bibtexparser.parse_string(papers_bibtex([paper]))
    assert library.failed_blocks == [] and len(library.entries) == 1
    assert key_base(paper).isascii()


def test_cli_papers_bibtex_for_named_papers_and_for_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli import main

    data = tmp_path / "papers.jsonl"
    records = [
        {"id": "2202.06258", "title": "Flowformer: Linearizing Transformers with Conservation Flows",
         "abstract": "Flow network attention.", "authors": ["Haixu Wu"], "date": "2025-08-19"},
        {"id": "2404.15574", "title": "Retrieval Head Mechanistically Explains Long-Context Factuality",
         "abstract": "Retrieval heads.", "authors": ["Wenhao Wu"], "published": "2024-04-24"},
    ]  # fmt: skip
    data.write_text("".join(json.dumps(record) + "\n" for record in records))
    store = ["--store", str(tmp_path / "store")]
    assert main(["ingest", str(data), *store, "--json"]) == 0
    capsys.readouterr()

    assert main(["papers", "--bibtex", "Flowformer", *store]) == 0
    assert [entry["key"] for entry in _parsed(capsys.readouterr().out)] == ["wu2025flowformer"]
    assert main(["papers", "--bibtex", *store]) == 0
    assert [entry["eprint"] for entry in _parsed(capsys.readouterr().out)] == ["2202.06258", "2404.15574"]
    assert main(["papers", "--bibtex", "Nonexistent Paper About Cooking", *store]) == 2
    assert "not a paper in the collection" in capsys.readouterr().err

    assert main(["papers", "--json", *store]) == 0
    listed = {p["paper_id"]: (p["published"], p["listed"]) for p in json.loads(capsys.readouterr().out)["papers"]}
    assert listed == {"2202.06258": (None, "2025-08-19"), "2404.15574": ("2024-04-24", None)}
