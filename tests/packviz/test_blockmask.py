"""packviz.blockmask: block tiles equal the pooled cell-by-cell mask; the BlockMask's
tables equal create_block_mask's, field by field; FlexAttention with it equals SDPA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from block_masks import assert_same_block_mask
from hypothesis import given
from hypothesis import strategies as st
from strategies import doc_id_batches

import packviz as pv
from packviz._reference import reference_document_mask
from packviz.pieces import block_tiles


@given(doc_id_batches(max_len=300), st.sampled_from([16, 64, 128]))
def test_block_layout_matches_dense_mask(doc_ids, block):
    full, partial = pv.block_layout(doc_ids, block_size=block)
    dense = reference_document_mask(doc_ids)
    n = doc_ids.shape[1]
    nb = -(-n // block)
    pad = np.zeros((dense.shape[0], nb * block, nb * block), dtype=bool)
    pad[:, :n, :n] = dense
    tiles = pad.reshape(-1, nb, block, nb, block)
    any_ = tiles.any(axis=(2, 4))
    all_ = tiles.all(axis=(2, 4))
    np.testing.assert_array_equal(full.cpu().numpy(), all_)  # default device: CUDA if any
    np.testing.assert_array_equal(partial.cpu().numpy(), any_ & ~all_)


@given(doc_id_batches(max_len=300), st.sampled_from([1, 16, 64, 128]))
def test_block_tables_torch_and_numpy_agree(doc_ids, block):
    """The torch tables (built this way on a GPU) equal the numpy ones (the CPU's)."""
    lo = pv.piece_starts(doc_ids, device="cpu")
    full, partial = pv.blockmask._tiles(lo, block)
    full_np, partial_np = block_tiles(lo.numpy(), block)
    np.testing.assert_array_equal(full.numpy(), full_np)
    np.testing.assert_array_equal(partial.numpy(), partial_np)
    tables = pv.blockmask._block_tables_numpy(lo.numpy(), block)
    for i, tiles in enumerate((partial, full, partial.mT, full.mT)):
        count, idx = pv.blockmask._ordered(tiles.unsqueeze(1))
        assert count.is_contiguous() and idx.is_contiguous()
        assert torch.equal(count, tables[2 * i]) and torch.equal(idx, tables[2 * i + 1])


@pytest.mark.parametrize("width, block", [(300, 128), (1024, 128), (257, 64), (64, 128)])
def test_flex_block_mask_identical_to_create_block_mask(width, block):
    from torch.nn.attention.flex_attention import create_block_mask

    rng = np.random.default_rng(width)
    doc_ids = np.full((2, width), -1)
    for b in range(2):
        cuts = np.sort(rng.choice(np.arange(1, width), size=min(6, width - 1), replace=False))
        bounds = [0, *cuts.tolist()]
        for i, (s, e) in enumerate(zip(bounds, [*bounds[1:], width - 5], strict=True)):
            doc_ids[b, s:e] = i
    # piece number of every slot, written plainly (padding slots are pieces of their own)
    piece = torch.zeros(doc_ids.shape, dtype=torch.long)
    for b in range(doc_ids.shape[0]):
        for i in range(1, width):
            new = doc_ids[b, i] != doc_ids[b, i - 1] or doc_ids[b, i] < 0
            piece[b, i] = piece[b, i - 1] + int(new)

    def mask_mod(b, h, q, k):
        return (piece[b, q] == piece[b, k]) & (k <= q)

    ref = create_block_mask(mask_mod, 2, None, width, width, device="cpu", BLOCK_SIZE=block)
    got = pv.flex_block_mask(doc_ids, device="cpu", block_size=block)
    assert_same_block_mask(ref, got, device_type="cpu")
    assert torch.equal(ref.to_dense(), got.to_dense())


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_flex_attention_with_direct_block_mask_equals_dense_sdpa():
    from torch.nn.attention.flex_attention import flex_attention

    doc_ids = np.array([[0] * 50 + [1] * 70 + [2] * 100 + [-1] * 36])
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 256, 16) for _ in range(3))
    out = flex_attention(q, k, v, block_mask=pv.flex_block_mask(doc_ids, device="cpu"))
    dense = pv.document_mask(doc_ids, device="cpu")[:, None]
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=dense)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(1, 0), (0, 4), (0,)])
def test_an_empty_shape_is_refused(shape):
    with pytest.raises(ValueError, match=r"have no slots: a FlexAttention BlockMask needs"):
        pv.flex_block_mask(np.zeros(shape, np.int64), device="cpu")
