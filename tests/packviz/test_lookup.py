"""packviz.lookup: rows to show, finding documents by text, and one document's story
checked against the plan's pieces."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import packviz as pv


@given(
    st.lists(st.integers(0, 50), max_size=40),
    st.sampled_from([4, 16, 64]),
    st.sampled_from(pv.STRATEGIES),
    st.sampled_from(pv.OVERFLOWS),
    st.integers(1, 9),
    st.sampled_from(pv.ROW_PICKS),
)
def test_pick_rows(lengths, max_len, strategy, overflow, k, how):
    plan = pv.pack(lengths, max_len, strategy=strategy, overflow=overflow)
    rows = pv.pick_rows(plan, k, how=how, first=2)
    assert rows.size == min(k, plan.n_rows)
    assert (np.diff(rows) > 0).all() and ((rows >= 0) & (rows < plan.n_rows)).all()
    if not plan.n_rows:
        return
    if how == "spread":
        assert rows[0] == 0
        assert rows[-1] == (plan.n_rows - 1 if k > 1 else 0)
    if how == "most_pieces":
        ppr = plan.pieces_per_row
        assert ppr[rows].min() >= np.delete(ppr, rows).max(initial=0)
    if how == "least_full":
        fill = plan.row_fill
        assert fill[rows].max() <= np.delete(fill, rows).min(initial=max_len)
    if how == "last":
        assert rows[-1] == plan.n_rows - 1


@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=30),
    st.sampled_from([4, 16, 64]),
    st.sampled_from(pv.STRATEGIES),
    st.sampled_from(pv.OVERFLOWS),
    st.data(),
)
def test_document_story_matches_the_pieces(lengths, max_len, strategy, overflow, data):
    plan = pv.pack(lengths, max_len, strategy=strategy, overflow=overflow)
    doc = data.draw(st.integers(0, len(lengths) - 1))
    s = pv.document_story(plan, doc)
    pieces = sorted(
        (int(st_), int(r), int(o), int(n))
        for r, d, st_, n, o in zip(
            plan.row, plan.doc, plan.start, plan.length, plan.offset, strict=True
        )
        if d == doc
    )
    assert s.starts.tolist() == [p[0] for p in pieces]
    assert s.rows.tolist() == [p[1] for p in pieces]
    assert s.offsets.tolist() == [p[2] for p in pieces]
    assert s.lengths.tolist() == [p[3] for p in pieces]
    assert s.placed_tokens + s.lost_tokens == s.length == lengths[doc]
    expected_fate = (
        "empty"
        if lengths[doc] == 0
        else "dropped"
        if not pieces
        else "truncated"
        if s.lost_tokens
        else "split"
        if len(pieces) > 1
        else "whole"
    )
    assert s.fate == expected_fate
    assert s.fragmented_tokens == sum(p[3] for p in pieces[1:])


@given(
    st.lists(st.lists(st.booleans(), max_size=40), min_size=1, max_size=12),
    st.sampled_from([4, 16]),
    st.sampled_from(pv.STRATEGIES),
    st.sampled_from(pv.OVERFLOWS),
    st.data(),
)
def test_story_counts_trained_tokens_and_targets(flags, max_len, strategy, overflow, data):
    """With trained flags: the document's trained tokens, and per piece the labels of its
    slots that are not -100 in the materialized rows."""
    ids = pv.TokenIds.from_sequences([[5] * len(f) for f in flags], trained=flags)
    plan = pv.pack(ids.lengths, max_len, strategy=strategy, overflow=overflow)
    doc = data.draw(st.integers(0, len(flags) - 1))
    s = pv.document_story(plan, doc, token_ids=ids)
    assert s.trained_tokens == sum(flags[doc])
    arrays = pv.materialize(plan, ids, pad_id=0)
    labels = [
        int((arrays.labels[r, o : o + n] != pv.IGNORE_INDEX).sum())
        for r, o, n in zip(s.rows, s.offsets, s.lengths, strict=True)
    ]
    assert s.targets.tolist() == labels
    plain = pv.document_story(plan, doc)  # without flags: every token after a piece's first
    assert plain.trained_tokens == len(flags[doc])
    assert plain.targets.tolist() == [max(0, int(n) - 1) for n in s.lengths]


def test_story_errors_name_the_range():
    plan = pv.pack([3, 4], 8)
    with pytest.raises(ValueError, match="documents 0 to 1"):
        pv.document_story(plan, 2)
    with pytest.raises(ValueError, match="must be an integer"):
        pv.document_story(plan, "0")


def test_find_documents():
    docs = ["Packing rows", "masks", "PACKED", "nothing"]
    assert pv.find_documents(docs, "pack").tolist() == [0, 2]
    assert pv.find_documents(docs, "pack", case=True).tolist() == []
    assert pv.find_documents(docs, "a", limit=2).tolist() == [0, 1]
    assert pv.find_documents(docs, "").tolist() == []
    with pytest.raises(TypeError, match="query must be a string"):
        pv.find_documents(docs, 3)


def test_pick_rows_messages():
    with pytest.raises(ValueError, match="k must be a positive integer"):
        pv.pick_rows(pv.pack([3], 4), 0)
    with pytest.raises(ValueError, match="unknown row pick 'middle'"):
        pv.pick_rows(pv.pack([3], 4), 2, how="middle")
