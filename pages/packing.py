"""Packing: the plan's numbers (and, for fine-tuning records, what is trained), representative
rows with untrained tokens dimmed, an overview of every row, and A/B."""

import pandas as pd
import streamlit as st

import packviz as pv
from dashboard import cached, figures, records, state, ui
from dashboard.corpus import current_corpus

ROW_PICK_LABELS = {
    "spread": "spread over the plan",
    "most_pieces": "most pieces",
    "least_full": "least full",
    "first": "from a row",
    "last": "last rows",
}

s = state.page_settings()
corpus = current_corpus()
st.title("Packing")
ui.settings_caption(corpus.label, s)

plan, stats, trade = cached.plan_for(corpus, s)

c = st.columns(4)
c[0].metric("Rows", ui.count(stats.n_rows), help=f"{stats.n_rows:,} rows of {s.max_len:,} slots")
c[1].metric(
    "Lower bound",
    ui.count(stats.lower_bound_rows),
    delta=f"{stats.rows_over_lower_bound:,} rows over it ({stats.lower_bound_gap:.2%})",
    delta_color="off",
    delta_arrow="off",
    help="ceil(packed tokens / max length): no packing of these tokens can use fewer rows.",
)
c[2].metric("Efficiency", f"{stats.efficiency:.2%}", help="real tokens / (rows × max length)")
c[3].metric("Padding tokens", ui.count(stats.padding_tokens))
c = st.columns(4)
c[0].metric(
    "Lost tokens",
    ui.count(stats.lost_tokens),
    help=f"{stats.truncated_docs:,} documents truncated, {stats.dropped_docs:,} dropped",
)
c[1].metric(
    "Split documents",
    ui.count(stats.split_docs),
    help="documents placed as two or more pieces (wrapped: crossing a row boundary)",
)
c[2].metric(
    "Tokens that lose context",
    f"{trade.fragmented_share:.2%}",
    help=f"{trade.fragmented_tokens:,} tokens sit in a piece that does not begin their "
    "document, so they cannot attend to its earlier tokens.",
)
c[3].metric(
    "Attention pairs per token",
    f"{trade.attention_per_token:,.0f}",
    delta=f"vs {trade.causal_attention_per_token:,.0f} causal",
    delta_color="off",
    delta_arrow="off",
    help="Query–key pairs computed per real token: l(l+1)/2 per piece with a document "
    "mask, L(L+1)/2 per row with a plain causal mask.",
)

if corpus.has_records:
    what = records.TRAIN_ON_LABELS[corpus.train_on]
    st.subheader(f"Fine-tuning: train on {what}")
    sft = cached.sft_stats(corpus, s, plan)
    for message in sft.warnings():
        st.warning(message[0].upper() + message[1:] + ".", icon=":material/warning:")
    c = st.columns(4)
    ui.metric_note(
        c[0],
        "Trained tokens",
        ui.count(sft.trained_tokens),
        f"{sft.trained_fraction:.1%} of {ui.count(sft.input_tokens)} tokens",
        help=f"Tokens of {what}, flagged trained; {sft.packed_trained_tokens:,} of them are "
        "placed in rows (the rest were cut by the overflow policy).",
    )
    c[1].metric(
        "Trained targets",
        ui.count(stats.trained_targets),
        help="Labels that are not -100 in the packed rows: the trained tokens that are not "
        "the first slot of a piece. The loss averages over these.",
    )
    ui.metric_note(
        c[2],
        "Target efficiency",
        f"{sft.target_efficiency:.2%}",
        f"vs {stats.efficiency:.2%} of slots filled",
        help="Trained targets / (rows × max length): the share of the compute that trains.",
    )
    ui.metric_note(
        c[3],
        "Examples that train nothing",
        f"{sft.lost_completions:,}",
        f"{sft.truncated_completions:,} lose part of it",
        help="Examples whose trained tokens the overflow policy cut entirely (truncate, "
        "drop), and examples that lost some of them.",
    )
    completion = "assistant turns" if "assistant" in corpus.train_on else "completion"
    ui.chart(
        figures.sft_length_histogram(
            sft.prompt_lengths, sft.completion_lengths, completion_label=completion
        ),
        key="sft_lengths",
    )

if stats.n_rows == 0:
    st.info("The plan has no rows: every document is empty or was dropped.")
    st.stop()

st.subheader("Rows")
w = st.columns([2, 1, 1, 3])
how = w[0].selectbox(
    "Rows to show",
    pv.ROW_PICKS,
    format_func=ROW_PICK_LABELS.get,
    help="Rows spread over the whole plan, the rows with the most pieces or the most "
    "padding, the last rows (leftovers), or consecutive rows from a given one.",
    **state.bind("row_pick"),
)
n_window = int(
    w[1].number_input("Rows", min_value=1, max_value=64, step=1, **state.bind("window_rows"))
)
if how == "first":
    state.put("first_row", min(int(state.get("first_row")), stats.n_rows - 1))
    first = int(
        w[2].number_input(
            "First row", min_value=0, max_value=stats.n_rows - 1, step=1, **state.bind("first_row")
        )
    )
