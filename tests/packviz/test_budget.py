"""packviz.budget: piece counts are exact (wrapped: an upper bound), the smallest max
length within a budget is the smallest, and measured file sizes are close to real ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import packviz as pv
from packviz._reference import reference_pack, reference_pieces
from packviz.budget import estimate_file_slots

lengths_lists = st.lists(st.integers(0, 300), max_size=40)
max_lens = st.sampled_from([1, 2, 3, 7, 16, 100, 512])


@given(lengths_lists, max_lens, st.sampled_from(pv.OVERFLOWS))
def test_count_pieces_is_exact(lengths, max_len, overflow):
    expected = len(reference_pieces(lengths, max_len, overflow))
    assert pv.count_pieces(lengths, max_len, overflow=overflow) == expected
    plan = pv.pack(lengths, max_len, overflow=overflow)
    assert plan.n_pieces == expected
    cost = pv.plan_cost(lengths, max_len, overflow=overflow)
    assert cost.pieces == expected and cost.rows >= plan.n_rows


@given(lengths_lists, max_lens, st.sampled_from(pv.SORTS))
def test_wrapped_count_is_an_upper_bound(lengths, max_len, sort):
    rows = reference_pack(lengths, max_len, "wrapped", sort)
    n = pv.count_pieces(lengths, max_len, strategy="wrapped")
    assert sum(map(len, rows)) <= n
    cost = pv.plan_cost(lengths, max_len, strategy="wrapped", sort=sort)
    assert cost.rows >= len(rows)


@given(lengths_lists, st.integers(0, 200), st.sampled_from(pv.OVERFLOWS))
def test_smallest_max_len_is_the_smallest(lengths, budget, overflow):
    m = pv.smallest_max_len(lengths, budget, overflow=overflow)
    count = lambda L: len(reference_pieces(lengths, L, overflow))  # noqa: E731
    if m is None:
        assert all(count(L) > budget for L in (1, 2, 5, 300, pv.MAX_LEN_LIMIT))
    else:
        assert count(m) <= budget
        assert m == 1 or count(m - 1) > budget


def test_max_len_one_on_the_default_synthetic_corpus_is_tens_of_millions_of_pieces():
    lengths = pv.synthetic_lengths(100_000, median=300, sigma=1.0, seed=0)
    cost = pv.plan_cost(lengths, 1)
    assert cost.pieces == int(lengths.sum()) > 40_000_000
    assert cost.bytes > 4 * 2**30
    assert pv.smallest_max_len(lengths, 10_000_000) < 16


def test_online_orders_cost_more_time_than_sorted_ones():
    lengths = pv.synthetic_lengths(1_000_000, seed=0)
    fast = pv.plan_cost(lengths, 2048, strategy="first_fit", sort="desc").seconds
    slow = pv.plan_cost(lengths, 2048, strategy="first_fit", sort="random").seconds
    assert fast < 1.5 < slow


def test_arrays_bytes_and_its_message():
    assert pv.arrays_bytes(3, 8, n_fields=2) == 3 * 8 * 4 * 2
    with pytest.raises(ValueError, match="n_rows=-1"):
        pv.arrays_bytes(-1, 8)


@pytest.mark.parametrize("fmt", pv.FORMATS)
def test_estimated_file_size_is_close_to_the_real_one(fmt):
    lengths = pv.synthetic_lengths(20_000, median=300, sigma=1.0, seed=0)
    plan = pv.pack(lengths, 512)
    real = len(pv.to_bytes(pv.materialize(plan, None, pad_id=0), fmt))
    est = pv.estimate_file_bytes(plan, None, fmt)
    assert plan.n_rows > 4 * (2**21 // 512)  # extrapolated from samples, not built whole
    assert abs(est - real) / real < (0.2 if fmt == "parquet" else 0.01), (est, real)


def test_estimate_with_token_ids():
    docs = [f"document {i} " + "words and more words " * (i % 37) for i in range(3000)]
    tok = pv.train_tokenizer(docs, vocab_size=512, cache_dir=False)
    ids = pv.encode(tok, docs)
    plan = pv.pack(ids.lengths, 256)
    real = len(pv.to_bytes(pv.materialize(plan, ids, pad_id=0), "npz"))
    est = pv.estimate_file_bytes(plan, ids, "npz", sample_slots=64 * 256)
    assert plan.n_rows > 4 * 64
    assert abs(est - real) / real < 0.01, (est, real)


def test_small_plans_are_measured_exactly():
    plan = pv.pack([3, 2, 4], 4)
    arrays = pv.materialize(plan, None, pad_id=0)
    for fmt in ("npz", "parquet"):
        assert pv.estimate_file_bytes(plan, None, fmt) == len(pv.to_bytes(arrays, fmt))
    fields = ["doc_ids"]
    assert pv.estimate_file_bytes(plan, None, "npz", fields=fields) == len(
        pv.to_bytes(arrays, "npz", fields=fields)
    )
    assert np.isfinite(pv.estimate_file_bytes(plan, None, "npz"))


@pytest.mark.parametrize(("n_rows", "sample_slots"), [(10, 64 * 16), (64, 64 * 16), (500, 64 * 16)])
def test_estimate_file_slots_are_the_slots_measured(monkeypatch, n_rows, sample_slots):
    """What measuring a file costs: the slots estimate_file_bytes builds (rows of blocks
    that overlap are built once, so it is an upper bound past the whole-plan case)."""
    from packviz import layout

    built = []
    real = layout.materialize

    def counting(plan, token_ids, *, pad_id, rows=None):
        built.append(plan.n_rows if rows is None else len(rows))
        return real(plan, token_ids, pad_id=pad_id, rows=rows)

    monkeypatch.setattr(layout, "materialize", counting)
    plan = pv.pack([64] * n_rows, 64)
    pv.estimate_file_bytes(plan, None, "npz", sample_slots=sample_slots)
    slots = estimate_file_slots(n_rows, 64, sample_slots=sample_slots)
    if n_rows <= 4 * 16:  # four samples of 16 rows or fewer: built whole, exactly
        assert sum(built) == n_rows and slots == n_rows * 64
    else:  # two samples of blocks, whatever the plan's size
        assert sum(built) * 64 <= slots == 3 * sample_slots
