"""packviz.masks: dense masks equal a cell-by-cell reference; softmax over the additive
mask is finite everywhere; impossible requests are refused before allocating."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from strategies import doc_id_batches

import packviz as pv
from packviz._reference import reference_document_mask
from packviz.pieces import piece_start_slots


@pytest.mark.parametrize(
    "builder, copy_cost",
    [
        ("numpy", 0),
        ("numpy", 1 << 40),
        ("torch", 0),
        ("torch", 1 << 40),
        ("torch-host", 0),
        ("torch-host", 1 << 40),
    ],
    ids=[
        "cpu-triangles",
        "cpu-broadcast",
        "torch-triangles",
        "torch-broadcast",
        "host-starts-triangles",
        "host-starts-broadcast",
    ],
)
@given(doc_ids=doc_id_batches())
def test_document_mask_equals_reference(builder, copy_cost, doc_ids):
    """Every builder (numpy on the CPU, torch as on a GPU with the piece starts computed
    there or on the host; a triangle per piece or one broadcast comparison) agrees with
    the cell-by-cell reference."""
    name = "_COPY_COST" if builder == "numpy" else "_COPY_COST_CUDA"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pv.masks, name, copy_cost)
        if builder == "numpy":
            mask = pv.document_mask(doc_ids, device="cpu")
        elif builder == "torch":
            mask = pv.masks._dense_torch(torch.as_tensor(doc_ids))
        else:
            lo = torch.from_numpy(piece_start_slots(doc_ids))
            mask = pv.masks._dense_torch(doc_ids, lo)
    assert mask.dtype == torch.bool and mask.shape == (*doc_ids.shape, doc_ids.shape[1])
    np.testing.assert_array_equal(mask.numpy(), reference_document_mask(doc_ids))
    # no empty row, and softmax over the additive mask is finite everywhere
    assert mask.any(dim=-1).all()
    scores = torch.randn(mask.shape) + pv.additive_mask(mask)
    assert torch.isfinite(torch.softmax(scores, dim=-1)).all()


@given(doc_ids=doc_id_batches())
def test_piece_starts_numpy_and_torch_agree_with_a_plain_scan(doc_ids):
    expected = np.zeros(doc_ids.shape, dtype=np.int64)
    for b, row in enumerate(doc_ids.tolist()):
        for i in range(1, len(row)):
            same = row[i] == row[i - 1] and row[i] >= 0
            expected[b, i] = expected[b, i - 1] if same else i
    np.testing.assert_array_equal(piece_start_slots(doc_ids), expected)
    np.testing.assert_array_equal(
        pv.masks._piece_starts_torch(torch.as_tensor(doc_ids)).numpy(), expected
    )
    np.testing.assert_array_equal(pv.piece_starts(doc_ids, device="cpu").numpy(), expected)
    np.testing.assert_array_equal(pv.piece_starts(doc_ids[0], device="cpu").numpy(), expected[0])


def test_worked_example_and_padding_row():
    mask = pv.document_mask([[4, 4, 4, 9, 9, -1]])
    assert mask.int()[0].tolist() == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 1, 1, 0],
        [0, 0, 0, 0, 0, 1],
    ]
    all_pad = pv.document_mask([[-1, -1, -1]])[0].cpu()
    assert torch.equal(all_pad, torch.eye(3, dtype=torch.bool))


def test_same_doc_id_twice_in_a_row_is_two_pieces_only_if_separated():
    mask = pv.document_mask([[1, 1, 2, 1]])[0]
    assert not mask[3, 0] and not mask[3, 1] and mask[3, 3]


def test_causal_and_additive():
    with pytest.raises(ValueError, match="non-negative integer"):
        pv.causal_mask(-1)
    c = pv.causal_mask(4).cpu()
    assert torch.equal(c, torch.ones(4, 4, dtype=torch.bool).tril())
    add = pv.additive_mask(c, dtype=torch.float16)
    assert add.dtype == torch.float16
    assert torch.isneginf(add[0, 1]) and add[1, 0] == 0


def test_1d_input_and_bad_input():
    assert pv.document_mask([0, 0, -1]).shape == (3, 3)
    with pytest.raises(ValueError, match="integers"):
        pv.document_mask(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match=r"\[L\] or \[B, L\]"):
        pv.document_mask(np.zeros((1, 2, 3), dtype=int))
    with pytest.raises(
        ValueError, match="block_size must be an integer from 1 to 1,048,576, got 0"
    ):
        pv.block_layout([[0, 0]], block_size=0)
    full, _ = pv.block_layout([[0, 0]], block_size=np.int64(1))  # numpy ints are integers
    assert full.shape == (1, 2, 2)


def test_default_device_and_explicit_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pv.default_device().type == expected
    assert pv.document_mask([[0, 0]], device="cpu").device.type == "cpu"


def test_mask_memory():
    m = pv.mask_memory(8192, 20, batch=2)
    assert m["dense_bool"] == 2 * 8192 * 8192
    assert m["additive_fp32"] == 4 * m["dense_bool"]
    assert m["cu_seqlens"] == 84
    assert m["block_mask"] == 2 * 4 * 2 * (64 + 64 * 64)


def test_empty_rows_give_empty_masks():
    empty = np.zeros((2, 0), dtype=np.int64)
    assert pv.document_mask(empty, device="cpu").shape == (2, 0, 0)
    assert pv.piece_starts(empty, device="cpu").shape == (2, 0)
    full, partial = pv.block_layout(empty, device="cpu")
    assert full.shape == partial.shape == (2, 0, 0)
    assert pv.causal_mask(0, device="cpu").shape == (0, 0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: pv.additive_mask(torch.ones(2, 2)), "takes a bool mask .* got torch.float32"),
        (lambda: pv.additive_mask([[True]]), "takes a bool mask .* got list"),
        (lambda: pv.additive_mask(pv.causal_mask(2), dtype=torch.int32), "floating point"),
        (lambda: pv.mask_memory(-5, 3), "max_len must be a non-negative integer, got -5"),
        (lambda: pv.mask_memory(8, 3, batch=0), "batch must be a positive integer"),
        (
            lambda: pv.mask_memory(8, 3, block_size=0),
            "block_size must be an integer from 1 to 1,048,576",
        ),
        (lambda: pv.causal_mask(2**30, device="cpu"), r"needs 1,048,576\.0 TiB, more than"),
        (
            lambda: pv.document_mask(torch.zeros(1, 2**33, device="meta"), device="cpu"),
            "needs .* more than the memory available on cpu .*flex_block_mask",
        ),
    ],
)
def test_impossible_or_wrong_requests_are_value_errors_that_say_why(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_one_full_length_piece_costs_the_mask_and_no_second_copy(monkeypatch):
    """A row holding one piece as long as the row is written in place (no [L, L]
    triangle template beside the mask); tested with a small threshold."""
    monkeypatch.setattr(pv.masks, "_COPY_COST", 0)  # the triangle-per-piece builder
    monkeypatch.setattr(pv.masks, "_TRIANGLE_MAX", 8)
    monkeypatch.setattr(pv.masks, "_TRIANGLE_ROWS", 3)
    built = []
    real_tri = pv.masks._lower_triangle
    monkeypatch.setattr(pv.masks, "_lower_triangle", lambda n: built.append(n) or real_tri(n))
    doc_ids = np.array([[3] * 50, [1] * 5 + [2] * 40 + [-1] * 5])
    mask = pv.document_mask(doc_ids, device="cpu")
    np.testing.assert_array_equal(mask.numpy(), reference_document_mask(doc_ids))
    assert max(built) <= 8  # never a template as large as the long pieces
    on_torch = pv.masks._dense_torch(torch.as_tensor(doc_ids))  # the GPU fallback's path
    np.testing.assert_array_equal(on_torch.numpy(), mask.numpy())
