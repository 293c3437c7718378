"""Packing plans: which piece of which document goes to which row, from lengths alone.

Planning works on document *lengths*, never on tokens, so packing a million documents is
an operation on a million integers. The plan is then materialized for any tokenizer's ids
(`packviz.layout.materialize`), or only for the rows a page shows.

Why it is fast. Lengths are integers no larger than ``max_len``, so after a sort the piece
sequence is a few thousand *runs* of equal lengths, not a million items. Every fit
strategy here places a run in one step: when k pieces of length s arrive together, the
row chosen for the first one keeps receiving them while it has room (for best fit it stays
the tightest row that fits, for first fit the lowest-numbered), so a row with room r takes
``r // s`` of them at once. Rows that were opened together and received the same pieces
stay one *group* (a contiguous range of row numbers with equal room), so the work is
proportional to the number of (run, group) meetings, not to the number of documents.
With ``sort="none"`` or ``"random"`` runs have length one and the same code becomes the
classic online algorithm, O(N log N).

Worked example (``max_len=8``, lengths ``[5, 3, 6, 2]``, best fit, descending)::

    pieces by length: 6 (doc 2), 5 (doc 0), 3 (doc 1), 2 (doc 3)
    row 0: [2 2 2 2 2 2 3 3]     doc 2, then doc 3 (room 2 was the tightest fit)
    row 1: [0 0 0 0 0 1 1 1]     doc 0, then doc 1

Semantics (see the design notes in the README): ``overflow="split"`` cuts a long document
into full ``max_len`` chunks plus one remainder, so two pieces of one document never share
a row; sorts are stable (ties by document index, then piece start); among rows with equal
room the lowest-numbered wins; rows are numbered in the order they are opened.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from packviz.stats import PackStats

Strategy = Literal["next_fit", "first_fit", "best_fit", "wrapped", "padded"]
Sort = Literal["desc", "asc", "none", "random"]
Overflow = Literal["split", "truncate", "drop"]

STRATEGIES: tuple[str, ...] = ("next_fit", "first_fit", "best_fit", "wrapped", "padded")
SORTS: tuple[str, ...] = ("desc", "asc", "none", "random")
OVERFLOWS: tuple[str, ...] = ("split", "truncate", "drop")
#: Largest ``max_len`` the library accepts (2**20 token slots per row).
MAX_LEN_LIMIT = 1 << 20
#: Longest document the library accepts (2**40 tokens).
MAX_DOC_LENGTH = 1 << 40


@dataclass(frozen=True, eq=False)
class PackPlan:
    """Where every placed piece goes. One entry per piece, ordered by row then offset.

    Attributes:
        max_len: slots per row.
        n_rows: number of rows.
        n_docs: number of input documents (empty ones included).
        row, doc, start, length, offset: int64 arrays, one entry per piece: the row, the
            document index, the piece's first token inside the document, its length, and
            the column inside the row where it begins.
        doc_lengths: the input lengths (int64), kept for statistics and validation.
    """

    max_len: int
    n_rows: int
    n_docs: int
    row: np.ndarray
    doc: np.ndarray
    start: np.ndarray
    length: np.ndarray
    offset: np.ndarray
    doc_lengths: np.ndarray = field(repr=False)
    strategy: str = "best_fit"
    sort: str = "desc"
    overflow: str = "split"
    seed: int = 0

    @property
    def n_pieces(self) -> int:
        return int(self.row.size)

    @property
    def row_starts(self) -> np.ndarray:
        """Index of each row's first piece in the piece arrays (length ``n_rows + 1``)."""
        return np.searchsorted(self.row, np.arange(self.n_rows + 1), side="left")

    @property
    def pieces_per_row(self) -> np.ndarray:
        """Number of pieces in each row (int64, length ``n_rows``)."""
        return np.bincount(self.row, minlength=self.n_rows)

    @property
    def row_fill(self) -> np.ndarray:
        """Real tokens per row (int64, length ``n_rows``)."""
        return np.bincount(self.row, weights=self.length, minlength=self.n_rows).astype(np.int64)

    def settings(self) -> dict:
        """The arguments that made this plan (for metadata and cache keys)."""
        return {
            "max_len": self.max_len,
            "strategy": self.strategy,
            "sort": self.sort,
            "overflow": self.overflow,
            "seed": self.seed,
        }

    def stats(self) -> PackStats:
        """Efficiency statistics of this plan (see `packviz.stats.PackStats`)."""
        from packviz.stats import plan_stats

        return plan_stats(self)


