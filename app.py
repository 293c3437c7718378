"""packviz dashboard: ``streamlit run app.py``.

The router: page config, the shared sidebar settings (kept across pages), and
``st.navigation`` over the thin pages in ``pages/``.
"""

import streamlit as st

import dashboard_state as ds

st.set_page_config(page_title="packviz", page_icon=":material/view_week:", layout="wide")

PAGES = [
    st.Page("pages/corpus.py", title="Corpus", icon=":material/library_books:", default=True),
    st.Page("pages/packing.py", title="Packing", icon=":material/view_week:"),
    st.Page("pages/masks.py", title="Masks", icon=":material/grid_on:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/export.py", title="Export", icon=":material/download:"),
]

page = st.navigation(PAGES)
ds.sidebar()
ds.run_routed(page)
