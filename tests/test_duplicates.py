"""Several records of one paper: the rules of ingestion.duplicates, without a store."""

from __future__ import annotations

import json

from assistant.schema import Paper
from ingestion.duplicates import Merger, differences, merge_records
from ingestion.normalize import build_paper, make_paper_id
from ingestion.readers import read_bytes


def _paper(title: str, abstract: str, source: str = "a.jsonl", **fields: object) -> Paper:
    return build_paper(title=title, abstract=abstract, source=source, **fields)


def _jsonl(*records: dict[str, object]) -> bytes:
    return "\n".join(json.dumps(record) for record in records).encode()


def test_same_title_different_abstracts_keeps_the_last_and_reports_the_first() -> None:
    result = read_bytes(
        _jsonl({"title": "Scaling Laws", "abstract": "A long first abstract about scaling laws."},
               {"title": "scaling laws", "abstract": "Short other."}),
        "two.jsonl",
    )  # fmt: skip
    assert [p.abstract for p in result.papers] == ["Short other."]
    assert result.locations == ["line 2"]
    assert [(p.source, p.location, p.reason) for p in result.problems] == [
        (
            "two.jsonl",
            "line 1",
            "same title as line 2 with a different abstract; kept line 2 (the record read last wins)",
        )
    ]
    assert result.duplicates_merged == 0


def test_identical_copies_merge_silently_and_are_counted() -> None:
    record = {"title": "Same Paper", "abstract": "The same abstract."}
    result = read_bytes(_jsonl(record, {**record, "title": "SAME PAPER!"}, record), "dupes.jsonl")
    assert len(result.papers) == 1 and result.problems == []
    assert result.duplicates_merged == 2


def test_spelling_differences_are_the_same_text() -> None:
    first = _paper("Heads", "Models with long-context capability use “retrieval heads”.")
    second = _paper("Heads", 'Models with long- context capability use "retrieval heads".', source="feed.json")
    merged = merge_records([first, second], ["line 1", "record 1"])
    assert merged.problems == [] and merged.duplicates_merged == 1
    assert merged.papers[0].abstract == first.abstract, "the same text is no change: the first spelling stays"
    assert merge_records([second, first]).papers[0].abstract == second.abstract


def test_a_cut_off_copy_never_replaces_the_complete_abstract_in_either_order() -> None:
    whole = _paper("Flowformer", "The full abstract. It goes on to say more.")
    cut = _paper("Flowformer", "The full abstract. It goes on…", source="b.jsonl", arxiv_id="2202.06258")
    for order in ([whole, cut], [cut, whole]):
        merged = merge_records(order)
        (paper,) = merged.papers
        assert paper.abstract == whole.abstract
        assert paper.arxiv_id == "2202.06258" and paper.paper_id == "2202.06258", "metadata only the cut copy had"
        assert merged.problems == [] and merged.duplicates_merged == 1


def test_each_field_comes_from_the_last_record_that_has_it_and_a_lost_value_is_reported() -> None:
    earlier = _paper("Flowformer", "An abstract.", authors=["Haixu Wu"], published="2022-02-13")
    later = _paper("Flowformer", "An abstract.", source="b.jsonl", authors=["Someone Else"])
    merged = merge_records([earlier, later], ["line 4", "line 1"])
    (paper,) = merged.papers
    assert paper.authors == ["Someone Else"] and str(paper.published) == "2022-02-13"
    assert [(p.source, p.location, p.reason) for p in merged.problems] == [
        (
            "a.jsonl",
            "line 4",
            "same title as b.jsonl line 1 with other authors; kept b.jsonl line 1 (the record read last wins)",
        )
    ]


def test_same_arxiv_id_with_another_title_is_named_by_its_id() -> None:
    old = _paper("Old title", "Version one of the abstract.", arxiv_id="2407.12345v1")
    new = _paper("New title", "Version two, rewritten.", source="b.jsonl", arxiv_id="2407.12345v2")
    merged = merge_records([old, new], ["line 1", "line 9"])
    assert [p.title for p in merged.papers] == ["New title"]
    assert merged.problems[0].reason == (
        "same arXiv id 2407.12345 as b.jsonl line 9 with a different title and a different abstract; "
        "kept b.jsonl line 9 (the record read last wins)"
    )


def test_same_title_with_different_arxiv_ids_stays_two_papers_without_a_problem() -> None:
    merged = merge_records(
        [_paper("Survey", "One.", arxiv_id="2401.00001"), _paper("Survey", "Two.", arxiv_id="2402.00002")]
    )
    assert [p.paper_id for p in merged.papers] == ["2401.00001", "2402.00002"] and merged.problems == []


