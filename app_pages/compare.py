"""Compare: two to four papers side by side in an aligned, cited table, with a short narrative."""

from __future__ import annotations

import streamlit as st

from app_pages import ui
from app_pages.days import date_range_control
from assistant.app import exports
from assistant.app import session as app_session
from assistant.features.compare import MAX_PAPERS, MIN_PAPERS, comparison_sources
from assistant.schema import Comparison, Source

SELECTION = "compare_selection"
RESULT = "comparison_result"
SCOPE = "the comparison"

session = ui.current()
assistant = session.assistant
days = date_range_control(session.page_sidebar, assistant.retriever)
papers = {paper.paper_id: paper for paper in assistant.papers() if days is None or days.contains(paper.day)}

st.title("Compare papers")
preselected = st.session_state.pop(ui.COMPARE_PRESELECT, None)
if preselected is not None:
    # From the Papers page's “Compare with…”: that paper is picked, the user adds the others.
    st.session_state[SELECTION] = [paper_id for paper_id in preselected if paper_id in papers]
elif SELECTION in st.session_state:
    # Papers removed by a re-ingest must not linger in the selection.
    st.session_state[SELECTION] = [paper_id for paper_id in st.session_state[SELECTION] if paper_id in papers]

selected: list[str] = st.multiselect(
    f"Papers to compare ({MIN_PAPERS}–{MAX_PAPERS})",
    list(papers),
    format_func=lambda paper_id: papers[paper_id].title,
    max_selections=MAX_PAPERS,
    placeholder="Type part of a title…",
    key=SELECTION,
)
ready = MIN_PAPERS <= len(selected) <= MAX_PAPERS
if not ready:
    st.caption(
        f"Pick {MIN_PAPERS} to {MAX_PAPERS} papers: problem, approach, data, results and limitations are lined up."
    )
wanted = st.button("Compare", type="primary", disabled=not ready, icon=":material/compare:")

# The result is kept per selection and model, so other widgets' reruns do not lose it.
result_key = (tuple(selected), assistant.settings.llm.model)
stored: tuple[tuple[tuple[str, ...], str], Comparison, list[Source]] | None = st.session_state.get(RESULT)

if wanted:
    chosen = [papers[paper_id] for paper_id in selected]
    slot = st.empty()
    try:
        with slot.container():
            streamed = ui.stream(
                lambda: assistant.stream_comparison(chosen, days=days),
                assistant.waiting_message("Reading the abstracts and lining them up", prompt_tokens=700),
            )
        stored = (result_key, streamed.result, comparison_sources(chosen))
        st.session_state[RESULT] = stored
        slot.empty()
    except app_session.EXPECTED_ERRORS as exc:
        with slot.container():
            ui.show_error(exc, getattr(exc, "partial_text", ""))

if stored is not None and stored[0] == result_key:
    _, comparison, sources = stored
    ui.comparison_view(comparison, sources, SCOPE, key="comparison")
    st.download_button(
        "Export as Markdown",
        data=exports.comparison_export(comparison, sources),
        file_name=exports.download_name("comparison-" + "-vs-".join(selected)),
        mime="text/markdown",
        icon=":material/download:",
        on_click="ignore",
    )
