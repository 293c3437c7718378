"""packviz.packing and its engines (packviz._fit): invariants (hypothesis), exact
agreement with the slow reference, and plans as immutable values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import packviz as pv
from packviz import _fit
from packviz._reference import reference_pack


def rows_of(plan):
    rows = [[] for _ in range(plan.n_rows)]
    for r, d, s, n in zip(plan.row, plan.doc, plan.start, plan.length, strict=True):
        rows[r].append((int(d), int(s), int(n)))
    return rows


@st.composite
def corpora(draw, max_docs=60):
    max_len = draw(st.sampled_from([1, 2, 3, 7, 16, 100, 512, 4096, 65536]))
    top = draw(st.sampled_from([max_len, 2 * max_len + 3, 5]))
    lengths = draw(st.lists(st.integers(0, top), max_size=max_docs))
    return lengths, max_len


combos = st.tuples(
    st.sampled_from(pv.STRATEGIES), st.sampled_from(pv.SORTS), st.sampled_from(pv.OVERFLOWS)
)


@given(corpora(), combos, st.integers(0, 3))
def test_invariants(corpus, combo, seed):
    lengths, max_len = corpus
    strategy, sort, overflow = combo
    plan = pv.pack(lengths, max_len, strategy=strategy, sort=sort, overflow=overflow, seed=seed)
    lengths = np.asarray(lengths, dtype=np.int64)
    fill = plan.row_fill
    assert (fill <= max_len).all() and (fill >= 1).all()
    assert (plan.length >= 1).all() and (plan.length <= max_len).all()
    # ordered by row, then offset; pieces tile each row from column 0 without gaps
    assert (np.diff(plan.row) >= 0).all()
    for row in rows_of(plan):
        assert row
    ends = plan.offset + plan.length
    same_row = plan.row[1:] == plan.row[:-1]
    assert (plan.offset[1:][same_row] == ends[:-1][same_row]).all()
    assert (plan.offset[1:][~same_row] == 0).all()
    # every kept token exactly once: per document, the pieces cover [0, kept) disjointly
    stats = plan.stats()
    assert stats.packed_tokens + stats.lost_tokens == stats.input_tokens == lengths.sum()
    order = np.lexsort((plan.start, plan.doc))
    d, s, n = plan.doc[order], plan.start[order], plan.length[order]
    for doc in np.unique(d):
        sel = d == doc
        starts, lens = s[sel], n[sel]
        assert starts[0] == 0
        assert (starts[1:] == (starts + lens)[:-1]).all()
        kept = int(lens.sum())
        if overflow == "split" or strategy == "wrapped":
            assert kept == lengths[doc]
        else:
            assert kept == min(lengths[doc], max_len)
    if overflow == "drop" and strategy != "wrapped":
        assert not np.isin(np.flatnonzero(lengths > max_len), plan.doc).any()
    # a run of equal doc ids is exactly one piece: no document twice in a row
    for row in rows_of(plan):
        docs = [p[0] for p in row]
        assert len(docs) == len(set(docs))


@given(corpora(), st.sampled_from(pv.SORTS), st.sampled_from(pv.OVERFLOWS))
def test_row_counts_between_strategies(corpus, sort, overflow):
    lengths, max_len = corpus
    n = {
        s: pv.pack(lengths, max_len, strategy=s, sort=sort, overflow=overflow).n_rows
        for s in pv.STRATEGIES
    }
    assert n["best_fit"] <= n["next_fit"]
    assert n["first_fit"] <= n["next_fit"]
    total = sum(lengths)
    assert n["wrapped"] == -(-total // max_len)
    pieces = pv.pack(lengths, max_len, strategy="padded", sort=sort, overflow=overflow)
    assert n["padded"] == pieces.n_pieces
    stats = pieces.stats()
    assert stats.n_rows >= stats.lower_bound_rows


@given(corpora(max_docs=30), combos, st.integers(0, 2))
def test_equals_slow_reference(corpus, combo, seed):
    """Same rows, same pieces, same order as the one-piece-at-a-time reference."""
    lengths, max_len = corpus
    strategy, sort, overflow = combo
    plan = pv.pack(lengths, max_len, strategy=strategy, sort=sort, overflow=overflow, seed=seed)
    assert rows_of(plan) == reference_pack(lengths, max_len, strategy, sort, overflow, seed)


@pytest.mark.parametrize("block", [1, 3, 2048])
@pytest.mark.parametrize("small_run", [0, 1 << 62], ids=["vectorized", "row-by-row"])
@given(corpora(max_docs=200), st.sampled_from(["desc", "asc"]), st.sampled_from(pv.OVERFLOWS))
def test_first_fit_run_paths_match_reference(block, small_run, corpus, sort, overflow):
    """Both ways of placing a run in first fit (all candidates at once, or one candidate
    row at a time), over room blocks of any size, give the reference's rows."""
    lengths, max_len = corpus
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_fit, "FIRST_FIT_SMALL_RUN", small_run)
        mp.setattr(_fit, "FIRST_FIT_BLOCK", block)
        plan = pv.pack(lengths, max_len, strategy="first_fit", sort=sort, overflow=overflow)
    assert rows_of(plan) == reference_pack(lengths, max_len, "first_fit", sort, overflow)


@pytest.mark.parametrize("sort", pv.SORTS)
@pytest.mark.parametrize("strategy", ["best_fit", "first_fit", "next_fit"])
def test_reference_on_heavy_tailed_corpus(strategy, sort):
    """Long runs of equal lengths (the grouped fast path) on a realistic corpus."""
    lengths = pv.synthetic_lengths(3000, median=60, seed=4, max_length=2000)
    plan = pv.pack(lengths, 256, strategy=strategy, sort=sort, seed=1)
    assert rows_of(plan) == reference_pack(lengths, 256, strategy, sort, "split", 1)


