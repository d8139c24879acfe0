"""Digest: the whole collection grouped into themes, each with one cited paragraph."""

from __future__ import annotations

import streamlit as st

from app_pages import ui
from app_pages.days import date_range_control
from assistant.app import session as app_session
from assistant.schema import DateRange, Digest

RESULT = "digest_result"

session = ui.current()
assistant = session.assistant
days = date_range_control(session.page_sidebar, assistant.retriever)

st.title("Digest")
st.caption(
    "A briefing on the whole collection, or on the days chosen in the sidebar: papers grouped into themes by "
    "their content, each theme named and summed up in one paragraph that cites its papers."
)

# A digest belongs to one state of the collection and one model; a re-ingest or another model asks for a new one.
result_key = (session.store.revision(), assistant.settings.llm.model, days)
stored: tuple[tuple[str, str, DateRange | None], Digest] | None = st.session_state.get(RESULT)
current = stored is not None and stored[0] == result_key
label = "Write the digest again" if current else "Write the digest"
wanted = st.button(label, type="secondary" if current else "primary", icon=":material/summarize:")

if wanted:
    slot = st.empty()
    try:
        with slot.container():
            streamed = ui.stream(lambda: assistant.stream_digest(days=days), "Grouping the papers into themes…")
        st.session_state[RESULT] = (result_key, streamed.result)
    except app_session.EXPECTED_ERRORS as exc:
        with slot.container():
            ui.show_error(exc, getattr(exc, "partial_text", ""))
    else:
        st.rerun()  # drawn again from the stored digest, under the right button

if current and stored is not None:
    ui.digest_view(stored[1], assistant.papers(), key="digest")
