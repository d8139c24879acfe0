"""The evaluation sets are well-formed against the bundled sample collection.

Checks the records themselves, not the system: every gold title is a paper of the collection,
every `must_mention` term is in a gold abstract, ids are unique, kinds are known. A typo in a
title or term would otherwise show up as a silent drop in recall or coverage.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.settings import SAMPLE_COLLECTION
from ingestion.readers import read_path
from tests.conftest import DEV_SET

ROOT = Path(__file__).resolve().parent.parent
SHARED_DEV_SET = ROOT.parent / "shared" / "eval" / "dev.jsonl"
HELDOUT_SET = ROOT / "benchmarks" / "data" / "heldout.jsonl"
SECOND_HELDOUT_SET = ROOT / "benchmarks" / "data" / "heldout2.jsonl"
THIRD_HELDOUT_SET = ROOT / "benchmarks" / "data" / "heldout3.jsonl"
ARCHIVE = ROOT.parent / "shared" / "corpus" / "daily-papers-archive" / "papers.jsonl"
ARCHIVE_DATED_SET = ROOT / "benchmarks" / "data" / "archive_dated.jsonl"
ARCHIVE_LOOKUP_SET = ROOT / "benchmarks" / "data" / "archive_lookups.jsonl"

KINDS = {"lookup", "numeric", "multi", "compare", "summary", "unanswerable"}
ONE_PAPER_KINDS = {"lookup", "numeric", "summary"}
SEVERAL_PAPER_KINDS = {"multi", "compare"}
FIELDS = {"id", "kind", "question", "gold_titles", "must_mention"}
# Optional: "note" (what the answer is), "near_miss" (an unanswerable question that closely resembles a paper).
OPTIONAL_FIELDS = {"note", "near_miss"}
SETS = [
    pytest.param(DEV_SET, "d", id="dev"),
    pytest.param(HELDOUT_SET, "h", id="held-out"),
    pytest.param(SECOND_HELDOUT_SET, "g", id="second-held-out"),
    pytest.param(THIRD_HELDOUT_SET, "k", id="third-held-out"),
]


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def abstracts() -> dict[str, str]:
    result = read_path(SAMPLE_COLLECTION)
    assert not result.problems
    return {paper.title: paper.abstract for paper in result.papers}


@pytest.mark.parametrize(("path", "prefix"), SETS)
def test_records_are_well_formed(path: Path, prefix: str):
    records = _records(path)
    assert records, f"{path} is empty"
    ids = [record.get("id") for record in records]
    assert len(ids) == len(set(ids)), f"duplicate ids in {path.name}"
    for record in records:
        where = f"{path.name} {record.get('id')}"
        assert record.keys() >= FIELDS, f"{where}: missing {FIELDS - record.keys()}"
        assert set(record) <= FIELDS | OPTIONAL_FIELDS, (
            f"{where}: unknown fields {set(record) - FIELDS - OPTIONAL_FIELDS}"
        )
        if "near_miss" in record:
            assert record["near_miss"] is True and record["kind"] == "unanswerable", (
                f"{where}: near_miss marks unanswerables"
            )
        assert isinstance(record["id"], str) and record["id"].startswith(prefix) and record["id"][1:].isdigit(), where
        assert record["kind"] in KINDS, f"{where}: unknown kind {record['kind']!r}"
        assert isinstance(record["question"], str) and record["question"].strip(), where
        assert isinstance(record["gold_titles"], list) and isinstance(record["must_mention"], list), where
        assert len(set(record["gold_titles"])) == len(record["gold_titles"]), f"{where}: repeated gold title"
        if "note" in record:
            assert isinstance(record["note"], str) and record["note"].strip(), f"{where}: empty note"
        gold = len(record["gold_titles"])
        if record["kind"] == "unanswerable":
            assert gold == 0 and not record["must_mention"], f"{where}: an unanswerable question has no gold"
        elif record["kind"] in ONE_PAPER_KINDS:
            assert gold == 1, f"{where}: a {record['kind']} question has one gold paper, not {gold}"
        elif record["kind"] in SEVERAL_PAPER_KINDS:
            assert 2 <= gold <= 4, f"{where}: a {record['kind']} question has 2 to 4 gold papers, not {gold}"


@pytest.mark.parametrize(("path", "prefix"), SETS)
def test_gold_titles_and_terms_come_from_the_collection(abstracts: dict[str, str], path: Path, prefix: str):
    for record in _records(path):
        where = f"{path.name} {record['id']}"
        for title in record["gold_titles"]:
            assert title in abstracts, f"{where}: {title!r} is not a title of the sample collection"
        gold_text = [abstracts[title].casefold() for title in record["gold_titles"]]
        for term in record["must_mention"]:
            assert isinstance(term, str) and term.strip(), f"{where}: empty must_mention term"
            assert any(term.casefold() in text for text in gold_text), f"{where}: {term!r} occurs in no gold abstract"


def test_held_out_questions_are_not_earlier_questions():
    def normalized(text: str) -> str:
        return " ".join(text.casefold().split())

    seen = {normalized(record["question"]) for record in _records(DEV_SET)}
    for held_out in (HELDOUT_SET, SECOND_HELDOUT_SET, THIRD_HELDOUT_SET):
        copied = [record["id"] for record in _records(held_out) if normalized(record["question"]) in seen]
        assert not copied, f"{held_out.name}: questions copied from an earlier set: {copied}"
        seen |= {normalized(record["question"]) for record in _records(held_out)}


@pytest.mark.skipif(not SHARED_DEV_SET.exists(), reason=f"no shared dev set at {SHARED_DEV_SET}")
def test_bundled_dev_set_is_the_shared_one():
    assert DEV_SET.read_bytes() == SHARED_DEV_SET.read_bytes(), (
        f"tests/data/dev.jsonl differs from {SHARED_DEV_SET}: copy it again, unchanged"
    )


@pytest.fixture(scope="module")
def archive() -> dict[str, list[dict]]:
    """The archive's papers by title (a title may recur; sets must name unique ones)."""
    if not ARCHIVE.exists():
        pytest.skip(f"no archive at {ARCHIVE}")
    by_title: dict[str, list[dict]] = {}
    for line in ARCHIVE.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        by_title.setdefault(record["title"], []).append(record)
    return by_title