def test_best_fit_decreasing_on_a_larger_corpus_is_the_reference_and_near_the_bound():
    lengths = pv.synthetic_lengths(20000, seed=3, max_length=2048)
    plan = pv.pack(lengths, 2048)
    assert rows_of(plan) == reference_pack(lengths, 2048)
    assert plan.n_rows - plan.stats().lower_bound_rows <= 2


def test_worked_example():
    plan = pv.pack([5, 3, 6, 2], 8)
    assert rows_of(plan) == [[(2, 0, 6), (3, 0, 2)], [(0, 0, 5), (1, 0, 3)]]
    nf = pv.pack([5, 3, 6, 2], 8, strategy="next_fit", sort="none")
    assert rows_of(nf) == [[(0, 0, 5), (1, 0, 3)], [(2, 0, 6), (3, 0, 2)]]
    wrapped = pv.pack([5, 3, 6, 2], 8, strategy="wrapped", sort="none")
    assert rows_of(wrapped) == [[(0, 0, 5), (1, 0, 3)], [(2, 0, 6), (3, 0, 2)]]
    wrapped = pv.pack([5, 6, 3], 4, strategy="wrapped", sort="none")
    assert rows_of(wrapped) == [
        [(0, 0, 4)],
        [(0, 4, 1), (1, 0, 3)],
        [(1, 3, 3), (2, 0, 1)],
        [(2, 1, 2)],
    ]


def test_split_keeps_full_chunks_and_a_remainder():
    plan = pv.pack([10], 4, strategy="padded")
    assert rows_of(plan) == [[(0, 0, 4)], [(0, 4, 4)], [(0, 8, 2)]]
    trunc = pv.pack([10, 3], 4, overflow="truncate")
    assert trunc.stats().lost_tokens == 6 and trunc.stats().truncated_docs == 1
    drop = pv.pack([10, 3], 4, overflow="drop")
    assert drop.stats().lost_tokens == 10 and drop.stats().dropped_docs == 1
    assert drop.doc.tolist() == [1]


def test_empty_inputs():
    for lengths in ([], [0, 0]):
        plan = pv.pack(lengths, 16)
        assert plan.n_rows == 0 and plan.n_pieces == 0
        s = plan.stats()
        assert s.efficiency == 0.0 and s.n_empty_docs == len(lengths)


def test_random_sort_is_seeded():
    lengths = pv.synthetic_lengths(500, seed=1)
    a = pv.pack(lengths, 1024, sort="random", seed=5)
    b = pv.pack(lengths, 1024, sort="random", seed=5)
    c = pv.pack(lengths, 1024, sort="random", seed=6)
    assert np.array_equal(a.doc, b.doc) and not np.array_equal(a.doc, c.doc)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strategy": "fastest"}, "next_fit, first_fit, best_fit, wrapped, padded"),
        ({"sort": "up"}, "desc, asc, none, random"),
        ({"overflow": "wrap"}, "split, truncate, drop"),
        ({"max_len": 0}, "between 1 and"),
        ({"max_len": -5}, "between 1 and"),
        ({"max_len": 2**21}, "between 1 and"),
        ({"max_len": 8.0}, "must be an integer"),
        ({"max_len": True}, "must be an integer"),
        ({"lengths": [3, -1]}, "document 1 has length -1"),
        ({"lengths": [3, 2.5]}, "document 1 has length 2.5"),
        ({"lengths": ["a"]}, "must be integers"),
        ({"lengths": [[1, 2]]}, "1-D"),
        ({"lengths": [True]}, "must be integers"),
        ({"seed": "x"}, "seed"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"lengths": [2**62, 2**62]}, "not supported"),
        ({"lengths": [1e300]}, "not supported"),
        ({"lengths": [float("nan")]}, "has length nan"),
    ],
)
def test_bad_input_messages(kwargs, message):
    args = {"lengths": [3, 4], "max_len": 8, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        pv.pack(args.pop("lengths"), args.pop("max_len"), **args)


def test_integral_floats_and_numpy_ints_are_accepted():
    plan = pv.pack(np.array([3.0, 5.0]), np.int64(8))
    assert plan.stats().packed_tokens == 8


def test_every_combination_runs_on_edge_lengths():
    for strategy, sort, overflow in itertools.product(pv.STRATEGIES, pv.SORTS, pv.OVERFLOWS):
        plan = pv.pack([1, 8, 9, 0, 16, 17], 8, strategy=strategy, sort=sort, overflow=overflow)
        assert (plan.row_fill <= 8).all()


def test_plan_is_an_immutable_value_that_never_aliases_its_input():
    lengths = np.array([5, 3, 6, 2], dtype=np.int64)
    plan = pv.pack(lengths, 8)
    before = plan.stats()
    lengths[:] = 1  # the caller changes their array afterwards
    assert plan.stats() == before
    assert plan.doc_lengths.tolist() == [5, 3, 6, 2]
    for name in ("row", "doc", "start", "length", "offset", "doc_lengths"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(plan, name)[0] = 7
    # a plan built directly from writable arrays keeps copies, not the caller's arrays
    row = np.array([0])
    direct = pv.PackPlan(4, 1, 1, row, row, row * 0, np.array([3]), row * 0, doc_lengths=[3])
    row[0] = 9
    assert direct.row.tolist() == [0] and not direct.row.flags.writeable


def test_wrapped_memory_follows_pieces_not_length_values():
    """A billion-token document in rows of 2**20 is 954 pieces: planned from those, not
    from a histogram as long as the document."""
    plan = pv.pack([10**9], 2**20, strategy="wrapped")
    assert plan.n_pieces == plan.n_rows == -(-(10**9) // 2**20)
    assert int(plan.length.sum()) == 10**9
