"""Reduced views of plans and masks, sized for a screen: numpy in, numpy out.

A million rows or a 131,072-slot mask cannot be drawn cell by cell, and should not be
materialized to be drawn at all. These reductions compute what a picture needs straight
from the plan's piece boundaries or a row's piece starts, in time proportional to the
pieces and the output grid:

- `overview_grid`: how full each (block of rows, block of slots) cell is, from the plan;
- `mask_grids`: one row's causal, document and cross-document masks, max-pooled;
- `piece_marks`: where a row's pieces start, thinned for axis labels.

Each is checked against a dense computation in the tests (the slow references in
`packviz._reference`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from packviz._args import as_array
from packviz.limits import MAX_LEN_LIMIT, check_int
from packviz.pieces import as_doc_id_rows, block_tiles, piece_start_slots


def _row(doc_ids_row: object) -> np.ndarray:
    d = as_doc_id_rows(doc_ids_row)
    if d.shape[0] != 1:
        raise ValueError(f"give one row of doc_ids ([L]), got shape {np.shape(doc_ids_row)}")
    return d[0]


def _window(d: np.ndarray, start: object, stop: object) -> tuple[int, int]:
    start = check_int("start", start, least=0)
    stop = d.size if stop is None else check_int("stop", stop, least=0)
    stop = min(stop, d.size)
    return max(0, min(start, stop)), stop


def _piece_array(name: str, values: object) -> np.ndarray:
    a = as_array(name, values, "a 1-D integer array, one entry per piece")
    if a.ndim != 1 or (a.size and (a.dtype == bool or a.dtype.kind not in "iu")):
        raise ValueError(f"{name} must be a 1-D integer array, one entry per piece")
    return a.astype(np.int64)


def overview_grid(
    row: np.ndarray,
    offset: np.ndarray,
    length: np.ndarray,
    n_rows: int,
    max_len: int,
    *,
    max_rows: int = 256,
    max_slots: int = 256,
) -> tuple[np.ndarray, int, np.ndarray]:
    """Fill fraction of every (row block, slot block) cell, from piece boundaries only.

    Works on the plan's per-piece arrays (``row``, ``offset``, ``length``), never on
    materialized rows. Returns ``(fill, rows_per_cell, slot_edges)`` with ``fill`` in
    [0, 1] of shape ``[ceil(n_rows / rows_per_cell), len(slot_edges) - 1]``.

    >>> fill, rpc, edges = overview_grid(np.array([0, 0, 1]), np.array([0, 2, 0]),
    ...                                  np.array([2, 1, 4]), 2, 4, max_slots=2)
    >>> fill.tolist(), rpc, edges.tolist()
    ([[1.0, 0.5], [1.0, 1.0]], 1, [0, 2, 4])
    """
    n_rows, max_len = (
        check_int("n_rows", n_rows, least=0, most=2**62),
        check_int("max_len", max_len, least=1, most=MAX_LEN_LIMIT),
    )
    max_rows, max_slots = (
        check_int("max_rows", max_rows, least=1),
        check_int("max_slots", max_slots, least=1),
    )
    row, a, n = (
        _piece_array(name, x) for name, x in (("row", row), ("offset", offset), ("length", length))
    )
    if not row.size == a.size == n.size:
        raise ValueError("row, offset and length must have one entry per piece each")
    b = a + n
    if row.size and (row.min() < 0 or row.max() >= n_rows or a.min() < 0 or b.max() > max_len):
        raise ValueError("pieces must lie in rows [0, n_rows) and slots [0, max_len)")
    rpc = max(1, -(-n_rows // max_rows))
    nrb = max(1, -(-n_rows // rpc))
    ns = min(max_slots, max_len)
    edges = np.round(np.linspace(0, max_len, ns + 1)).astype(np.int64)
    width = np.diff(edges)
    rb = row // rpc
    keep = b > a
    rb, a, b = rb[keep], a[keep], b[keep]
    ka = np.searchsorted(edges, a, side="right") - 1
    kb = np.searchsorted(edges, b - 1, side="right") - 1
    covered = np.zeros(nrb * ns, np.float64)
    same = ka == kb
    # pieces inside a single slot block
    covered += np.bincount(rb[same] * ns + ka[same], weights=(b - a)[same], minlength=nrb * ns)
    m = ~same
    ra, kam, kbm, am, bm = rb[m], ka[m], kb[m], a[m], b[m]
    covered += np.bincount(ra * ns + kam, weights=edges[kam + 1] - am, minlength=nrb * ns)
    covered += np.bincount(ra * ns + kbm, weights=bm - edges[kbm], minlength=nrb * ns)
    # whole blocks strictly between: difference array over slot blocks, per row block
    diff = np.zeros(nrb * (ns + 1), np.int64)
    inner = kbm > kam + 1
    np.add.at(diff, ra[inner] * (ns + 1) + kam[inner] + 1, 1)
    np.add.at(diff, ra[inner] * (ns + 1) + kbm[inner], -1)
    full = np.cumsum(diff.reshape(nrb, ns + 1), axis=1)[:, :ns]
    covered = covered.reshape(nrb, ns) + full * width[None, :]
    rows_in_block = np.minimum(rpc, n_rows - np.arange(nrb) * rpc).clip(min=1)
    fill = covered / (rows_in_block[:, None] * width[None, :])
    return fill, rpc, edges


@dataclass(frozen=True, slots=True)
class MaskGrids:
    """Block-pooled views of one row's masks over slots ``[start, stop)``.

    ``causal``, ``document`` and ``cross`` are boolean ``[n, n]`` grids: a cell is True
    when any (query, key) pair in its block is allowed (``cross``: allowed by the plain
    causal mask but not by the document mask). ``block`` slots per cell (1 = exact).
    """

    causal: np.ndarray
    document: np.ndarray
    cross: np.ndarray
    start: int
    stop: int
    block: int


def mask_grids(
    doc_ids_row: np.ndarray, *, start: int = 0, stop: int | None = None, max_size: int = 256
) -> MaskGrids:
    """Max-pooled causal, document and cross-document masks of one row (exact when small).

    Derived from the piece starts, never from a dense ``[L, L]`` mask, so any length
    works: the document grid is the block tiling of the document mask
    (`packviz.pieces.block_tiles`: a cell is allowed when it is full or partial), and a
    causal cell holds cross-document attention unless every query in it starts its piece
    at or before the cell's first key. A padding slot attends to itself only.

    >>> g = mask_grids(np.array([0, 0, 1, -1]))
    >>> g.document.astype(int).tolist()
    [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    >>> int(g.cross.sum())  # 10 causal pairs, 5 within a piece or a padding slot itself
    5
    """
    d = _row(doc_ids_row)
    start, stop = _window(d, start, stop)
    n = stop - start
    block = max(1, -(-n // check_int("max_size", max_size, least=1)))
    nb = -(-n // block) if n else 0
    if nb == 0:
        empty = np.zeros((0, 0), bool)
        return MaskGrids(empty, empty, empty.copy(), start, stop, block)
    # the piece of slot `start` may begin before the window: it starts at 0 inside it,
    # which gives the same cells (a key before the window is not shown)
    lo = piece_start_slots(d[None, start:stop])
    full, partial = block_tiles(lo, block)
    first = np.arange(nb) * block  # first slot of each block
    last = np.minimum(first + block, n) - 1  # last slot of each block
    causal = first[None, :] <= first[:, None]  # key block on or before query block
    document = (full | partial)[0]
    # every causal pair of the cell allowed: the cell's last query (the latest piece
    # start, starts being nondecreasing) starts its piece at or before the first key
    whole = causal & (lo[0, last][:, None] <= first[None, :])
    cross = causal & ~whole
    return MaskGrids(causal, document, cross, start, stop, block)


def piece_marks(
    doc_ids_row: np.ndarray, *, start: int = 0, stop: int | None = None, max_marks: int = 40
) -> tuple[np.ndarray, np.ndarray]:
    """(slot, document) of the pieces that start in ``[start, stop)``, at most
    ``max_marks`` of them spread evenly (for axis labels).

    >>> [a.tolist() for a in piece_marks(np.array([4, 4, 9, 9, 9, -1]))]
    [[0, 2], [4, 9]]
    """
    d = _row(doc_ids_row)
    start, stop = _window(d, start, stop)
    max_marks = check_int("max_marks", max_marks, least=1)
    w = d[start:stop]
    if w.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero((piece_start_slots(w[None])[0] == np.arange(w.size)) & (w >= 0))
    if starts.size > max_marks:
        starts = starts[np.linspace(0, starts.size - 1, max_marks).astype(np.int64)]
    return starts + start, w[starts].astype(np.int64)
