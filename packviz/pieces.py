"""Where the pieces are in packed rows, read from ``doc_ids`` (numpy in, numpy out).

A *piece* is a run of equal non-negative ``doc_ids`` in a row; padding (-1) is no piece,
and a padding slot counts as its own start. This is the one definition every consumer
uses: `cu_seqlens`, the masks (CPU and the host side of the GPU paths), the BlockMask
tiles, the dashboard's grids and the file formats. For ``[[4 4 4 9 9 -1]]``::

    slot         0  1  2  3  4  5
    piece start  0  0  0  3  3  5
    spans        (row 0, slots 0-2), (row 0, slots 3-4)

All functions here are vectorized numpy over ``[B, L]`` arrays; none imports torch.
"""

from __future__ import annotations

import numpy as np

from packviz.limits import MAX_LEN_LIMIT, check_int


def as_doc_id_rows(doc_ids: object) -> np.ndarray:
    """``doc_ids`` as a ``[B, L]`` integer array (``[L]`` is one row), or a ValueError.

    >>> as_doc_id_rows([4, 4, -1]).tolist()
    [[4, 4, -1]]
    """
    if isinstance(doc_ids, (str, bytes, dict)):
        raise ValueError(f"doc_ids must be [L] or [B, L] integers, got {type(doc_ids).__name__}")
    try:
        d = np.asarray(doc_ids)
    except (ValueError, TypeError):
        raise ValueError(
            "doc_ids must be [L] or [B, L] integers; got nested lists of unequal lengths"
        ) from None
    if d.ndim not in (1, 2):
        raise ValueError(f"doc_ids must be [L] or [B, L], got shape {d.shape}")
    if d.size and (d.dtype == bool or d.dtype.kind not in "iu"):
        raise ValueError(f"doc_ids must be integers, got {d.dtype}")
    return np.atleast_2d(d.astype(np.int64, copy=False))


def piece_spans(doc_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, first slot, last slot) of every real piece, in row-major order.

    >>> [x.tolist() for x in piece_spans(np.array([[4, 4, 4, 9, 9, -1], [7, 7, 7, 7, 7, 7]]))]
    [[0, 0, 1], [0, 3, 0], [2, 4, 5]]
    """
    doc_ids = np.asarray(doc_ids)
    real = doc_ids >= 0
    head = real.copy()
    head[:, 1:] &= doc_ids[:, 1:] != doc_ids[:, :-1]
    tail = real.copy()  # last slot of a piece
    tail[:, :-1] &= doc_ids[:, :-1] != doc_ids[:, 1:]
    rows, first = np.nonzero(head)
    return rows.astype(np.int64), first.astype(np.int64), np.nonzero(tail)[1].astype(np.int64)


def piece_lengths(doc_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lengths of the real pieces of every row, flat in row order, and pieces per row.

    >>> flat, per_row = piece_lengths(np.array([[4, 4, 4, 9, 9, -1], [7, 7, 7, 7, 7, 7]]))
    >>> flat.tolist(), per_row.tolist()
    ([3, 2, 6], [2, 1])
    """
    rows, first, last = piece_spans(doc_ids)
    return last - first + 1, np.bincount(rows, minlength=np.shape(doc_ids)[0]).astype(np.int64)


def piece_start_slots(doc_ids: np.ndarray) -> np.ndarray:
    """For every slot of ``[B, L]`` doc ids, the first slot of its piece (int64).

    >>> piece_start_slots(np.array([[4, 4, 4, 9, 9, -1, -1]])).tolist()
    [[0, 0, 0, 3, 3, 5, 6]]
    """
    d = np.asarray(doc_ids)
    b, n = d.shape
    head = np.ones((b, n), dtype=bool)
    if n > 1:
        np.not_equal(d[:, 1:], d[:, :-1], out=head[:, 1:])
        head[:, 1:] |= d[:, 1:] < 0
    return np.maximum.accumulate(np.where(head, np.arange(n), 0), axis=1)


def check_block_size(block_size: object) -> int:
    """``block_size`` as an int, or ValueError: a positive integer (numpy ints welcome)
    no larger than the longest row the library accepts (a larger block is one block)."""
    return check_int("block_size", block_size, least=1, most=MAX_LEN_LIMIT)


def block_tiles(starts: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(full, partial) bool ``[B, nq, nk]`` tiles of the document mask from piece starts.

    A (query block, key block) tile is *full* when every query's piece starts at or
    before the tile's first key and the tile lies on or under the diagonal, *partial*
    when some query reaches into it. A tile that reaches past ``L`` is padded by
    FlexAttention, so it is never full (as in ``create_block_mask``).

    >>> full, partial = block_tiles(piece_start_slots(np.array([[0] * 4 + [1] * 4])), 2)
    >>> full[0].astype(int).tolist(), partial[0].astype(int).tolist()
    ([[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]], [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    """
    block_size = check_block_size(block_size)
    lo = np.asarray(starts)
    n = lo.shape[-1]
    nb = -(-n // block_size)
    first = np.arange(nb) * block_size
    last = np.minimum(first + block_size, n) - 1
    whole = (last - first + 1) == block_size
    full = (
        (lo[:, last][:, :, None] <= first[None, None, :])
        & (first[:, None] >= last[None, :])
        & (whole[:, None] & whole[None, :])
    )
    q_star = np.maximum(first[:, None], first[None, :])  # first query at/after the keys
    reach = q_star <= last[:, None]
    lo_star = lo[:, np.minimum(q_star, n - 1)]  # [B, nq, nk]
    partial = reach & (lo_star <= last[None, None, :]) & ~full
    return full, partial
