"""Display helpers shared by the pages: the session's collaborators, the sidebar, streaming, replies.

Heavy objects are cached with ``st.cache_resource`` under keys made of the settings
that matter to them (``app_support.*_key``), so every browser session with the same
settings shares one store, one retriever and one assistant; only a session's model
picker and retrieval depth make it a different assistant.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from assistant import citations
from assistant.app import collection as collection_view
from assistant.app import exports, presets, render, visits
from assistant.app import session as app_session
from assistant.app.library import Library
from assistant.conversations import ChatTurn, ConversationStore
from assistant.errors import ConversationNotFound, EmbedderMismatch, InvalidInput, StoreUnavailable
from assistant.retrieval import Retriever
from assistant.schema import Comparison, DateRange, Digest, Paper, Source
from assistant.service import Clarification, PaperAssistant
from assistant.settings import Settings, load_settings
from assistant.store import PaperStore
from ingestion import pipeline
from ingestion.progress import IngestProgress

CHAT_PAGE = "app_pages/chat.py"
PAPERS_PAGE = "app_pages/papers.py"
COMPARE_PAGE = "app_pages/compare.py"
DIGEST_PAGE = "app_pages/digest.py"
COLLECTION_PAGE = "app_pages/collection.py"
DAY_PAGE = "app_pages/day.py"

# Session-state keys other pages write to hand work over.
PENDING_QUESTION = "pending_question"
COMPARE_PRESELECT = "compare_preselect"
CONVERSATION = "conversation_id"
CONVERSATION_PICKER = "conversation_picker"
NOTICE = "conversation_notice"
# The days the Papers page filters on, when another page asks (show_days), and that request's number.
PAPER_DAYS = "paper_days"
PAPER_DAYS_ROUND = "paper_days_round"
_SESSION = "_paper_assistant_session"
_WHATS_NEW = "_whats_new"
_QUERY_CONVERSATION = "conversation"

StreamT = TypeVar("StreamT", bound=Iterable[str])


@dataclass(frozen=True)
class Session:
    """What a page works with during one script run."""

    settings: Settings
    store: PaperStore
    assistant: PaperAssistant
    conversations: ConversationStore
    library: Library
    page_sidebar: DeltaGenerator


# --- cached collaborators ----------------------------------------------------------------------
# Underscore parameters are not hashed by Streamlit: the key argument stands for them.
@st.cache_resource(show_spinner="Opening the paper store…")
def _open_store(key: str, _settings: Settings) -> PaperStore:
    return app_session.open_store(_settings)


@st.cache_resource(show_spinner=False)
def _open_retriever(key: str, _store: PaperStore, _settings: Settings) -> Retriever:
    return app_session.open_retriever(_store, _settings)


@st.cache_resource(show_spinner=False)
def _open_assistant(key: str, _settings: Settings, _store: PaperStore, _retriever: Retriever) -> PaperAssistant:
    return app_session.open_assistant(_settings, _store, _retriever)


@st.cache_resource(show_spinner=False)
def _open_library(key: str, _store: PaperStore) -> Library:
    return Library(_store)


@st.cache_resource(show_spinner=False)
def _open_conversations(key: str, _settings: Settings) -> ConversationStore:
    return app_session.open_conversations(_settings)


def start_session() -> Session | None:
    """Sidebar, collaborators and first-start ingestion; None (with an error shown) when the store cannot open."""
    try:
        base = load_settings()
    except InvalidInput as exc:
        st.error(f"The ASSISTANT_* environment settings are not valid: {exc}.")
        return None
    with st.sidebar:
        # Pages fill this slot (the chat's conversations), above the model settings.
        page_sidebar = st.container()
        settings = _model_settings(base)
    try:
        store = _open_store(app_session.store_key(settings), settings)
    except (StoreUnavailable, EmbedderMismatch) as exc:
        st.error(app_session.error_message(exc))
        return None
    _first_start(store)
    retriever = _open_retriever(app_session.retriever_key(settings), store, settings)
    session = Session(
        settings=settings,
        store=store,
        assistant=_open_assistant(app_session.assistant_key(settings), settings, store, retriever),
        conversations=_open_conversations(app_session.conversations_key(settings), settings),
        library=_open_library(app_session.store_key(settings), store),
        page_sidebar=page_sidebar,
    )
    st.session_state[_SESSION] = session
    with st.sidebar:
        st.caption(f"Store: {render.inline_literal(app_session.store_description(settings))}")
        _arrive(session)
    return session


def _arrive(session: Session) -> None:
    """Once per browser session: who this browser is, what is new since its last visit; record this visit."""
    if _WHATS_NEW in st.session_state:
        return
    reader = visits.choose_reader(st.context.cookies.get(visits.COOKIE), st.query_params.get(visits.QUERY))
    if reader.set_cookie:
        # Streamlit cannot set cookies; the page's own script can. The id is checked (letters, digits, - and _).
        st.html(
            f"<script>{visits.cookie_script(reader.reader_id)}</script>",
            unsafe_allow_javascript=True,
        )
    log = visits.VisitLog(session.settings.store.data_dir)
    previous = log.arrive(reader.reader_id, session.library.visit_now(datetime.now().astimezone()))
    st.session_state[_WHATS_NEW] = session.library.whats_new(previous)


def show_days(days: DateRange) -> None:
    """Open the Papers page filtered on ``days``."""
    st.session_state[PAPER_DAYS] = (days.start, days.end)
    st.session_state[PAPER_DAYS_ROUND] = st.session_state.get(PAPER_DAYS_ROUND, 0) + 1
    st.switch_page(PAPERS_PAGE)


def whats_new() -> visits.WhatsNew:
    """What is new for this browser since its last visit (read once, when the session started)."""
    return st.session_state[_WHATS_NEW]


def current() -> Session:
    return st.session_state[_SESSION]


def _model_settings(base: Settings) -> Settings:
    """The model picker and retrieval depth; the settings they make for this session."""
    st.subheader("Model")
    defaults = presets.picker_defaults(base)
    label = st.selectbox(
        "Language model",
        presets.PRESET_LABELS,
        index=presets.PRESET_LABELS.index(defaults.label),
        key="model_preset",
    )
    preset = presets.preset_named(label)
    typed_model = api_base = ""
    if not preset.model:
        typed_model = st.text_input(
            "Model name",
            value=defaults.typed_model if label == defaults.label else "",
            placeholder=preset.placeholder,
            # One field per preset: a litellm string typed for one is no model name for the other.
            key="model_server_name" if preset.needs_api_base else "model_string",
        )
    if preset.needs_api_base:
        api_base = st.text_input(
            "Server base URL", value=defaults.api_base, placeholder="http://127.0.0.1:8080/v1", key="model_api_base"
        )
    top_k = st.slider(
        "Papers retrieved per question",
        1,
        max(20, base.answer.top_k),
        value=base.answer.top_k,
        key="top_k",
        help="Retrieval depth (top k): more papers give the model more to cite, and a longer prompt.",
    )
    try:
        settings = presets.session_settings(base, presets.model_choice(label, typed_model, api_base), top_k)
    except ValueError as exc:
        configured = base.llm.model
        st.warning(
            f"{render.inline_literal(str(exc))} Using the configured model {render.inline_literal(configured)} meanwhile."
        )
        settings = presets.session_settings(base, presets.ModelChoice(configured, base.llm.api_base_str), top_k)
    missing = presets.model_requirements(settings)
    if missing:
        st.warning(
            f"**{render.inline_literal(settings.llm.model)}** {render.inline_literal(missing)}", icon=":material/key:"
        )
    else:
        st.caption(render.inline_literal(presets.model_note(settings)))
    return settings


def _first_start(store: PaperStore) -> None:
    """An empty store gets the bundled sample collection, with progress, before any page shows."""
    if store.count_chunks() > 0:
        return
    with st.status("First start: adding the sample collection (one day of papers)…", expanded=True) as status:
        bar = st.progress(0.0, text="Embedding the abstracts…")

        def show(event: IngestProgress) -> None:
            bar.progress(event.fraction, text=f"Embedding the abstracts: {event.line()}")

        report = pipeline.ensure_sample(store, progress=show)
        if report is not None:
            status.update(
                label=f"Sample collection ready: {collection_view.plural(report.total_papers, 'paper')}.",
                state="complete",
                expanded=False,
            )


# --- streaming ---------------------------------------------------------------------------------
def stream(start: Callable[[], StreamT], waiting: str) -> StreamT:
    """A spinner until the first words arrive (retrieval, loading the model), then the words as written.

    ``start`` makes the reply (a Streamed result); it is returned once fully
    shown. Every piece is made inert before display; a model failure propagates.
    """
    with st.spinner(waiting):
        reply = start()
        pieces = iter(reply)
        first = next(pieces, None)
    if first is not None:
        st.write_stream(render.safe_stream(itertools.chain([first], pieces)))
    return reply


def show_error(exc: BaseException, partial_text: str = "") -> None:
    st.error(app_session.error_message(exc), icon=":material/error:")
    if partial_text.strip():
        st.caption("What the model had written before it failed:")
        st.markdown(render.model_markdown(partial_text))


# --- replies -----------------------------------------------------------------------------------
def source_cards(sources: Sequence[Source], scope: str, *, key: str) -> None:
    """One card per source: the heading its citations link to, title, link, and the cited passage."""
    if not sources:
        return
    st.markdown("**Sources**")
    for source in sources:
        heading = render.source_heading(source.n, scope)
        with st.container(border=True):
            st.markdown(f"###### {heading.text}")
            line = f"**{render.inline_literal(source.title)}**"
            if source.link:
                line += " · " + render.link_markdown(source.link)
            st.markdown(line)
            with st.expander("Cited passage", key=f"{key}-passage-{source.n}"):
                st.markdown(render.literal_markdown(source.text))


def flagged_note(text: str, unsupported: Sequence[str]) -> None:
    if not unsupported:
        return
    st.caption(
        f"{render.FLAG} {collection_view.plural(len(unsupported), 'sentence')} could not be matched to the abstracts "
        "(marked); check them against the sources."
    )
    for sentence in render.unmarked_unsupported(text, unsupported):
        st.caption(f"{render.FLAG} {render.inline_literal(sentence)}")


def notices(messages: Sequence[str]) -> None:
    for message in messages:
        st.caption(f":material/info: {render.inline_literal(message)}")


def comparison_view(comparison: Comparison, sources: Sequence[Source], scope: str, *, key: str) -> None:
    """The aligned table (cells cite their paper), the narrative, notes and the papers as sources."""
    st.table(pd.DataFrame(render.comparison_rows(comparison, scope)), hide_index=True)
    st.markdown(render.cited_markdown(comparison.narrative, sources, scope, comparison.unsupported))
    flagged_note(comparison.narrative, comparison.unsupported)
    notices(comparison.notices)
    source_cards(sources, scope, key=key)


def reply_view(turn: ChatTurn, scope: str, *, key: str, latest: bool) -> None:
    """An assistant turn as stored: cited text or comparison table, flags, notices, source cards."""
    result = turn.result or {}
    if turn.kind == "comparison":
        comparison_view(Comparison.model_validate(result), turn.sources, scope, key=key)
        return
    if turn.kind == "clarification":
        _clarification_view(Clarification.model_validate(result), key=key, latest=latest)
        return
    unsupported = result.get("unsupported", [])
    st.markdown(render.cited_markdown(turn.content, turn.sources, scope, unsupported))
    flagged_note(turn.content, unsupported)
    notices(result.get("notices", []))
    if turn.kind != "refusal":
        source_cards(citations.cited_sources(turn.content, turn.sources), scope, key=key)


def _clarification_view(clarification: Clarification, *, key: str, latest: bool) -> None:
    st.markdown(render.model_markdown(clarification.text))
    if not latest:
        return
    for index, candidate in enumerate(clarification.candidates):
        question = app_session.clarified_question(clarification.message, clarification.mention, candidate.title)
        st.button(
            f"Ask about: {render.inline_literal(candidate.title)}",
            key=f"{key}-candidate-{index}",
            on_click=_queue_question,
            args=(question,),
        )


def _queue_question(question: str) -> None:
    st.session_state[PENDING_QUESTION] = question


# --- conversations -------------------------------------------------------------------------------
def active_conversation(conversations: ConversationStore) -> str | None:
    """The conversation this session shows: kept in the URL so a reload returns to it; None is a new one."""
    if CONVERSATION not in st.session_state:
        st.session_state[CONVERSATION] = st.query_params.get(_QUERY_CONVERSATION)
    conversation_id = st.session_state[CONVERSATION]
    if conversation_id is not None:
        try:
            conversations.info(conversation_id)
        except ConversationNotFound:
            conversation_id = None
            _open_conversation(None)
    return conversation_id


def _open_conversation(conversation_id: str | None) -> None:
    st.session_state[CONVERSATION] = conversation_id
    if conversation_id is None:
        st.query_params.pop(_QUERY_CONVERSATION, None)
    else:
        st.query_params[_QUERY_CONVERSATION] = conversation_id


def save_exchange(conversations: ConversationStore, question: str, reply: ChatTurn) -> None:
    """Store the question and its reply, in a new conversation when this session has none (or it was deleted)."""
    conversation_id = st.session_state.get(CONVERSATION)
    for _ in range(2):
        if conversation_id is None:
            conversation_id = conversations.create(app_session.conversation_title(question)).conversation_id
            _open_conversation(conversation_id)
        try:
            conversations.append_turn(conversation_id, ChatTurn(role="user", content=question))
            conversations.append_turn(conversation_id, reply)
            return
        except ConversationNotFound:
            conversation_id = None


def conversation_sidebar(conversations: ConversationStore, slot: DeltaGenerator) -> None:
    """Open, start, rename, delete and export conversations."""
    with slot:
        st.subheader("Conversations")
        if NOTICE in st.session_state:
            st.info(st.session_state.pop(NOTICE))
        st.button(
            "New conversation",
            icon=":material/add_comment:",
            on_click=_open_conversation,
            args=(None,),
            width="stretch",
        )
        infos = {info.conversation_id: info for info in conversations.list_conversations()}
        current_id = st.session_state.get(CONVERSATION)
        options: list[str | None] = [None, *infos]
        if current_id not in options:
            current_id = None
        # Set before the widget exists in this run: the chat may have just created a conversation.
        st.session_state[CONVERSATION_PICKER] = current_id
        st.selectbox(
            "Open a conversation",
            options,
            format_func=lambda cid: (
                "New conversation" if cid is None else f"{infos[cid].title} · {infos[cid].turn_count // 2} Q"
            ),
            key=CONVERSATION_PICKER,
            on_change=lambda: _open_conversation(st.session_state[CONVERSATION_PICKER]),
        )
        if current_id is None:
            return
        info = infos[current_id]
        with st.expander("Rename, export or delete", icon=":material/edit:"):
            st.text_input("Title", value=info.title, key=f"rename-{current_id}")
            st.button("Rename", key="rename", on_click=_rename, args=(conversations, current_id))
            st.download_button(
                "Export as Markdown",
                data=conversations.export_markdown(current_id),
                file_name=exports.download_name(info.title),
                mime="text/markdown",
                icon=":material/download:",
                on_click="ignore",
                key="export-conversation",
            )
            confirmed = st.checkbox("Yes, delete this conversation", key=f"confirm-delete-{current_id}")
            st.button(
                "Delete",
                key="delete",
                type="primary",
                disabled=not confirmed,
                on_click=_delete,
                args=(conversations, current_id),
            )


def _rename(conversations: ConversationStore, conversation_id: str) -> None:
    title = st.session_state.get(f"rename-{conversation_id}", "")
    try:
        conversations.rename(conversation_id, title)
    except (ValueError, ConversationNotFound) as exc:
        st.session_state[NOTICE] = app_session.error_message(exc)


def _delete(conversations: ConversationStore, conversation_id: str) -> None:
    with contextlib.suppress(ConversationNotFound):  # deleted in another window meanwhile: the same outcome
        conversations.delete(conversation_id)
    _open_conversation(None)
    st.session_state[NOTICE] = "The conversation was deleted."


def digest_view(digest: Digest, papers: Sequence[Paper], *, key: str) -> None:
    """A digest as the Digest page and the day view show it: an export button, then each theme's cited paragraph."""
    st.download_button(
        "Export as Markdown",
        data=exports.digest_export(digest, papers),
        file_name=exports.download_name("digest"),
        mime="text/markdown",
        icon=":material/download:",
        on_click="ignore",
        key=f"{key}-export",
    )
    for number, theme in enumerate(digest.themes, start=1):
        scope = f"theme {number}"
        sources = exports.theme_sources(theme.paper_ids, papers)
        st.subheader(f"{number}. {render.inline_literal(theme.name)}", anchor=False)
        st.markdown(render.cited_markdown(theme.paragraph, sources, scope, theme.unsupported))
        flagged_note(theme.paragraph, theme.unsupported)
        source_cards(sources, scope, key=f"{key}-theme-{number}")
