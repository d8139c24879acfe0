"""The sidebar's date range (a pair of date inputs) that the Chat, Compare and Digest pages read from.

Display only: the range is checked and built by :func:`assistant.dates.days_between`; a date phrase
in a chat message ("last week") still wins over it.
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from assistant.dates import days_between
from assistant.errors import InvalidInput
from assistant.retrieval import Retriever
from assistant.schema import DateRange

ON = "days_on"
START = "days_start"
END = "days_end"


def date_range_control(slot: DeltaGenerator, retriever: Retriever) -> DateRange | None:
    """The days chosen in the sidebar, or None (the whole collection); shared by the pages through the session."""
    newest = retriever.newest_day()
    if newest is None:
        return None
    with slot:
        if not st.toggle("Only papers listed on some days", key=ON, help="A date in a question wins over it"):
            return None
        held = retriever.papers_by_day()
        oldest = min(held) if held else newest
        start = st.date_input("From", value=max(oldest, newest - timedelta(days=6)), key=START)
        end = st.date_input("To", value=newest, key=END)
        try:
            days = days_between(start, end)
        except InvalidInput as exc:
            st.warning(str(exc))
            return None
        if days is not None:
            count = sum(retriever.papers_by_day(days).values())
            st.caption(f"{count} paper{'s' if count != 1 else ''} listed in these days.")
        return days
