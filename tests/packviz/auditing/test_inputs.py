"""packviz.auditing.inputs: the rows an audit runs and the batch of every input path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from strategies import doc_id_batches
from torch.nn.attention.flex_attention import BlockMask

import packviz as pv
from packviz.auditing.inputs import (
    BUILDERS,
    AuditRows,
    causal_inputs,
    dense_additive_inputs,
    dense_bool_inputs,
    flattened_inputs,
    flex_inputs,
    position_ids_inputs,
    select_rows,
    seq_idx_inputs,
)

# rows: [0 0 0 0 0 0 1 1 1 1 1 1 1 1 1 2 3 3 3 3 - - - -], [4 × 10, 5 × 11, - - -]
LENGTHS = [6, 9, 1, 4, 10, 11]


@pytest.fixture
def arrays():
    rng = np.random.default_rng(1)
    ids = [rng.integers(3, 64, n) for n in LENGTHS]
    return pv.materialize(pv.pack(LENGTHS, 24, strategy="next_fit", sort="none"), ids, pad_id=0)


def test_rows_keep_the_arrays_values(arrays):
    r = select_rows(arrays, [1, 0], vocab_size=64)
    assert r.row_index.tolist() == [1, 0]
    for name in ("input_ids", "labels", "position_ids", "doc_ids"):
        got = getattr(r, name)
        assert got.dtype == np.int64
        assert np.array_equal(got, getattr(arrays, name)[[1, 0]])


def test_derived_fields_are_materializes(arrays):
    """Without labels and positions, rows rebuild them exactly as materialize does."""
    r = AuditRows.from_doc_ids(arrays.doc_ids, vocab_size=64, input_ids=arrays.input_ids)
    assert np.array_equal(r.labels, arrays.labels)
    assert np.array_equal(r.position_ids, arrays.position_ids)


def test_random_ids_are_seeded_and_in_the_vocabulary(arrays):
    a = AuditRows.from_doc_ids(arrays.doc_ids, vocab_size=50, seed=3)
    b = AuditRows.from_doc_ids(arrays.doc_ids, vocab_size=50, seed=3)
    c = AuditRows.from_doc_ids(arrays.doc_ids, vocab_size=50, seed=4)
    assert np.array_equal(a.input_ids, b.input_ids)
    assert not np.array_equal(a.input_ids, c.input_ids)
    assert a.input_ids.max() < 50 and (a.input_ids[~a.real] == 0).all()
    assert (
        a.labels[a.real & (a.position_ids > 0)] == a.input_ids[a.real & (a.position_ids > 0)]
    ).all()
    assert (a.labels[~a.real | (a.position_ids == 0)] == -100).all()


def test_default_rows_are_the_busiest():
    a = pv.materialize(
        pv.pack([8, 3, 3, 2, 4, 4, 8], 8, strategy="next_fit", sort="none"), None, pad_id=0
    )
    assert a.doc_ids[:, 0].tolist() == [0, 1, 4, 6]  # pieces per row: 1, 3, 2, 1
    assert select_rows(a, vocab_size=64).row_index.tolist() == [1, 2]


def test_bad_rows_say_what_is_wrong(arrays):
    with pytest.raises(ValueError, match=r"rows must be indices of the 2 rows given, got \[2\]"):
        select_rows(arrays, [2], vocab_size=64)
    first_bad = int(arrays.input_ids[arrays.input_ids >= 10][0])
    with pytest.raises(ValueError, match=f"token id {first_bad} is outside the model's vocab"):
        select_rows(arrays, vocab_size=10)
    no_docs = pv.PackedArrays(
        None, None, arrays.position_ids, None, arrays.cu_seqlens, 11, arrays.row_index
    )
    with pytest.raises(ValueError, match="no doc_ids; save the doc_ids field"):
        select_rows(no_docs, vocab_size=64)


def test_dense_masks_are_the_document_mask(arrays):
    r = select_rows(arrays, vocab_size=64)
    doc = pv.document_mask(arrays.doc_ids, device="cpu")
    bool_mask = dense_bool_inputs(r, device="cpu")["attention_mask"]
    assert bool_mask.shape == (2, 1, 24, 24) and torch.equal(bool_mask[:, 0], doc)
    add = dense_additive_inputs(r, device="cpu", dtype=torch.bfloat16)["attention_mask"]
    assert add.dtype == torch.bfloat16
    blocked = torch.finfo(torch.bfloat16).min  # what pv.collate_with("dense") writes
    assert (add[:, 0][doc] == 0).all() and (add[:, 0][~doc] == blocked).all()
    assert torch.equal(
        dense_additive_inputs(r, device="cpu")["position_ids"][0, :8],
        torch.tensor([0, 1, 2, 3, 4, 5, 0, 1]),
    )


def test_what_each_path_passes(arrays):
    r = select_rows(arrays, vocab_size=64)
    keys = {p: sorted(BUILDERS[p](r, device="cpu", dtype=torch.float32)) for p in BUILDERS}
    rows = ["input_ids", "labels", "position_ids"]
    varlen = sorted(
        [*rows, "cu_seq_lens_k", "cu_seq_lens_q", "max_length_k", "max_length_q", "use_cache"]
    )
    assert keys == {
        "dense_additive": sorted([*rows, "attention_mask"]),
        "dense_bool": sorted([*rows, "attention_mask"]),
        "flattened": varlen,
        "position_ids": rows,
        "flex": sorted([*rows, "attention_mask"]),
        "causal": ["input_ids", "labels"],
        "seq_idx": sorted([*varlen, "seq_idx"]),
    }
    assert position_ids_inputs(r, device="cpu")["input_ids"].dtype == torch.long
    assert causal_inputs(r, device="cpu")["labels"].shape == (2, 24)
    assert isinstance(flex_inputs(r, device="cpu")["attention_mask"], BlockMask)
    assert seq_idx_inputs(r, device="cpu")["use_cache"] is False


@given(doc_id_batches())
def test_flattened_is_the_real_tokens_in_order(doc_ids):
    r = AuditRows.from_doc_ids(doc_ids, vocab_size=32, seed=0)
    b = flattened_inputs(r, device="cpu")
    real = doc_ids >= 0
    assert b["input_ids"].tolist() == [r.input_ids[real].tolist()]
    assert b["labels"].tolist() == [r.labels[real].tolist()]
    cu = b["cu_seq_lens_q"]
    assert (
        cu.dtype == torch.int32 and cu.tolist() == pv.cu_seqlens_from_doc_ids(doc_ids)[0].tolist()
    )
    assert b["max_length_q"] == b["max_length_k"] == pv.cu_seqlens_from_doc_ids(doc_ids)[1]
    # positions restart at 0 exactly where a piece starts, and count up inside it
    pos = b["position_ids"][0].numpy()
    starts = cu[:-1].numpy()
    assert (pos[starts] == 0).all() and (np.delete(pos, starts) > 0).all()
    seq = seq_idx_inputs(r, device="cpu")["seq_idx"][0].numpy()
    assert seq.dtype == np.int32
    assert np.array_equal(np.flatnonzero(np.diff(seq, prepend=-1)), starts)
