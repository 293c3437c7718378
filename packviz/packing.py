"""`pack`: plan how documents are packed into rows, from their lengths alone.

Planning works on document *lengths*, never on tokens, so packing a million documents is
an operation on a million integers. The plan (`packviz.plan.PackPlan`) is then
materialized for any tokenizer's ids (`packviz.layout.materialize`), or only for the
rows a page shows.

The steps: validate the lengths, cut them into pieces by the overflow policy, order the
pieces by the sort, place them with the strategy's fit engine (`packviz._fit`, each
engine equal to its one-piece-at-a-time reference in `packviz._reference`), and lay the
rows out. ``wrapped`` skips the fit: it cuts the concatenation every ``max_len`` tokens.

Worked example (``max_len=8``, lengths ``[5, 3, 6, 2]``, best fit, descending)::

    pieces by length: 6 (doc 2), 5 (doc 0), 3 (doc 1), 2 (doc 3)
    row 0: [2 2 2 2 2 2 3 3]     doc 2, then doc 3 (room 2 was the tightest fit)
    row 1: [0 0 0 0 0 1 1 1]     doc 0, then doc 1

Semantics (the design notes in the README): ``overflow="split"`` cuts a long document
into full ``max_len`` chunks plus one remainder, so two pieces of one document never share
a row; sorts are stable (ties by document index, then piece start); among rows with equal
room the lowest-numbered wins; rows are numbered in the order they are opened.
"""

from __future__ import annotations

import numpy as np

from packviz._fit import fit_rows
from packviz._ranges import expand_ranges
from packviz.choices import OVERFLOWS, SORTS, STRATEGIES, Overflow, Sort, Strategy, check_choice
from packviz.limits import as_lengths, check_fits, check_max_len
from packviz.plan import PackPlan

# ----------------------------------------------------------------------------- pieces and orders


