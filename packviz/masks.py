"""Attention masks for packed rows: dense bool / additive, and FlexAttention BlockMask.

A row's pieces are runs of equal ``doc_ids``; padding is -1. A query may attend to
earlier keys of its own piece and to itself; a padding query attends only to itself, so
no softmax row is empty (the tutorial's mask gave NaN there). For doc_ids
``[4 4 4 9 9 -1]`` (``1`` = may attend)::

         k: 0 1 2 3 4 5
    q=0     1 . . . . .
    q=1     1 1 . . . .
    q=2     1 1 1 . . .
    q=3     . . . 1 . .
    q=4     . . . 1 1 .
    q=5     . . . . . 1     <- padding sees itself only

Why it is fast. Every mask row is one interval of keys: ``[piece start of q, q]``. So the
dense mask is one broadcast comparison of the key index with each query's piece start,
then an in-place ``tril_`` — two streaming passes over the output, no Python loop and no
``[L, L]`` integer temporaries. The FlexAttention ``BlockMask`` follows from the same
interval: a (query block, key block) tile is *full* when every query's piece starts at or
before the tile's first key and the tile lies on or under the diagonal, *partial* when
some query reaches into it, and empty otherwise — O((L / block)²) work from the piece
starts, without evaluating a ``mask_mod`` per element.

Masks are built on ``device`` (default: CUDA when available, else CPU); the result is
the same on both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from packviz import _triton
from packviz.limits import check_fits
from packviz.pieces import block_tiles, check_block_size, piece_spans, piece_start_slots

_DENSE_FIX = (
    "use flex_block_mask (a BlockMask) or cu_seqlens with a varlen kernel, or fewer rows at a time"
)

if TYPE_CHECKING:
    import torch
    from torch.nn.attention.flex_attention import BlockMask

    #: ``[L]`` or ``[B, L]`` integers: a nested list, a numpy array or a torch tensor.
    DocIds = np.ndarray | torch.Tensor | list
    #: As torch takes it; None = the doc ids' accelerator, else CUDA when available.
    Device = torch.device | str | None


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _resolve(device, doc_ids=None) -> torch.device:
    """``device``; when None, the accelerator ``doc_ids`` already live on (``cuda:1``
    stays ``cuda:1``), else the default device."""
    import torch

    if device is not None:
        return torch.device(device)
    if isinstance(doc_ids, torch.Tensor) and doc_ids.device.type != "cpu":
        return doc_ids.device
    return default_device()


def _check_doc_ids(integer: bool, dtype, shape: tuple) -> None:
    """The one check of doc ids, for numpy arrays and tensors alike."""
    if not integer:
        raise ValueError(f"doc_ids must be integers, got {dtype}")
    if len(shape) not in (1, 2):
        raise ValueError(f"doc_ids must be [L] or [B, L], got shape {tuple(shape)}")


def _doc_ids_tensor(doc_ids: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Doc ids already on an accelerator, checked, as int64 there."""
    import torch

    t = doc_ids
    integer = not (t.dtype.is_floating_point or t.dtype == torch.bool or t.dtype.is_complex)
    _check_doc_ids(integer, t.dtype, tuple(t.shape))
    return t.to(device=device, dtype=torch.int64)


def _doc_ids_numpy(doc_ids) -> np.ndarray:
    """Host doc ids (lists, numpy, CPU or GPU tensors brought over), checked, as numpy."""
    import torch

    d = doc_ids.cpu().numpy() if isinstance(doc_ids, torch.Tensor) else np.asarray(doc_ids)
    _check_doc_ids(d.dtype != bool and d.dtype.kind in "iu", d.dtype, d.shape)
    return d


def _on_accelerator(doc_ids, dev) -> bool:
    """True when ``doc_ids`` is a tensor already on ``dev`` (an accelerator): work there."""
    import torch

    return (
        isinstance(doc_ids, torch.Tensor) and dev.type != "cpu" and doc_ids.device.type == dev.type
    )


def piece_starts(doc_ids: DocIds, *, device: Device = None) -> torch.Tensor:
    """For every slot, the first slot of its piece (a padding slot is its own start).

    Host input (lists, numpy, CPU tensors) is scanned with numpy and copied to ``device``
    once; a tensor already on an accelerator stays there.

    >>> piece_starts([[4, 4, 4, 9, 9, -1, -1]]).tolist()
    [[0, 0, 0, 3, 3, 5, 6]]
    """
    import torch

    dev = _resolve(device, doc_ids)
    if _on_accelerator(doc_ids, dev):
        d = _doc_ids_tensor(doc_ids, dev)
        return _piece_starts_torch(d.unsqueeze(0))[0] if d.ndim == 1 else _piece_starts_torch(d)
    d = _doc_ids_numpy(doc_ids)
    lo = piece_start_slots(np.atleast_2d(d)).reshape(d.shape)
    return torch.from_numpy(lo).to(dev)


