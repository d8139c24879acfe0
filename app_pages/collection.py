"""Collection: add papers from files, see what the collection holds, and a map of it by theme."""

from __future__ import annotations

from dataclasses import asdict

import altair as alt
import pandas as pd
import streamlit as st

from app_pages import ui
from assistant.app import collection as collection_view
from assistant.app import render
from assistant.app import session as app_session
from assistant.instructions import instructions_notice
from assistant.schema import IngestReport
from ingestion import pipeline
from ingestion.progress import IngestProgress

REPORT = "last_ingest_report"
UPLOADER_ROUND = "uploader_round"

session = ui.current()
store = session.store

st.title("Collection")
st.caption(f"Open: {render.inline_literal(app_session.store_description(session.settings))}")

# --- adding papers ---------------------------------------------------------------------------
st.subheader("Add papers", anchor=False)
# A fresh uploader key after an ingest empties the widget, so the same files are not offered twice.
round_number = st.session_state.setdefault(UPLOADER_ROUND, 0)
uploads = st.file_uploader(
    "A Daily Papers page saved as text, or a JSON, JSON Lines or CSV export",
    type=list(collection_view.UPLOAD_TYPES),
    accept_multiple_files=True,
    key=f"uploads-{round_number}",
)
if st.button("Ingest", type="primary", disabled=not uploads, icon=":material/upload:"):
    bar = st.progress(0.0, text="Reading the files…")

    def show(event: IngestProgress) -> None:
        bar.progress(event.fraction, text=f"Embedding and storing: {event.line()}")

    try:
        report = pipeline.ingest_uploads([(upload.name, upload.getvalue()) for upload in uploads or []], store, show)
    except app_session.EXPECTED_ERRORS as exc:
        ui.show_error(exc)
    else:
        bar.progress(1.0, text="Done.")
        st.session_state[REPORT] = report
        st.session_state[UPLOADER_ROUND] = round_number + 1
        st.rerun()

last: IngestReport | None = st.session_state.get(REPORT)
if last is not None:
    changed = last.papers_added + last.papers_updated
    summary = (
        f"Added {last.papers_added}, updated {last.papers_updated}, unchanged {last.papers_unchanged} "
        f"({collection_view.plural(last.chunks_written, 'chunk')} written); "
        f"the collection now holds {collection_view.plural(last.total_papers, 'paper')}."
    )
    (st.success if changed or not last.problems else st.warning)(summary)
    if last.problems:
        skipped = collection_view.plural(len(last.problems), "record")
        st.warning(f"{skipped} {'was' if len(last.problems) == 1 else 'were'} skipped:", icon=":material/report:")
        st.dataframe(pd.DataFrame(collection_view.problem_rows(last.problems)), hide_index=True, width="stretch")
    addressed = instructions_notice([(item.title, " ".join(item.sentences)) for item in last.addressed_to_model])
    if addressed:
        st.warning(render.inline_literal(addressed), icon=":material/gpp_maybe:")

# --- what is in it -------------------------------------------------------------------------
papers = session.assistant.papers()
stats = collection_view.collection_stats(papers, store.count_chunks())
st.subheader("In the collection", anchor=False)
papers_column, chunks_column, sources_column, dates_column = st.columns(4)
papers_column.metric("Papers", stats.papers)
chunks_column.metric("Chunks", stats.chunks)
sources_column.metric("Source files", len(stats.sources))
if stats.first_published:
    span = stats.first_published.isoformat()
    if stats.last_published != stats.first_published and stats.last_published:
        span += f" – {stats.last_published.isoformat()}"
    dates_column.metric("Published", span)
else:
    dates_column.metric("Published", "unknown")
if stats.sources:
    st.dataframe(
        pd.DataFrame({"source": list(stats.sources), "papers": list(stats.sources.values())}),
        hide_index=True,
        width="stretch",
    )


@st.cache_data(show_spinner="Drawing the map…", max_entries=8)
def map_frame(store_key: str, revision: str) -> pd.DataFrame:
    """Cached per store and revision: clustering is the slow part and changes only with an ingest."""
    points = collection_view.paper_map(store)
    return pd.DataFrame([asdict(point) for point in points])


st.subheader("Map of the papers", anchor=False)
st.caption("Each dot is a paper, placed by what its abstract is about; colours are themes. Hover for the title.")
frame = map_frame(app_session.store_key(session.settings), store.revision())
if frame.empty:
    st.info("The collection is empty: add papers above.")
else:
    chart = (
        alt.Chart(frame)
        .mark_circle(size=110, opacity=0.85)
        .encode(
            x=alt.X("x:Q", axis=None),
            y=alt.Y("y:Q", axis=None),
            color=alt.Color("theme:N", title="Theme", legend=alt.Legend(orient="bottom", columns=2, labelLimit=360)),
            tooltip=[alt.Tooltip("title:N", title="Paper"), alt.Tooltip("theme:N", title="Theme")],
        )
        .properties(height=460)
    )
    st.altair_chart(chart, width="stretch")
