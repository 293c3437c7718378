"""packviz.stats: exact accounting on hand-computed plans."""

from __future__ import annotations

import pytest

import packviz as pv


def test_hand_computed():
    s = pv.pack([5, 3, 6, 2, 12, 0], 8).stats()
    assert (s.n_docs, s.n_empty_docs, s.input_tokens, s.packed_tokens, s.lost_tokens) == (
        6,
        1,
        28,
        28,
        0,
    )
    assert (s.n_rows, s.lower_bound_rows, s.padding_tokens, s.split_docs) == (4, 4, 4, 1)
    assert s.efficiency == pytest.approx(28 / 32)
    assert s.trained_targets == 28 - 6
    # pieces 8, 4, 6, 5, 3, 2: sum of l(l+1)/2
    assert s.attention_pairs_document == 36 + 10 + 21 + 15 + 6 + 3
    assert s.attention_pairs_causal == 4 * 36
    assert s.max_pieces_per_row == 2 and s.mean_pieces_per_row == 1.5


def test_truncate_and_drop_accounting():
    t = pv.pack([10, 3, 0], 4, overflow="truncate").stats()
    assert (t.packed_tokens, t.lost_tokens, t.truncated_docs, t.dropped_docs) == (7, 6, 1, 0)
    d = pv.pack([10, 3, 0], 4, overflow="drop").stats()
    assert (d.packed_tokens, d.lost_tokens, d.truncated_docs, d.dropped_docs) == (3, 10, 0, 1)
    assert d.lower_bound_rows == 1 and d.lower_bound_rows_input == 4


def test_wrapped_counts_crossing_documents_as_split():
    s = pv.pack([5, 6, 3], 4, strategy="wrapped", sort="none").stats()
    assert s.n_rows == 4 and s.split_docs == 3 and s.efficiency == pytest.approx(14 / 16)


def test_compare_and_sweep():
    lengths = pv.synthetic_lengths(2000, seed=2)
    rows = {s.strategy: s for s in pv.compare_strategies(lengths, 1024)}
    assert set(rows) == set(pv.STRATEGIES)
    assert rows["best_fit"].n_rows <= rows["next_fit"].n_rows < rows["padded"].n_rows
    assert rows["wrapped"].n_rows == rows["wrapped"].lower_bound_rows
    table = pv.sweep(lengths, [256, 1024], strategies=["best_fit", "padded"])
    assert [(s.max_len, s.strategy) for s in table] == [
        (256, "best_fit"),
        (256, "padded"),
        (1024, "best_fit"),
        (1024, "padded"),
    ]
    assert (
        table[0].as_dict()["rows_over_lower_bound"] == table[0].n_rows - table[0].lower_bound_rows
    )
