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
from packviz.limits import as_lengths, check_fits, check_int, check_max_len
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


def _key_dtype(bound: int):
    return np.uint16 if bound < 2**16 else np.uint32 if bound < 2**32 else np.uint64


def _sort_keys_order(keys: np.ndarray, descending: bool, bound: int) -> np.ndarray:
    """Stable argsort of non-negative integer keys <= bound (radix sort for small bounds)."""
    dtype = _key_dtype(bound)
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
    """Order in which pieces are offered to a fit strategy, for ``none`` and ``random``
    (None = as generated; sorts by length go through `_sorted_pieces`)."""
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


def _sorted_pieces(lengths: np.ndarray, max_len: int, overflow: str, descending: bool):
    """(doc, start, size) of every piece in offering order for ``sort="desc"``/``"asc"``:
    by piece length, stable by (document, start), like a stable sort of the pieces.

    No table of pieces is built and sorted. A piece is either *full* (``max_len``
    tokens: a chunk of a split document, a document of exactly ``max_len``, a truncated
    head) or the one *short* piece of its document (the whole document, or the remainder
    of a split one). Under ``split`` the full pieces are one group of equal length that
    is already in (document, start) order when generated in document order, so only the
    short pieces are sorted; under ``truncate``/``drop`` every document has at most one
    piece and all are sorted together. The sort is a stable counting (radix) sort of
    *documents* by a 16-bit key, so the sorted indices are document numbers: no gather
    through a piece table, and memory is two key bytes plus the sorted indices per
    document. ``start`` is None when every piece starts at 0.

    >>> doc, start, size = _sorted_pieces(np.array([5, 9, 3, 4]), 4, "split", True)
    >>> doc.tolist(), start.tolist(), size.tolist()
    ([0, 1, 1, 3, 2, 0, 1], [0, 0, 4, 0, 0, 4, 8], [4, 4, 4, 4, 3, 1, 1])
    """
    n, L = lengths.size, max_len
    key_type = _key_dtype(L + 1)
    if overflow == "split":
        full_docs = np.flatnonzero(lengths >= L)
        n_full = lengths[full_docs] // L
        key = np.remainder(lengths, L, out=np.empty(n, key_type), casting="unsafe")
    else:  # one piece per document: its length, capped (truncate) or refused (drop)
        full_docs, n_full = np.zeros(0, np.int64), np.zeros(0, np.int64)
        key = np.minimum(lengths, L, out=np.empty(n, key_type), casting="unsafe")
        if overflow == "drop":
            key[lengths > L] = 0
    # sort key, ascending; documents without a short piece (key 0) get one past the rest
    if descending:
        np.subtract(L + 1, key, out=key)  # lengths L..1 -> keys 1..L; 0 -> L + 1
        counts = np.bincount(key, minlength=L + 2)[: L + 1]
        sizes_of_key = np.arange(L + 1, 0, -1)
    else:
        np.subtract(key, 1, out=key)  # lengths 1..L -> keys 0..L-1; 0 wraps around
        key[key > L] = L
        counts = np.bincount(key, minlength=L + 1)[:L]
        sizes_of_key = np.arange(1, L + 1)
    order = np.argsort(key, kind="stable")
    del key
    n_short = int(counts.sum())
    n_full_total = int(n_full.sum())
    total = n_short + n_full_total
    # the full group goes first (desc) or last (asc); the short pieces fill the rest
    short = slice(n_full_total, total) if descending else slice(0, n_short)
    full = slice(0, n_full_total) if descending else slice(n_short, total)
    doc = np.empty(total, dtype=np.int64)
    doc[short] = order[:n_short]
    del order
    size = np.empty(total, dtype=_key_dtype(L))
    size[short] = np.repeat(sizes_of_key.astype(size.dtype), counts)
    size[full] = L
    start = None
    if n_full_total > n_full.size:  # some document has two or more full chunks
        doc[full] = np.repeat(full_docs, n_full)
        start = np.zeros(total, dtype=np.int64)
        start[full] = expand_ranges(np.zeros(n_full.size, np.int64), n_full) * L
    else:
        doc[full] = full_docs
    if overflow == "split" and n_full.size:
        long = lengths > L
        if long.any():  # remainders of long documents start after their full chunks
            where = np.flatnonzero(long[doc[short]]) + short.start
            if where.size:
                if start is None:
                    start = np.zeros(total, dtype=np.int64)
                d = lengths[doc[where]]
                start[where] = d - d % L
    return doc, start, size


#: Documents handled at once when cutting the concatenation (``wrapped``).
_WRAP_BLOCK = 1 << 17


