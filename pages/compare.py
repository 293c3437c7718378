"""Compare: padding against packing, every strategy side by side, and a sweep of what
varies with max length (with fine-tuning records: the trained targets of each)."""

import pandas as pd
import streamlit as st

import packviz as pv
from dashboard import cached, figures, state, ui
from dashboard.corpus import current_corpus

s = state.page_settings()
corpus = current_corpus()
st.title("Compare")
st.caption(f"{corpus.label} · max length {s.max_len:,} · sort {s.sort}, overflow {s.overflow}")
sft = corpus.has_records  # then every table has the trained targets (labels not -100)

points = cached.evaluate_points(
    corpus,
    [(s.max_len, x, s.sort) for x in pv.STRATEGIES],
    s.overflow,
    s.seed,
    label="Comparing every strategy",
)
if points.too_big:
    st.error(cached.too_big(corpus, s.max_len, points.too_big[0][1], s.overflow))
    st.stop()
if not points.complete:
    st.stop()
stats = points.stats()
trade = {t.strategy: t for t in points.tradeoffs()}
by = {x.strategy: x for x in stats}
padded = by["padded"]
current = by.get(s.strategy) if s.strategy != "padded" else by["best_fit"]
ct = trade[current.strategy]

st.subheader(f"Padding vs packing ({current.strategy})")
st.caption(
    f"Padding puts one piece per row (overflow = {padded.overflow}: "
    + {
        "split": "long documents take several rows",
        "truncate": "long documents are cut",
        "drop": "long documents are left out",
    }[padded.overflow]
    + "). Deltas are against padding; green is better."
)
c = st.columns(5)
c[0].metric(
    "Rows",
    ui.count(current.n_rows),
    **ui.versus(
        current.n_rows - padded.n_rows, f"{current.n_rows - padded.n_rows:+,}", ref="padding"
    ),
)
slots_change = current.slots / padded.slots - 1 if padded.slots else 0.0
c[1].metric(
    "Slots",
    ui.count(current.slots),
    **ui.versus(slots_change, f"{slots_change:+.1%}", ref="padding"),
    help=f"{current.slots:,} token slots (rows × max length) against {padded.slots:,}",
)
eff_change = current.efficiency - padded.efficiency
c[2].metric(
    "Efficiency",
    f"{current.efficiency:.2%}",
    **ui.versus(eff_change, f"{eff_change * 100:+.1f} pp", ref="padding", lower_is_better=False),
)
lost_change = current.lost_tokens - padded.lost_tokens
c[3].metric(
    "Lost tokens",
    ui.count(current.lost_tokens),
    **ui.versus(lost_change, f"{lost_change:+,}", ref="padding"),
)
saved = current.attention_saved
c[4].metric(
    "Attention / token",
    f"{ct.attention_per_token:,.0f}",
    **ui.versus(-saved, f"{-saved:.1%}", ref="causal"),
    help="Query–key pairs per real token with a document mask (l(l+1)/2 per piece), "
    f"against {ct.causal_attention_per_token:,.0f} with a plain causal mask over the same "
    "rows (L(L+1)/2 per row): the document mask skips that share of the work.",
)

st.subheader("Every strategy")
rows = [
    {
        **t.as_dict(),
        "lower_bound_rows": by[x].lower_bound_rows,
        "trained_targets": by[x].trained_targets,
    }
    for x, t in trade.items()
]
ui.chart(figures.strategy_bars(rows), key="strategy_bars")
best_rows = min(t.n_rows for x, t in trade.items() if x != "padded")
w = trade.get("wrapped")
if w is not None and w.n_rows <= best_rows and w.fragmented_tokens:
    st.info(
        f"**wrapped** uses the fewest rows ({w.n_rows:,}), but it cuts {w.split_docs:,} "
        f"documents across rows: {w.fragmented_share:.1%} of the tokens "
        f"({w.fragmented_tokens:,}) lose their preceding context, against "
        f"{trade['best_fit'].fragmented_share:.1%} with best_fit. Use it with an "
        "end-of-text token and only where cut context does not matter."
    )
