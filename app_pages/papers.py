"""Papers: search, filter by listing day and sort the collection, a page at a time; per paper its abstract,
a one-paragraph summary, and shortcuts. The listing is paged on the server (``Library.listing``)."""

from __future__ import annotations

import streamlit as st

from app_pages import ui
from assistant.app import render
from assistant.app import session as app_session
from assistant.app.library import ORDERS
from assistant.bibtex import papers_bibtex
from assistant.instructions import instructions_notice
from assistant.schema import DateRange, Paper, Summary

SUMMARIES = "paper_summaries"

session = ui.current()
assistant = session.assistant
library = session.library
# Per model: a summary written by another model is not what the picker promises.
summaries: dict[str, Summary] = st.session_state.setdefault(SUMMARIES, {}).setdefault(assistant.settings.llm.model, {})

st.title("Papers")
search_column, days_column, order_column = st.columns([3, 2, 1])
query = search_column.text_input(
    "Search", placeholder="words of a title, an author, the abstract or an id", key="paper_query"
)
span = library.day_range()
chosen = days_column.date_input(
    "Listed between",
    value=st.session_state.get(ui.PAPER_DAYS, ()),
    min_value=span.start if span else None,
    max_value=span.end if span else None,
    # Another page may ask for days (ui.show_days): a new widget takes them as its value.
    key=f"paper-days-{st.session_state.get(ui.PAPER_DAYS_ROUND, 0)}",
    help="The days the papers were listed on (their publication date when no listing day is known). Empty: all.",
)
days = DateRange(start=chosen[0], end=chosen[-1]) if isinstance(chosen, tuple) and chosen else None
order = order_column.selectbox("Sort by", ORDERS, key="paper_order")
# Another search starts on its first page.
page_key = f"paper-page-{hash((query, days, order))}"
listing = library.listing(
    text=query, days=days, order=order, page=int(st.session_state.get(page_key, 1)), catalog=assistant.papers
)
st.caption(f"{listing.matched} of {listing.total} papers")
st.download_button(
    f"BibTeX of the {len(listing.papers)} shown",
    data=papers_bibtex(listing.papers),
    file_name="papers.bib",
    mime="application/x-bibtex",
    icon=":material/download:",
    on_click="ignore",
    disabled=not listing.papers,
)
if listing.pages > 1:
    st.number_input("Page", min_value=1, max_value=listing.pages, value=listing.page, key=page_key)


def summary_view(summary: Summary) -> None:
    st.markdown(render.cited_markdown(summary.summary, [], "summary", summary.unsupported))
    ui.flagged_note(summary.summary, summary.unsupported)
    ui.notices(summary.notices)
    if summary.cached:
        st.caption(":material/bolt: From the summary cache.")


def summarize(paper: Paper) -> None:
    """Stream the summary, then show it checked; the service caches it on disk, so asking again is instant."""
    slot = st.empty()
    try:
        with slot.container():
            streamed = ui.stream(
                lambda: assistant.stream_summary(paper),
                assistant.waiting_message("Summarizing the abstract", prompt_tokens=350),
            )
        summaries[paper.paper_id] = streamed.result
    except app_session.EXPECTED_ERRORS as exc:
        with slot.container():
            ui.show_error(exc, getattr(exc, "partial_text", ""))
    else:
        with slot.container():
            summary_view(summaries[paper.paper_id])


for paper in listing.papers:
    with st.expander(render.inline_literal(paper.title), key=f"paper-{paper.paper_id}"):
        st.markdown(render.paper_details(paper))
        st.markdown(render.literal_markdown(paper.abstract))
        if addressed := instructions_notice([(paper.title, paper.abstract)]):
            st.warning(render.inline_literal(addressed), icon=":material/gpp_maybe:")
        summarize_column, ask_column, compare_column = st.columns(3)
        wants_summary = summarize_column.button(
            "One-paragraph summary", key=f"summarize-{paper.paper_id}", icon=":material/short_text:"
        )
        if ask_column.button("Ask about this paper", key=f"ask-{paper.paper_id}", icon=":material/forum:"):
            st.session_state[ui.PENDING_QUESTION] = app_session.ask_about(paper)
            st.switch_page(ui.CHAT_PAGE)
        if compare_column.button("Compare with…", key=f"compare-{paper.paper_id}", icon=":material/compare:"):
            st.session_state[ui.COMPARE_PRESELECT] = [paper.paper_id]
            st.switch_page(ui.COMPARE_PAGE)
        if wants_summary and paper.paper_id not in summaries:
            summarize(paper)
        elif paper.paper_id in summaries:
            summary_view(summaries[paper.paper_id])
