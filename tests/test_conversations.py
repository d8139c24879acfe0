"""Conversation persistence: SQLite in the data folder, safe across threads and processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from assistant.conversations import DB_FILE_NAME, ChatTurn, ConversationStore
from assistant.errors import ConversationNotFound
from assistant.redaction import REDACTED
from assistant.schema import PaperRef, Source
from assistant.settings import Settings

ATLAS = Source(
    n=1,
    paper_id="2407.02880",
    title="Knowledge Composition using Task Vectors with Learned Anisotropic Scaling",
    text="Pre-trained models produce strong generic representations.",
    link="https://arxiv.org/abs/2407.02880",
)
ZIPFIT = Source(
    n=2, paper_id="zip-fit", title="ZIP-FIT: Embedding-Free Data Selection via Compression-Based Alignment", text="..."
)


def reply(content: str, *sources: Source) -> ChatTurn:
    return ChatTurn(
        role="assistant",
        content=content,
        kind="answer",
        papers=[PaperRef(paper_id=s.paper_id, title=s.title) for s in sources],
        sources=list(sources),
        result={"citations": [{"n": s.n, "paper_id": s.paper_id, "title": s.title} for s in sources]},
    )


def test_lives_in_the_data_folder_in_wal_mode(settings: Settings) -> None:
    store = ConversationStore.in_folder(settings.store.data_dir)
    assert store.path == settings.store.data_dir / DB_FILE_NAME
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_create_list_rename_delete(settings: Settings) -> None:
    store = ConversationStore.in_folder(settings.store.data_dir)
    first = store.create("Task vectors")
    second = store.create("  Data   selection ")
    assert second.title == "Data selection"
    assert [c.conversation_id for c in store.list_conversations()] == [second.conversation_id, first.conversation_id]

    renamed = store.rename(first.conversation_id, "aTLAS questions")
    assert renamed.title == "aTLAS questions"
    assert store.list_conversations()[0].conversation_id == first.conversation_id  # renaming counts as an update

    store.delete(second.conversation_id)
    assert [c.conversation_id for c in store.list_conversations()] == [first.conversation_id]
    with pytest.raises(ConversationNotFound):
        store.load(second.conversation_id)
    with pytest.raises(ConversationNotFound):
        store.rename(second.conversation_id, "x")
    with pytest.raises(ValueError, match="empty"):
        store.create("   ")


def test_turns_round_trip_with_their_structured_result(settings: Settings) -> None:
    store = ConversationStore.in_folder(settings.store.data_dir)
    conversation = store.create("chat")
    store.append_turn(
        conversation.conversation_id, ChatTurn(role="user", content="How does aTLAS compose task vectors?")
    )
    stored = store.append_turn(conversation.conversation_id, reply("It scales parameter blocks [1].", ATLAS))
    assert stored.created_at is not None

    loaded = store.load(conversation.conversation_id)
    assert loaded.turn_count == 2
    assert [t.role for t in loaded.turns] == ["user", "assistant"]
    answer = loaded.turns[1]
    assert answer.kind == "answer"
    assert answer.papers == [PaperRef(paper_id=ATLAS.paper_id, title=ATLAS.title)]
    assert answer.sources == [ATLAS]
    assert answer.result == {"citations": [{"n": 1, "paper_id": ATLAS.paper_id, "title": ATLAS.title}]}


def test_deleting_a_conversation_deletes_its_turns(settings: Settings) -> None:
    store = ConversationStore.in_folder(settings.store.data_dir)
    conversation = store.create("chat")
    store.append_turn(conversation.conversation_id, ChatTurn(role="user", content="hello"))
    store.delete(conversation.conversation_id)
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 0
    with pytest.raises(ConversationNotFound):
        store.append_turn(conversation.conversation_id, ChatTurn(role="user", content="again"))


def test_find_or_create_reuses_a_title(settings: Settings) -> None:
    store = ConversationStore.in_folder(settings.store.data_dir)
    created = store.find_or_create("my session")
    assert store.find_or_create("my session").conversation_id == created.conversation_id
    assert store.find_or_create("other").conversation_id != created.conversation_id


def test_key_shaped_strings_never_reach_the_disk(settings: Settings) -> None:
    store = ConversationStore.in_folder(settings.store.data_dir)
    key = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2
    conversation = store.create(f"with {key}")
    store.append_turn(
        conversation.conversation_id,
        ChatTurn(role="user", content=f"my key is {key}, and hf_{'x' * 30} too", result={"note": key}),
    )
    loaded = store.load(conversation.conversation_id)
    assert key not in loaded.title and REDACTED in loaded.turns[0].content
    assert loaded.turns[0].result == {"note": REDACTED}
    assert key.encode() not in store.path.read_bytes()
    for sidecar in store.path.parent.glob(DB_FILE_NAME + "-*"):
        assert key.encode() not in sidecar.read_bytes()


def test_export_markdown_lists_cited_sources_with_links(settings: Settings) -> None:
    store = ConversationStore.in_folder(settings.store.data_dir)
    conversation = store.create("Export me")
    store.append_turn(conversation.conversation_id, ChatTurn(role="user", content="What is aTLAS?"))
    store.append_turn(conversation.conversation_id, reply("aTLAS scales parameter blocks [1].", ATLAS, ZIPFIT))
    markdown = store.export_markdown(conversation.conversation_id)
    assert markdown.startswith("# Export me\n")
    assert "**You:**\n\nWhat is aTLAS?" in markdown
    assert "aTLAS scales parameter blocks [1]." in markdown
    assert f"1. [{ATLAS.title}]({ATLAS.link})" in markdown
    assert ZIPFIT.title not in markdown  # not cited by the reply


def test_threads_appending_at_once_lose_nothing(settings: Settings) -> None:
    store = ConversationStore.in_folder(settings.store.data_dir)
    conversation = store.create("busy")

    def append(worker: int) -> None:
        for i in range(10):
            store.append_turn(conversation.conversation_id, ChatTurn(role="user", content=f"{worker}-{i}"))

    threads = [threading.Thread(target=append, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    contents = [turn.content for turn in store.load(conversation.conversation_id).turns]
    assert sorted(contents) == sorted(f"{w}-{i}" for w in range(4) for i in range(10))
    for worker in range(4):  # each writer's turns keep their order
        mine = [c for c in contents if c.startswith(f"{worker}-")]
        assert mine == [f"{worker}-{i}" for i in range(10)]


def _append_from_another_process(path: str, conversation_id: str, worker: int) -> None:
    store = ConversationStore(Path(path))
    for i in range(15):
        store.append_turn(conversation_id, ChatTurn(role="user", content=f"p{worker}-{i}"))


def test_two_processes_appending_at_once_lose_nothing(settings: Settings) -> None:
    store = ConversationStore.in_folder(settings.store.data_dir)
    conversation = store.create("shared")
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_append_from_another_process, args=(str(store.path), conversation.conversation_id, w))
        for w in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    turns = store.load(conversation.conversation_id).turns
    assert len(turns) == 30 and len({t.content for t in turns}) == 30
