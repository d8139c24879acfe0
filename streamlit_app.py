"""Paper Assistant in the browser: ``python -m streamlit run streamlit_app.py``.

A thin router. It opens the session's collaborators (cached, see ``app_pages/ui.py``),
ingests the sample collection on a first start, draws the sidebar and runs the chosen
page: the day page when papers were listed since this browser's last visit, else the chat.
Pages only display and call ``assistant/``; what they need that is not display lives in the
``assistant.app`` package.
"""

from __future__ import annotations

import logging

import streamlit as st

from app_pages import ui
from assistant.app.session import EXPECTED_ERRORS, error_message

logger = logging.getLogger("paper_assistant.app")

st.set_page_config(page_title="Paper Assistant", page_icon=":material/article:", layout="wide")


def show_failure(exc: Exception, where: str) -> None:
    if isinstance(exc, EXPECTED_ERRORS):
        st.error(error_message(exc))
        return
    # A bug, not a user error: the page says so in one line, the server log keeps the traceback.
    logger.error("%s failed", where, exc_info=exc)
    st.error(
        f"Something went wrong on this page ({type(exc).__name__}). The details are in the server log; "
        "the other pages keep working, and reloading usually helps."
    )


session: ui.Session | None = None
try:
    session = ui.start_session()
except Exception as exc:
    show_failure(exc, "starting the session")
news = session is not None and ui.whats_new().count > 0

navigation = st.navigation(
    [
        st.Page(ui.CHAT_PAGE, title="Chat", icon=":material/forum:", default=not news),
        st.Page(ui.DAY_PAGE, title="Daily papers", icon=":material/calendar_month:", default=news),
        st.Page(ui.PAPERS_PAGE, title="Papers", icon=":material/library_books:"),
        st.Page(ui.COMPARE_PAGE, title="Compare", icon=":material/compare:"),
        st.Page(ui.DIGEST_PAGE, title="Digest", icon=":material/summarize:"),
        st.Page(ui.COLLECTION_PAGE, title="Collection", icon=":material/database:"),
    ]
)

if session is not None:
    try:
        navigation.run()
    except Exception as exc:
        show_failure(exc, f"page {navigation.title}")
