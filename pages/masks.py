"""Masks: one row's causal and document masks (trained tokens marked on the axes), the block
view, devices, timing, memory."""

import numpy as np
import pandas as pd
import streamlit as st

import packviz as pv
from dashboard import cached, devices, figures, records, state, ui
from dashboard.corpus import current_corpus

DENSE_LIMIT = 8192  # build dense [L, L] masks up to here (64 MiB bool)

s = state.page_settings()
corpus = current_corpus()
st.title("Masks")
plan, stats, _ = cached.plan_for(corpus, s)
if stats.n_rows == 0:
    st.info("The plan has no rows.")
    st.stop()

c = st.columns([1, 1, 2])
pieces_per_row = plan.pieces_per_row
if not state.is_set("mask_row"):  # start on the row with the most pieces
    state.put("mask_row", int(np.argmax(pieces_per_row)))
state.put("mask_row", min(int(state.get("mask_row")), stats.n_rows - 1))
r = int(
    c[0].number_input(
        "Row", min_value=0, max_value=stats.n_rows - 1, step=1, **state.bind("mask_row")
    )
)
state.put("mask_start", min(int(state.get("mask_start")), s.max_len - 1))
start = int(
    c[1].number_input(
        "Zoom: first slot",
        min_value=0,
        max_value=s.max_len - 1,
        step=64,
        **state.bind("mask_start"),
    )
)
span = c[2].select_slider(
    "Zoom: slots shown",
    options=[64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072],
    value=512,
    key="mask_span",
)
row = cached.rows(corpus, s, plan, np.array([r]), with_ids=False)  # doc_ids only
doc_ids = row.doc_ids[0]
n_pieces = int(pieces_per_row[r])
st.caption(
    f"Row {r:,}: {n_pieces} piece{'s' * (n_pieces != 1)}, "
    f"{s.max_len - int(plan.row_fill[r]):,} padding slots. Axis labels mark where "
    "documents start (some are left out when pieces are close; hover shows every cell)."
)

trained = None
if corpus.flagged:
    trained = pv.trained_slots(plan, corpus.token_ids, rows=[r])[0]
    st.caption(
        f"Green bars along the top and left edges: the row's {int(trained.sum()):,} trained "
        f"tokens (train on {records.TRAIN_ON_LABELS[corpus.train_on]}); the rest of the row "
        "is attended to but not trained."
    )
ui.chart(figures.mask_figure(doc_ids, start=0, stop=s.max_len, trained=trained), key="mask_full")
if span < s.max_len:
    ui.chart(
        figures.mask_figure(doc_ids, start=start, stop=start + span, max_size=512, trained=trained),
        key="mask_zoom",
    )

st.subheader("Building the mask")
cuda = devices.cuda_available()
force_cpu = st.toggle(
    "Force CPU",
    disabled=not cuda,
    help="Build on the CPU even when CUDA is available.",
    **state.bind("mask_force_cpu"),
)
device = devices.mask_device(force_cpu)
ids = np.ascontiguousarray(doc_ids[None])
c = st.columns(3)
if s.max_len <= DENSE_LIMIT:
    mask, seconds = devices.timed(lambda: pv.document_mask(ids, device=device), device)
    c[0].metric(
        "Dense document mask",
        f"{seconds * 1000:.1f} ms",
        delta=f"built on {mask.device}",
        delta_color="off",
        delta_arrow="off",
    )
else:
    c[0].metric(
        "Dense document mask",
        "skipped",
        delta=f"over {DENSE_LIMIT:,} slots ({figures.bytes_text(s.max_len**2)} per row)",
        delta_color="off",
        delta_arrow="off",
    )
(full, partial), seconds = devices.timed(
    lambda: pv.block_layout(ids, block_size=128, device=device), device
)
c[1].metric("Block layout (128)", f"{seconds * 1000:.1f} ms")
c[2].metric("Device", str(device), help="CUDA when available (unless forced to CPU), else CPU.")

ui.chart(
    figures.block_figure(full[0].cpu().numpy(), partial[0].cpu().numpy(), block_size=128),
    key="block_view",
)

st.subheader(f"Memory per row at max length {s.max_len:,}")
mem = pv.mask_memory(s.max_len, n_pieces, batch=1, block_size=128)
labels = {
    "dense_bool": "dense bool mask [L, L]",
    "additive_fp32": "additive fp32 mask [L, L]",
    "cu_seqlens": "cu_seqlens (int32, pieces + 1)",
    "position_ids": "position_ids (int32, L)",
    "block_mask": "FlexAttention BlockMask tables (block 128)",
}
table = pd.DataFrame(
    {
        "format": [labels.get(k, k) for k in mem],
        "size": [figures.bytes_text(v) for v in mem.values()],
        "bytes": [int(v) for v in mem.values()],
    }
)
st.dataframe(
    table,
    hide_index=True,
    column_config={"bytes": st.column_config.NumberColumn(format="localized")},
)
