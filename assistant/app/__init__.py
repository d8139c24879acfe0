"""What the Streamlit pages need that is not display: testable without Streamlit.

The pages (``streamlit_app.py`` and ``app_pages/``) only lay out widgets and call into this
package and the :class:`~assistant.service.PaperAssistant`; nothing here imports streamlit.
"""