@pytest.mark.parametrize(
    ("path", "prefix", "kinds"),
    [
        pytest.param(ARCHIVE_DATED_SET, "t", {"dated", "dated_none"}, id="archive-dated"),
        pytest.param(ARCHIVE_LOOKUP_SET, "a", {"lookup", "numeric", "unanswerable"}, id="archive-lookups"),
    ],
)
def test_archive_sets_come_from_the_archive(archive: dict[str, list[dict]], path: Path, prefix: str, kinds: set[str]):
    days = sorted({record["date"] for records in archive.values() for record in records})
    records = _records(path)
    assert len({record["id"] for record in records}) == len(records), f"duplicate ids in {path.name}"
    for record in records:
        where = f"{path.name} {record['id']}"
        assert record["id"].startswith(prefix) and record["id"][1:].isdigit(), where
        assert record["kind"] in kinds, f"{where}: unknown kind {record['kind']!r}"
        assert set(record) <= FIELDS | OPTIONAL_FIELDS | {"range", "relative"}, f"{where}: unknown fields"
        gold = [archive[title] for title in record["gold_titles"] if title in archive]
        assert len(gold) == len(record["gold_titles"]), f"{where}: a gold title is not in the archive"
        assert all(len(papers) == 1 for papers in gold), f"{where}: a gold title names several archive papers"
        if record["kind"] in {"unanswerable", "dated_none"}:
            assert not gold and not record["must_mention"], f"{where}: a question without an answer has no gold"
        else:
            assert gold, f"{where}: no gold paper"
        text = [papers[0]["abstract"].casefold() for papers in gold]
        for term in record["must_mention"]:
            assert any(term.casefold() in abstract for abstract in text), f"{where}: {term!r} in no gold abstract"
        if record["kind"].startswith("dated"):
            start, end = record["range"]["start"], record["range"]["end"]
            assert days[0] <= start <= end <= days[-1], f"{where}: range outside the archive's days"
            assert any(start <= day <= end for day in days), f"{where}: the range holds no listed day"
            for papers in gold:
                assert start <= papers[0]["date"] <= end, f"{where}: gold paper listed outside the range"
