"""Dated questions: the range read from the message filters retrieval, answers read only papers of it,
decline honestly when it has nothing on the topic, list its papers when asked what is new; digests of a
day or week, as Markdown and as an Atom feed."""

from __future__ import annotations

from datetime import date

import feedparser
import pytest

from assistant.atom import digest_atom
from assistant.llm import FakeLLM, QuotingFakeLLM
from assistant.retrieval import Retriever
from assistant.schema import DateRange, Paper, ReadResult
from assistant.service import PaperAssistant
from assistant.settings import Settings
from assistant.store import PaperStore
from ingestion.pipeline import ingest_papers

NEWEST = date(2026, 8, 21)  # a Friday


def _paper(arxiv_id: str, listed: str, title: str, abstract: str) -> Paper:
    return Paper(
        paper_id=arxiv_id,
        arxiv_id=arxiv_id,
        title=title,
        abstract=abstract,
        authors=["A. Author"],
        listed=date.fromisoformat(listed),
        url=f"https://arxiv.org/abs/{arxiv_id}",
        source="dated.jsonl",
    )


DATED_PAPERS = [
    _paper(
        "2608.00001",
        "2026-08-10",
        "Self-Drafting for Speculative Decoding",
        "Speculative decoding accelerates large language model inference by drafting tokens with a small model "
        "and verifying them in parallel. We propose self-drafting, where early layers of the target model draft "
        "tokens, reaching a 2.1x speedup without a separate draft model.",
    ),
    _paper(
        "2608.00002",
        "2026-08-12",
        "Imitation Learning for Robot Manipulation from Few Demonstrations",
        "We study robot manipulation policies learned by imitation from ten human demonstrations. A diffusion "
        "policy with tactile input grasps and places household objects, succeeding in 84% of real-world trials.",
    ),
    _paper(
        "2608.00003",
        "2026-08-17",
        "Tree-Structured Drafts Make Speculative Decoding Faster",
        "Speculative decoding verifies drafted tokens with the target language model. Drafting a tree of "
        "candidate continuations instead of a single sequence raises acceptance rates and gives a 3x speedup "
        "in LLM inference.",
    ),
    _paper(
        "2608.00004",
        "2026-08-17",
        "Quantized KV Cache Compression for Long-Context Inference",
        "The key-value cache dominates memory in long-context inference. We compress the KV cache with "
        "per-channel quantization to 2 bits, keeping perplexity within 0.1 of the full cache.",
    ),
    _paper(
        "2608.00005",
        "2026-08-19",
        "Legged Robot Locomotion with Reinforcement Learning in Simulation",
        "We train quadruped robot locomotion policies with reinforcement learning in simulation and transfer "
        "them to a real robot, which walks over stairs and rough terrain.",
    ),
    _paper(
        "2608.00006",
        "2026-08-19",
        "Merging Fine-Tuned Models with Task Vectors",
        "Model merging combines fine-tuned models into one network without retraining. We scale task vectors "
        "per layer, and the merged model keeps 95% of each task's accuracy.",
    ),
    _paper(
        "2608.00007",
        "2026-08-21",
        "Planning Agents that Call Tools",
        "LLM agents plan multi-step tasks by calling external tools such as search and code execution. Our "
        "planner revises its plan after each tool call and solves 61% of web tasks.",
    ),
    _paper(
        "2608.00008",
        "2026-08-21",
        "Text-to-Video Generation with Latent Diffusion",
        "We generate videos from text prompts with a latent diffusion model that denoises space-time patches, "
        "improving temporal consistency over frame-by-frame generation.",
    ),
    _paper(
        "2603.00009",
        "2026-03-03",
        "Evicting Tokens from the KV Cache",
        "Long-context language models keep a growing key-value cache. We evict tokens whose attention scores "
        "stay low, halving KV cache memory with little loss in accuracy.",
    ),
]


@pytest.fixture(scope="module")
def dated_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(data_dir=tmp_path_factory.mktemp("dated-data"))
    ingest_papers(ReadResult(papers=DATED_PAPERS), store=PaperStore(settings))
    return settings


