"""One shard's packed arrays, built straight from the memory-mapped token store.

A shard is rows ``[r0, r1)`` of the one global plan, and its arrays are exactly
``materialize(plan, all_ids, rows=range(r0, r1))`` (the tests compare every field). They
are built here rather than by `packviz.materialize` on a small plan of the shard's
pieces because that route copies every token twice — once out of the store into a
compact buffer, once more from there into ``input_ids`` — and builds an int64 index per
slot for the second copy. Here each token is copied once, from its store part into its
final slot; the rest follows from the piece lengths, as in `packviz.layout`:

- every row is its pieces back to back, then one padding tail, so the shard is a
  sequence of *segments* (pieces and tails) that tiles the flat ``[rows * max_len]``
  array: ``doc_ids`` is one ``np.repeat`` over segments, ``position_ids`` one running
  sum that restarts at each segment head (then 0 on the padding);
- ``labels`` is ``input_ids`` with -100 at the padding, at each piece's first slot and
  wherever the store's trained flag is False;
- the padding slots (few: the plan fills rows) are listed once and written last.

Worker processes run one shard each, so nothing here uses threads.

Example:
    >>> import tempfile
    >>> from packviz.pipeline.store import PartWriter, TokenStore
    >>> folder = tempfile.mkdtemp()
    >>> w = PartWriter(folder, 0)
    >>> w.add(np.array([11, 12, 13, 21, 22], np.int32), np.array([3, 2]))
    >>> store = TokenStore(folder, [w.commit({"segments": []})])
    >>> import packviz as pv
    >>> plan = pv.pack([3, 2], 4)
    >>> pieces = {k: getattr(plan, k) for k in ("row", "doc", "start", "length")}
    >>> a = shard_arrays(pieces, store, 0, 2, max_len=4, pad_id=0, n_docs=2, settings={})
    >>> a.input_ids.tolist(), a.labels.tolist(), a.doc_ids.tolist()
    ([[11, 12, 13, 0], [21, 22, 0, 0]], [[-100, 12, 13, -100], [-100, 22, -100, -100]], [[0, 0, 0, -1], [1, 1, -1, -1]])
"""

from __future__ import annotations

import numpy as np

from packviz._ranges import expand_ranges
from packviz.layout import IGNORE_INDEX, PackedArrays, cu_seqlens_from_lengths
from packviz.pipeline.store import TokenStore

#: The plan's per-piece arrays a shard needs (pieces start where the previous one ends:
#: the plan's ``offset`` is implied).
PIECE_ARRAYS = ("row", "doc", "start", "length")


def shard_arrays(
    pieces: dict[str, np.ndarray],
    store: TokenStore,
    r0: int,
    r1: int,
    *,
    max_len: int,
    pad_id: int,
    n_docs: int,
    settings: dict,
) -> PackedArrays:
    """The arrays of plan rows ``[r0, r1)``: ``pieces`` holds the plan's ``row``, ``doc``,
    ``start`` and ``length`` of exactly those rows' pieces (in plan order)."""
    row = np.asarray(pieces["row"], dtype=np.int64) - r0
    doc = np.asarray(pieces["doc"], dtype=np.int64)
    start = np.asarray(pieces["start"], dtype=np.int64)
    length = np.asarray(pieces["length"], dtype=np.int64)
    n, width = r1 - r0, max_len
    m, k = n * width, row.size

    # segments: each row's pieces, then its padding tail (possibly empty)
    per_row = np.bincount(row, minlength=n)
    fill = np.bincount(row, weights=length, minlength=n).astype(np.int64)
    at_piece = np.arange(k) + row  # each earlier row adds its tail before
    at_tail = np.cumsum(per_row) + np.arange(n)
    seg_len = np.empty(k + n, dtype=np.int64)
    seg_len[at_piece] = length
    seg_len[at_tail] = width - fill
    seg_head = np.cumsum(seg_len) - seg_len
    heads = seg_head[at_piece]  # first slot of every piece
    tails = seg_head[at_tail]
    pad_slots = expand_ranges(tails, width - fill)

    doc_dtype = np.int32 if n_docs < 2**31 else np.int64
    seg_doc = np.full(k + n, -1, dtype=doc_dtype)
    seg_doc[at_piece] = doc
    doc_ids = np.repeat(seg_doc, seg_len)

    # positions: a running sum of ones that drops back to 0 at every segment head
    nonempty = seg_len > 0
    h, lens = seg_head[nonempty], seg_len[nonempty]
    position_ids = np.ones(m, dtype=np.int32)
    if h.size:
        position_ids[h[0]] = 0
        position_ids[h[1:]] = 1 - lens[:-1]
    np.cumsum(position_ids, out=position_ids)
    position_ids[pad_slots] = 0

    input_ids = np.empty(m, dtype=np.int32)
    trained = np.ones(m, dtype=bool) if store.has_trained else None
    store.copy_pieces(doc, start, length, heads, input_ids, trained)
    input_ids[pad_slots] = pad_id
    labels = input_ids.copy()
    labels[pad_slots] = IGNORE_INDEX
    labels[heads[length > 0]] = IGNORE_INDEX
    if trained is not None:
        labels[~trained] = IGNORE_INDEX

    return PackedArrays(
        input_ids=input_ids.reshape(n, width),
        doc_ids=doc_ids.reshape(n, width),
        position_ids=position_ids.reshape(n, width),
        labels=labels.reshape(n, width),
        cu_seqlens=cu_seqlens_from_lengths(length),
        max_seqlen=int(length.max(initial=0)),
        row_index=np.arange(r0, r1, dtype=np.int64),
        metadata={"plan": settings},
    )
