"""Packing: statistics of the plan, an overview of every row, and a window of rows."""

import streamlit as st

from dashboard import cached, figures, state
from dashboard.corpus import current_corpus

s = state.page_settings()
corpus = current_corpus()
st.title("Packing")
st.caption(
    f"{corpus.label} · max length {s.max_len:,} · {s.strategy}, sort {s.sort}, overflow {s.overflow}"
)

with st.spinner("Packing…"):
    plan, stats = cached.plan_for(corpus, s)

c = st.columns(4)
c[0].metric("Rows", f"{stats.n_rows:,}")
c[1].metric(
    "Lower bound",
    f"{stats.lower_bound_rows:,}",
    delta=f"gap {stats.rows_over_lower_bound:,} rows ({stats.lower_bound_gap:.2%})",
    delta_color="off",
    help="ceil(packed tokens / max length): no packing of these tokens can use fewer rows.",
)
c[2].metric("Efficiency", f"{stats.efficiency:.2%}", help="real tokens / (rows × max length)")
c[3].metric("Padding tokens", f"{stats.padding_tokens:,}")
c = st.columns(4)
c[0].metric(
    "Lost tokens",
    f"{stats.lost_tokens:,}",
    help=f"{stats.truncated_docs:,} documents truncated, {stats.dropped_docs:,} dropped",
)
c[1].metric(
    "Split documents", f"{stats.split_docs:,}", help="documents placed as two or more pieces"
)
c[2].metric(
    "Pieces per row",
    f"{stats.mean_pieces_per_row:.2f}",
    delta=f"max {stats.max_pieces_per_row}",
    delta_color="off",
)
c[3].metric("Trained targets", f"{stats.trained_targets:,}", help="Σ (piece length − 1)")

if stats.n_rows == 0:
    st.info("The plan has no rows: every document is empty or was dropped.")
    st.stop()

st.subheader("Rows")
w = st.columns([1, 1, 3])
n_window = w[1].number_input(
    "Rows in window", min_value=1, max_value=64, step=1, **state.bind("window_rows")
)
state.put("first_row", min(int(state.get("first_row")), stats.n_rows - 1))
first = w[0].number_input(
    "First row", min_value=0, max_value=stats.n_rows - 1, step=1, **state.bind("first_row")
)
lo = int(first)
hi = min(lo + int(n_window), stats.n_rows)
w[2].caption(
    f"Showing rows {lo:,}–{hi - 1:,} of {stats.n_rows:,}. Hover a slot for its row, slot, document, position and token."
)

rows = cached.rows_window(corpus, s, plan, lo, hi)
tokens = cached.decoded_rows(corpus, rows.input_ids) if corpus.has_text else None
if not corpus.has_text:
    st.caption("Synthetic corpus: lengths only, so there is no text to show per token.")
st.plotly_chart(
    figures.row_heatmap(
        rows.doc_ids, row_index=rows.row_index, position_ids=rows.position_ids, tokens=tokens
    ),
    key="row_heatmap",
)
st.plotly_chart(
    figures.overview_heatmap(
        plan.row, plan.offset, plan.length, plan.n_rows, plan.max_len, window=(lo, hi)
    ),
    key="overview_heatmap",
)