@pytest.fixture(scope="module")
def dated_store(dated_settings: Settings) -> PaperStore:
    return PaperStore(dated_settings)


def _assistant(store: PaperStore, backend: FakeLLM | None = None) -> PaperAssistant:
    return PaperAssistant(store.settings, store=store, backend=backend or QuotingFakeLLM())


LAST_WEEK = DateRange(start=date(2026, 8, 10), end=date(2026, 8, 16))


# --- retrieval ---------------------------------------------------------------------------
def test_search_keeps_only_papers_of_the_range_by_meaning_and_by_keywords(dated_store: PaperStore) -> None:
    retriever = Retriever(dated_store)
    for hybrid in (True, False):
        hits = retriever.search("speculative decoding draft tokens", 5, days=LAST_WEEK, hybrid=hybrid)
        assert hits and all(LAST_WEEK.contains(hit.paper.day) for hit in hits)
        assert hits[0].paper.paper_id == "2608.00001"
    # Unfiltered, the other speculative decoding paper competes for first place.
    assert {hit.paper.paper_id for hit in retriever.search("speculative decoding", 2)} == {"2608.00001", "2608.00003"}


def test_keyword_hits_of_the_range_are_found_however_many_other_days_match(dated_store: PaperStore) -> None:
    retriever = Retriever(dated_store)
    index = retriever.refresh()
    march = DateRange(start=date(2026, 3, 1), end=date(2026, 3, 31))
    # Only one BM25 candidate is taken: the filter is applied before the cut, not after it.
    positions = index.top("KV cache", 1, march)
    assert [index.paper_ids[position] for position, _ in positions] == ["2603.00009"]


def test_the_index_knows_each_papers_day(dated_store: PaperStore) -> None:
    retriever = Retriever(dated_store)
    assert retriever.newest_day() == NEWEST
    assert retriever.papers_by_day(LAST_WEEK) == {date(2026, 8, 10): 1, date(2026, 8, 12): 1}
    assert sum(retriever.papers_by_day().values()) == len(DATED_PAPERS)
    assert "robot" in retriever.vocabulary(LAST_WEEK)
    assert "robot" not in retriever.vocabulary(DateRange(start=NEWEST, end=NEWEST))
    assert "robot" in retriever.vocabulary()


# --- answers -----------------------------------------------------------------------------
def test_a_relative_question_reads_only_its_days_and_says_how_it_read_them(dated_store: PaperStore) -> None:
    reply = _assistant(dated_store).respond("Which papers on speculative decoding came out last week?").result
    assert reply.kind == "answer"
    assert reply.citations and all(c.paper_id == "2608.00001" for c in reply.citations)
    assert all(LAST_WEEK.contains(next(p for p in DATED_PAPERS if p.paper_id == s.paper_id).day) for s in reply.sources)
    assert (
        "“last week” read as 2026-08-10 to 2026-08-16, counted from the newest day held, 2026-08-21." in reply.notices
    )
    assert "Read the 2 papers listed 2026-08-10 to 2026-08-12 (2 days)." in reply.notices


def test_a_range_without_the_topic_declines_naming_it_and_the_nearest_other_days(dated_store: PaperStore) -> None:
    backend = QuotingFakeLLM()
    reply = _assistant(dated_store, backend).respond("What robotics papers came out on 21 August 2026?").result
    assert reply.refused and not reply.citations and not backend.history  # the model is not asked
    assert "was listed on 2026-08-21" in reply.text
    assert "The nearest papers on other days:" in reply.text
    assert "2026-08-19: Legged Robot Locomotion" in reply.text or "2026-08-12: Imitation Learning" in reply.text


def test_whats_new_lists_the_newest_days_papers(dated_store: PaperStore) -> None:
    backend = QuotingFakeLLM()
    reply = _assistant(dated_store, backend).respond("What's new?").result
    assert not reply.refused and not backend.history
    assert reply.text.startswith("The 2 papers listed 2026-08-21:")
    assert {c.paper_id for c in reply.citations} == {"2608.00007", "2608.00008"}


