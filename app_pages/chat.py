"""Chat: cited answers, comparisons, summaries and clarifying questions; conversations kept on disk."""

from __future__ import annotations

import streamlit as st

from app_pages import ui
from app_pages.days import date_range_control
from assistant.app import render
from assistant.app import session as app_session
from assistant.conversations import ChatTurn

session = ui.current()
conversations = session.conversations
conversation_id = ui.active_conversation(conversations)
history: list[ChatTurn] = conversations.load(conversation_id).turns if conversation_id else []
days = date_range_control(session.page_sidebar, session.assistant.retriever)

st.title("Chat with the papers")
if not history:
    st.caption(
        "Ask about the collection — answers cite the abstracts as [n]. Try “Which papers are about code generation?”, "
        "“Compare aTLAS with task arithmetic”, or “Summarize ZIP-FIT”. Follow-up questions know what was said."
    )

replies = 0
for position, turn in enumerate(history):
    with st.chat_message(turn.role):
        if turn.role == "user":
            st.markdown(render.literal_markdown(turn.content))
        else:
            replies += 1
            ui.reply_view(turn, f"reply {replies}", key=f"reply-{replies}", latest=position == len(history) - 1)

typed = st.chat_input("Ask about the papers…", key="chat_input")
question = st.session_state.pop(ui.PENDING_QUESTION, None) or typed

if question:
    with st.chat_message("user"):
        st.markdown(render.literal_markdown(question))
    with st.chat_message("assistant"):
        slot = st.empty()
        try:
            with slot.container():
                asked: str = question
                streamed = ui.stream(
                    lambda: session.assistant.respond(asked, history, days=days),
                    session.assistant.waiting_message("Finding the papers and the sentences that answer"),
                )
            reply = streamed.result.to_chat_turn()
        except app_session.EXPECTED_ERRORS as exc:
            with slot.container():
                ui.show_error(exc, getattr(exc, "partial_text", ""))
        else:
            with slot.container():
                ui.reply_view(reply, f"reply {replies + 1}", key=f"reply-{replies + 1}", latest=True)
            ui.save_exchange(conversations, question, reply)

ui.conversation_sidebar(conversations, session.page_sidebar)
