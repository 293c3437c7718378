"""Masks: one row's causal and document masks, the block view, devices, timing, memory."""

import numpy as np
import streamlit as st

import packviz as pv
from dashboard import cached, devices, figures, state
from dashboard.corpus import current_corpus

DENSE_LIMIT = 8192  # build dense [L, L] masks up to here (64 MiB bool)

s = state.page_settings()
corpus = current_corpus()
st.title("Masks")
plan, stats = cached.plan_for(corpus, s)
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
row = cached.rows_window(corpus, s, plan, r, r + 1, with_ids=False)  # doc_ids only
doc_ids = row.doc_ids[0]
n_pieces = int(pieces_per_row[r])
st.caption(
    f"Row {r:,}: {n_pieces} piece{'s' * (n_pieces != 1)}, "
    f"{s.max_len - int(plan.row_fill[r]):,} padding slots."
)

st.plotly_chart(figures.mask_figure(doc_ids, start=0, stop=s.max_len), key="mask_full")
if span < s.max_len:
    st.plotly_chart(
        figures.mask_figure(doc_ids, start=start, stop=start + span, max_size=512), key="mask_zoom"
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
        delta=f"on {mask.device}",
        delta_color="off",
    )
else:
    c[0].metric(
        "Dense document mask", "skipped", delta=f"over {DENSE_LIMIT:,} slots", delta_color="off"
    )
(full, partial), seconds = devices.timed(
    lambda: pv.block_layout(ids, block_size=128, device=device), device
)
c[1].metric("Block layout (128)", f"{seconds * 1000:.1f} ms")
c[2].metric("Device", str(device), help="CUDA when available (unless forced to CPU), else CPU.")

st.plotly_chart(
    figures.block_figure(full[0].cpu().numpy(), partial[0].cpu().numpy(), block_size=128),
    key="block_view",
)

st.subheader(f"Memory per row at max length {s.max_len:,}")
mem = pv.mask_memory(s.max_len, n_pieces, batch=1, block_size=128)
st.dataframe(
    {
        "format": list(mem),
        "bytes": [int(v) for v in mem.values()],
        "MiB": [v / 2**20 for v in mem.values()],
    },
    hide_index=True,
)
