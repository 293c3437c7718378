"""Dense attention masks for packed rows: document, causal and additive (eager / SDPA).

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

Why it is fast. Every mask row is one interval of keys: ``[piece start of q, q]``. On the
CPU the mask is a zeroed buffer plus one lower triangle per piece (untouched zero pages
are never written), or, when pieces are tiny and many, one broadcast comparison of the
key index with each query's piece start; on CUDA one Triton kernel writes every cell
once from the piece starts (`packviz._triton`). No Python loop over cells, and no
``[L, L]`` temporaries beside the mask. The block-level view and FlexAttention's
``BlockMask`` follow from the same interval: `packviz.blockmask`.

Masks are built on ``device`` (default: CUDA when available, else CPU); the result is
the same on both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from packviz import _triton
from packviz._args import as_array
from packviz.choices import MASK_FILLS, MaskFill, check_choice
from packviz.limits import check_fits, check_int
from packviz.pieces import check_block_size, piece_spans, piece_start_slots

_DENSE_FIX = (
    "use flex_block_mask (a BlockMask) or cu_seqlens with a varlen kernel, or fewer rows at a time"
)

if TYPE_CHECKING:
    import torch

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
        index = isinstance(device, int) and not isinstance(device, bool) and device >= 0
        if not (index or isinstance(device, (str, torch.device))):
            raise TypeError(
                "device must be a torch.device, its name ('cpu', 'cuda:0') or a CUDA index, "
                f"got {device!r}"
            )
        try:
            return torch.device(device)
        except RuntimeError as exc:  # an unknown name
            raise ValueError(f"device {device!r} is not a torch device name: {exc}") from None
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

    d = (
        doc_ids.cpu().numpy()
        if isinstance(doc_ids, torch.Tensor)
        else as_array("doc_ids", doc_ids, "[L] or [B, L] integers")
    )
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
    if not hasattr(doc_ids, "shape"):  # lists: checked as an array first
        doc_ids = as_array("doc_ids", doc_ids, "[L] or [B, L] integers")
    shape = tuple(doc_ids.shape)
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

    max_len = check_int("max_len", max_len, least=0)
    dev = _resolve(device)
    check_fits(int(max_len) ** 2, f"a [{max_len}, {max_len}] causal mask", _DENSE_FIX, dev)
    return torch.ones(max_len, max_len, dtype=torch.bool, device=dev).tril_()


def additive_mask(
    mask: torch.Tensor,
    dtype: torch.dtype | None = None,
    *,
    fill: MaskFill = "-inf",
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """0 where ``mask`` is True, ``fill`` elsewhere, for eager / SDPA attention: the one
    bool-to-additive conversion (`packviz.collate`'s dense mask is built with it).

    Args:
        dtype: the float dtype (the model's; default float32, or ``out``'s).
        fill: ``"-inf"``, or ``"min"`` = ``finfo(dtype).min``, what Hugging Face models
            write (a row with nothing allowed stays finite; every row of a packviz mask
            allows at least its own slot, so both give the same softmax).
        out: a float tensor of ``mask``'s shape to write into instead of a new one
            (its size was checked when it was allocated).

    >>> additive_mask(causal_mask(2)).tolist()
    [[0.0, -inf], [0.0, 0.0]]
    >>> import torch
    >>> additive_mask(causal_mask(2), torch.bfloat16, fill="min")[0].tolist()
    [0.0, -3.3895313892515355e+38]
    """
    import torch

    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(
            f"additive_mask takes a bool mask (True = may attend), got {got}; build one "
            "with document_mask or causal_mask"
        )
    check_choice("fill", fill, MASK_FILLS)
    if dtype is None:
        dtype = out.dtype if isinstance(out, torch.Tensor) else torch.float32
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating point torch dtype, got {dtype!r}")
    blocked = float("-inf") if fill == "-inf" else torch.finfo(dtype).min
    if out is None:
        nbytes = mask.numel() * torch.finfo(dtype).bits // 8
        what = f"an additive {tuple(mask.shape)} {dtype} mask"
        check_fits(nbytes, what, _DENSE_FIX, mask.device)
        out = torch.empty(mask.shape, dtype=dtype, device=mask.device)
    elif not isinstance(out, torch.Tensor):
        raise TypeError(f"out must be a torch tensor or None, got {type(out).__name__}")
    elif out.shape != mask.shape or out.dtype != dtype:
        raise ValueError(
            f"out must be a {dtype} tensor of the mask's shape {tuple(mask.shape)}, got "
            f"{out.dtype} {tuple(out.shape)}"
        )
    zero = torch.zeros((), dtype=dtype, device=mask.device)
    low = torch.full((), blocked, dtype=dtype, device=mask.device)
    return torch.where(mask, zero, low, out=out)  # one pass over the cells


def mask_memory(
    max_len: int, n_pieces: int, *, batch: int = 1, block_size: int = 128
) -> dict[str, int]:
    """Bytes each mask format needs for ``batch`` rows of ``max_len`` slots.

    >>> mask_memory(8192, 20)["dense_bool"] == 8192 * 8192
    True
    """
    max_len = check_int("max_len", max_len, least=0)
    n_pieces = check_int("n_pieces", n_pieces, least=0)
    batch = check_int("batch", batch, least=1)
    block_size = check_block_size(block_size)
    nb = -(-max_len // block_size)
    return {
        "dense_bool": batch * max_len * max_len,
        "additive_fp32": 4 * batch * max_len * max_len,
        "cu_seqlens": 4 * (n_pieces + 1),
        "position_ids": 4 * batch * max_len,
        # kv_num_blocks + kv_indices, for partial and full blocks, int32, one head
        "block_mask": 2 * 4 * batch * (nb + nb * nb),
    }
