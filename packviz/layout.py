"""Materialize a plan into the ``[n_rows, max_len]`` arrays a trainer consumes.

Layout of one row (``max_len=8``, documents 4 ``[a b c]`` and 9 ``[x y]``, pad id 0)::

    slot          0     1     2     3     4     5     6     7
    input_ids     a     b     c     x     y     0     0     0
    doc_ids       4     4     4     9     9    -1    -1    -1
    position_ids  0     1     2     0     1     0     0     0
    labels     -100     b     c  -100     y  -100  -100  -100
    cu_seqlens  [0, 3, 5]        max_seqlen 3

Labels follow the Hugging Face convention: unshifted (the model shifts them), -100 at
padding and at the first slot of every piece, so no position is trained to predict a token
of another document; and -100 wherever the token ids' ``trained`` flag is False (prompts
in fine-tuning), a split document keeping each token's own flag.

Why it is fast. Every row is its pieces back to back, then one padding tail, so the whole
output is a sequence of *segments* (pieces and tails) that tiles the flat array exactly.
Each field is then one ``np.repeat`` over segments or one running sum with a reset at each
segment head: no per-token Python, no per-token index arithmetic beyond one int array, and
the work is done in blocks of rows that stay in cache.

Dtypes. All arrays are int32: vocabularies, positions and (below 2**31 documents) document
indices fit, and half the bytes means half the memory traffic. ``doc_ids`` widens to
int64 only past 2**31 - 1 documents. `packviz.torch_data.collate` hands torch int64
(``long``) tensors, which embeddings and ``cross_entropy`` expect.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from packviz._args import as_array, check_instance
from packviz._ranges import expand_ranges
from packviz.limits import check_fits, check_int
from packviz.pieces import as_doc_id_rows, piece_lengths
from packviz.plan import PackPlan
from packviz.ragged import TokenIds

IGNORE_INDEX = -100
#: Slots handled per block when materializing (keeps temporaries in cache).
_BLOCK_SLOTS = 1 << 18
#: Threads filling blocks at once (capped by the CPU count).
_MAX_THREADS = 8


@dataclass(eq=False)
class PackedArrays:
    """Packed rows, ready for a trainer.

    Attributes:
        input_ids: int32 ``[n, max_len]`` (None for a lengths-only plan).
        doc_ids: int32 ``[n, max_len]``, the document of each slot, -1 at padding.
        position_ids: int32 ``[n, max_len]``, restarting at 0 in every piece, 0 at padding.
        labels: int32 ``[n, max_len]``, input_ids with -100 at padding and piece starts
            (None for a lengths-only plan).
        cu_seqlens: int32 offsets of the real pieces in the flattened batch, from 0.
        max_seqlen: the longest piece.
        row_index: int64, the plan's row number of each row here.
        metadata: settings, statistics and provenance carried into exported files.
    """

    input_ids: np.ndarray | None
    doc_ids: np.ndarray
    position_ids: np.ndarray
    labels: np.ndarray | None
    cu_seqlens: np.ndarray
    max_seqlen: int
    row_index: np.ndarray
    metadata: dict = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return int(self.row_index.size)

    @property
    def max_len(self) -> int:
        for a in (self.doc_ids, self.input_ids, self.position_ids, self.labels):
            if a is not None:
                return int(a.shape[1])
        return int(self.metadata["max_len"])

    @property
    def nbytes(self) -> int:
        arrays = (self.input_ids, self.doc_ids, self.position_ids, self.labels, self.cu_seqlens)
        return sum(a.nbytes for a in arrays if a is not None)


def cu_seqlens_from_lengths(lengths: np.ndarray) -> np.ndarray:
    """``[0, l0, l0 + l1, ...]`` as int32 (flash-attn's type); int64 past 2**31 - 1 tokens."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    cu = np.zeros(lengths.size + 1, dtype=np.int32 if total < 2**31 else np.int64)
    np.cumsum(lengths, out=cu[1:])
    return cu


def cu_seqlens_from_doc_ids(doc_ids: np.ndarray) -> tuple[np.ndarray, int]:
    """``cu_seqlens`` (int32, from 0) and ``max_seqlen`` of the real pieces of a batch.

    >>> cu_seqlens_from_doc_ids(np.array([[4, 4, 4, 9, 9, -1], [7, 7, 7, 7, 7, 7]]))
    (array([ 0,  3,  5, 11], dtype=int32), 6)
    """
    flat, _ = piece_lengths(as_doc_id_rows(doc_ids))
    return cu_seqlens_from_lengths(flat), int(flat.max(initial=0))


def _select_pieces(plan: PackPlan, rows: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(piece indices, output row of each, plan row numbers) for the requested rows."""
    if rows is None:
        return np.arange(plan.n_pieces), plan.row, np.arange(plan.n_rows, dtype=np.int64)
    sel = as_array("rows", rows, "a 1-D sequence of row numbers")
    if sel.ndim != 1 or (sel.size and (sel.dtype == bool or sel.dtype.kind not in "iu")):
        raise ValueError("rows must be a 1-D sequence of row numbers")
    sel = sel.astype(np.int64)
    if sel.size and (sel.min() < 0 or sel.max() >= plan.n_rows):
        raise ValueError(f"rows must be in [0, {plan.n_rows}); got {sel.min()}..{sel.max()}")
    starts = plan.row_starts
    counts = starts[sel + 1] - starts[sel]
    pieces = expand_ranges(starts[sel], counts)
    out_row = np.repeat(np.arange(sel.size, dtype=np.int64), counts)
    return pieces, out_row, sel


def check_token_ids(plan: PackPlan, token_ids: object) -> TokenIds:
    ids = TokenIds.coerce(token_ids)
    if len(ids) != plan.n_docs:
        raise ValueError(
            f"token_ids has {len(ids)} documents but the plan was made for {plan.n_docs}"
        )
    bad = np.flatnonzero(ids.lengths != plan.doc_lengths)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"document {i} has {int(ids.lengths[i])} token ids but the plan was made for "
            f"length {int(plan.doc_lengths[i])}; pack the lengths of these token ids"
        )
    return ids


def materialize(
    plan: PackPlan, token_ids: object, *, pad_id: int, rows: object = None
) -> PackedArrays:
    """Build the packed arrays of a plan (all rows, or only ``rows`` in the given order).

    Args:
        plan: from `packviz.pack`.
        token_ids: one integer sequence per document (lengths must match the plan), a
            `TokenIds`, a ``(values, offsets)`` pair, or None for a lengths-only plan (then
            ``input_ids`` and ``labels`` are None).
        pad_id: token id written at padding slots.
        rows: optional row numbers to build (the dashboard builds a window of a big plan).

    Example:
        >>> from packviz.packing import pack
        >>> plan = pack([3, 2], 8, strategy="next_fit", sort="none")
        >>> a = materialize(plan, [[11, 12, 13], [21, 22]], pad_id=0)
        >>> a.input_ids.tolist(), a.labels.tolist()
        ([[11, 12, 13, 21, 22, 0, 0, 0]], [[-100, 12, 13, -100, 22, -100, -100, -100]])
        >>> a.position_ids.tolist(), a.cu_seqlens.tolist()
        ([[0, 1, 2, 0, 1, 0, 0, 0]], [0, 3, 5])
    """
    pad_id = check_int("pad_id", pad_id, least=0, most=2**31 - 1)
    check_instance(plan, PackPlan, "materialize", "a PackPlan (from pv.pack)")
    ids = None if token_ids is None else check_token_ids(plan, token_ids)
    pieces, out_row, row_index = _select_pieces(plan, rows)
    n, width = row_index.size, plan.max_len
    fields = 2 if ids is None else 4
    check_fits(
        n * width * 4 * fields + pieces.size * 64,
        f"{n:,} rows of {width:,} slots ({fields} int32 arrays)",
        "materialize a window of rows (rows=...) at a time",
    )
    doc = plan.doc[pieces]
    length = plan.length[pieces]
    src = None if ids is None else ids.offsets[doc] + plan.start[pieces]

    doc_dtype = np.int32 if plan.n_docs < 2**31 else np.int64
    doc_ids = np.empty((n, width), dtype=doc_dtype)
    position_ids = np.empty((n, width), dtype=np.int32)
    input_ids = None if ids is None else np.empty((n, width), dtype=np.int32)
    labels = None if ids is None else np.empty((n, width), dtype=np.int32)

    # piece index range of each output row (pieces are grouped by output row, in order)
    per_row = np.bincount(out_row, minlength=n)
    row_first = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(per_row, out=row_first[1:])
    rows_per_block = max(1, _BLOCK_SLOTS // max(width, 1))
    flat = [a if a is None else a.reshape(-1) for a in (doc_ids, position_ids, input_ids, labels)]

    def fill(r0: int) -> None:
        r1 = min(n, r0 + rows_per_block)
        p0, p1 = int(row_first[r0]), int(row_first[r1])
        out = [None if a is None else a[r0 * width : r1 * width] for a in flat]
        _fill_block(
            _Block(
                n_rows=r1 - r0,
                width=width,
                row=out_row[p0:p1] - r0,
                doc=doc[p0:p1],
                length=length[p0:p1],
                src=None if src is None else src[p0:p1],
            ),
            ids,
            int(pad_id),
            *out,
        )

    blocks = range(0, n, rows_per_block)
    workers = min(len(blocks), os.cpu_count() or 1, _MAX_THREADS)
    if workers > 1:  # numpy releases the GIL in these kernels: blocks fill in parallel
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(fill, blocks))
    else:
        for r0 in blocks:
            fill(r0)

    cu = cu_seqlens_from_lengths(length)
    return PackedArrays(
        input_ids=input_ids,
        doc_ids=doc_ids,
        position_ids=position_ids,
        labels=labels,
        cu_seqlens=cu,
        max_seqlen=int(length.max(initial=0)),
        row_index=row_index,
        metadata={"plan": plan.settings()},
    )


@dataclass(frozen=True, slots=True)
class _Block:
    """The pieces of one block of output rows: ``row`` counts from the block's first row,
    ``src`` is each piece's first token in the flat token values (None: no token ids)."""

    n_rows: int
    width: int
    row: np.ndarray
    doc: np.ndarray
    length: np.ndarray
    src: np.ndarray | None


def _fill_block(
    block: _Block,
    ids: TokenIds | None,
    pad_id: int,
    doc_out: np.ndarray,
    pos_out: np.ndarray,
    ids_out: np.ndarray | None,
    lab_out: np.ndarray | None,
) -> None:
    """Fill one block of rows (flat views of the outputs) from its pieces."""
    n, width, row, length = block.n_rows, block.width, block.row, block.length
    m = n * width
    n_pieces = row.size
    # segments: each row's pieces, then its padding tail (possibly empty)
    per_row = np.bincount(row, minlength=n)
    fill = np.bincount(row, weights=length, minlength=n).astype(np.int64)
    n_seg = n_pieces + n
    at_piece = np.arange(n_pieces) + row  # each earlier row adds one tail before
    at_tail = np.cumsum(per_row) + np.arange(n)
    seg_len = np.empty(n_seg, dtype=np.int64)
    seg_len[at_piece] = length
    seg_len[at_tail] = width - fill
    heads = np.cumsum(seg_len) - seg_len
    seg_doc = np.full(n_seg, -1, dtype=doc_out.dtype)
    seg_doc[at_piece] = block.doc
    np.copyto(doc_out, np.repeat(seg_doc, seg_len))

    tails = at_tail[fill < width]
    pad_slots = expand_ranges(heads[tails], seg_len[tails])
    piece_heads = heads[at_piece]
    # positions: column minus the column where the segment starts; 0 at padding
    col = _columns(width, n)
    np.subtract(col, np.repeat((heads % width).astype(np.int32), seg_len), out=pos_out)
    pos_out[pad_slots] = 0
    if ids is None:
        return
    if ids.values.size == 0:  # nothing but padding
        ids_out[:] = pad_id
        lab_out[:] = IGNORE_INDEX
        return
    # source index of every slot: segment source start + distance from the segment head
    index = np.intp  # numpy's native index type: no conversion inside take
    seg_src = np.zeros(n_seg, dtype=index)
    seg_src[at_piece] = block.src
    gather = np.repeat(seg_src - heads.astype(index), seg_len)
    gather += _arange(m, index)
    gather[pad_slots] = 0  # a valid index; padding is written below
    _gather(ids.values, gather, ids_out)
    ids_out[pad_slots] = pad_id
    np.copyto(lab_out, ids_out)
    lab_out[pad_slots] = IGNORE_INDEX
    lab_out[piece_heads] = IGNORE_INDEX
    if ids.trained is not None:  # fine-tuning: only the trained tokens are targets
        lab_out[~np.take(ids.trained, gather)] = IGNORE_INDEX


_INDEX_CACHE: dict[tuple, np.ndarray] = {}


def _columns(width: int, n_rows: int) -> np.ndarray:
    """Column index of every slot of ``n_rows`` rows (int32, cached per block shape)."""
    return _cached((width, n_rows), lambda: np.tile(np.arange(width, dtype=np.int32), n_rows))


def _arange(m: int, dtype) -> np.ndarray:
    return _cached((np.dtype(dtype).str, m), lambda: np.arange(m, dtype=dtype))


def _cached(key, make) -> np.ndarray:
    """A small shared cache of read-only index arrays (safe under threads: a lookup never
    fails after a concurrent clear, it rebuilds)."""
    arr = _INDEX_CACHE.get(key)
    if arr is None:
        arr = make()
        arr.flags.writeable = False
        if len(_INDEX_CACHE) > 8:
            _INDEX_CACHE.clear()
        _INDEX_CACHE[key] = arr
    return arr


def _gather(values: np.ndarray, index: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = values[index]``: torch's multithreaded index_select when torch is
    already loaded (faster than ``np.take`` here), else numpy."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.index_select(
            torch.from_numpy(values), 0, torch.from_numpy(index), out=torch.from_numpy(out)
        )
    else:
        # indices are valid, so every mode gives the same result; "wrap" has numpy's
        # fastest inner loop (benchmarks/RESULTS.md, "materialize")
        np.take(values, index, out=out, mode="wrap")