def test_whats_new_on_a_topic_answers_from_the_newest_day(dated_store: PaperStore) -> None:
    reply = _assistant(dated_store).respond("What's new about agents?").result
    assert [c.paper_id for c in reply.citations] == ["2608.00007"]


def test_a_range_that_holds_no_paper_says_so(dated_store: PaperStore) -> None:
    reply = _assistant(dated_store).respond("Which papers on agents appeared in September 2025?").result
    assert reply.refused
    assert reply.text == (
        "The collection holds no paper listed 2025-09-01 to 2025-09-30 (the newest day held is 2026-08-21)."
    )


def test_a_range_given_beside_the_message_filters_too(dated_store: PaperStore) -> None:
    march = DateRange(start=date(2026, 3, 1), end=date(2026, 3, 31))
    reply = _assistant(dated_store).respond("Which paper evicts tokens from the KV cache?", days=march).result
    assert {c.paper_id for c in reply.citations} == {"2603.00009"}
    assert "Read the 1 paper listed 2026-03-03 (1 day)." in reply.notices


def test_questions_without_dates_are_read_as_before(dated_store: PaperStore) -> None:
    reply = _assistant(dated_store).respond("How is the KV cache made smaller?").result
    assert not any("read as" in notice or "listed" in notice for notice in reply.notices)
    assert {s.paper_id for s in reply.sources} >= {"2608.00004"}


# --- digest and Atom ---------------------------------------------------------------------
def test_a_digest_of_a_day_holds_only_that_days_papers(dated_store: PaperStore) -> None:
    assistant = _assistant(dated_store)
    digest = assistant.digest(days=DateRange(start=date(2026, 8, 19), end=date(2026, 8, 19)))
    assert sorted(pid for theme in digest.themes for pid in theme.paper_ids) == ["2608.00005", "2608.00006"]
    assert assistant.digest(days=DateRange(start=date(2025, 1, 1), end=date(2025, 1, 1))).themes == []


def test_the_atom_feed_is_valid_and_carries_each_theme(dated_store: PaperStore) -> None:
    assistant = _assistant(dated_store)
    week = DateRange(start=date(2026, 8, 17), end=date(2026, 8, 23))
    digest = assistant.digest(days=week)
    papers = {paper.paper_id: paper for paper in assistant.papers()}
    feed = feedparser.parse(digest_atom(digest, papers, days=week))
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "Paper Assistant digest: 2026-08-17 to 2026-08-23"
    assert [entry.title for entry in feed.entries] == [theme.name for theme in digest.themes]
    content = " ".join(entry.content[0].value for entry in feed.entries)
    assert "https://arxiv.org/abs/2608.00007" in content and "Planning Agents that Call Tools" in content
    assert len({entry.id for entry in feed.entries}) == len(digest.themes)


def test_the_atom_feed_escapes_what_the_data_holds() -> None:
    from assistant.schema import Digest, Theme

    hostile = _paper("2608.00099", "2026-08-21", "<script>alert(1)</script> & more", "An abstract.")
    digest = Digest(themes=[Theme(name="<b>bold</b>", paper_ids=[hostile.paper_id], paragraph="<img src=x> [1]")])
    feed = feedparser.parse(digest_atom(digest, {hostile.paper_id: hostile}, days=None))
    assert not feed.bozo
    value = feed.entries[0].content[0].value
    assert "<script>" not in value and "<img" not in value
    assert feed.entries[0].title == "<b>bold</b>"  # as text: the reader shows the characters


# --- command line and HTTP API -----------------------------------------------------------
def _cli(dated_settings: Settings, *args: str) -> list[str]:
    store = str(dated_settings.store.resolved_store_dir)
    return [*args, "--store", store, "--model", "fake/quote"]


