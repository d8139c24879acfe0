"""The Streamlit pages of Paper Assistant and the display helpers they share (``ui``).

Named ``app_pages`` rather than ``pages``: Streamlit would turn a ``pages/`` folder next to
the entry script into a second, automatic navigation.
"""
