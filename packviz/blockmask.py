"""Block-level document masks: which (query block, key block) tiles a kernel must compute,
and FlexAttention's ``BlockMask`` built straight from them.

Every mask row is one interval of keys, ``[piece start of q, q]``, so a tile is *full*
when every query's piece starts at or before the tile's first key and the tile lies on
or under the diagonal, *partial* when some query reaches into it, and skipped otherwise
(`packviz.pieces.block_tiles`). That is O((L / block)²) work from the piece starts,
without evaluating a ``mask_mod`` per (query, key) element as ``create_block_mask``
does, and gives its eight tables bit for bit (tested, tiles past ``L`` included).

    >>> full, partial = block_layout([[0] * 4 + [1] * 4], block_size=2)
    >>> full[0].int().tolist()
    [[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from packviz.masks import _on_accelerator, _resolve, piece_starts
from packviz.pieces import block_tiles, check_block_size

if TYPE_CHECKING:
    import torch
    from torch.nn.attention.flex_attention import BlockMask

    from packviz.masks import Device, DocIds


def block_layout(
    doc_ids: DocIds, *, block_size: int = 128, device: Device = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Block-level view of the document mask: ``(full, partial)``, torch bool tensors
    ``[B, nq, nk]`` on ``device`` (``nq = nk = ceil(L / block_size)``).

    A tile is full when every (query, key) in it may attend, partial when some may, and
    neither when the tile can be skipped. Tiles past ``L`` are clipped to the row.

    >>> full, partial = block_layout([[0] * 4 + [1] * 4], block_size=2)
    >>> full[0].int().tolist(), partial[0].int().tolist()
    ([[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]], [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    """
    import torch

    block_size = check_block_size(block_size)
    lo = piece_starts(doc_ids, device=device)
    lo = lo.unsqueeze(0) if lo.ndim == 1 else lo
    if lo.shape[1] == 0:  # an empty row has no tiles
        empty = lo.new_zeros((lo.shape[0], 0, 0), dtype=torch.bool)
        return empty, empty.clone()
    return _tiles(lo, block_size)


