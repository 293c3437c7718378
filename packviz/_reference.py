"""Slow, plainly written references for the fast paths. Used by tests and benchmarks.

Nothing here is vectorized or clever on purpose: each function is a direct transcription
of the rule it checks (one piece at a time, one mask cell at a time), so that the fast
implementations in `packviz.packing`, `packviz.layout` and `packviz.masks` can be compared
against something obviously right.
"""

from __future__ import annotations

import bisect

import numpy as np


def reference_pieces(lengths, max_len, overflow):
    """Pieces (doc, start, length) in document order, one document at a time."""
    pieces = []
    for d, n in enumerate(int(x) for x in lengths):
        if n == 0:
            continue
        if n <= max_len:
            pieces.append((d, 0, n))
        elif overflow == "split":
            for s in range(0, n, max_len):
                pieces.append((d, s, min(max_len, n - s)))
        elif overflow == "truncate":
            pieces.append((d, 0, max_len))
        # drop: nothing
    return pieces


def reference_order(pieces, n_docs, sort, seed):
    """Offering order: stable sort by piece length, or documents shuffled with numpy."""
    if sort == "desc":
        return sorted(pieces, key=lambda p: -p[2])
    if sort == "asc":
        return sorted(pieces, key=lambda p: p[2])
    if sort == "random":
        perm = np.random.default_rng(seed).permutation(n_docs).tolist()
        rank = {d: i for i, d in enumerate(perm)}
        return sorted(pieces, key=lambda p: rank[p[0]])
    return list(pieces)


def reference_pack(lengths, max_len, strategy="best_fit", sort="desc", overflow="split", seed=0):
    """Return the plan as a list of rows, each a list of (doc, start, length) pieces."""
    lengths = [int(x) for x in lengths]
    if strategy == "wrapped":
        return _reference_wrapped(lengths, max_len, sort, seed)
    pieces = reference_order(reference_pieces(lengths, max_len, overflow), len(lengths), sort, seed)
    rows: list[list[tuple[int, int, int]]] = []
    room: list[int] = []
    by_room: list[tuple[int, int]] = []  # (room, row) sorted, for best fit
    for piece in pieces:
        n = piece[2]
        target = None
        if strategy == "next_fit":
            if rows and room[-1] >= n:
                target = len(rows) - 1
        elif strategy == "first_fit":
            for r, free in enumerate(room):
                if free >= n:
                    target = r
                    break
        elif strategy == "best_fit":
            i = bisect.bisect_left(by_room, (n, -1))
            if i < len(by_room):
                target = by_room.pop(i)[1]
        elif strategy != "padded":
            raise ValueError(strategy)
        if target is None:
            rows.append([])
            room.append(max_len)
            target = len(rows) - 1
        rows[target].append(piece)
        room[target] -= n
        if strategy == "best_fit":
            bisect.insort(by_room, (room[target], target))
    return rows


def _reference_wrapped(lengths, max_len, sort, seed):
    docs = list(range(len(lengths)))
    if sort == "desc":
        docs.sort(key=lambda d: -lengths[d])
    elif sort == "asc":
        docs.sort(key=lambda d: lengths[d])
    elif sort == "random":
        docs = np.random.default_rng(seed).permutation(len(lengths)).tolist()
    rows: list[list[tuple[int, int, int]]] = []
    used = max_len
    for d in docs:
        s = 0
        while s < lengths[d]:
            if used == max_len:
                rows.append([])
                used = 0
            n = min(max_len - used, lengths[d] - s)
            rows[-1].append((d, s, n))
            used += n
            s += n
    return rows


def reference_best_fit_decreasing(lengths, max_len):
    """The benchmark's straightforward BFD over whole pieces (all <= max_len), in Python.

    One piece at a time in descending order; rows are kept in buckets by room, with a
    sorted list of the rooms that have rows, so finding the tightest fit is one bisect.
    Returns (number of rows, row of each piece).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    rooms: list[int] = []  # sorted distinct rooms that have open rows
    rows_with_room: dict[int, list[int]] = {}  # room -> rows (lowest number first)
    n_rows = 0
    assignment = [0] * len(lengths)
    for i in order:
        n = lengths[i]
        j = bisect.bisect_left(rooms, n)
        if j < len(rooms):
            room = rooms[j]
            bucket = rows_with_room[room]
            row = bucket.pop(0) if len(bucket) > 1 else bucket.pop()
            if not bucket:
                del rooms[j]
                del rows_with_room[room]
        else:
            room, row = max_len, n_rows
            n_rows += 1
        assignment[i] = row
        left = room - n
        if left:
            if left not in rows_with_room:
                rows_with_room[left] = []
                bisect.insort(rooms, left)
            bisect.insort(rows_with_room[left], row)
    return n_rows, assignment


def reference_document_mask(doc_ids):
    """Mask cell by cell: causal inside a run of equal doc ids; padding sees itself."""
    doc_ids = np.asarray(doc_ids)
    b, n = doc_ids.shape
    out = np.zeros((b, n, n), dtype=bool)
    for r in range(b):
        piece = []
        current = 0
        for i in range(n):
            if i > 0 and (doc_ids[r, i] != doc_ids[r, i - 1] or doc_ids[r, i] < 0):
                current += 1
            piece.append(current)
        for q in range(n):
            for k in range(n):
                if doc_ids[r, q] < 0:
                    out[r, q, k] = q == k
                else:
                    out[r, q, k] = k <= q and piece[k] == piece[q]
    return out


def reference_materialize(rows, token_ids, max_len, pad_id):
    """Fill [n_rows, max_len] arrays slot by slot from a list-of-rows plan."""
    n = len(rows)
    input_ids = [[pad_id] * max_len for _ in range(n)]
    doc_ids = [[-1] * max_len for _ in range(n)]
    position_ids = [[0] * max_len for _ in range(n)]
    labels = [[-100] * max_len for _ in range(n)]
    for r, pieces in enumerate(rows):
        col = 0
        for d, s, length in pieces:
            for j in range(length):
                input_ids[r][col] = int(token_ids[d][s + j])
                doc_ids[r][col] = d
                position_ids[r][col] = j
                labels[r][col] = -100 if j == 0 else int(token_ids[d][s + j])
                col += 1
    return {
        "input_ids": np.array(input_ids, dtype=np.int64).reshape(n, max_len),
        "doc_ids": np.array(doc_ids, dtype=np.int64).reshape(n, max_len),
        "position_ids": np.array(position_ids, dtype=np.int64).reshape(n, max_len),
        "labels": np.array(labels, dtype=np.int64).reshape(n, max_len),
    }
