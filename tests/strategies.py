"""Hypothesis strategies shared by the mask tests (CPU and CUDA)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st


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
