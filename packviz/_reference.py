"""Slow, plainly written references for the fast paths. Used by tests and benchmarks.

Nothing here is vectorized or clever on purpose: each function is a direct transcription
of the rule it checks (one piece at a time, one mask cell at a time), so that the fast
implementations in `packviz.packing` (and its engines in `packviz._fit`),
`packviz.layout`, `packviz.masks` and `packviz.grids` can be compared against something
obviously right. The benchmarks time `reference_pack` as the straightforward baseline.
"""

from __future__ import annotations

import bisect
import heapq

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
    # best fit: the rows with each room, lowest number first (a heap per room), and the
    # sorted list of rooms that have rows, so the tightest fit is one bisect away
    rows_with_room: dict[int, list[int]] = {}
    rooms: list[int] = []
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
            i = bisect.bisect_left(rooms, n)
            if i < len(rooms):
                bucket = rows_with_room[rooms[i]]
                target = heapq.heappop(bucket)
                if not bucket:
                    del rows_with_room[rooms.pop(i)]
        elif strategy != "padded":
            raise ValueError(strategy)
        if target is None:
            rows.append([])
            room.append(max_len)
            target = len(rows) - 1
        rows[target].append(piece)
        room[target] -= n
        if strategy == "best_fit" and room[target]:
            if room[target] not in rows_with_room:
                rows_with_room[room[target]] = []
                bisect.insort(rooms, room[target])
            heapq.heappush(rows_with_room[room[target]], target)
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


def reference_materialize(rows, token_ids, max_len, pad_id, trained=None):
    """Fill [n_rows, max_len] arrays slot by slot from a list-of-rows plan; ``trained``
    (one bool list per document, or None) marks the tokens that may be targets."""
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
                target = j > 0 and (trained is None or bool(trained[d][s + j]))
                labels[r][col] = int(token_ids[d][s + j]) if target else -100
                col += 1
    return {
        "input_ids": np.array(input_ids, dtype=np.int64).reshape(n, max_len),
        "doc_ids": np.array(doc_ids, dtype=np.int64).reshape(n, max_len),
        "position_ids": np.array(position_ids, dtype=np.int64).reshape(n, max_len),
        "labels": np.array(labels, dtype=np.int64).reshape(n, max_len),
    }


def reference_causal_mask(n):
    """Plain causal mask cell by cell: a query sees every key up to itself."""
    return np.array([[k <= q for k in range(n)] for q in range(n)], dtype=bool).reshape(n, n)


