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
# Counted from the papers' rows (Library.rows: cached per revision, no paper parsed).
stats = collection_view.collection_stats(session.library.rows(), store.count_chunks())
st.subheader("In the collection", anchor=False)
papers_column, chunks_column, days_column, newest_column = st.columns(4)
papers_column.metric("Papers", f"{stats.papers:,}")
chunks_column.metric("Chunks", f"{stats.chunks:,}")
days_column.metric("Days", f"{stats.days:,}", help="Days with papers: listing days, else publication dates.")
newest_column.metric("Newest day", stats.last_day.isoformat() if stats.last_day else "unknown")
if stats.first_day and stats.last_day:
    st.caption(f"Papers listed from {stats.first_day.isoformat()} to {stats.last_day.isoformat()}.")
if stats.sources:
    st.dataframe(
        pd.DataFrame({"source": list(stats.sources), "papers": list(stats.sources.values())}),
        hide_index=True,
        width="stretch",
    )


@st.cache_data(show_spinner="Drawing the map…", max_entries=8)
def map_frames(store_key: str, revision: str) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Cached per store and revision: clustering is the slow part and changes only with an ingest."""
    paper_map = collection_view.paper_map(store)
    points = pd.DataFrame([asdict(point) for point in paper_map.points])
    if not points.empty:
        points["day"] = pd.to_datetime(points["day"])
    themes = pd.DataFrame([asdict(theme) for theme in paper_map.themes])
    return points, themes, paper_map.papers


st.subheader("Map of the papers", anchor=False)
points, themes, total = map_frames(app_session.store_key(session.settings), store.revision())
if points.empty:
    st.info("The collection is empty: add papers above.")
else:
    shown = (
        f"{len(points):,} of the {total:,} papers, a sample, are drawn; "
        if len(points) < total
        else "Each dot is a paper, "
    )
    st.caption(
        f"{shown}placed by what its abstract is about; each theme's number and first keyword mark its centre. Hover for the title."
    )
    colour_by = st.segmented_control(
        "Colour by", ["Theme", "Listing day"], default="Theme", key="map_colour", label_visibility="collapsed"
    )
    if colour_by == "Listing day" and points["day"].notna().any():
        colour = alt.Color("day:T", title="Listed", scale=alt.Scale(scheme="viridis"))
    else:
        colour = alt.Color(
            "theme:N",
            title="Theme",
            scale=alt.Scale(scheme="tableau10" if len(themes) <= 10 else "category20"),
            legend=alt.Legend(orient="bottom", columns=2, labelLimit=360),
        )
    dots = (
        alt.Chart(points)
        .mark_circle(size=110 if len(points) < 500 else 28, opacity=0.85 if len(points) < 500 else 0.55)
        .encode(
            x=alt.X("x:Q", axis=None),
            y=alt.Y("y:Q", axis=None),
            color=colour,
            tooltip=[
                alt.Tooltip("title:N", title="Paper"),
                alt.Tooltip("theme:N", title="Theme"),
                alt.Tooltip("day:T", title="Listed", format="%Y-%m-%d"),
            ],
        )
    )
    labels = (
        alt.Chart(themes)
        .mark_text(fontWeight="bold", fontSize=13, stroke="white", strokeWidth=3, strokeOpacity=0.8)
        .encode(x="x:Q", y="y:Q", text="label:N")
    )
    names = alt.Chart(themes).mark_text(fontWeight="bold", fontSize=13).encode(x="x:Q", y="y:Q", text="label:N")
    st.altair_chart((dots + labels + names).properties(height=520), width="stretch")
