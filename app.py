"""packviz dashboard: ``streamlit run app.py``.

The router: page config, the shared sidebar settings (kept across pages, and in the URL),
and ``st.navigation`` over the thin views in ``pages/`` (support code: ``dashboard/``).
"""

import streamlit as st

from dashboard import state

state.configure_page()
page = st.navigation(
    [
        st.Page("pages/corpus.py", title="Corpus", icon=":material/library_books:", default=True),
        st.Page("pages/recommend.py", title="Recommend", icon=":material/thumb_up:"),
        st.Page("pages/packing.py", title="Packing", icon=":material/view_week:"),
        st.Page("pages/masks.py", title="Masks", icon=":material/grid_on:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/document.py", title="Document", icon=":material/description:"),
        st.Page("pages/loss.py", title="Loss", icon=":material/balance:"),
        st.Page("pages/export.py", title="Export", icon=":material/download:"),
        st.Page("pages/audit.py", title="Audit", icon=":material/verified:"),
    ]
)
state.sidebar()
state.run_routed(page)
