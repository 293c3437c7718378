"""Hypothesis strategies and names shared by the mask tests (CPU and CUDA)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

#: Every table of a FlexAttention ``BlockMask``: the key side (forward) and the query
#: side (backward), partial and full blocks.
BLOCK_MASK_TABLES = (
    "kv_num_blocks",
    "kv_indices",
    "full_kv_num_blocks",
    "full_kv_indices",
    "q_num_blocks",
    "q_indices",
    "full_q_num_blocks",
    "full_q_indices",
)


@st.composite
def doc_id_batches(draw, max_len=48):
    batch = draw(st.integers(1, 3))
    width = draw(st.integers(1, max_len))
    rows = []
    for _ in range(batch):
        row, doc = [], draw(st.integers(0, 5))
        while len(row) < width and draw(st.booleans() | st.just(True)):
            n = draw(st.integers(1, width))
            row += [doc] * n
            doc += draw(st.integers(1, 3))
            if draw(st.integers(0, 4)) == 0:
                break
        row = (row + [-1] * width)[:width]
        rows.append(row)
    return np.array(rows, dtype=np.int64)