def _tiles(lo: torch.Tensor, block_size: int):
    """(full, partial) tiles from the piece starts ``lo`` [B, L], on ``lo``'s device:
    `packviz.pieces.block_tiles` in torch."""
    import torch

    n = lo.shape[-1]
    nb = -(-n // block_size)
    first = torch.arange(nb, device=lo.device) * block_size  # first slot of each block
    last = torch.clamp(first + block_size, max=n) - 1  # last slot of each block
    qa, qb = first.view(nb, 1), last.view(nb, 1)
    ka, kb = first.view(1, nb), last.view(1, nb)
    whole = (last - first + 1) == block_size  # like create_block_mask: a tile that
    # reaches past L is padded there, so it is never full
    full = (lo[:, last].view(-1, nb, 1) <= ka) & (qa >= kb) & whole.view(nb, 1) & whole.view(1, nb)
    q_star = torch.maximum(qa, ka)  # first query of the tile at or after the key block
    reach = q_star <= qb
    lo_star = lo[:, torch.clamp(q_star, max=n - 1).reshape(-1)].view(-1, nb, nb)
    any_ = reach & (lo_star <= kb)
    return full, any_ & ~full


def _ordered(dense: torch.Tensor):
    """(count, indices) of the True entries of the last dim, True indices first, each
    group in ascending order, int32 — ``_dense_to_ordered``'s stable argsort, in linear
    time: every column's place in the order is a running count."""
    import torch

    dense = dense.contiguous()  # tables come out contiguous, as BlockMask expects
    ones = dense.to(torch.int32)
    count = ones.sum(dim=-1, dtype=torch.int32)
    seen = ones.cumsum(dim=-1, dtype=torch.int32)  # True columns up to and including this
    cols = torch.arange(dense.shape[-1], dtype=torch.int32, device=dense.device)
    place = torch.where(dense, seen - 1, count.unsqueeze(-1) + cols - seen)
    idx = torch.empty_like(place)
    return count, idx.scatter_(-1, place.long(), cols.expand_as(place).contiguous())


#: Largest batch × tiles² for which a BlockMask asked for on an accelerator, from host
#: doc ids, is tabled on the host and sent in one copy: for small masks the few dozen
#: tiny kernel launches cost more than the work (the crossover was measured on an H100:
#: benchmarks/RESULTS.md, "GPU").
_HOST_TILES = 1 << 13

_TABLES = (
    "kv_num_blocks",
    "kv_indices",
    "full_kv_num_blocks",
    "full_kv_indices",
    "q_num_blocks",
    "q_indices",
    "full_q_num_blocks",
    "full_q_indices",
)


def flex_block_mask(doc_ids: DocIds, *, device: Device = None, block_size: int = 128) -> BlockMask:
    """FlexAttention ``BlockMask`` for the document mask, built from the piece starts.

    Identical to ``create_block_mask`` with a document ``mask_mod`` (tested, all eight
    tables), but with O((L / block_size)²) work instead of one ``mask_mod`` call per
    (query, key) element. On an accelerator with doc ids on the host, small masks are
    tabled on the host and sent in one copy. An empty shape (B = 0 or L = 0) is refused.
    """
    import torch
    from torch.nn.attention.flex_attention import BlockMask

    block_size = check_block_size(block_size)
    dev = _resolve(device, doc_ids)
    from_host = dev.type != "cpu" and not _on_accelerator(doc_ids, dev)
    lo = piece_starts(doc_ids, device="cpu" if from_host else dev)
    if lo.ndim == 1:
        lo = lo.unsqueeze(0)
    b, n = lo.shape
    if n == 0 or b == 0:  # torch's BlockMask cannot describe it (its repr divides by zero)
        raise ValueError(
            f"doc_ids of shape [{b}, {n}] have no slots: a FlexAttention BlockMask needs at "
            "least one row of at least one token (document_mask and block_layout give empty "
            "masks for an empty shape)"
        )
    on_host = from_host and b * (-(-n // block_size)) ** 2 <= _HOST_TILES
    dev_lo = lo.to(dev)  # what the mask_mod reads (the same tensor unless from the host)
    tables = _block_tables(lo if on_host else dev_lo, block_size)
    if on_host:  # one copy for all eight tables, split into views on the device
        flat = torch.cat([t.reshape(-1) for t in tables]).to(dev)
        sizes = [t.numel() for t in tables]
        tables = [c.view(t.shape) for c, t in zip(flat.split(sizes), tables, strict=True)]
    fields = dict(zip(_TABLES, tables, strict=True))

    def mask_mod(b, h, q_idx, kv_idx):
        return (dev_lo[b, q_idx] <= kv_idx) & (kv_idx <= q_idx)

    return BlockMask(
        seq_lengths=(n, n), BLOCK_SIZE=(block_size, block_size), mask_mod=mask_mod, **fields
    )


def _block_tables(lo: torch.Tensor, block_size: int) -> list:
    """The eight BlockMask tables (``_TABLES`` order, int32 tensors on ``lo``'s device)
    from the piece starts ``lo`` ``[B, L]``: the key side from the tiles, the query side
    (for the backward pass) from the transposed tiles — no dense round trip. On the CPU
    in numpy (less per-op overhead than small torch tensors)."""
    if lo.device.type == "cpu":
        return _block_tables_numpy(lo.numpy(), block_size)
    full, partial = _tiles(lo, block_size)
    out = []
    for tiles in (partial, full, partial.transpose(-1, -2), full.transpose(-1, -2)):
        out.extend(_ordered(tiles.unsqueeze(1)))
    return out


def _block_tables_numpy(lo: np.ndarray, block_size: int) -> list:
    """``_block_tables`` for piece starts on the host, as CPU tensors."""
    import torch

    full, partial = block_tiles(lo, block_size)
    out = []
    for tiles in (partial, full, partial.transpose(0, 2, 1), full.transpose(0, 2, 1)):
        tiles = tiles[:, None]  # one head
        count = tiles.sum(axis=-1, dtype=np.int32)
        # True columns first, each group ascending: the stable argsort create_block_mask
        # uses (numpy sorts booleans by radix)
        idx = np.argsort(~tiles, axis=-1, kind="stable").astype(np.int32)
        out += [torch.from_numpy(np.ascontiguousarray(a)) for a in (count, idx)]
    return out
