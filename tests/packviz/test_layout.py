"""packviz.layout: materialized arrays rebuild every document and match the reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import packviz as pv
from packviz import layout
from packviz._reference import reference_materialize, reference_pack
from packviz.pieces import piece_lengths, piece_spans


@st.composite
def tokenized(draw):
    max_len = draw(st.sampled_from([1, 2, 5, 16, 64]))
    lengths = draw(st.lists(st.integers(0, 3 * max_len), max_size=25))
    rng = np.random.default_rng(draw(st.integers(0, 10)))
    ids = [rng.integers(0, 50_000, n) for n in lengths]
    trained = [rng.random(n) < 0.6 for n in lengths] if draw(st.booleans()) else None
    return ids, max_len, trained


combos = st.tuples(
    st.sampled_from(pv.STRATEGIES), st.sampled_from(pv.SORTS), st.sampled_from(pv.OVERFLOWS)
)


@given(tokenized(), combos, st.sampled_from([1, 3, 1 << 18]))
def test_rebuilds_every_document(data, combo, block_slots):
    ids, max_len, trained = data
    strategy, sort, overflow = combo
    lengths = [len(x) for x in ids]
    plan = pv.pack(lengths, max_len, strategy=strategy, sort=sort, overflow=overflow)
    token_ids = pv.TokenIds.from_sequences(ids, trained=trained)
    with pytest.MonkeyPatch.context() as mp:  # the blocked fill at every block size
        mp.setattr(layout, "_BLOCK_SLOTS", block_slots)
        a = pv.materialize(plan, token_ids, pad_id=3)
    assert a.input_ids.shape == (plan.n_rows, max_len)
    for f in (a.input_ids, a.doc_ids, a.position_ids, a.labels):
        assert f.dtype == np.int32
    ref = reference_materialize(
        reference_pack(lengths, max_len, strategy, sort, overflow), ids, max_len, 3, trained
    )
    for k, v in ref.items():
        np.testing.assert_array_equal(getattr(a, k), v, err_msg=k)
    # rebuild each document from the rows (its runs in order of position in the document)
    keeps_all = overflow == "split" or strategy == "wrapped"
    for d, x in enumerate(ids):
        mine = plan.doc == d
        pieces = sorted(
            zip(plan.start[mine], plan.row[mine], plan.offset[mine], plan.length[mine], strict=True)
        )
        rebuilt = [a.input_ids[r, o : o + n] for _, r, o, n in pieces]
        rebuilt = np.concatenate(rebuilt) if rebuilt else np.zeros(0, np.int64)
        if keeps_all:
            kept = len(x)
        elif overflow == "truncate":
            kept = min(len(x), max_len)
        else:
            kept = len(x) if len(x) <= max_len else 0
        np.testing.assert_array_equal(rebuilt, x[:kept])
        assert (a.doc_ids == d).sum() == kept
    # padding and piece starts are never trained; padding positions are 0
    pad = a.doc_ids < 0
    assert (a.labels[pad] == -100).all() and (a.input_ids[pad] == 3).all()
    assert (a.position_ids[pad] == 0).all()
    starts = (a.position_ids == 0) & ~pad
    assert (a.labels[starts] == -100).all()
    inner = ~starts & ~pad  # a target is its own token, or -100 where it is not trained
    assert ((a.labels[inner] == a.input_ids[inner]) | (a.labels[inner] == -100)).all()
    if trained is None:
        assert (a.labels[inner] == a.input_ids[inner]).all()
    assert starts.sum() == plan.n_pieces
    # cu_seqlens: the real pieces back to back
    assert a.cu_seqlens[0] == 0 and a.cu_seqlens.dtype == np.int32
    assert a.cu_seqlens[-1] == (~pad).sum()
    np.testing.assert_array_equal(np.diff(a.cu_seqlens), plan.length)
    assert a.max_seqlen == (plan.length.max() if plan.n_pieces else 0)


def test_rows_subset_in_given_order():
    ids = [np.arange(n) + 100 * n for n in (5, 3, 7, 2, 6, 1)]
    plan = pv.pack([len(x) for x in ids], 8)
    full = pv.materialize(plan, ids, pad_id=0)
    rows = [plan.n_rows - 1, 0, 0]
    part = pv.materialize(plan, ids, pad_id=0, rows=rows)
    np.testing.assert_array_equal(part.input_ids, full.input_ids[rows])
    np.testing.assert_array_equal(part.row_index, rows)
    flat, _ = piece_lengths(full.doc_ids[rows])
    assert part.cu_seqlens.tolist() == [0, *np.cumsum(flat).tolist()]


def test_lengths_only_plan_builds_everything_but_ids():
    plan = pv.pack([5, 3, 9], 8)
    a = pv.materialize(plan, None, pad_id=0)
    assert a.input_ids is None and a.labels is None
    # desc: the full 8-token chunk of document 2 first, its 1-token remainder last
    assert a.doc_ids.tolist() == [[2] * 8, [0] * 5 + [1] * 3, [2] + [-1] * 7]
    assert a.position_ids.tolist() == [list(range(8)), [0, 1, 2, 3, 4, 0, 1, 2], [0] * 8]


def test_ragged_pair_and_tokenids_are_accepted():
    ids = [np.array([1, 2, 3]), np.array([4])]
    plan = pv.pack([3, 1], 4)
    a = pv.materialize(plan, ids, pad_id=9)
    b = pv.materialize(plan, pv.TokenIds.from_sequences(ids), pad_id=9)
    c = pv.materialize(plan, (np.array([1, 2, 3, 4]), np.array([0, 3, 4])), pad_id=9)
    assert a.input_ids.tolist() == b.input_ids.tolist() == c.input_ids.tolist() == [[1, 2, 3, 4]]


@pytest.mark.parametrize(
    "token_ids, kwargs, message",
    [
        ([[1, 2, 3]], {}, "has 1 documents but the plan was made for 2"),
        ([[1, 2, 3], [4, 5]], {}, "document 1 has 2 token ids but the plan was made for length 1"),
        ([[1, 2, 3], [4]], {"rows": [5]}, r"rows must be in \[0, 1\)"),
        ([[1, 2, 3], [4]], {"pad_id": -1}, "pad_id"),
        ([[1, 2, 3], [-4]], {}, "non-negative"),
        ([[1, 2, 3], [4.5]], {}, "integers"),
    ],
)
def test_bad_input(token_ids, kwargs, message):
    plan = pv.pack([3, 1], 4)
    with pytest.raises(ValueError, match=message):
        pv.materialize(plan, token_ids, **{"pad_id": 0, **kwargs})


def test_piece_lengths_and_cu_seqlens():
    doc_ids = np.array([[4, 4, 4, 9, 9, -1], [-1] * 6, [7, 7, 2, 2, 2, 7]])
    flat, per_row = piece_lengths(doc_ids)
    assert flat.tolist() == [3, 2, 2, 3, 1] and per_row.tolist() == [2, 0, 3]
    rows, first, last = piece_spans(doc_ids)
    assert rows.tolist() == [0, 0, 2, 2, 2]
    assert first.tolist() == [0, 3, 0, 2, 5] and last.tolist() == [2, 4, 1, 4, 5]
    cu, longest = pv.cu_seqlens_from_doc_ids(doc_ids)
    assert cu.tolist() == [0, 3, 5, 7, 10, 11] and cu.dtype == np.int32 and longest == 3
    # a whole dataset past 2**31 tokens widens instead of wrapping around
    big = layout.cu_seqlens_from_lengths(np.array([2**30, 2**30, 5]))
    assert big.dtype == np.int64 and big[-1] == 2**31 + 5


def test_arrays_are_int32():
    a = pv.materialize(pv.pack([2], 4), [[1, 2]], pad_id=0)
    for f in (a.input_ids, a.labels, a.position_ids, a.doc_ids, a.cu_seqlens):
        assert f.dtype == np.int32
