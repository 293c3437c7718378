"""One-pass dense document mask on CUDA, written in Triton.

Every mask row is one interval of keys, ``[piece start of q, q]``, so each output cell
is two comparisons against the row's piece start: the kernel writes every byte of the
``[B, L, L]`` bool mask exactly once and reads only ``B × L`` piece starts — the cost of
a fill of the same shape. (The torch fallback needs a comparison pass and a ``tril_``
pass, about three times the memory traffic.)

Used by :func:`packviz.masks.document_mask` on CUDA tensors when Triton is importable
(it ships with CUDA builds of torch); ``kernel()`` returns ``None`` otherwise and the
torch kernels run instead. The first call in a process compiles the kernel (about a
second; Triton caches it on disk for later processes).
"""

from __future__ import annotations

from functools import cache

#: Tile of one program: BLOCK_Q query rows × BLOCK_K keys (16 KiB of output).
BLOCK_Q, BLOCK_K = 16, 1024


@cache
def kernel():
    """The compiled-on-first-use Triton launcher, or ``None`` without Triton."""
    try:
        import triton
        import triton.language as tl
    except ImportError:
        return None

    @triton.jit
    def _document_mask(lo_ptr, out_ptr, n, BQ: tl.constexpr, BK: tl.constexpr):
        # axis 0: query blocks (up to 2**31 - 1 of them), 1: key blocks, 2: rows
        q = tl.program_id(0) * BQ + tl.arange(0, BQ)
        k = tl.program_id(1) * BK + tl.arange(0, BK)
        b = tl.program_id(2).to(tl.int64)
        q_ok = q < n
        lo = tl.load(lo_ptr + b * n + q, mask=q_ok, other=0)
        allowed = (k[None, :] >= lo[:, None]) & (k[None, :] <= q[:, None])
        offsets = (b * n + q[:, None].to(tl.int64)) * n + k[None, :]
        tl.store(out_ptr + offsets, allowed.to(tl.uint8), mask=q_ok[:, None] & (k[None, :] < n))

    def launch(lo):
        """Dense bool mask ``[B, L, L]`` from the piece starts ``lo`` ``[B, L]`` (CUDA)."""
        import torch

        b, n = lo.shape
        out = torch.empty(b, n, n, dtype=torch.bool, device=lo.device)
        if out.numel():
            grid = (triton.cdiv(n, BLOCK_Q), triton.cdiv(n, BLOCK_K), b)
            lo32 = lo.to(torch.int32).contiguous()
            with torch.cuda.device(lo.device):  # Triton launches on the current device
                _document_mask[grid](lo32, out.view(torch.uint8), n, BQ=BLOCK_Q, BK=BLOCK_K)
        return out

    return launch