def _wrapped(lengths: np.ndarray, max_len: int, sort: str, seed: int):
    """Concatenate documents in sort order and cut every max_len tokens.

    Document j spans tokens [begin_j, end_j) of the concatenation and touches rows
    ``begin_j // L .. (end_j - 1) // L``: one piece per row. The pieces are cut a block
    of documents at a time into arrays allocated once, so the memory beyond the plan
    itself is the sort order and the running ends (16 bytes per document).
    """
    L = max_len
    order = _doc_order(lengths, sort, seed)
    docs = np.arange(lengths.size, dtype=np.int64) if order is None else order
    del order
    ends = _in_order(lengths, docs, sort, int(lengths.max(initial=0)))
    if not ends.all():  # empty documents take no place
        keep = ends > 0
        docs, ends = docs[keep], ends[keep]
        del keep
    np.cumsum(ends, out=ends)
    blocks = [(a, min(a + _WRAP_BLOCK, ends.size)) for a in range(0, ends.size, _WRAP_BLOCK)]

    def cut(a: int, b: int):
        """(begins, ends, first rows, rows touched) of documents a..b-1."""
        e = ends[a:b]
        begin = np.empty_like(e)
        begin[0] = ends[a - 1] if a else 0
        begin[1:] = e[:-1]
        first = begin // L
        return begin, e, first, (e - 1) // L - first + 1

    total = sum(int(cut(a, b)[3].sum()) for a, b in blocks)
    row, doc, start, length, offset = (np.empty(total, dtype=np.int64) for _ in range(5))
    p = 0
    for a, b in blocks:
        begin, e, first, counts = cut(a, b)
        q = p + int(counts.sum())
        r = row[p:q]
        r[:] = expand_ranges(first, counts)
        which = np.repeat(np.arange(b - a), counts)
        doc[p:q] = docs[a:b][which]
        g0 = np.maximum(begin[which], r * L)  # a piece runs from max(begin, row start)
        np.minimum(e[which], (r + 1) * L, out=length[p:q])  # to min(end, row end)
        length[p:q] -= g0
        np.subtract(g0, begin[which], out=start[p:q])
        np.subtract(g0, r * L, out=offset[p:q])
        p = q
    return row, doc, start, length, offset


def _lay_out(strategy: str, pieces: list, max_len: int, *, sorted_: bool):
    """(row, doc, start, length, offset) in row order from ``pieces`` = [doc, start,
    sizes] in offering order. The list is emptied on entry, so each temporary is freed as
    soon as its last use is done: planning needs the plan's own 40 bytes per piece plus
    about 24 (measured in benchmarks/bench_planning.py)."""
    doc, start, sizes = pieces
    pieces.clear()
    n = sizes.size
    if strategy == "padded":  # one piece per row, already in row order
        row = np.arange(n, dtype=np.int64)
        start = np.zeros(n, dtype=np.int64) if start is None else start
        return row, doc, start, sizes.astype(np.int64), np.zeros(n, dtype=np.int64)
    placed_row = fit_rows(strategy, sizes, max_len, sorted_=sorted_)
    n_rows = int(placed_row.max()) + 1 if n else 0
    # order by row, keeping placement order inside a row: one permutation
    by_row = np.argsort(placed_row, kind="stable")
    per_row = np.bincount(placed_row, minlength=n_rows)
    del placed_row
    row = np.repeat(np.arange(n_rows, dtype=np.int64), per_row)
    length = sizes[by_row].astype(np.int64)
    del sizes
    doc = doc[by_row]
    start = np.zeros(n, dtype=np.int64) if start is None else start[by_row]
    del by_row
    offset = np.cumsum(length)  # in place from here: big corpora, few temporaries
    offset -= length  # tokens before each piece, in row order
    first = np.cumsum(per_row)
    first -= per_row
    offset -= np.repeat(offset[first], per_row)
    return row, doc, start, length, offset


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
    seed = check_int("seed", seed, least=0)
    given = lengths
    lengths = as_lengths(lengths)
    if isinstance(given, np.ndarray) and np.may_share_memory(lengths, given):
        lengths = lengths.copy()  # the plan keeps its own lengths: no aliasing

    _check_plan_fits(lengths, max_len, strategy, overflow)
    if strategy == "wrapped":
        row, doc, start, length, offset = _wrapped(lengths, max_len, sort, int(seed))
        n_rows = int(row[-1]) + 1 if row.size else 0
    else:
        if sort in ("desc", "asc"):
            doc, start, sizes = _sorted_pieces(lengths, max_len, overflow, sort == "desc")
        else:
            doc, start, sizes = _make_pieces(lengths, max_len, overflow)
            start = start if start.any() else None
            order = _piece_order(doc, sizes, lengths, max_len, sort, int(seed))
            if order is not None:
                doc, sizes = doc[order], sizes[order]
                start = None if start is None else start[order]
        pieces = [doc, start, sizes]
        del doc, start, sizes
        row, doc, start, length, offset = _lay_out(
            strategy, pieces, max_len, sorted_=sort in ("desc", "asc")
        )
        n_rows = int(row[-1]) + 1 if row.size else 0
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