def test_ask_takes_since_and_until(
    dated_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from assistant.cli import main

    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(dated_settings.store.data_dir))
    question = "Which paper evicts tokens from the KV cache?"
    assert main(_cli(dated_settings, "ask", question, "--since", "2026-08-01", "--json")) == 0
    reply = json.loads(capsys.readouterr().out)
    assert {c["paper_id"] for c in reply["citations"]} <= {"2608.00004"}
    assert "Read the 8 papers listed 2026-08-10 to 2026-08-21 (5 days)." in reply["notices"]
    assert any("Evicting Tokens from the KV Cache” is listed 2026-03-03, outside" in n for n in reply["notices"])
    assert main(_cli(dated_settings, "ask", question, "--since", "2026-03-02", "--until", "2026-03-04")) == 0
    assert "Evicting Tokens from the KV Cache" in capsys.readouterr().out
    assert main(_cli(dated_settings, "ask", question, "--since", "2026-03-04", "--until", "2026-03-02")) == 2
    assert "starts after it ends" in capsys.readouterr().err


def test_digest_of_a_day_or_week_and_as_an_atom_feed(
    dated_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    import json

    from assistant.cli import main

    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(dated_settings.store.data_dir))
    assert main(_cli(dated_settings, "digest", "--day", "2026-08-19", "--json")) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["days"] == {"start": "2026-08-19", "end": "2026-08-19"}
    assert sorted(pid for theme in payload["themes"] for pid in theme["paper_ids"]) == ["2608.00005", "2608.00006"]
    feed_file = tmp_path / "week.atom"
    assert main(_cli(dated_settings, "digest", "--week", "2026-08-19", "--atom", str(feed_file))) == 0
    feed = feedparser.parse(feed_file.read_text(encoding="utf-8"))
    assert not feed.bozo and feed.feed.title == "Paper Assistant digest: 2026-08-17 to 2026-08-23"
    listed = " ".join(entry.content[0].value for entry in feed.entries)
    assert all(pid in listed for pid in ("2608.00003", "2608.00004", "2608.00007")) and "2608.00001" not in listed
    assert main(_cli(dated_settings, "digest", "--day", "2026-08-19", "--week", "2026-08-19")) == 2


