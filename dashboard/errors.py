"""User-facing problems: a message in an error box that says what to change, and the page
stops there. Never a traceback.

Library errors about user input are ``ValueError`` (``CorpusError``, ``TokenizerError``
and the argument checks); code that turns them into a message raises `DashboardError`
or calls `stop_with`.
"""

from __future__ import annotations

from typing import NoReturn

import streamlit as st


class DashboardError(Exception):
    """A problem the user can fix; its text is shown as it is."""


def stop_with(message: str) -> NoReturn:
    """Show ``message`` in an error box and end this run of the page."""
    st.error(message)
    st.stop()
    raise AssertionError("st.stop() returned")  # st.stop raises; this keeps NoReturn true