def reference_pool_any(mask, block):
    """Max-pool a square bool matrix cell by cell: a cell is True when any entry is."""
    n = mask.shape[0]
    nb = -(-n // block)
    out = np.zeros((nb, nb), dtype=bool)
    for i in range(nb):
        for j in range(nb):
            out[i, j] = mask[i * block : (i + 1) * block, j * block : (j + 1) * block].any()
    return out


def reference_mask_grids(doc_ids_row, start, stop, block):
    """(causal, document, cross) of one row's slots [start, stop), pooled by ``block``,
    from the cell-by-cell masks."""
    window = np.asarray(doc_ids_row)[start:stop]
    document = reference_document_mask(window[None])[0]
    causal = reference_causal_mask(window.size)
    return (
        reference_pool_any(causal, block),
        reference_pool_any(document, block),
        reference_pool_any(causal & ~document, block),
    )


def reference_overview_grid(rows, max_len, rows_per_cell, slot_edges):
    """Fill fraction of each (row block, slot block) cell of a list-of-rows plan, from a
    dense 0/1 picture of the rows."""
    dense = np.zeros((len(rows), max_len))
    for r, pieces in enumerate(rows):
        col = 0
        for _, _, length in pieces:
            dense[r, col : col + length] = 1
            col += length
    n_blocks = -(-len(rows) // rows_per_cell)
    out = np.zeros((n_blocks, len(slot_edges) - 1))
    for i in range(n_blocks):
        for j in range(len(slot_edges) - 1):
            cell = dense[i * rows_per_cell : (i + 1) * rows_per_cell]
            out[i, j] = cell[:, slot_edges[j] : slot_edges[j + 1]].mean()
    return out


def reference_token_flags(offsets, spans):
    """Trained flag of each token, one token and one span at a time: a token is trained
    when its characters ``[start, end)`` overlap a span (transformers' rule)."""
    return [any(s < end and start < e for s, e in spans) for start, end in offsets]


def reference_trained_slots(rows, trained, max_len):
    """Per slot of a list-of-rows plan: the trained flag of the token there (False at
    padding); ``trained`` is one bool list per document."""
    out = np.zeros((len(rows), max_len), dtype=bool)
    for r, pieces in enumerate(rows):
        col = 0
        for d, s, length in pieces:
            for j in range(length):
                out[r, col] = bool(trained[d][s + j])
                col += 1
    return out


def reference_fragmentation(rows, n_docs):
    """(fragmented tokens, fragmented documents, severed pairs) of a list-of-rows plan,
    token by token: a token is fragmented when an earlier token of its document sits in
    another piece; a pair (query, key) of one document is severed when the two tokens
    are in different pieces."""
    piece_of = {}  # (doc, token index in the document) -> piece number
    n = 0
    for pieces in rows:
        for d, s, length in pieces:
            for j in range(length):
                piece_of[(d, s + j)] = n
            n += 1
    fragmented = severed = 0
    pieces_per_doc = [set() for _ in range(n_docs)]
    for (d, t), p in piece_of.items():
        pieces_per_doc[d].add(p)
        if any(piece_of[(d, k)] != p for k in range(t) if (d, k) in piece_of):
            fragmented += 1
        for k in range(t + 1):
            if (d, k) in piece_of and piece_of[(d, k)] != p:
                severed += 1
    return fragmented, sum(len(x) >= 2 for x in pieces_per_doc), severed


def reference_loss_weights(rows, n_docs, batch_rows, normalize):
    """Each document's gradient share, target by target: batches of ``batch_rows``
    consecutive rows; ``token``: a target weighs 1 / targets in its batch; ``sequence``:
    1 / (rows with targets in its batch) / (targets in its row). Averaged over the
    batches that have targets."""
    weights = [0.0] * n_docs
    live_batches = 0
    for b0 in range(0, len(rows), batch_rows):
        batch = rows[b0 : b0 + batch_rows]
        # every target of the batch: (document, its row inside the batch)
        targets = [
            (d, r) for r, pieces in enumerate(batch) for d, _, n in pieces for _ in range(n - 1)
        ]
        if not targets:
            continue
        live_batches += 1
        per_row = [sum(1 for _, r in targets if r == i) for i in range(len(batch))]
        live_rows = sum(1 for c in per_row if c)
        for d, r in targets:
            if normalize == "token":
                weights[d] += 1 / len(targets)
            else:
                weights[d] += 1 / live_rows / per_row[r]
    return [w / live_batches for w in weights] if live_batches else weights


def reference_collate(items):
    """What `packviz.collate` must make of ``items`` (dicts of equal-length integer
    lists), one slot at a time; None when it must refuse them. A real slot
    (``attention_mask`` != 0) with position 0 starts a piece, one with the position
    after the slot before (itself real) continues it, any other is refused; a label at a
    piece start or at padding must be -100. Returns ``pieces`` (per row, the piece
    number of each slot, from 0; -1 at padding), ``dense`` (``[B, L, L]`` bools, True =
    the query may attend to the key) and the flattened batch (``input_ids``, ``labels``,
    ``position_ids`` of the real slots in order, ``cu_seqlens``)."""
    if not items:
        return None
    pieces, flat, lengths = [], {"input_ids": [], "labels": [], "position_ids": []}, []
    for item in items:
        ids, labels = list(item["input_ids"]), list(item["labels"])
        pos, real = list(item["position_ids"]), [m != 0 for m in item["attention_mask"]]
        row, current = [], -1
        for s in range(len(ids)):
            if not real[s]:
                if labels[s] != -100:
                    return None
                row.append(-1)
                continue
            if pos[s] == 0:
                if labels[s] != -100:
                    return None
                current += 1
                lengths.append(0)
            elif not (s > 0 and real[s - 1] and pos[s] == pos[s - 1] + 1):
                return None
            row.append(current)
            lengths[-1] += 1
            flat["input_ids"].append(ids[s])
            flat["labels"].append(labels[s])
            flat["position_ids"].append(pos[s])
        pieces.append(row)
    n = len(pieces[0])
    dense = np.zeros((len(pieces), n, n), dtype=bool)
    for r, row in enumerate(pieces):
        for q in range(n):
            for k in range(n):
                dense[r, q, k] = k == q or (row[q] >= 0 and row[k] == row[q] and k < q)
    cu = [0]
    for length in lengths:
        cu.append(cu[-1] + length)
    return {"pieces": pieces, "dense": dense, **flat, "cu_seqlens": cu}
