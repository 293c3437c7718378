"""The mask builders on CUDA: the same masks as the cell-by-cell reference and as the CPU,
BlockMasks identical to ``create_block_mask`` on the device, and attention with them equal
to dense SDPA. Skipped without a CUDA device (CI has none); run on a GPU machine with
``pytest tests/test_cuda.py``."""

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

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _random_rows(batch: int, width: int, seed: int) -> np.ndarray:
    """Rows of pieces with log-normal lengths and a padded tail."""
    rng = np.random.default_rng(seed)
    out = np.full((batch, width), -1, dtype=np.int64)
    for b in range(batch):
        pos, doc = 0, int(rng.integers(0, 100))
        end = width - int(rng.integers(0, width // 8 + 1))
        while pos < end:
            n = min(int(rng.lognormal(4.5, 1.2)) + 1, end - pos)
            out[b, pos : pos + n] = doc
            pos, doc = pos + n, doc + 1
    return out


def _piece_mask_mod(doc_ids: np.ndarray):
    starts = pv.piece_starts(doc_ids, device="cuda")

    def mask_mod(b, h, q, k):
        return (starts[b, q] == starts[b, k]) & (k <= q)

    return mask_mod


@pytest.mark.parametrize(
    "triton, copy_cost",
    [(True, 0), (False, 0), (False, 1 << 40)],
    ids=["triton", "torch-triangles", "torch-broadcast"],
)
@given(doc_ids=doc_id_batches(max_len=200))
def test_cuda_document_mask_equals_reference(triton, copy_cost, doc_ids):
    if triton and pv._triton.kernel() is None:
        pytest.skip("Triton is not installed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pv.masks, "_COPY_COST_CUDA", copy_cost)
        mp.setattr(pv.masks, "_USE_TRITON", triton)
        mask = pv.document_mask(doc_ids, device="cuda")
    assert mask.device.type == "cuda" and mask.dtype == torch.bool
    np.testing.assert_array_equal(mask.cpu().numpy(), reference_document_mask(doc_ids))


@pytest.mark.parametrize("batch, width", [(1, 2048), (4, 4096), (2, 8192), (1, 40000)])
def test_cuda_equals_cpu_at_scale(batch, width):
    doc_ids = _random_rows(batch, width, seed=width)
    cpu = pv.document_mask(doc_ids, device="cpu")
    assert torch.equal(pv.document_mask(doc_ids, device="cuda").cpu(), cpu)
    with pytest.MonkeyPatch.context() as mp:  # the torch fallback too
        mp.setattr(pv.masks, "_USE_TRITON", False)
        assert torch.equal(pv.document_mask(doc_ids, device="cuda").cpu(), cpu)
    # torch tensors already on the device stay there
    on_device = torch.as_tensor(doc_ids, device=f"cuda:{torch.cuda.device_count() - 1}")
    got = pv.document_mask(on_device)  # device=None: the GPU the doc ids are on
    assert got.device == on_device.device and torch.equal(got.cpu(), cpu)
    for block in (64, 128):
        full_c, part_c = pv.block_layout(on_device, block_size=block)
        full, part = pv.block_layout(doc_ids, device="cpu", block_size=block)
        assert full_c.is_cuda
        assert torch.equal(full_c.cpu(), full) and torch.equal(part_c.cpu(), part)


@pytest.mark.parametrize("where", ["host", "device"])
@given(doc_ids=doc_id_batches(max_len=600), block=st.sampled_from([16, 64, 128]))
def test_cuda_flex_block_mask_identical_to_create_block_mask(where, doc_ids, block):
    """Host doc ids (tables built on the host, sent in one copy) and doc ids already on the
    GPU (tables built there) give create_block_mask's tables, on the GPU, contiguous."""
    from torch.nn.attention.flex_attention import create_block_mask

    b, n = doc_ids.shape
    ref = create_block_mask(
        _piece_mask_mod(doc_ids), b, None, n, n, device="cuda", BLOCK_SIZE=block
    )
    source = doc_ids if where == "host" else torch.as_tensor(doc_ids, device="cuda")
    got = pv.flex_block_mask(source, device="cuda", block_size=block)
    assert_same_block_mask(ref, got, device_type="cuda")


def test_cuda_flex_block_mask_at_8192():
    from torch.nn.attention.flex_attention import create_block_mask

    doc_ids = _random_rows(2, 8192, seed=1)
    ref = create_block_mask(_piece_mask_mod(doc_ids), 2, None, 8192, 8192, device="cuda")
    got = pv.flex_block_mask(doc_ids, device="cuda")
    assert torch.equal(ref.to_dense(), got.to_dense())
    with pytest.MonkeyPatch.context() as mp:  # tables built on the GPU from host doc ids
        mp.setattr(pv.blockmask, "_HOST_TILES", 0)
        on_gpu = pv.flex_block_mask(doc_ids, device="cuda")
    assert_same_block_mask(ref, on_gpu, device_type="cuda")
    cpu = pv.flex_block_mask(doc_ids, device="cpu")
    assert torch.equal(cpu.kv_indices, got.kv_indices.cpu())


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_cuda_flex_attention_equals_dense_sdpa(compiled):
    """The trainer's path: (compiled) flex_attention with the direct BlockMask gives the
    same output as SDPA with the dense document mask, padding rows included; compiled, the
    same gradients too (its backward kernel walks the query-side tables)."""
    from torch.nn.attention.flex_attention import flex_attention

    attend = torch.compile(flex_attention) if compiled else flex_attention
    doc_ids = _random_rows(2, 1024, seed=7)
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 1024, 64, device="cuda") for _ in range(3))
    if compiled:
        q, k, v = (t.requires_grad_() for t in (q, k, v))
    out = attend(q, k, v, block_mask=pv.flex_block_mask(doc_ids, device="cuda"))
    dense = pv.document_mask(doc_ids, device="cuda")[:, None]
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=dense)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, atol=2e-3, rtol=2e-3)
    if compiled:
        grads = torch.autograd.grad(out.square().sum(), (q, k, v))
        ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
        for got, want in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(got, want, atol=5e-3, rtol=5e-3)


def test_cuda_additive_mask_softmax_is_finite():
    doc_ids = _random_rows(2, 512, seed=3)
    doc_ids[1, -64:] = -1
    mask = pv.document_mask(doc_ids, device="cuda")
    for dtype in (torch.float32, torch.bfloat16):
        add = pv.additive_mask(mask, dtype=dtype)
        assert add.is_cuda and add.dtype == dtype
        scores = torch.randn(mask.shape, device="cuda", dtype=dtype) + add
        assert torch.isfinite(scores.softmax(-1)).all()
