"""packviz.grids: the screen-sized reductions equal the slow, cell-by-cell references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import packviz as pv
from packviz._reference import reference_mask_grids, reference_overview_grid, reference_pack


def test_overview_grid_exact_small():
    # rows: 0 = [0,3) doc, [3,4) doc; 1 = [0,2) only; 2 = no pieces
    fill, rpc, edges = pv.overview_grid(
        np.array([0, 0, 1]), np.array([0, 3, 0]), np.array([3, 1, 2]), 3, 4, max_slots=4
    )
    assert rpc == 1
    assert edges.tolist() == [0, 1, 2, 3, 4]
    assert fill.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]]


@given(
    st.lists(st.integers(min_value=0, max_value=90), min_size=1, max_size=80),
    st.sampled_from(pv.STRATEGIES),
    st.integers(min_value=1, max_value=7),
    st.integers(min_value=1, max_value=9),
)
@settings(max_examples=60, deadline=None)
def test_overview_grid_equals_the_dense_picture(lengths, strategy, max_rows, max_slots):
    max_len = 40
    plan = pv.pack(lengths, max_len, strategy=strategy)
    fill, rpc, edges = pv.overview_grid(
        plan.row,
        plan.offset,
        plan.length,
        plan.n_rows,
        max_len,
        max_rows=max_rows,
        max_slots=max_slots,
    )
    assert fill.shape[0] <= max_rows and fill.shape[1] <= max_slots
    if plan.n_rows:
        rows = reference_pack(lengths, max_len, strategy)
        expected = reference_overview_grid(rows, max_len, rpc, edges)
        np.testing.assert_allclose(fill, expected, atol=1e-12)


@given(
    st.lists(st.sampled_from([-1, 0, 1, 2, 3]), min_size=1, max_size=48),
    st.integers(min_value=1, max_value=12),
    st.data(),
)
@settings(max_examples=80, deadline=None)
def test_mask_grids_are_max_pools_of_the_cell_masks(values, max_size, data):
    d = np.array(values)
    start = data.draw(st.integers(0, d.size - 1))
    stop = data.draw(st.integers(start + 1, d.size))
    g = pv.mask_grids(d, start=start, stop=stop, max_size=max_size)
    assert (g.start, g.stop) == (start, stop)
    causal, document, cross = reference_mask_grids(d, start, stop, g.block)
    assert (g.causal == causal).all()
    assert (g.document == document).all()
    assert (g.cross == cross).all()


def test_mask_grids_exact_for_small_rows():
    g = pv.mask_grids(np.array([0, 0, 0, 5, 5, -1, -1, 7]))
    assert g.block == 1 and g.document.shape == (8, 8)
    assert g.document[5].tolist() == [False] * 5 + [True, False, False]  # padding: itself
    assert g.cross[3, :3].all() and not g.cross[3, 3:].any()  # d5 would see d0 unmasked


@pytest.mark.parametrize("max_marks", [1, 2, 3, 100])
def test_piece_marks_are_the_piece_starts(max_marks):
    d = np.array([0, 0, 0, 5, 5, -1, -1, 7, 7, 7])
    slots, docs = pv.piece_marks(d, max_marks=max_marks)
    starts = [0, 3, 7]  # written out: where a new document begins (padding is no piece)
    assert slots.size == min(max_marks, 3)
    assert set(slots.tolist()) <= set(starts) and slots[0] == 0
    assert docs.tolist() == [int(d[s]) for s in slots]
    win_slots, win_docs = pv.piece_marks(d, start=4, stop=9)
    assert win_slots.tolist() == [4, 7] and win_docs.tolist() == [5, 7]
