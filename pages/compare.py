"""Compare: padding against packing, every strategy side by side, and a max-length sweep."""

import pandas as pd
import streamlit as st

import dashboard_state as ds
from packviz import figures

SWEEP_MAX_LENS = (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
AUTO_SWEEP_DOCS = 200_000

s = ds.page_settings()
corpus = ds.current_corpus()
st.title("Compare")
st.caption(f"{corpus.label} · max length {s.max_len:,} · sort {s.sort}, overflow {s.overflow}")

with st.spinner("Packing with every strategy…"):
    stats = ds.compare(corpus, s)
by = {x["strategy"]: x for x in stats}
padded, current = by["padded"], by[s.strategy]
if s.strategy == "padded":
    current = by["best_fit"]

st.subheader(f"Padding vs packing ({current['strategy']})")
st.caption(
    f"Padding puts one piece per row (overflow = {padded['overflow']}: "
    + {
        "split": "long documents take several rows",
        "truncate": "long documents are cut",
        "drop": "long documents are left out",
    }[padded["overflow"]]
    + ")."
)
c = st.columns(5)
saved_rows = padded["n_rows"] - current["n_rows"]
c[0].metric(
    "Rows", f"{current['n_rows']:,}", delta=f"{-saved_rows:,} vs padding", delta_color="inverse"
)
c[1].metric(
    "Slots",
    f"{current['n_rows'] * current['max_len']:,}",
    delta=f"padding: {padded['n_rows'] * padded['max_len']:,}",
    delta_color="off",
)
c[2].metric(
    "Efficiency",
    f"{current['efficiency']:.2%}",
    delta=f"padding: {padded['efficiency']:.2%}",
    delta_color="off",
)
c[3].metric(
    "Lost tokens",
    f"{current['lost_tokens']:,}",
    delta=f"padding: {padded['lost_tokens']:,}",
    delta_color="off",
)
work_pad = padded["attention_pairs_causal"]
work_doc = current["attention_pairs_document"]
c[4].metric(
    "Attention work saved",
    f"{1 - work_doc / work_pad:.1%}" if work_pad else "–",
    help="Query–key pairs computed: padded rows with a causal mask vs packed rows with a "
    "document mask (l(l+1)/2 per piece).",
)

st.subheader("Every strategy")
st.plotly_chart(figures.strategy_bars(stats), key="strategy_bars")
cols = [
    "strategy",
    "n_rows",
    "lower_bound_rows",
    "rows_over_lower_bound",
    "lower_bound_rows_input",
    "efficiency",
    "padding_tokens",
    "lost_tokens",
    "split_docs",
    "mean_pieces_per_row",
    "attention_pairs_document",
    "attention_pairs_causal",
]
st.dataframe(
    pd.DataFrame(stats)[cols].set_index("strategy"),
    column_config={"efficiency": st.column_config.NumberColumn(format="percent")},
)

st.subheader("Sweep over max length")
n_docs = int(corpus.lengths.size)
run = n_docs <= AUTO_SWEEP_DOCS or st.toggle(
    f"Run the sweep ({len(SWEEP_MAX_LENS) * 5} packings of {n_docs:,} documents)", key="run_sweep"
)
if run:
    points = []
    bar = st.progress(0.0, text="Sweeping…")
    todo = [(m, name) for m in SWEEP_MAX_LENS for name in by]
    for i, (m, name) in enumerate(todo):
        p = ds.Settings(m, name, s.sort, s.overflow, s.seed)
        points.append(ds.point_stats(corpus.key, p.key(), corpus.lengths, p))
        bar.progress((i + 1) / len(todo), text=f"Sweeping… max length {m:,}, {name}")
    bar.empty()
    st.plotly_chart(figures.sweep_figure(points), key="sweep")