def test_the_api_takes_a_date_range_and_refuses_a_bad_one(dated_store: PaperStore) -> None:
    import httpx
    from api_fixtures import running

    from assistant.api import create_app

    settings = dated_store.settings.replace(model="fake/quote")
    with running(create_app(settings, store=dated_store)) as server, httpx.Client(base_url=server.url) as http:
        body = {
            "model": "paper-assistant",
            "messages": [{"role": "user", "content": "Which paper evicts tokens from the KV cache?"}],
            "date_range": {"start": "2026-03-01", "end": "2026-03-31"},
        }
        reply = http.post("/v1/chat/completions", json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        assert [c["paper_id"] for c in reply.json()["citations"]] == ["2603.00009"]
        for bad in ({"start": "2026-03-31", "end": "2026-03-01"}, {"start": "March"}, {}, {"begin": "2026-03-01"}):
            refused = http.post("/v1/chat/completions", json={**body, "date_range": bad}, timeout=60)
            assert refused.status_code == 400, refused.text
            error = refused.json()["error"]
            assert error["type"] == "invalid_request_error" and error["param"].startswith("date_range")


# --- evaluation of dated questions -------------------------------------------------------
DATED_ITEMS = [
    ("dated", "Which papers on speculative decoding came out last week?", "2026-08-10", "2026-08-16", True,
     ["Self-Drafting for Speculative Decoding"]),
    ("dated", "What robotics papers were listed on 19 August 2026?", "2026-08-19", "2026-08-19", False,
     ["Legged Robot Locomotion with Reinforcement Learning in Simulation"]),
    ("dated", "Which papers on KV cache memory appeared in March 2026?", "2026-03-01", "2026-03-31", False,
     ["Evicting Tokens from the KV Cache"]),
    ("dated", "What's new about agents?", "2026-08-21", "2026-08-21", True, ["Planning Agents that Call Tools"]),
    ("dated", "Which papers on model merging came out since Monday?", "2026-08-17", "2026-08-21", True,
     ["Merging Fine-Tuned Models with Task Vectors"]),
    ("dated", "Which video generation papers were listed yesterday?", "2026-08-20", "2026-08-20", True, []),
    ("dated_none", "Which robotics papers came out on 21 August 2026?", "2026-08-21", "2026-08-21", False, []),
    ("dated_none", "What was listed about speculative decoding in March 2026?", "2026-03-01", "2026-03-31", False, []),
    ("dated_none", "Any papers on model merging between 10 and 12 August 2026?", "2026-08-10", "2026-08-12", False, []),
]  # fmt: skip


def test_the_evaluation_reads_dated_items_and_reports_range_metrics(dated_store: PaperStore, tmp_path) -> None:
    import json

    from assistant.evaluation import evaluate, format_report

    # "yesterday" holds no paper: a dated item needs gold papers, so that one is written as dated_none.
    items = [
        {
            "id": f"t{n:02d}",
            "kind": kind if gold or kind == "dated_none" else "dated_none",
            "question": question,
            "range": {"start": start, "end": end},
            "relative": relative,
            "gold_titles": gold,
        }
        for n, (kind, question, start, end, relative, gold) in enumerate(DATED_ITEMS, start=1)
    ]
    path = tmp_path / "dated.jsonl"
    path.write_text("\n".join(json.dumps(item) for item in items), encoding="utf-8")
    report = evaluate(path, assistant=_assistant(dated_store))
    dated, none = report.by_kind["dated"], report.by_kind["dated_none"]
    assert dated.range_accuracy == none.range_accuracy == 1.0
    assert dated.recall_at_k == 1.0 and dated.citation_recall == 1.0
    assert dated.outside_range_share == 0.0
    assert none.decline_rate == 1.0 and dated.decline_rate == 0.0
    shown = format_report(report)
    assert "Dated questions" in shown and "cited outside range" in shown


def test_a_dated_item_without_a_range_is_refused(tmp_path) -> None:
    import json

    from assistant.evaluation import EvalFileError, load_items

    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "x", "kind": "dated", "question": "q?", "gold_titles": ["T"]}), encoding="utf-8")
    with pytest.raises(EvalFileError, match="needs a range"):
        load_items(path)


# --- the app's sidebar range -------------------------------------------------------------
def test_the_chat_page_reads_the_days_chosen_in_the_sidebar(
    dated_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASSISTANT_STORE_DIR", str(dated_settings.store.resolved_store_dir))
    monkeypatch.setenv("ASSISTANT_MODEL", "fake/quote")
    app = AppTest.from_file(str(root / "streamlit_app.py"), default_timeout=90).run()
    app.toggle(key="days_on").set_value(True).run()
    app.date_input(key="days_start").set_value(date(2026, 3, 1)).run()
    app.date_input(key="days_end").set_value(date(2026, 3, 31)).run()
    assert "1 paper listed in these days." in [caption.value for caption in app.caption]
    app.chat_input(key="chat_input").set_value("Which paper evicts tokens from the KV cache?").run()
    assert not app.exception, [e.value for e in app.exception]
    import re

    shown = re.sub(r"\\(.)", r"\1", "\n".join(str(element.value) for element in [*app.markdown, *app.caption]))
    assert "Evicting Tokens from the KV Cache" in shown
    assert "Read the 1 paper listed 2026-03-03 (1 day)." in shown
    app.date_input(key="days_end").set_value(date(2026, 2, 1)).run()
    assert any("starts after it ends" in warning.value for warning in app.warning)
    app.chat_input(key="chat_input").set_value("What's new?").run()
    shown = re.sub(r"\\(.)", r"\1", "\n".join(str(element.value) for element in [*app.markdown, *app.caption]))
    assert "“What's new” read as 2026-08-21, counted from the newest day held, 2026-08-21." in shown
    assert "Planning Agents that Call Tools" in shown