# ----------------------------------------------------------------------------- validation


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
    return value


def check_max_len(max_len: object) -> int:
    """Return ``max_len`` as an int, or raise ValueError saying what is allowed."""
    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)):
        raise ValueError(f"max_len must be an integer, got {max_len!r}")
    if not 1 <= int(max_len) <= MAX_LEN_LIMIT:
        raise ValueError(f"max_len must be between 1 and {MAX_LEN_LIMIT:,}, got {int(max_len):,}")
    return int(max_len)


def as_lengths(lengths: object) -> np.ndarray:
    """Validate document lengths: a 1-D array-like of non-negative integers -> int64."""
    arr = np.asarray(lengths)
    if arr.ndim != 1:
        raise ValueError(f"lengths must be 1-D (one entry per document), got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise ValueError(f"lengths must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.floor(arr))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"lengths must be integers; document {i} has length {arr[i].item()!r}")
    if arr.min() < 0:
        i = int(np.argmin(arr))
        raise ValueError(f"lengths must be non-negative; document {i} has length {arr[i].item()!r}")
    if arr.max() > MAX_DOC_LENGTH:
        i = int(np.argmax(arr))
        raise ValueError(
            f"document {i} has length {arr[i].item():,}; lengths above {MAX_DOC_LENGTH:,} "
            "tokens are not supported"
        )
    out = arr.astype(np.int64, copy=False)
    if int(out.sum(dtype=np.float64)) >= 2**62:
        raise ValueError("the lengths add up to more tokens than an int64 can count")
    return out


# ----------------------------------------------------------------------------- helpers


def expand_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenate ``arange(s, s + c)`` for each (s, c), vectorized (int64)."""
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    keep = counts > 0
    if not keep.all():
        starts, counts = starts[keep], counts[keep]
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    steps = np.ones(total, dtype=np.int64)
    steps[0] = starts[0]
    heads = np.cumsum(counts[:-1])
    steps[heads] = starts[1:] - (starts[:-1] + counts[:-1] - 1)
    return np.cumsum(steps)


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


def _in_order(length: np.ndarray, order, sort: str, max_len: int) -> np.ndarray:
    """``length[order]``; for a sort by length, rebuilt from the histogram (no gather)."""
    if sort not in ("desc", "asc"):
        return length[order]
    counts = np.bincount(length, minlength=max_len + 1)
    values = np.arange(max_len + 1, dtype=np.int64)
    if sort == "desc":
        values, counts = values[::-1], counts[::-1]
    return np.repeat(values, counts)


def _runs(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run-length encoding: (value, count) of consecutive equal entries."""
    if sizes.size == 0:
        return sizes, sizes
    heads = np.flatnonzero(np.concatenate(([True], sizes[1:] != sizes[:-1])))
    counts = np.diff(np.append(heads, sizes.size))
    return sizes[heads], counts


# ----------------------------------------------------------------------------- fit engines
# Each engine takes the piece lengths in offering order and returns the row of every
# piece, in that same order. Rows are numbered in the order they are opened.


class _Events:
    """Placements recorded as (first row, number of rows, pieces per row), in order."""

    def __init__(self) -> None:
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._row: list[int] = []
        self._n: list[int] = []
        self._q: list[int] = []

    def add(self, row: int, n: int, q: int) -> None:
        self._row.append(row)
        self._n.append(n)
        self._q.append(q)

    def add_rows(self, rows: np.ndarray, per_row: np.ndarray) -> None:
        """rows[i] takes per_row[i] pieces (many single-row placements at once)."""
        self._flush()
        self._chunks.append((rows, np.ones(rows.size, np.int64), per_row))

    def _flush(self) -> None:
        if self._row:
            self._chunks.append(tuple(np.array(x, np.int64) for x in (self._row, self._n, self._q)))
            self._row, self._n, self._q = [], [], []

    def piece_rows(self) -> np.ndarray:
        self._flush()
        if not self._chunks:
            return np.zeros(0, dtype=np.int64)
        first, n, q = (
            np.concatenate(x).astype(np.int64, copy=False) for x in zip(*self._chunks, strict=True)
        )
        return np.repeat(expand_ranges(first, n), np.repeat(q, n))


