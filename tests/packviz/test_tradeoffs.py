"""packviz.tradeoffs: fragmentation against a token-by-token reference, and every
Tradeoffs number against PackStats and hand-computed values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import packviz as pv
from packviz._reference import reference_fragmentation


def rows_of(plan):
    rows = [[] for _ in range(plan.n_rows)]
    for r, d, s, n in zip(plan.row, plan.doc, plan.start, plan.length, strict=True):
        rows[r].append((int(d), int(s), int(n)))
    return rows


combos = st.tuples(
    st.sampled_from(pv.STRATEGIES), st.sampled_from(pv.SORTS), st.sampled_from(pv.OVERFLOWS)
)


@given(st.lists(st.integers(0, 40), max_size=12), st.sampled_from([1, 3, 8, 32]), combos)
def test_fragmentation_matches_the_reference(lengths, max_len, combo):
    strategy, sort, overflow = combo
    plan = pv.pack(lengths, max_len, strategy=strategy, sort=sort, overflow=overflow)
    f = pv.context_fragmentation(plan)
    assert (f.fragmented_tokens, f.fragmented_docs, f.severed_pairs) == reference_fragmentation(
        rows_of(plan), len(lengths)
    )
    assert f.fragmented_docs == plan.stats().split_docs
    assert 0.0 <= f.share <= 1.0


def test_severed_pairs_are_exact_past_int64_squares():
    # one document of 2**33 tokens in pieces of 2**20: P(P+1)/2 overflows int64
    plan = pv.pack([2**33], 2**20, strategy="padded")
    p, piece = 2**33, 2**20
    expected = p * (p + 1) // 2 - (p // piece) * (piece * (piece + 1) // 2)
    assert pv.context_fragmentation(plan).severed_pairs == expected


@given(st.lists(st.integers(0, 60), max_size=30), st.sampled_from([4, 16, 64]), combos)
def test_tradeoffs_agree_with_stats(lengths, max_len, combo):
    strategy, sort, overflow = combo
    plan = pv.pack(lengths, max_len, strategy=strategy, sort=sort, overflow=overflow)
    s, t = plan.stats(), pv.tradeoffs(plan)
    assert (t.n_rows, t.slots, t.padding_tokens, t.lost_tokens, t.split_docs) == (
        s.n_rows,
        s.slots,
        s.padding_tokens,
        s.lost_tokens,
        s.split_docs,
    )
    assert t.efficiency == s.efficiency
    assert t.attention_pairs_document == s.attention_pairs_document
    if s.packed_tokens:
        assert t.attention_per_token <= t.causal_attention_per_token
    assert t.dense_mask_bytes == max_len * max_len
    assert pv.evaluate(lengths, max_len, strategy=strategy, sort=sort, overflow=overflow) == t


def test_hand_computed_tradeoffs():
    t = pv.tradeoffs(pv.pack([6, 3], 4))  # rows [d0 0:4], [d1], [d0 4:6]
    assert (t.n_rows, t.padding_tokens, t.fragmented_tokens, t.severed_pairs) == (3, 3, 2, 8)
    assert t.attention_per_token == pytest.approx((10 + 6 + 3) / 9)
    assert t.causal_attention_per_token == pytest.approx(3 * 10 / 9)
    assert t.as_dict()["fragmented_share"] == pytest.approx(2 / 9)


def test_wrapped_fragments_where_best_fit_does_not():
    lengths = pv.synthetic_lengths(500, median=100, seed=3)
    wrapped, best = (pv.evaluate(lengths, 4096, strategy=x) for x in ("wrapped", "best_fit"))
    assert best.fragmented_tokens == 0 < wrapped.fragmented_tokens
    assert wrapped.n_rows <= best.n_rows


def test_sweep_order_and_progress():
    seen = []
    out = pv.sweep_tradeoffs(
        [5, 9, 3],
        [4, 8],
        strategies=["best_fit", "padded"],
        sorts=["desc", "none"],
        progress=lambda done, total, label: seen.append((done, total)),
    )
    assert [(t.max_len, t.strategy, t.sort) for t in out][:3] == [
        (4, "best_fit", "desc"),
        (4, "best_fit", "none"),
        (4, "padded", "desc"),
    ]
    assert seen[-1] == (8, 8) and len(out) == 8