table = pd.DataFrame(
    {
        "Strategy": [t.strategy for t in trade.values()],
        "Rows": [t.n_rows for t in trade.values()],
        "Over bound": [by[x].rows_over_lower_bound for x in trade],
        "Efficiency": [t.efficiency for t in trade.values()],
        "Lost tokens": [t.lost_tokens for t in trade.values()],
        "Split docs": [t.split_docs for t in trade.values()],
        "Losing context": [t.fragmented_share for t in trade.values()],
        "Attn / token": [t.attention_per_token for t in trade.values()],
    }
)
if sft:
    table["Trained targets"] = [by[x].trained_targets for x in trade]
whole = st.column_config.NumberColumn(format="localized")
share = st.column_config.NumberColumn(format="percent")
st.dataframe(
    table,
    hide_index=True,
    column_config={
        **dict.fromkeys(
            ("Rows", "Over bound", "Lost tokens", "Split docs", "Trained targets"), whole
        ),
        "Efficiency": share,
        "Losing context": share,
        "Attn / token": st.column_config.NumberColumn(format="%.0f"),
    },
)
st.caption(
    "Over bound: rows beyond ⌈packed tokens / max length⌉. Losing context: tokens in a "
    "piece that does not begin their document. Attn / token: query–key pairs per real "
    "token with a document mask."
    + (" Trained targets: labels that are not -100 (what the loss averages over)." if sft else "")
    + " The CSV has every number."
)
ui.csv_button(pd.DataFrame(rows), name=f"strategies-{s.max_len}")

st.subheader("Sweep over max length")
max_lens = pv.default_max_lens(s.max_len, upper=state.DASHBOARD_MAX_LEN)
st.caption(
    f"Max lengths {max_lens[0]:,} … {max_lens[-1]:,} around the current one ({s.max_len:,}, "
    "the red line). With overflow split every strategy is near 100 % efficient at every "
    "max length: what changes is how many documents are cut, how much context is lost, "
    "and the attention work per token."
)
sweep = cached.evaluate_points(
    corpus,
    [(m, x, s.sort) for m in max_lens for x in pv.STRATEGIES],
    s.overflow,
    s.seed,
    label="Sweep over max length",
    action="Run the sweep",
)
if sweep.left_out:
    st.caption(sweep.left_out)
if sweep.complete:
    data = [
        {**t.as_dict(), "trained_targets": x.trained_targets}
        for x, t in zip(sweep.stats(), sweep.tradeoffs(), strict=True)
    ]
    ui.chart(
        figures.sweep_figure(data, current=s.max_len, show_lost=s.overflow != "split"),
        key="sweep",
    )
    cols = [
        "max_len",
        "strategy",
        "n_rows",
        "efficiency",
        "split_docs",
        "fragmented_share",
        "attention_per_token",
        "lost_tokens",
        *(["trained_targets"] if sft else []),
    ]
    sweep_table = pd.DataFrame(data)[cols]
    with st.expander("Sweep table"):
        st.dataframe(
            sweep_table,
            hide_index=True,
            column_config={
                "max_len": st.column_config.NumberColumn("Max length", format="localized"),
                "strategy": "Strategy",
                "n_rows": st.column_config.NumberColumn("Rows", format="localized"),
                "efficiency": st.column_config.NumberColumn("Efficiency", format="percent"),
                "split_docs": st.column_config.NumberColumn("Split documents", format="localized"),
                "fragmented_share": st.column_config.NumberColumn(
                    "Tokens losing context", format="percent"
                ),
                "attention_per_token": st.column_config.NumberColumn(
                    "Attention pairs / token", format="%.0f"
                ),
                "lost_tokens": st.column_config.NumberColumn("Lost tokens", format="localized"),
                "trained_targets": st.column_config.NumberColumn(
                    "Trained targets", format="localized"
                ),
            },
        )
    ui.csv_button(
        pd.DataFrame(data), name=f"sweep-{s.sort}-{s.overflow}", label="Download sweep CSV"
    )
