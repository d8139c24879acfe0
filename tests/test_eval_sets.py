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

KINDS = {"lookup", "numeric", "multi", "compare", "summary", "unanswerable"}
ONE_PAPER_KINDS = {"lookup", "numeric", "summary"}
SEVERAL_PAPER_KINDS = {"multi", "compare"}
FIELDS = {"id", "kind", "question", "gold_titles", "must_mention"}
SETS = [
    pytest.param(DEV_SET, "d", id="dev"),
    pytest.param(HELDOUT_SET, "h", id="held-out"),
    pytest.param(SECOND_HELDOUT_SET, "g", id="second-held-out"),
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
        assert set(record) <= FIELDS | {"note"}, f"{where}: unknown fields {set(record) - FIELDS - {'note'}}"
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
    for held_out in (HELDOUT_SET, SECOND_HELDOUT_SET):
        copied = [record["id"] for record in _records(held_out) if normalized(record["question"]) in seen]
        assert not copied, f"{held_out.name}: questions copied from an earlier set: {copied}"
        seen |= {normalized(record["question"]) for record in _records(held_out)}


@pytest.mark.skipif(not SHARED_DEV_SET.exists(), reason=f"no shared dev set at {SHARED_DEV_SET}")
def test_bundled_dev_set_is_the_shared_one():
    assert DEV_SET.read_bytes() == SHARED_DEV_SET.read_bytes(), (
        f"tests/data/dev.jsonl differs from {SHARED_DEV_SET}: copy it again, unchanged"
    )