def test_ten_thousand_records_of_one_title_report_every_dropped_record_capped() -> None:
    lines = [{"title": "Same Title", "abstract": f"Abstract number {n} differs."} for n in range(1, 10_001)]
    result = read_bytes(_jsonl(*lines), "same.jsonl")
    assert [p.abstract for p in result.papers] == ["Abstract number 10000 differs."]
    assert len(result.problems) == 201
    assert (
        result.problems[0].location == "line 1"
        and "kept line 10000 (the record read last wins)" in result.problems[0].reason
    )
    assert result.problems[199].location == "line 200"
    assert result.problems[200].reason == (
        "9,799 more records not kept in favour of another record of the same paper (not listed)"
    )


def test_stored_papers_count_as_read_before_the_run() -> None:
    stored = _paper("Task Vectors", "The stored abstract.", source="a.jsonl", arxiv_id="2407.00001")
    merger = Merger()
    merger.add_stored([stored, _paper("Untouched", "Not in this run.")])
    merger.add(_paper("Task Vectors", "A new abstract.", source="b.jsonl"), "line 2")
    result = merger.result()
    (paper,) = result.papers
    assert paper.paper_id == "2407.00001" and paper.abstract == "A new abstract."
    assert result.stored_ids == [["2407.00001"]]
    assert result.problems == [], "replacing a stored paper is not a problem of the record"
    assert [(r.paper_id, r.source, r.replaced_source, r.fields) for r in result.replaced] == [
        ("2407.00001", "b.jsonl line 2", "a.jsonl", ["abstract"])
    ]


def test_a_stored_title_only_paper_takes_the_arxiv_id_of_a_later_copy() -> None:
    merger = Merger()
    merger.add_stored([_paper("Title Only", "An abstract.", authors=["Ann Lee"])])
    merger.add(_paper("Title only", "An abstract.", source="feed.json", arxiv_id="2404.15574"), "record 1")
    result = merger.result()
    assert [(p.paper_id, p.authors) for p in result.papers] == [("2404.15574", ["Ann Lee"])]
    assert result.stored_ids == [[make_paper_id("Title Only")]], "the paper under its old id is replaced"
    # Nothing of the stored copy is lost, and a record repeating a stored paper is no duplicate of this run.
    assert result.replaced == [] and result.problems == [] and result.duplicates_merged == 0


def test_a_title_only_record_joins_a_stored_paper_with_an_arxiv_id() -> None:
    merger = Merger()
    merger.add_stored([_paper("Retrieval Heads", "An abstract.", arxiv_id="2404.15574")])
    merger.add(_paper("retrieval heads", "An abstract.", source="page.txt"), "line 7")
    assert [p.paper_id for p in merger.result().papers] == ["2404.15574"]


def test_differences_name_only_what_both_copies_have() -> None:
    kept = _paper("T", "Whole abstract here.", authors=["A"], url="https://example.org/x")
    assert differences(_paper("T", "Whole abstract"), kept) == []
    assert differences(_paper("t.", "Other.", authors=["B"], published="2024-01-02"), kept) == ["abstract", "authors"]
    assert differences(_paper("T", "Whole abstract here.", url="https://example.org/y"), kept) == ["link"]


def test_the_earliest_listed_day_wins_in_any_order_without_a_problem() -> None:
    from datetime import date

    first = _paper("Flowformer", "The abstract.", source="hf:2025-08-21", arxiv_id="2202.06258", listed="2025-08-21")
    again = _paper("Flowformer", "The abstract.", source="hf:2025-08-19", arxiv_id="2202.06258", listed="2025-08-19")
    undated = _paper("Flowformer", "The abstract.", source="page.txt")
    for order in ([first, again, undated], [again, undated, first], [undated, first, again]):
        merged = merge_records(order)
        (paper,) = merged.papers
        assert paper.listed == date(2025, 8, 19)
        assert merged.problems == [] and merged.duplicates_merged == 2


def test_a_later_listing_day_leaves_a_stored_paper_unchanged() -> None:
    stored = _paper("Flowformer", "The abstract.", arxiv_id="2202.06258", listed="2025-08-19")
    merger = Merger()
    merger.add_stored([stored])
    merger.add(_paper("Flowformer", "The abstract.", arxiv_id="2202.06258", listed="2025-08-22"), "record 1")
    result = merger.result()
    assert result.papers == [stored] and result.replaced == [] and result.problems == []
