"""The fit engines behind `packviz.pack`: the row of every piece, from piece sizes alone.

Every engine takes the piece sizes in offering order (all ``1 <= size <= max_len``) and
returns, in that same order, the row each piece goes to. Rows are numbered in the order
they are opened. Each one must equal, row for row, the one-piece-at-a-time transcription
of its rule in `packviz._reference.reference_pack` (the tests compare them under
hypothesis); none is an approximation.

Why they are fast. After a sort the sizes form a few thousand *runs* of equal values,
not a million items. A row with room ``room`` takes ``room // size`` pieces of a run at
once, and rows that were opened together and received the same pieces stay one *group*
(a contiguous range of row numbers with equal room), so the work is proportional to the
number of (run, group) meetings, not to the number of pieces. With ``sort="none"`` or
``"random"`` runs have length one and the same code becomes the classic online
algorithm.
"""

from __future__ import annotations

import bisect

import numpy as np

from packviz._ranges import expand_ranges, runs


class _Events:
    """Placements recorded as (first row, number of rows, pieces per row), in order."""

    def __init__(self) -> None:
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._row: list[int] = []
        self._n: list[int] = []
        self._per_row: list[int] = []

    def add(self, row: int, n: int, per_row: int) -> None:
        """Rows ``row .. row + n - 1`` each take ``per_row`` pieces."""
        self._row.append(row)
        self._n.append(n)
        self._per_row.append(per_row)

    def add_rows(self, rows: np.ndarray, per_row: np.ndarray) -> None:
        """rows[i] takes per_row[i] pieces (many single-row placements at once)."""
        self._flush()
        self._chunks.append((rows, np.ones(rows.size, np.int64), per_row))

    def _flush(self) -> None:
        if self._row:
            lists = (self._row, self._n, self._per_row)
            self._chunks.append(tuple(np.array(x, np.int64) for x in lists))
            self._row, self._n, self._per_row = [], [], []

    def piece_rows(self) -> np.ndarray:
        """The row of every recorded piece, in placement order."""
        self._flush()
        if not self._chunks:
            return np.zeros(0, dtype=np.int64)
        first, n, per_row = (
            np.concatenate(x).astype(np.int64, copy=False) for x in zip(*self._chunks, strict=True)
        )
        return np.repeat(expand_ranges(first, n), np.repeat(per_row, n))


def _open_rows(
    ev: _Events, first: int, size: int, count: int, max_len: int
) -> list[tuple[int, int, int]]:
    """Open new rows for ``count`` pieces of ``size``: full rows of ``max_len // size``
    pieces, then one row with the rest. Records the placements; returns the new groups as
    (first row, rows, room left)."""
    per_row = max_len // size
    full, rest = divmod(count, per_row)
    groups = []
    if full:
        ev.add(first, full, per_row)
        groups.append((first, full, max_len - per_row * size))
    if rest:
        ev.add(first + full, 1, rest)
        groups.append((first + full, 1, max_len - rest * size))
    return groups


# --------------------------------------------------------------------------- next fit


