"""Paper Assistant in the browser: ``python -m streamlit run streamlit_app.py``.

A thin router. It opens the session's collaborators (cached, see ``app_pages/ui.py``),
ingests the sample collection on a first start, draws the sidebar and runs the chosen
page. Pages only display and call ``assistant/``; what they need that is not display
lives in the ``assistant.app`` package.
"""

from __future__ import annotations

import logging

import streamlit as st

from app_pages import ui
from assistant.app.session import EXPECTED_ERRORS, error_message

logger = logging.getLogger("paper_assistant.app")

st.set_page_config(page_title="Paper Assistant", page_icon=":material/article:", layout="wide")

navigation = st.navigation(
    [
        st.Page(ui.CHAT_PAGE, title="Chat", icon=":material/forum:", default=True),
        st.Page(ui.PAPERS_PAGE, title="Papers", icon=":material/library_books:"),
        st.Page(ui.COMPARE_PAGE, title="Compare", icon=":material/compare:"),
        st.Page(ui.DIGEST_PAGE, title="Digest", icon=":material/summarize:"),
        st.Page(ui.COLLECTION_PAGE, title="Collection", icon=":material/database:"),
    ]
)

try:
    if ui.start_session() is not None:
        navigation.run()
except EXPECTED_ERRORS as exc:
    st.error(error_message(exc))
except Exception as exc:
    # A bug, not a user error: the page says so in one line, the server log keeps the traceback.
    logger.exception("page %s failed", navigation.title)
    st.error(
        f"Something went wrong on this page ({type(exc).__name__}). The details are in the server log; "
        "the other pages keep working, and reloading usually helps."
    )
