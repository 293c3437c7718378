"""Compare: padding against packing, every strategy side by side, and a max-length sweep."""

import pandas as pd
import streamlit as st

from dashboard import cached, figures, state
from dashboard.corpus import current_corpus

SWEEP_MAX_LENS = (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
AUTO_SWEEP_DOCS = 200_000

s = state.page_settings()
corpus = current_corpus()
st.title("Compare")
st.caption(f"{corpus.label} · max length {s.max_len:,} · sort {s.sort}, overflow {s.overflow}")

strategies, skipped = cached.compare_strategies_for(corpus, s)
if skipped:
    st.warning(
        f"Left out {' and '.join(f'`{x}`' for x in skipped)}: with sort `{s.sort}` they run "
        f"document by document in Python (seconds per million documents), and this corpus "
        f"has {corpus.lengths.size:,}. Choose sort **desc** or **asc** in the sidebar to "
        "compare every strategy, or run `pv.compare_strategies(lengths, max_len, "
        f'sort="{s.sort}")` from the library.'
    )
with st.spinner("Packing with every strategy…"):
    stats = cached.compare(corpus, s, strategies)
by = {x.strategy: x for x in stats}
padded = by["padded"]
current = by.get(s.strategy) if s.strategy != "padded" else None
current = current or by["best_fit"]

st.subheader(f"Padding vs packing ({current.strategy})")
st.caption(
    f"Padding puts one piece per row (overflow = {padded.overflow}: "
    + {
        "split": "long documents take several rows",
        "truncate": "long documents are cut",
        "drop": "long documents are left out",
    }[padded.overflow]
    + ")."
)
c = st.columns(5)
saved_rows = padded.n_rows - current.n_rows
c[0].metric(
    "Rows", f"{current.n_rows:,}", delta=f"{-saved_rows:,} vs padding", delta_color="inverse"
)
c[1].metric(
    "Slots",
    f"{current.slots:,}",
    delta=f"padding: {padded.slots:,}",
    delta_color="off",
)
c[2].metric(
    "Efficiency",
    f"{current.efficiency:.2%}",
    delta=f"padding: {padded.efficiency:.2%}",
    delta_color="off",
)
c[3].metric(
    "Lost tokens",
    f"{current.lost_tokens:,}",
    delta=f"padding: {padded.lost_tokens:,}",
    delta_color="off",
)
c[4].metric(
    "Attention work saved",
    f"{current.attention_saved:.1%}",
    delta=f"padding: {padded.attention_saved:.1%}",
    delta_color="off",
    help="Share of the query–key pairs of a plain causal mask over the same rows that a "
    "document mask skips (l(l+1)/2 pairs per piece instead of L(L+1)/2 per row).",
)

st.subheader("Every strategy")
rows = [x.as_dict() for x in stats]
st.plotly_chart(figures.strategy_bars(rows), key="strategy_bars")
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
    pd.DataFrame(rows)[cols].set_index("strategy"),
    column_config={"efficiency": st.column_config.NumberColumn(format="percent")},
)

st.subheader("Sweep over max length")
n_docs = int(corpus.lengths.size)
run = n_docs <= AUTO_SWEEP_DOCS or st.toggle(
    f"Run the sweep ({len(SWEEP_MAX_LENS) * len(strategies)} packings of {n_docs:,} documents)",
    key="run_sweep",
)
if run:
    bar = st.progress(0.0, text="Sweeping…")

    def _progress(done: int, total: int, max_len: int, strategy: str) -> None:
        bar.progress(done / total, text=f"Sweeping… max length {max_len:,}, {strategy}")

    points = cached.sweep(corpus, s, SWEEP_MAX_LENS, strategies, progress=_progress)
    bar.empty()
    st.plotly_chart(figures.sweep_figure(points), key="sweep")