def _piece_starts_torch(d: torch.Tensor) -> torch.Tensor:
    """Piece starts of ``[B, L]`` doc ids (int64), on ``d``'s device."""
    import torch

    b, n = d.shape
    ar = torch.arange(n, device=d.device).expand(b, n)
    head = torch.ones_like(d, dtype=torch.bool)
    if n > 1:
        head[:, 1:] = (d[:, 1:] != d[:, :-1]) | (d[:, 1:] < 0)
    return torch.where(head, ar, torch.zeros_like(ar)).cummax(dim=1).values


def document_mask(doc_ids: DocIds, *, device: Device = None) -> torch.Tensor:
    """Bool mask ``[B, L, L]`` (``[L, L]`` for 1-D input); True = query may attend to key.

    >>> document_mask([[4, 4, 9, -1]]).int()[0].tolist()
    [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    """
    import torch

    dev = _resolve(device, doc_ids)
    shape = tuple(doc_ids.shape) if hasattr(doc_ids, "shape") else np.shape(doc_ids)
    if len(shape) in (1, 2):
        b, n = (1, *shape) if len(shape) == 1 else shape
        check_fits(b * n * n, f"a dense [{b}, {n}, {n}] bool mask", _DENSE_FIX, dev)
    if dev.type == "cpu":  # numpy: far less per-call overhead than torch for small masks
        d = _doc_ids_numpy(doc_ids)
        squeeze = d.ndim == 1
        mask = torch.from_numpy(_dense_numpy(np.atleast_2d(d)))
    else:  # piece starts as piece_starts makes them (host input: numpy, one copy up)
        lo = piece_starts(doc_ids, device=dev)
        squeeze = lo.ndim == 1
        lo = lo.unsqueeze(0) if squeeze else lo
        d = doc_ids if _on_accelerator(doc_ids, dev) else _doc_ids_numpy(doc_ids)
        mask = _dense_torch(d.reshape(lo.shape), lo)
    return mask[0] if squeeze else mask


#: Mask cells that cost about as much as one Python-level block copy: on the CPU a copy
#: is cheap next to streaming the whole mask three times; on a GPU each copy is a kernel
#: launch, so the broadcast kernels win unless pieces are very few.
_COPY_COST = 1 << 14
_COPY_COST_CUDA = 1 << 24
#: On CUDA, the one-pass Triton kernel (``packviz/_triton.py``) when Triton is there.
_USE_TRITON = True


def _dense_numpy(d: np.ndarray) -> np.ndarray:
    """The dense mask on the CPU: one triangle per piece, or a broadcast for tiny pieces."""
    b, n = d.shape
    rows, first, last = piece_spans(d)
    pad = d < 0
    if rows.size * _COPY_COST <= b * n * n:
        # zero (calloc), copy one lower triangle per piece, set the padding diagonal:
        # every cell written about once, the bandwidth bound; the loop is over pieces
        mask = np.zeros((b, n, n), dtype=bool)
        if rows.size:
            tri = _lower_triangle(min(int((last - first).max()) + 1, _TRIANGLE_MAX))
            for r, s, e in zip(rows.tolist(), first.tolist(), last.tolist(), strict=True):
                k = e - s + 1
                if k <= _TRIANGLE_MAX:
                    mask[r, s : e + 1, s : e + 1] = tri[:k, :k]
                else:  # a long piece: written in place, no [k, k] template beside the mask
                    _fill_lower_triangle(mask[r, s : e + 1, s : e + 1])
    else:  # key >= piece start of the query, and key <= query
        keys = np.arange(n, dtype=np.int32)
        lo = piece_start_slots(d).astype(np.int32)
        mask = keys[None, None, :] >= lo[:, :, None]
        np.logical_and(mask, keys[None, None, :] <= keys[None, :, None], out=mask)
    if n:
        mask.reshape(b, n * n)[:, :: n + 1] |= pad  # diagonals: a view (mask is fresh, C order)
    return mask


_TRIANGLE = np.ones((0, 0), dtype=bool)
#: Pieces up to this long copy a cached triangle (16 MB at most); longer ones are written
#: in place by rows, so a row holding one full-length piece costs the mask and no more.
_TRIANGLE_MAX = 4096
_TRIANGLE_ROWS = 1024


def _lower_triangle(size: int) -> np.ndarray:
    """A read-only lower-triangular bool matrix of at least ``size`` (<= _TRIANGLE_MAX;
    slice it), kept once built."""
    global _TRIANGLE
    tri = _TRIANGLE
    if tri.shape[0] >= size:
        return tri
    tri = np.tri(size, dtype=bool)
    tri.flags.writeable = False
    _TRIANGLE = tri
    return tri