def _make_pieces(lengths: np.ndarray, max_len: int, overflow: str):
    """(doc, start, length) of the pieces each document contributes, in document order.

    Only the documents longer than ``max_len`` are expanded piece by piece; the others
    (usually nearly all) contribute one piece each, so big corpora touch little memory.
    """
    long = np.flatnonzero(lengths > max_len)
    if overflow == "split" and long.size:
        counts = (lengths > 0).astype(np.int64)
        counts[long] = -(-lengths[long] // max_len)
        doc = np.repeat(np.arange(lengths.size, dtype=np.int64), counts)
        first = np.cumsum(counts)
        first -= counts  # index of each document's first piece
        where = expand_ranges(first[long], counts[long])  # the pieces of long documents
        start = np.zeros(doc.size, dtype=np.int64)
        start[where] = (where - np.repeat(first[long], counts[long])) * max_len
        length = lengths[doc]
        length[where] = np.minimum(length[where] - start[where], max_len)
        return doc, start, length
    keep = lengths > 0
    if overflow == "drop" and long.size:
        keep[long] = False
    doc = np.flatnonzero(keep).astype(np.int64)
    return doc, np.zeros(doc.size, np.int64), np.minimum(lengths[doc], max_len)


def _sort_keys_order(keys: np.ndarray, descending: bool, bound: int) -> np.ndarray:
    """Stable argsort of non-negative integer keys <= bound (radix sort for small bounds)."""
    dtype = np.uint16 if bound < 2**16 else np.int32 if bound < 2**31 else np.int64
    if descending:  # bound - keys, written straight into the narrow key type
        k = np.subtract(bound, keys, out=np.empty(keys.shape, dtype), casting="unsafe")
    else:
        k = keys.astype(dtype, copy=False)
    return np.argsort(k, kind="stable")


def _doc_order(lengths: np.ndarray, sort: str, seed: int) -> np.ndarray | None:
    """Document visiting order for sort orders defined on documents (None = input order)."""
    if sort == "none":
        return None
    if sort == "random":
        return np.random.default_rng(seed).permutation(lengths.size)
    return _sort_keys_order(lengths, sort == "desc", int(lengths.max(initial=0)))


def _piece_order(doc, length, lengths, max_len, sort, seed) -> np.ndarray | None:
    """Order in which pieces are offered to a fit strategy (None = as generated)."""
    if sort in ("desc", "asc"):
        return _sort_keys_order(length, sort == "desc", max_len)
    if sort == "none" or doc.size == 0:
        return None
    # random: shuffle documents, keep each document's pieces together and in order
    rank = np.empty(lengths.size, dtype=np.int64)
    rank[np.random.default_rng(seed).permutation(lengths.size)] = np.arange(lengths.size)
    return np.argsort(rank[doc], kind="stable")


def _in_order(length: np.ndarray, order, sort: str, bound: int) -> np.ndarray:
    """``length[order]``; for a sort by length (values <= ``bound``), rebuilt from the
    histogram instead of a gather when the histogram is no bigger than the data, so
    memory follows the number of pieces, never the size of a length."""
    if sort not in ("desc", "asc") or bound > 4 * length.size + (1 << 16):
        return length[order]
    counts = np.bincount(length, minlength=bound + 1)
    values = np.arange(bound + 1, dtype=np.int64)
    if sort == "desc":
        values, counts = values[::-1], counts[::-1]
    return np.repeat(values, counts)


def _wrapped(lengths: np.ndarray, max_len: int, sort: str, seed: int):
    """Concatenate documents in sort order and cut every max_len tokens."""
    order = _doc_order(lengths, sort, seed)
    docs = np.arange(lengths.size, dtype=np.int64) if order is None else order
    lens = _in_order(lengths, docs, sort, int(lengths.max(initial=0)))
    nonempty = lens > 0
    if not nonempty.all():
        docs, lens = docs[nonempty], lens[nonempty]
    ends = np.cumsum(lens)
    begins = ends - lens
    first_row = begins // max_len
    counts = (ends - 1) // max_len - first_row + 1
    if docs.size and counts.max() == 1:  # no document crosses a row boundary
        return first_row, docs, np.zeros(docs.size, np.int64), lens, begins - first_row * max_len
    row = expand_ranges(first_row, counts)
    which = np.repeat(np.arange(docs.size), counts)
    g0 = np.maximum(begins[which], row * max_len)
    g1 = np.minimum(ends[which], (row + 1) * max_len)
    return row, docs[which], g0 - begins[which], g1 - g0, g0 - row * max_len


#: Bytes of planning memory per piece, temporaries included (measured peak ~70).
_BYTES_PER_PIECE = 96


def _check_plan_fits(lengths: np.ndarray, max_len: int, strategy: str, overflow: str) -> None:
    """Refuse, before allocating, a plan whose pieces cannot fit in memory (say, max
    length 1 on a few million documents), saying how big it would be."""
    if strategy == "wrapped":
        total = int(lengths.sum(dtype=np.float64))
        n_pieces = -(-total // max_len) + int(np.count_nonzero(lengths))
    elif overflow == "split":
        n_pieces = int((-(-lengths // max_len)).sum(dtype=np.float64))
    else:
        n_pieces = int(np.count_nonzero(lengths))
    check_fits(
        n_pieces * _BYTES_PER_PIECE,
        f"a plan of {n_pieces:,} pieces",
        "raise max_len, or use overflow='truncate' or 'drop'",
    )


# ----------------------------------------------------------------------------- public


def pack(
    lengths: object,
    max_len: int,
    *,
    strategy: Strategy = "best_fit",
    sort: Sort = "desc",
    overflow: Overflow = "split",
    seed: int = 0,
) -> PackPlan:
    """Plan how documents of the given lengths are packed into rows of ``max_len`` slots.

    Args:
        lengths: tokens per document (1-D non-negative integers; 0 = empty, skipped).
        max_len: slots per row, 1 .. ``MAX_LEN_LIMIT``.
        strategy: ``next_fit``, ``first_fit``, ``best_fit``, ``wrapped`` or ``padded``.
        sort: order pieces are offered in: ``desc``, ``asc``, ``none`` (input), ``random``.
        overflow: documents longer than ``max_len``: ``split``, ``truncate`` or ``drop``
            (``wrapped`` always splits).
        seed: seed of ``sort="random"``.

    Example:
        >>> plan = pack([5, 3, 6, 2], 8)
        >>> plan.n_rows, plan.row.tolist(), plan.doc.tolist(), plan.offset.tolist()
        (2, [0, 0, 1, 1], [2, 3, 0, 1], [0, 6, 0, 5])
    """
    strategy = check_choice("strategy", strategy, STRATEGIES)
    sort = check_choice("sort", sort, SORTS)
    overflow = check_choice("overflow", overflow, OVERFLOWS)
    max_len = check_max_len(max_len)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    given = lengths
    lengths = as_lengths(lengths)
    if isinstance(given, np.ndarray) and np.may_share_memory(lengths, given):
        lengths = lengths.copy()  # the plan keeps its own lengths: no aliasing

    _check_plan_fits(lengths, max_len, strategy, overflow)
    if strategy == "wrapped":
        row, doc, start, length, offset = _wrapped(lengths, max_len, sort, int(seed))
        n_rows = int(row[-1]) + 1 if row.size else 0
    else:
        doc, start, length = _make_pieces(lengths, max_len, overflow)
        split = bool(start.any())
        order = _piece_order(doc, length, lengths, max_len, sort, int(seed))
        sizes = length if order is None else _in_order(length, order, sort, max_len)
        if strategy == "padded":  # one piece per row, already in row order
            n_rows = int(sizes.size)
            row = np.arange(n_rows, dtype=np.int64)
            perm = np.arange(n_rows, dtype=np.int64) if order is None else order
            length, offset = sizes, np.zeros(n_rows, dtype=np.int64)
        else:
            placed_row = fit_rows(strategy, sizes, max_len, sorted_=sort in ("desc", "asc"))
            n_rows = int(placed_row.max()) + 1 if placed_row.size else 0
            # order by row, keeping placement order inside a row: one permutation
            by_row = np.argsort(placed_row, kind="stable")
            row = placed_row[by_row]
            perm = by_row if order is None else order[by_row]
            length = sizes[by_row]
            offset = np.cumsum(length)  # in place from here: big corpora, few temporaries
            offset -= length  # tokens before each piece, in row order
            per_row = np.bincount(row, minlength=n_rows)
            offset -= np.repeat(offset[np.cumsum(per_row) - per_row], per_row)
        doc = doc[perm]
        start = start[perm] if split else np.zeros(perm.size, dtype=np.int64)
    pieces = [a.astype(np.int64, copy=False) for a in (row, doc, start, length, offset)]
    for a in (*pieces, lengths):  # fresh arrays of this call: frozen in place, not copied
        a.flags.writeable = False
    return PackPlan(
        max_len,
        n_rows,
        int(lengths.size),
        *pieces,
        doc_lengths=lengths,
        strategy=strategy,
        sort=sort,
        overflow="split" if strategy == "wrapped" else overflow,
        seed=int(seed),
    )