def next_fit_runs(sizes: np.ndarray, max_len: int) -> np.ndarray:
    """Next fit over runs of equal sizes: one open row; O(number of runs).

    Invariant: a piece goes to the last opened row if it fits there, else opens a row.
    Reference: ``reference_pack(..., strategy="next_fit")``.
    """
    ev = _Events()
    next_row, room = 0, 0
    for size, count in zip(*(a.tolist() for a in runs(sizes)), strict=True):
        take = min(count, room // size)
        if take:
            ev.add(next_row - 1, 1, take)
            room -= take * size
            count -= take
        if count:
            groups = _open_rows(ev, next_row, size, count, max_len)
            next_row = groups[-1][0] + groups[-1][1]
            room = groups[-1][2]
    return ev.piece_rows()


def next_fit_online(sizes: np.ndarray, max_len: int) -> np.ndarray:
    """Next fit in arbitrary order: one bisect per row over the prefix sums.

    Same invariant and reference as `next_fit_runs`.
    """
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


# --------------------------------------------------------------------------- best fit


def best_fit_runs(sizes: np.ndarray, max_len: int) -> np.ndarray:
    """Best fit, run by run, over groups of rows bucketed by room.

    Invariant: each piece goes to the row with the least room that still fits it (the
    lowest-numbered among equals), else opens a row. Reference:
    ``reference_pack(..., strategy="best_fit")``.

    ``buckets[room]`` holds the groups ``[first_row, n_rows]`` with that room, in row
    order; ``rooms`` is the sorted list of rooms that have groups (room 0 is never
    stored: a full row takes nothing). A run of ``count`` pieces of ``size`` scans the
    rooms upwards from ``size``: the tightest rooms first, and within a room the lowest
    rows first, which is exactly the order the one-at-a-time rule would fill them.
    """
    ev = _Events()
    buckets: dict[int, list[list[int]]] = {}
    rooms: list[int] = []
    next_row = 0

    def put(room: int, first: int, n_rows: int) -> None:
        if room == 0 or n_rows == 0:
            return
        groups = buckets.get(room)
        if groups is None:
            buckets[room] = [[first, n_rows]]
            bisect.insort(rooms, room)
        elif groups[-1][0] < first:
            groups.append([first, n_rows])
        else:
            bisect.insort(groups, [first, n_rows])

    for size, count in zip(*(a.tolist() for a in runs(sizes)), strict=True):
        # Rows that take pieces move to a smaller room. Those moves are applied only after
        # the run is placed: inserting into ``rooms`` or a bucket while scanning them would
        # shift the positions being walked. Delaying is exact, because a row that took
        # pieces of this run is left with room < size (it took ``room // size`` of them)
        # or the run ran out in it, so no row can receive this run twice.
        moves = []
        i = bisect.bisect_left(rooms, size)
        while count and i < len(rooms):
            room = rooms[i]
            per_row = room // size
            groups = buckets[room]
            emptied = 0  # groups of this room used up, a prefix of ``groups``
            for group in groups:
                first, n_rows = group
                if count >= n_rows * per_row:  # the whole group fills up
                    ev.add(first, n_rows, per_row)
                    moves.append((room - per_row * size, first, n_rows))
                    count -= n_rows * per_row
                    emptied += 1
                    if not count:
                        break
                    continue
                full, rest = divmod(count, per_row)  # the run ends inside this group
                if full:
                    ev.add(first, full, per_row)
                    moves.append((room - per_row * size, first, full))
                if rest:
                    ev.add(first + full, 1, rest)
                    moves.append((room - rest * size, first + full, 1))
                taken = full + (1 if rest else 0)
                group[0], group[1] = first + taken, n_rows - taken
                emptied += n_rows == taken
                count = 0
                break
            if emptied == len(groups):
                del buckets[room]
                del rooms[i]
            else:
                del groups[:emptied]
                i += 1
        if count:
            for first, n_rows, room in _open_rows(ev, next_row, size, count, max_len):
                moves.append((room, first, n_rows))
                next_row = first + n_rows
        for room, first, n_rows in moves:
            put(room, first, n_rows)
    return ev.piece_rows()


# --------------------------------------------------------------------------- first fit

#: Runs of at most this many pieces are placed one candidate row at a time instead of
#: by one vectorized pass over all candidates: with few pieces per distinct length (small
#: corpora), numpy's per-call cost dominates.
FIRST_FIT_SMALL_RUN = 16
#: Rows per block of first fit's room array. Once the rows fill more than
#: ``FIRST_FIT_FLAT_BLOCKS`` blocks, each block's largest room is kept and says whether
#: to look inside it: a run then scans O(rows / block) maxima plus the blocks it uses,
#: instead of every row. Below that, one flat scan per run costs fewer numpy calls.
FIRST_FIT_BLOCK = 2048
FIRST_FIT_FLAT_BLOCKS = 32


def first_fit_runs(sizes: np.ndarray, max_len: int) -> np.ndarray:
    """First fit, run by run, over a per-row room array (blocked when rows are many).

    Invariant: each piece goes to the lowest-numbered row that fits it, else opens a
    row. Reference: ``reference_pack(..., strategy="first_fit")``.
    """
    bs = FIRST_FIT_BLOCK
    n_blocks = -(-max(sizes.size, 1) // bs)
    room = np.zeros(n_blocks * bs, dtype=np.int64)  # unopened rows: room 0, never chosen
    blocks = room.reshape(n_blocks, bs)  # a view
    top = None  # largest room per block, once the rows span many blocks
    max_room = 0  # before that, an upper bound on room[:n_rows]
    n_rows = 0
    ev = _Events()
    for size, count in zip(*(a.tolist() for a in runs(sizes)), strict=True):
        used = -(-n_rows // bs)
        if top is None and used > FIRST_FIT_FLAT_BLOCKS:
            top = blocks.max(axis=1)
        if top is None:
            if n_rows and max_room >= size:
                count, max_room = _first_fit_flat(ev, size, count, room, n_rows, max_room)
        elif int(np.maximum.reduce(top[:used])) >= size:
            if count <= FIRST_FIT_SMALL_RUN:
                count = _first_fit_few(ev, size, count, blocks, top, used)
            else:
                count = _first_fit_many(ev, size, count, blocks, top, used)
        if count:
            for first, n_new, free in _open_rows(ev, n_rows, size, count, max_len):
                room[first : first + n_new] = free
                n_rows = first + n_new
                max_room = max(max_room, free)
                if top is not None:
                    b0, b1 = first // bs, (first + n_new - 1) // bs + 1
                    np.maximum(top[b0:b1], free, out=top[b0:b1])
    return ev.piece_rows()


def _first_fit_flat(
    ev: _Events, size: int, count: int, room, n_rows: int, max_room: int
) -> tuple[int, int]:
    """Place ``count`` pieces of ``size`` into the lowest of rows ``[0, n_rows)`` with
    room; returns the pieces left over and an upper bound on the rooms left."""
    cand = (room[:n_rows] >= size).nonzero()[0]
    if count <= FIRST_FIT_SMALL_RUN:  # every candidate takes a piece: at most count of them
        count = _take_each(ev, cand[:count], room, size, count)
        # rooms only shrank; if count did not run out, every row now has room < size
        return count, max_room if not count else size - 1
    if cand.size:
        count, free, m = _fill_lowest(ev, cand, room[cand], size, count)
        room[cand[:m]] = free[:m]
    return count, int(np.maximum.reduce(room[:n_rows]))


def _take_each(ev: _Events, idx, rooms, size: int, count: int, base: int = 0) -> int:
    """Rows ``base + idx`` (ascending; ``rooms[idx] >= size``) take pieces of ``size``
    in turn, each as many as it fits, until ``count`` runs out; updates ``rooms``,
    returns the pieces left."""
    for r, free in zip(idx.tolist(), rooms[idx].tolist(), strict=True):
        take = min(count, free // size)
        ev.add(base + r, 1, take)
        rooms[r] = free - take * size
        count -= take
        if not count:
            break
    return count


def _fill_lowest(ev: _Events, rows, free, size: int, count: int):
    """Rows ``rows`` (ascending, each with room ``free`` >= size) take ``count`` pieces,
    lowest first, as many as each fits. Records the placements; returns the pieces left,
    the rooms after and how many rows (a prefix) were used."""
    cap = free // size
    total = np.cumsum(cap)
    if total[-1] <= count:
        cut, rest = rows.size, 0
    else:
        cut = int(np.searchsorted(total, count, side="right"))
        rest = count - (int(total[cut - 1]) if cut else 0)
    ev.add_rows(rows[:cut], cap[:cut])
    free[:cut] -= cap[:cut] * size
    count -= (int(total[cut - 1]) if cut else 0) + rest
    if rest:
        ev.add(int(rows[cut]), 1, rest)
        free[cut] -= rest * size
    return count, free, cut + (1 if rest else 0)


def _first_fit_few(ev: _Events, size: int, count: int, blocks, top, used: int) -> int:
    """Place up to ``count`` pieces one row at a time, lowest rows first; returns the
    pieces left over."""
    b = 0
    while count and b < used:
        hit = top[b:used] >= size
        c = int(hit.argmax())
        if not hit[c]:
            break
        b += c
        row = blocks[b]  # a view: updates land in the room array
        idx = (row >= size).nonzero()[0][:count]
        count = _take_each(ev, idx, row, size, count, b * blocks.shape[1])
        top[b] = np.maximum.reduce(row)
        b += 1
    return count


def _first_fit_many(ev: _Events, size: int, count: int, blocks, top, used: int) -> int:
    """Place ``count`` pieces into the lowest rows with room, all candidates of a group of
    blocks at once; returns the pieces left over."""
    bs = blocks.shape[1]
    cand_blocks = np.flatnonzero(top[:used] >= size)
    step = max(1, (1 << 16) // bs)  # blocks per pass: about 64k rows
    for i in range(0, cand_blocks.size, step):
        group = cand_blocks[i : i + step]
        rooms = blocks[group]  # a copy, [len(group), bs]
        flat = np.flatnonzero(rooms >= size)
        rows = group[flat // bs] * bs + flat % bs
        count, free, m = _fill_lowest(ev, rows, rooms.reshape(-1)[flat], size, count)
        rooms.reshape(-1)[flat[:m]] = free[:m]
        blocks[group] = rooms
        top[group] = rooms.max(axis=1)
        if not count:
            break
    return count


def first_fit_online(sizes: np.ndarray, max_len: int) -> np.ndarray:
    """First fit in arbitrary order: a max-segment tree over rows, one descent per piece.

    Same invariant and reference as `first_fit_runs`; O(N log N).
    """
    n = sizes.size
    leaves = 1
    while leaves < max(n, 1):
        leaves *= 2
    tree = [0] * (2 * leaves)  # largest room below each node; unopened rows have room 0
    out = [0] * n
    n_rows = 0
    for idx, size in enumerate(sizes.tolist()):
        if tree[1] >= size:
            node = 1
            while node < leaves:
                node = 2 * node if tree[2 * node] >= size else 2 * node + 1
            r = node - leaves
        else:
            r = n_rows
            n_rows += 1
            node = leaves + r
            tree[node] = max_len
        out[idx] = r
        tree[node] -= size
        node //= 2
        while node:
            v = max(tree[2 * node], tree[2 * node + 1])
            if tree[node] == v:
                break
            tree[node] = v
            node //= 2
    return np.array(out, dtype=np.int64)


# --------------------------------------------------------------------------- dispatch


def _is_monotone(sizes: np.ndarray) -> bool:
    d = np.diff(sizes)
    return bool((d <= 0).all() or (d >= 0).all())


def fit_rows(strategy: str, sizes: np.ndarray, max_len: int, *, sorted_: bool) -> np.ndarray:
    """Row of every piece for ``next_fit``, ``first_fit`` or ``best_fit``.

    ``sorted_``: the sizes are known to be sorted (runs are long; no need to check).
    """
    if sizes.size == 0:
        return np.zeros(0, dtype=np.int64)
    few_runs = sorted_ or _is_monotone(sizes)
    if strategy == "next_fit":
        return next_fit_runs(sizes, max_len) if few_runs else next_fit_online(sizes, max_len)
    if strategy == "best_fit":
        return best_fit_runs(sizes, max_len)
    if strategy == "first_fit":
        return first_fit_runs(sizes, max_len) if few_runs else first_fit_online(sizes, max_len)
    raise AssertionError(strategy)
