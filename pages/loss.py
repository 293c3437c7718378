"""Loss: how much of the gradient each document gets, packed with a token-mean loss
against padded with a per-sequence mean (fine-tuning records: trained targets only)."""

import numpy as np
import pandas as pd
import streamlit as st

import packviz as pv
from dashboard import cached, figures, records, state, ui
from dashboard.corpus import current_corpus

s = state.page_settings()
corpus = current_corpus()
st.title("Loss")
ui.settings_caption(corpus.label, s)
st.markdown(
    "A **token-mean** loss over a packed batch gives every trained token the same weight, "
    "so long documents weigh more; a **per-sequence mean** over padded batches gives every "
    "sequence the same weight, so short ones do. TRL and transformers average over every "
    "trained token of an optimizer step (`num_items_in_batch`); averaging per micro-batch "
    "under gradient accumulation — the loss pitfall reported across trainers in 2024 — "
    "sits in between. Set the rows per optimizer step to see what your batches do."
)
batch = int(
    st.number_input(
        "Rows per optimizer step (batch size × gradient accumulation)",
        min_value=1,
        max_value=4096,
        step=1,
        **state.bind("batch_rows"),
    )
)
if corpus.flagged:
    st.caption(
        f"Fine-tuning records (train on {records.TRAIN_ON_LABELS[corpus.train_on]}): only "
        "trained targets count — labels that are not -100 — so prompts and untrained turns "
        "weigh nothing, and a document's weight follows its trained tokens, not its length."
    )
plan, stats, _ = cached.plan_for(corpus, s)
padded_s = state.Settings(s.max_len, "padded", s.sort, s.overflow, s.seed)
padded_plan = (
    plan if s.strategy == "padded" else cached.plan_for(corpus, padded_s, slot="plan padded")[0]
)
lengths = corpus.lengths
if stats.trained_targets == 0:
    st.info("No document has a target (every piece is one token long): there is no loss.")
    st.stop()

order = cached.length_order(corpus)
token = cached.loss_weights(corpus, s, plan, batch, "token")
sequence = cached.loss_weights(corpus, padded_s, padded_plan, batch, "sequence")
targets = cached.loss_weights(corpus, s, plan, max(plan.n_rows, 1), "token")  # global mean

st.markdown("**The longest 10 % of the documents carry, of the gradient:**")
c = st.columns(3)
c[0].metric(
    f"Token mean, packed ({s.strategy})",
    f"{pv.longest_share(token, lengths, order=order):.1%}",
    help="Share of the gradient carried by the longest tenth of the documents, with a "
    f"token-mean loss over each step of {batch} packed rows.",
)
c[1].metric(
    "Per-sequence mean, padded",
    f"{pv.longest_share(sequence, lengths, order=order):.1%}",
    help="The same, with one document (or chunk) per padded row, each row's mean loss "
    "averaged over the step.",
)
c[2].metric(
    "Their share of the targets",
    f"{pv.longest_share(targets, lengths, order=order):.1%}",
    help="What a token mean over the whole epoch gives them: their share of the targets "
    "(trained targets only, for fine-tuning records).",
)
st.markdown(
    f"With these settings **the longest 10 % of the documents carry "
    f"{pv.longest_share(token, lengths, order=order):.0%} of the gradient** under a token mean over "
    f"packed batches, and {pv.longest_share(sequence, lengths, order=order):.0%} under a per-sequence "
    "mean over padded batches."
)
shares = {
    "token mean, packed": pv.share_by_length(token, lengths, order=order),
    "per-sequence mean, padded": pv.share_by_length(sequence, lengths, order=order),
    "share of the targets": pv.share_by_length(targets, lengths, order=order),
}
ui.chart(figures.loss_share_figure(shares), key="loss_shares")
st.caption(
    "Each group of bars is a tenth of the documents by length, shortest on the left; the "
    "dotted line is an equal share (10 %)."
)
table = pd.DataFrame(
    {
        "tenth (by length)": np.arange(1, 11),
        "lengths": [f"{a:,}–{b:,}" for a, b in pv.length_groups(lengths, order=order)],
        **{k: v for k, v in shares.items()},
    }
)
st.dataframe(
    table,
    hide_index=True,
    column_config={k: st.column_config.NumberColumn(format="percent") for k in shares},
)
ui.csv_button(table, name=f"loss-shares-{batch}")
