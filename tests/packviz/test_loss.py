"""packviz.loss: per-document gradient shares against a target-by-target reference, and
the shares carried by the longest documents."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import packviz as pv
from packviz._reference import reference_loss_weights


def rows_of(plan):
    rows = [[] for _ in range(plan.n_rows)]
    for r, d, s, n in zip(plan.row, plan.doc, plan.start, plan.length, strict=True):
        rows[r].append((int(d), int(s), int(n)))
    return rows


@given(
    st.lists(st.integers(0, 30), max_size=25),
    st.sampled_from([1, 4, 16, 64]),
    st.sampled_from(pv.STRATEGIES),
    st.sampled_from(pv.SORTS),
    st.integers(1, 5),
    st.sampled_from(pv.LOSS_NORMALIZATIONS),
)
def test_loss_weights_match_the_reference(lengths, max_len, strategy, sort, batch, norm):
    plan = pv.pack(lengths, max_len, strategy=strategy, sort=sort)
    w = pv.loss_weights(plan, batch_rows=batch, normalize=norm)
    ref = reference_loss_weights(rows_of(plan), len(lengths), batch, norm)
    assert np.allclose(w, ref)
    has_targets = plan.stats().trained_targets > 0
    assert w.sum() == pytest.approx(1.0 if has_targets else 0.0)


@given(
    st.lists(st.lists(st.booleans(), max_size=30), max_size=20),
    st.sampled_from([1, 4, 16]),
    st.sampled_from(pv.STRATEGIES),
    st.sampled_from(["desc", "none"]),
    st.sampled_from(pv.OVERFLOWS),
    st.integers(1, 4),
    st.sampled_from(pv.LOSS_NORMALIZATIONS),
)
def test_loss_weights_count_trained_targets_only(
    flags, max_len, strategy, sort, overflow, batch, norm
):
    """Per trained target, against the reference and against the materialized labels."""
    ids = pv.TokenIds.from_sequences([list(range(len(f))) for f in flags], trained=flags)
    plan = pv.pack(ids.lengths, max_len, strategy=strategy, sort=sort, overflow=overflow)
    w = pv.loss_weights(plan, batch_rows=batch, normalize=norm, token_ids=ids)
    ref = reference_loss_weights(rows_of(plan), len(flags), batch, norm, trained=flags)
    assert np.allclose(w, ref)
    arrays = pv.materialize(plan, ids, pad_id=0)
    targets = arrays.labels != pv.IGNORE_INDEX
    assert (w > 0).sum() == np.unique(arrays.doc_ids[targets]).size  # no target, no weight
    assert w.sum() == pytest.approx(1.0 if targets.any() else 0.0)
    if batch >= plan.n_rows and norm == "token" and targets.any():  # one batch: target share
        per_doc = np.bincount(arrays.doc_ids[targets], minlength=len(flags))
        assert np.allclose(w, per_doc / per_doc.sum())


def test_untrained_prompts_weigh_nothing():
    flags = [[False] * 8 + [True] * 2, [True] * 4]  # a long prompt with a short completion
    ids = pv.TokenIds.from_sequences([[1] * 10, [2] * 4], trained=flags)
    plan = pv.pack(ids.lengths, 16)
    assert pv.loss_weights(plan, batch_rows=1).tolist() == [0.75, 0.25]  # 9 and 3 targets
    assert pv.loss_weights(plan, batch_rows=1, token_ids=ids).tolist() == [0.4, 0.6]  # 2, 3


def test_global_token_mean_is_the_target_share():
    lengths = pv.synthetic_lengths(500, seed=4)
    plan = pv.pack(lengths, 1024)
    w = pv.loss_weights(plan, batch_rows=plan.n_rows)
    targets = np.bincount(plan.doc, weights=plan.length - 1, minlength=plan.n_docs)
    assert np.allclose(w, targets / targets.sum())


def test_longest_tenth_carries_more_under_token_mean_than_sequence_mean():
    lengths = pv.synthetic_lengths(5000, median=300, sigma=1.0, seed=0)
    packed = pv.pack(lengths, 2048)
    padded = pv.pack(lengths, 2048, strategy="padded")
    token = pv.longest_share(pv.loss_weights(packed, batch_rows=8), lengths)
    sequence = pv.longest_share(
        pv.loss_weights(padded, batch_rows=8, normalize="sequence"), lengths
    )
    assert sequence < 0.2 < 0.3 < token
    shares = pv.share_by_length(pv.loss_weights(packed, batch_rows=8), lengths)
    assert shares.sum() == pytest.approx(1.0)
    assert shares[-1] == pytest.approx(token)
    assert (np.diff(shares) > 0).all()  # longer tenths weigh more under a token mean


def test_shares_by_length_ties_and_messages():
    assert pv.share_by_length([1, 1, 1, 1], [5, 5, 5, 5], bins=4).tolist() == [0.25] * 4
    assert pv.longest_share([0, 0], [1, 2]) == 0.0
    with pytest.raises(ValueError, match="one entry per document"):
        pv.share_by_length([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        pv.longest_share([1], [1], fraction=0)
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        pv.share_by_length([1], [1], bins=0)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"batch_rows": 0}, "batch_rows must be a positive integer, got 0"),
        ({"batch_rows": 2.5}, "batch_rows must be a positive integer"),
        ({"batch_rows": 2, "normalize": "mean"}, "unknown loss normalization 'mean'"),
    ],
)
def test_bad_arguments(kwargs, says):
    with pytest.raises(ValueError, match=says):
        pv.loss_weights(pv.pack([3], 4), **kwargs)


def test_groups_and_a_given_order_agree_with_the_plain_computation():
    lengths = np.array([5, 1, 5, 3, 8, 2, 2])
    w = np.arange(7, dtype=float)
    order = pv.length_order(lengths)
    assert order.tolist() == [1, 5, 6, 3, 0, 2, 4]  # ties by index
    shares = pv.share_by_length(w, lengths, bins=3, order=order)
    # groups of 2, 2, 3 documents, the longest group as longest_share counts it
    assert shares.tolist() == pytest.approx([(1 + 5) / 21, (6 + 3) / 21, (0 + 2 + 4) / 21])
    assert pv.longest_share(w, lengths, fraction=1 / 3) == pytest.approx(shares[-1])
    assert pv.length_groups(lengths, bins=3) == [(1, 2), (2, 3), (5, 8)]
    with pytest.raises(ValueError, match="order must be a permutation of the 7 document indices"):
        pv.share_by_length(w, lengths, order=order[:3])