def _fill_lower_triangle(view: np.ndarray) -> None:
    """Set the lower triangle (diagonal included) of a zeroed square view in place, a
    block of rows at a time: ``key <= query`` written straight into the view."""
    k = view.shape[0]
    keys = np.arange(k)
    for q0 in range(0, k, _TRIANGLE_ROWS):
        q1 = min(k, q0 + _TRIANGLE_ROWS)
        np.less_equal(keys[:q1], keys[q0:q1, None], out=view[q0:q1, :q1])


def _dense_torch(d, lo: torch.Tensor | None = None) -> torch.Tensor:
    """The dense mask on an accelerator: the one-pass Triton kernel on CUDA, else torch's
    broadcast kernels, or one triangle copy per piece when pieces are few.

    ``d``: ``[B, L]`` doc ids, a tensor or (with ``lo`` given) host numpy; ``lo``: their
    piece starts on the target device, computed here when not given."""
    import torch

    if lo is None:
        d = torch.as_tensor(d)
        lo = _piece_starts_torch(d.to(torch.int64))
    b, n = lo.shape
    if lo.is_cuda and _USE_TRITON and b < 2**16:  # 2**16: the grid's row axis limit
        launch = _triton.kernel()
        if launch is not None:
            return launch(lo)
    d = torch.as_tensor(d).to(device=lo.device, dtype=torch.int64)
    keys = torch.arange(n, device=lo.device)
    real = d >= 0
    head = (lo == keys) & real
    n_heads = int(head.sum())
    if n_heads * _COPY_COST_CUDA > b * n * n:
        small = torch.int16 if n < 2**15 else torch.int32
        return (keys.to(small) >= lo.to(small).unsqueeze(-1)).tril_()
    mask = torch.zeros(b, n, n, dtype=torch.bool, device=lo.device)
    rows, starts = torch.nonzero(head, as_tuple=True)
    if rows.numel():
        tail = real.clone()
        tail[:, :-1] &= d[:, :-1] != d[:, 1:]
        lengths = torch.nonzero(tail, as_tuple=True)[1] - starts + 1
        for r, s, k in zip(rows.tolist(), starts.tolist(), lengths.tolist(), strict=True):
            mask[r, s : s + k, s : s + k].fill_(True).tril_()  # in place: no template
    mask.diagonal(dim1=1, dim2=2)[~real] = True
    return mask


def causal_mask(max_len: int, *, device: Device = None) -> torch.Tensor:
    """Plain causal bool mask ``[L, L]`` (what packing without a document mask allows).

    >>> causal_mask(3).int().tolist()
    [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    """
    import torch

    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < 0:
        raise ValueError(f"max_len must be a non-negative integer, got {max_len!r}")
    dev = _resolve(device)
    check_fits(int(max_len) ** 2, f"a [{max_len}, {max_len}] causal mask", _DENSE_FIX, dev)
    return torch.ones(max_len, max_len, dtype=torch.bool, device=dev).tril_()


def additive_mask(mask: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """0 where ``mask`` is True, -inf elsewhere, for eager / SDPA attention.

    >>> additive_mask(causal_mask(2)).tolist()
    [[0.0, -inf], [0.0, 0.0]]
    """
    import torch

    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(
            f"additive_mask takes a bool mask (True = may attend), got {got}; build one "
            "with document_mask or causal_mask"
        )
    dtype = torch.float32 if dtype is None else dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating point torch dtype, got {dtype!r}")
    nbytes = mask.numel() * torch.finfo(dtype).bits // 8
    check_fits(nbytes, f"an additive {tuple(mask.shape)} {dtype} mask", _DENSE_FIX, mask.device)
    out = torch.full(mask.shape, float("-inf"), dtype=dtype, device=mask.device)
    return out.masked_fill_(mask, 0.0)


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
    tabled on the host and sent in one copy.
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


def mask_memory(
    max_len: int, n_pieces: int, *, batch: int = 1, block_size: int = 128
) -> dict[str, int]:
    """Bytes each mask format needs for ``batch`` rows of ``max_len`` slots.

    >>> mask_memory(8192, 20)["dense_bool"] == 8192 * 8192
    True
    """
    for name, value, least in (
        ("max_len", max_len, 0),
        ("n_pieces", n_pieces, 0),
        ("batch", batch, 1),
        ("block_size", block_size, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    nb = -(-max_len // block_size)
    return {
        "dense_bool": batch * max_len * max_len,
        "additive_fp32": 4 * batch * max_len * max_len,
        "cu_seqlens": 4 * (n_pieces + 1),
        "position_ids": 4 * batch * max_len,
        # kv_num_blocks + kv_indices, for partial and full blocks, int32, one head
        "block_mask": 2 * 4 * batch * (nb + nb * nb),
    }