def _open_rows(ev: _Events, first: int, s: int, k: int, max_len: int) -> list[tuple[int, int, int]]:
    """Open new rows for k pieces of length s: full rows of ``max_len // s`` pieces, then
    one row with the rest. Records the placements; returns (first row, rows, room) groups."""
    q = max_len // s
    full, rest = divmod(k, q)
    groups = []
    if full:
        ev.add(first, full, q)
        groups.append((first, full, max_len - q * s))
    if rest:
        ev.add(first + full, 1, rest)
        groups.append((first + full, 1, max_len - rest * s))
    return groups


def _next_fit_runs(sizes: np.ndarray, max_len: int) -> np.ndarray:
    """Next fit over runs of equal sizes: one open row; O(number of runs)."""
    ev = _Events()
    next_row, room = 0, 0
    for s, k in zip(*(a.tolist() for a in _runs(sizes)), strict=True):
        take = min(k, room // s)
        if take:
            ev.add(next_row - 1, 1, take)
            room -= take * s
            k -= take
        if k:
            groups = _open_rows(ev, next_row, s, k, max_len)
            next_row = groups[-1][0] + groups[-1][1]
            room = groups[-1][2]
    return ev.piece_rows()


def _next_fit_online(sizes: np.ndarray, max_len: int) -> np.ndarray:
    """Next fit in arbitrary order: one bisect per row over the prefix sums."""
    n = sizes.size
    ends = np.cumsum(sizes).tolist()
    heads = []
    i, base = 0, 0
    while i < n:
        heads.append(i)
        i = bisect.bisect_right(ends, base + max_len, lo=i)
        base = ends[i - 1]
    marks = np.zeros(n, dtype=np.int64)
    marks[heads] = 1
    return np.cumsum(marks) - 1


def _best_fit_runs(sizes: np.ndarray, max_len: int) -> np.ndarray:
    """Best fit, run by run. Rows live in groups (first row, count) bucketed by room."""
    ev = _Events()
    buckets: dict[int, list[list[int]]] = {}  # room -> groups [first_row, count], by row
    rooms: list[int] = []  # sorted rooms that have groups (room 0 is never stored)
    next_row = 0

    def put(room: int, first: int, count: int) -> None:
        if room == 0 or count == 0:
            return
        groups = buckets.get(room)
        if groups is None:
            buckets[room] = [[first, count]]
            bisect.insort(rooms, room)
        elif groups[-1][0] < first:
            groups.append([first, count])
        else:
            bisect.insort(groups, [first, count])

    for s, k in zip(*(a.tolist() for a in _runs(sizes)), strict=True):
        moves = []
        i = bisect.bisect_left(rooms, s)
        while k and i < len(rooms):
            r = rooms[i]
            q = r // s
            groups = buckets[r]
            used = 0
            for g in groups:
                first, count = g
                if k >= count * q:
                    ev.add(first, count, q)
                    moves.append((r - q * s, first, count))
                    k -= count * q
                    used += 1
                    if not k:
                        break
                    continue
                full, rest = divmod(k, q)
                if full:
                    ev.add(first, full, q)
                    moves.append((r - q * s, first, full))
                if rest:
                    ev.add(first + full, 1, rest)
                    moves.append((r - rest * s, first + full, 1))
                taken = full + (1 if rest else 0)
                g[0], g[1] = first + taken, count - taken
                used += count == taken
                k = 0
                break
            if used == len(groups):
                del buckets[r]
                del rooms[i]
            else:
                del groups[:used]
                i += 1
        if k:
            for first, count, room in _open_rows(ev, next_row, s, k, max_len):
                moves.append((room, first, count))
                next_row = first + count
        for room, first, count in moves:
            put(room, first, count)
    return ev.piece_rows()


#: Runs of at most this many pieces are placed one candidate row at a time instead of
#: by one vectorized pass over all candidates: with few pieces per distinct length (small
#: corpora), numpy's per-call cost dominates.
_FIRST_FIT_SMALL_RUN = 16
#: Rows per block of first fit's room array. Once the rows fill more than
#: ``_FIRST_FIT_FLAT_BLOCKS`` blocks, each block's largest room is kept and says whether
#: to look inside it: a run then scans O(rows / block) maxima plus the blocks it uses
#: instead of every row (10M documents: 1.2 s instead of 2.9 s). Below that, one flat
#: scan per run costs fewer numpy calls.
_FIRST_FIT_BLOCK = 2048
_FIRST_FIT_FLAT_BLOCKS = 32


def _first_fit_runs(sizes: np.ndarray, max_len: int) -> np.ndarray:
    """First fit, run by run, over a per-row room array (blocked when rows are many)."""
    bs = _FIRST_FIT_BLOCK
    n_blocks = -(-max(sizes.size, 1) // bs)
    room = np.zeros(n_blocks * bs, dtype=np.int64)  # unopened rows: room 0, never chosen
    blocks = room.reshape(n_blocks, bs)  # a view
    top = None  # largest room per block, once the rows span many blocks
    max_room = 0  # before that, an upper bound on room[:n_rows]
    n_rows = 0
    ev = _Events()
    for s, k in zip(*(a.tolist() for a in _runs(sizes)), strict=True):
        used = -(-n_rows // bs)
        if top is None and used > _FIRST_FIT_FLAT_BLOCKS:
            top = blocks.max(axis=1)
        if top is None:
            if n_rows and max_room >= s:
                k, max_room = _first_fit_flat(ev, s, k, room, n_rows, max_room)
        elif int(np.maximum.reduce(top[:used])) >= s:
            if k <= _FIRST_FIT_SMALL_RUN:
                k = _first_fit_few(ev, s, k, blocks, top, used)
            else:
                k = _first_fit_many(ev, s, k, blocks, top, used)
        if k:
            for first, count, free in _open_rows(ev, n_rows, s, k, max_len):
                room[first : first + count] = free
                n_rows = first + count
                max_room = max(max_room, free)
                if top is not None:
                    b0, b1 = first // bs, (first + count - 1) // bs + 1
                    np.maximum(top[b0:b1], free, out=top[b0:b1])
    return ev.piece_rows()


def _first_fit_flat(
    ev: _Events, s: int, k: int, room, n_rows: int, max_room: int
) -> tuple[int, int]:
    """Place k pieces of size s into the lowest of rows ``[0, n_rows)`` with room;
    returns the pieces left over and an upper bound on the rooms left (``max_room``: one
    on the rooms now)."""
    cand = (room[:n_rows] >= s).nonzero()[0]
    if k <= _FIRST_FIT_SMALL_RUN:  # every candidate takes a piece: at most k of them
        k = _take_each(ev, cand[:k], room, s, k)
        # rooms only shrank; if k did not run out, every row now has room < s
        return k, max_room if not k else s - 1
    if cand.size:
        k, free, m = _fill_lowest(ev, cand, room[cand], s, k)
        room[cand[:m]] = free[:m]
    return k, int(np.maximum.reduce(room[:n_rows]))


def _take_each(ev: _Events, idx, rooms, s: int, k: int, base: int = 0) -> int:
    """Rows ``base + idx`` (ascending; ``rooms[idx] >= s``) take pieces of size s in
    turn, each as many as it fits, until k run out; updates ``rooms``, returns k left."""
    for r, free in zip(idx.tolist(), rooms[idx].tolist(), strict=True):
        take = min(k, free // s)
        ev.add(base + r, 1, take)
        rooms[r] = free - take * s
        k -= take
        if not k:
            break
    return k


def _fill_lowest(ev: _Events, rows, free, s: int, k: int):
    """Rows ``rows`` (ascending, each with room ``free`` >= s) take k pieces of size s,
    lowest first, as many as each fits. Records the placements; returns the pieces left,
    the rooms after and how many rows (a prefix) were used."""
    cap = free // s
    total = np.cumsum(cap)
    if total[-1] <= k:
        cut, rest = rows.size, 0
    else:
        cut = int(np.searchsorted(total, k, side="right"))
        rest = k - (int(total[cut - 1]) if cut else 0)
    ev.add_rows(rows[:cut], cap[:cut])
    free[:cut] -= cap[:cut] * s
    k -= (int(total[cut - 1]) if cut else 0) + rest
    if rest:
        ev.add(int(rows[cut]), 1, rest)
        free[cut] -= rest * s
    return k, free, cut + (1 if rest else 0)


def _first_fit_few(ev: _Events, s: int, k: int, blocks, top, used: int) -> int:
    """Place up to k pieces of size s one row at a time, lowest rows first; returns the
    pieces left over."""
    b = 0
    while k and b < used:
        hit = top[b:used] >= s
        c = int(hit.argmax())
        if not hit[c]:
            break
        b += c
        row = blocks[b]  # a view: updates land in the room array
        k = _take_each(ev, (row >= s).nonzero()[0][:k], row, s, k, b * blocks.shape[1])
        top[b] = np.maximum.reduce(row)
        b += 1
    return k


def _first_fit_many(ev: _Events, s: int, k: int, blocks, top, used: int) -> int:
    """Place k pieces of size s into the lowest rows with room, all candidates of a group
    of blocks at once; returns the pieces left over."""
    bs = blocks.shape[1]
    cand_blocks = np.flatnonzero(top[:used] >= s)
    step = max(1, (1 << 16) // bs)  # blocks per pass: about 64k rows
    for i in range(0, cand_blocks.size, step):
        group = cand_blocks[i : i + step]
        rooms = blocks[group]  # a copy, [len(group), bs]
        flat = np.flatnonzero(rooms >= s)
        rows = group[flat // bs] * bs + flat % bs
        k, free, m = _fill_lowest(ev, rows, rooms.reshape(-1)[flat], s, k)
        rooms.reshape(-1)[flat[:m]] = free[:m]
        blocks[group] = rooms
        top[group] = rooms.max(axis=1)
        if not k:
            break
    return k


def _first_fit_online(sizes: np.ndarray, max_len: int) -> np.ndarray:
    """First fit in arbitrary order: a max-segment tree over rows, one descent per piece."""
    n = sizes.size
    size = 1
    while size < max(n, 1):
        size *= 2
    tree = [0] * (2 * size)  # max room below each node; unopened rows have room 0
    out = [0] * n
    n_rows = 0
    for idx, s in enumerate(sizes.tolist()):
        if tree[1] >= s:
            node = 1
            while node < size:
                node = 2 * node if tree[2 * node] >= s else 2 * node + 1
            r = node - size
        else:
            r = n_rows
            n_rows += 1
            node = size + r
            tree[node] = max_len
        out[idx] = r
        tree[node] -= s
        node //= 2
        while node:
            v = max(tree[2 * node], tree[2 * node + 1])
            if tree[node] == v:
                break
            tree[node] = v
            node //= 2
    return np.array(out, dtype=np.int64)


def _is_monotone(sizes: np.ndarray) -> bool:
    d = np.diff(sizes)
    return bool((d <= 0).all() or (d >= 0).all())


def _fit_rows(strategy: str, sizes: np.ndarray, max_len: int, sorted_: bool) -> np.ndarray:
    """Row of every piece; ``sorted_``: sizes come sorted (no need to check)."""
    if sizes.size == 0:
        return np.zeros(0, dtype=np.int64)
    few_runs = sorted_ or _is_monotone(sizes)
    if strategy == "next_fit":
        return _next_fit_runs(sizes, max_len) if few_runs else _next_fit_online(sizes, max_len)
    if strategy == "best_fit":
        return _best_fit_runs(sizes, max_len)
    if strategy == "first_fit":
        return _first_fit_runs(sizes, max_len) if few_runs else _first_fit_online(sizes, max_len)
    raise AssertionError(strategy)


def _wrapped(lengths: np.ndarray, max_len: int, sort: str, seed: int):
    """Concatenate documents in sort order and cut every max_len tokens."""
    order = _doc_order(lengths, sort, seed)
    docs = np.arange(lengths.size, dtype=np.int64) if order is None else order
    if sort in ("desc", "asc"):  # the sorted lengths, from the histogram (no gather)
        lens = _in_order(lengths, None, sort, int(lengths.max(initial=0)))
    else:
        lens = lengths[docs]
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
    strategy = _check_choice("strategy", strategy, STRATEGIES)
    sort = _check_choice("sort", sort, SORTS)
    overflow = _check_choice("overflow", overflow, OVERFLOWS)
    max_len = check_max_len(max_len)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    lengths = as_lengths(lengths)

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
            placed_row = _fit_rows(strategy, sizes, max_len, sort in ("desc", "asc"))
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
    return PackPlan(
        max_len=max_len,
        n_rows=n_rows,
        n_docs=int(lengths.size),
        row=row.astype(np.int64, copy=False),
        doc=doc.astype(np.int64, copy=False),
        start=start.astype(np.int64, copy=False),
        length=length.astype(np.int64, copy=False),
        offset=offset.astype(np.int64, copy=False),
        doc_lengths=lengths,
        strategy=strategy,
        sort=sort,
        overflow="split" if strategy == "wrapped" else overflow,
        seed=int(seed),
    )
