"""packviz.validate: every materialize output passes; every broken invariant is refused,
named, exactly when a plainly written per-slot checker says the arrays are broken."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import packviz as pv
from packviz.validate import check_arrays


def _arrays(lengths=(5, 17, 3, 0, 9, 30, 1), max_len=16, seed=0):
    rng = np.random.default_rng(seed)
    ids = [rng.integers(0, 30_000, n) for n in lengths]
    return pv.materialize(pv.pack(list(lengths), max_len), ids, pad_id=7)


def reference_valid(a: pv.PackedArrays) -> bool:
    """The rules, slot by slot, in plain Python (all four fields present)."""
    for r in range(a.n_rows):
        doc, pos = a.doc_ids[r].tolist(), a.position_ids[r].tolist()
        ids, lab = a.input_ids[r].tolist(), a.labels[r].tolist()
        seen_pad, start = False, 0
        for s in range(len(doc)):
            if doc[s] < -1 or ids[s] < 0:
                return False
            if doc[s] == -1:
                seen_pad = True
                if pos[s] != 0 or lab[s] != -100:
                    return False
                continue
            if seen_pad:
                return False
            if s == 0 or doc[s] != doc[s - 1]:
                start = s
                if lab[s] != -100:
                    return False
            if pos[s] != s - start or lab[s] not in (-100, ids[s]):
                return False
    return True


def with_(a, **changes):
    return dataclasses.replace(a, **changes)


def test_materialize_output_passes():
    check_arrays(_arrays())
    check_arrays(pv.materialize(pv.pack([3, 2], 4), None, pad_id=0))  # lengths only


@given(
    st.lists(st.integers(0, 40), max_size=30),
    st.integers(1, 24),
    st.sampled_from(pv.STRATEGIES),
    st.sampled_from(pv.OVERFLOWS),
)
def test_every_plan_passes(lengths, max_len, strategy, overflow):
    plan = pv.pack(lengths, max_len, strategy=strategy, overflow=overflow)
    ids = [np.arange(n) % 50 for n in lengths]
    a = pv.materialize(plan, ids, pad_id=0)
    assert reference_valid(a)
    check_arrays(a)


@given(
    st.sampled_from(pv.FIELDS),
    st.integers(0, 10**6),
    st.sampled_from([-101, -100, -2, -1, 0, 1, 2, 5, 15, 16, 29_999]),
)
def test_one_changed_cell_is_refused_exactly_when_it_breaks_a_rule(field, where, value):
    a = _arrays()
    arr = getattr(a, field).copy()
    arr.reshape(-1)[where % arr.size] = value
    a = with_(a, **{field: arr})
    if field == "doc_ids":  # keep cu_seqlens in step with the doc ids: test the rows only
        a = with_(a, cu_seqlens=pv.cu_seqlens_from_doc_ids(arr)[0])
        a = with_(a, max_seqlen=pv.cu_seqlens_from_doc_ids(arr)[1])
    if reference_valid(a):
        check_arrays(a)
    else:
        with pytest.raises(ValueError, match=r"at row \d+, slot \d+ is"):
            check_arrays(a)


def _set(a, field, r, s, v):
    arr = getattr(a, field).copy()
    arr[r, s] = v
    return with_(a, **{field: arr})


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: _set(a, "labels", 2, 0, a.input_ids[2, 0]), r"labels at row 2, slot 0 is \d+ where a piece starts"),
        (lambda a: _set(a, "labels", 3, 15, 7), r"labels at row 3, slot 15 is 7 where a piece starts or at padding"),
        (lambda a: _set(a, "labels", 0, 3, 1), r"labels at row 0, slot 3 is 1; a label is -100 or the slot's own input id"),
        (lambda a: _set(a, "position_ids", 2, 4, 9), r"position_ids at row 2, slot 4 is 9, expected 4"),
        (lambda a: _set(a, "input_ids", 1, 2, -3), r"input_ids at row 1, slot 2 is -3"),
        (lambda a: _set(a, "doc_ids", 2, 3, -5), r"doc_ids at row 2, slot 3 is -5"),
        (lambda a: with_(a, input_ids=a.input_ids.astype(np.float32)), "input_ids must hold integers, got float32"),
        (lambda a: with_(a, labels=a.labels.astype(bool)), "labels must hold integers, got bool"),
        (lambda a: with_(a, doc_ids=a.doc_ids.astype(np.uint64)), "doc_ids is uint64; use int64"),
        (lambda a: with_(a, input_ids=a.input_ids.reshape(-1)), r"input_ids must be \[rows, max_len\] with 5 rows"),
        (lambda a: with_(a, labels=a.labels[:, :8]), "labels has 8 slots per row but the other fields have 16"),
        (lambda a: with_(a, row_index=a.row_index[:3]), r"input_ids must be \[rows, max_len\] with 3 rows"),
        (lambda a: with_(a, cu_seqlens=a.cu_seqlens[:-1]), "cu_seqlens ends after 7 pieces but doc_ids hold more"),
        (lambda a: with_(a, cu_seqlens=np.append(a.cu_seqlens, 70)), "cu_seqlens has 10 entries but doc_ids hold 8 pieces"),
        (lambda a: with_(a, cu_seqlens=a.cu_seqlens + np.r_[0, 1, 1, 1, 1, 1, 1, 1, 1]), "cu_seqlens gives piece 0 17 tokens but its run of doc_ids has 16"),
        (lambda a: with_(a, max_seqlen=3), "max_seqlen is 3 but the longest piece in doc_ids has 16"),
        (lambda a: with_(a, cu_seqlens=np.array([1, 2])), "cu_seqlens must be 1-D and start at 0"),
        (lambda a: with_(a, input_ids=None, labels=None, position_ids=None, doc_ids=None), "holds none of the fields"),
    ],
)  # fmt: skip
def test_violations_are_named(change, message):
    a = _arrays()
    # the fixture's rows (best fit): [16] [16] [14 1 1] [9 5 pad pad] [3 pad...]
    assert a.doc_ids[2].tolist() == [5] * 14 + [1, 6]
    assert a.doc_ids[3].tolist() == [4] * 9 + [0] * 5 + [-1, -1]
    with pytest.raises(ValueError, match=message) as err:
        check_arrays(change(a), source="rows.npz")
    assert str(err.value).startswith("rows.npz: ")


def test_real_token_after_padding():
    a = _arrays()
    doc = a.doc_ids.copy()
    doc[3, 15] = 99  # row 3 is [9, 5, padding, padding]
    pos = a.position_ids.copy()
    lab = a.labels.copy()
    lab[3, 15] = -100
    a = with_(a, doc_ids=doc, position_ids=pos, labels=lab)
    a = with_(a, cu_seqlens=pv.cu_seqlens_from_doc_ids(doc)[0])
    with pytest.raises(ValueError, match="doc_ids at row 3, slot 15 is 99 after padding"):
        check_arrays(a)


def test_partial_fields_fall_back_to_positions():
    a = _arrays()
    partial = with_(a, doc_ids=None, input_ids=None)
    check_arrays(partial)
    lab = a.labels.copy()
    lab[2, 14] = 4  # a piece start (position 0), no doc ids to say so
    with pytest.raises(ValueError, match="labels at row 2, slot 14 is 4 where a piece starts"):
        check_arrays(with_(partial, labels=lab))
    pos = a.position_ids.copy()
    pos[0, 3] = 7
    with pytest.raises(ValueError, match="position_ids at row 0, slot 3 is 7; positions start"):
        check_arrays(with_(partial, position_ids=pos))


def test_row_numbers_name_file_rows():
    a = _set(_arrays(), "labels", 1, 0, 3)
    with pytest.raises(ValueError, match="labels at row 41, slot 0"):
        check_arrays(a, row_numbers=np.arange(40, 45))


def test_large_arrays_are_checked_in_blocks(monkeypatch):
    import packviz.validate as validate

    monkeypatch.setattr(validate, "_BLOCK_SLOTS", 16)  # one row per block
    check_arrays(_arrays())
    a = _set(_arrays(), "labels", 4, 0, 1)
    with pytest.raises(ValueError, match="labels at row 4, slot 0"):
        check_arrays(a)
    with pytest.raises(ValueError, match="cu_seqlens gives piece 3"):
        check_arrays(
            with_(_arrays(), cu_seqlens=_arrays().cu_seqlens + np.r_[0, 0, 0, 0, 1, 1, 1, 1, 1])
        )
