"""What one browser session opens and keeps: the store, the retriever, the assistant, the conversations.

The pages cache each object under a key made of the settings sections it depends on, so
sessions with the same settings share one open store and one loaded model.
"""

from __future__ import annotations

from assistant.conversations import ConversationStore
from assistant.errors import AssistantError, describe
from assistant.llm import entry_for
from assistant.retrieval import Retriever
from assistant.schema import Paper
from assistant.service import PaperAssistant
from assistant.settings import Settings
from assistant.store import PaperStore
from ingestion.errors import IngestionError

EXPECTED_ERRORS: tuple[type[Exception], ...] = (AssistantError, IngestionError, ValueError)
"""Failures a page shows as an error message and carries on from (see :data:`assistant.errors.ERROR_TABLE`)."""


def error_message(exc: BaseException) -> str:
    """One actionable sentence or two for a failure, never a traceback."""
    return describe(exc).text


def store_key(settings: Settings) -> str:
    """Settings that decide which store is opened and how it embeds: one open store per key."""
    return settings.model_dump_json(include={"store", "ingest"})


def retriever_key(settings: Settings) -> str:
    """A retriever ranks with the store's papers as the retrieval settings say; answers' settings play no part."""
    return settings.model_dump_json(include={"store", "ingest", "retrieval"})


def assistant_key(settings: Settings) -> str:
    """Every setting can change an answer; the model's registry entry is part of the key, so an injected
    backend takes effect at once."""
    return f"{settings.model_dump_json()}#entry-{id(entry_for(settings.llm.model))}"


def conversations_key(settings: Settings) -> str:
    return str(settings.store.data_dir.resolve())


def open_store(settings: Settings) -> PaperStore:
    return PaperStore(settings)


def open_retriever(store: PaperStore, settings: Settings) -> Retriever:
    return Retriever(store, settings)


def open_assistant(settings: Settings, store: PaperStore, retriever: Retriever) -> PaperAssistant:
    """The facade for one session's settings, sharing the store and retriever of every session."""
    return PaperAssistant(settings, store=store, retriever=retriever)


def open_conversations(settings: Settings) -> ConversationStore:
    return ConversationStore.in_folder(settings.store.data_dir)


def store_description(settings: Settings) -> str:
    """Which store is open, for the sidebar."""
    where = settings.store.chroma_url_str or str(settings.store.resolved_store_dir)
    return f"collection “{settings.store.collection}” in {where}"


# --- chat ----------------------------------------------------------------------------------
def ask_about(paper: Paper) -> str:
    """The chat question the Papers page's “Ask about this paper” sends."""
    return f"What is “{paper.title}” about, and what are its main results?"


def clarified_question(message: str, mention: str, title: str) -> str:
    """The clarified message with the ambiguous name replaced by the chosen paper's full title."""
    if mention and mention in message:
        return message.replace(mention, f"“{title}”", 1)
    return f"{message} (I mean “{title}”)"


def conversation_title(first_message: str, limit: int = 60) -> str:
    """A new conversation's title: its first message, cut at a word."""
    flat = " ".join(first_message.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0] + "…"