else:
    first = 0
picked = pv.pick_rows(plan, n_window, how=how, first=first)
w[3].caption(
    f"Showing {picked.size} of {stats.n_rows:,} rows ({ROW_PICK_LABELS[how]}). Labels "
    "are documents; hover a slot for its row, slot, document, position and token."
)
rows = cached.rows(corpus, s, plan, picked)
tokens = cached.decoded_rows(corpus, rows.input_ids) if corpus.has_text else None
trained = pv.trained_slots(plan, corpus.token_ids, rows=rows.row_index) if corpus.flagged else None
if not corpus.has_text:
    st.caption("Synthetic corpus: lengths only, so there is no text to show per token.")
if trained is not None:
    st.caption(
        f"Washed-out colours: tokens that are not trained (train on {what}); hover says "
        "whether a trained token is a target (the first token of a piece has none)."
    )
ui.chart(
    figures.row_heatmap(
        rows.doc_ids,
        row_index=rows.row_index,
        position_ids=rows.position_ids,
        tokens=tokens,
        trained=trained,
        labels=rows.labels if trained is not None else None,
    ),
    key="row_heatmap",
)
ui.chart(
    figures.overview_heatmap(
        plan.row,
        plan.offset,
        plan.length,
        plan.n_rows,
        plan.max_len,
        marked=picked,
        trained_fill=pv.trained_row_fill(plan, corpus.token_ids) if corpus.flagged else None,
    ),
    key="overview_heatmap",
)

# ----------------------------------------------------------------------------- A/B
st.subheader("A/B")
a = state.pinned()
c = st.columns([1, 1, 3], vertical_alignment="center")
c[0].button(
    "Pin as A",
    on_click=state.pin,
    args=(s,),
    icon=":material/push_pin:",
    help="Then change max length, strategy or sort in the sidebar: A and B (the current "
    "settings) are shown side by side.",
)
if a is None:
    c[2].caption("Pin the current settings, change them, and compare.")
    st.stop()
c[1].button("Unpin A", on_click=state.pin, args=(None,), icon=":material/close:")
label = lambda x: f"{x.max_len:,} · {x.strategy} · sort {x.sort} · {x.overflow}"  # noqa: E731
c[2].caption(f"A: {label(a)} — B: {label(s)}")
if a == s:
    st.info("A and B are the same settings: change something in the sidebar.")
    st.stop()
reason = cached.too_big(corpus, a.max_len, a.strategy, a.overflow)
if reason:
    st.error(f"A cannot be planned here: {reason}")
    st.stop()
plan_a, stats_a, trade_a = cached.plan_for(corpus, a)


def numbers(st_: pv.PackStats, t: pv.Tradeoffs) -> dict:
    return {
        "rows": st_.n_rows,
        "efficiency": st_.efficiency,
        "padding tokens": st_.padding_tokens,
        "lost tokens": st_.lost_tokens,
        "split documents": st_.split_docs,
        "tokens that lose context": t.fragmented_share,
        "attention pairs per token": t.attention_per_token,
        "pieces per row": st_.mean_pieces_per_row,
    }


na, nb = numbers(stats_a, trade_a), numbers(stats, trade)
shares = {"efficiency", "tokens that lose context"}


def shown(k: str, v: float) -> str:
    if k in shares:
        return f"{v:.2%}"
    return f"{v:,.2f}" if isinstance(v, float) else f"{v:,}"


def delta(k: str, x: float, y: float) -> str:
    d = y - x
    if k in shares:
        return f"{d * 100:+.2f} pp"
    return f"{d:+,.2f}" if isinstance(d, float) else f"{d:+,}"


ab = pd.DataFrame(
    {
        "": list(na),
        "A": [shown(k, v) for k, v in na.items()],
        "B": [shown(k, nb[k]) for k in na],
        "B − A": [delta(k, na[k], nb[k]) for k in na],
    }
)
st.dataframe(ab, hide_index=True)
ui.csv_button(
    pd.DataFrame({"metric": list(na), "A": list(na.values()), "B": list(nb.values())}),
    name="a-b",
)
cols = st.columns(2)
for col, (name, p, x) in zip(cols, (("A", plan_a, a), ("B", plan, s)), strict=True):
    pick = pv.pick_rows(p, n_window, how=how, first=first)
    r = cached.rows(corpus, x, p, pick, with_ids=False)
    with col:
        st.caption(f"**{name}**: {label(x)}")
        ui.chart(
            figures.row_heatmap(
                r.doc_ids, row_index=r.row_index, title=f"{name}: {p.n_rows:,} rows"
            ),
            key=f"ab_{name}",
            name=f"rows-{name}",
        )
