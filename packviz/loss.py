"""How much each document weighs in the gradient, under the loss normalizations trainers use.

Why. A token-mean loss over a packed batch gives every trained token in the batch the
same weight, so a document weighs in proportion to its length. A per-sequence mean over
padded batches (each sequence's mean loss, then the mean over the batch) gives every
sequence the same weight, whatever its length. Switching between the two — or
normalizing per micro-batch under gradient accumulation, the loss pitfall reported
across trainers in 2024 — silently moves the gradient between long and short documents.
These functions say by how much, for a given plan and batch size, from the plan alone.

Definitions, for batches of ``batch_rows`` consecutive rows of a plan. A piece of
length ``l`` has ``l - 1`` targets (its first token predicts nothing across a boundary).
Given the ``token_ids`` the plan was made for, with trained flags (fine-tuning: labels
-100 off the completions or assistant turns), a piece's targets are only its trained
tokens after its first slot — the labels that are not -100 — so prompts weigh nothing.

- ``"token"``: in each batch every target weighs ``1 / (targets in the batch)``: the
  token mean per batch. TRL and transformers normalize over a whole optimizer step
  (``num_items_in_batch``): use the rows per step as ``batch_rows``; with ``batch_rows
  >= n_rows`` this is the global token mean, where each document's weight is its share
  of the targets.
- ``"sequence"``: in each batch every row with targets weighs ``1 / (rows with
  targets)``, split evenly among its targets: per-sequence mean, then batch mean. On a
  ``padded`` plan a row is one piece, i.e. one document (or one chunk of a split one).

A document's weight is the sum over its targets, divided by the number of batches that
have targets, so all weights add up to 1: each document's share of the gradient for
equal per-token losses. The slow reference is
`packviz._reference.reference_loss_weights`.

Example (max length 10, documents of 7 and 3 tokens packed in one row, or padded into
two rows, in one batch)::

    >>> from packviz import pack
    >>> loss_weights(pack([7, 3], 10), batch_rows=2).tolist()  # 6 and 2 targets
    [0.75, 0.25]
    >>> loss_weights(pack([7, 3], 10, strategy="padded"), batch_rows=2, normalize="sequence").tolist()
    [0.5, 0.5]

With trained flags (the first document trains its last 2 tokens, the second all 3):

    >>> from packviz import TokenIds
    >>> flags = [[False] * 5 + [True] * 2, [True] * 3]
    >>> ids = TokenIds.from_sequences([[1] * 7, [2] * 3], trained=flags)
    >>> loss_weights(pack(ids.lengths, 10), batch_rows=2, token_ids=ids).tolist()  # 2 and 2
    [0.5, 0.5]
"""

from __future__ import annotations

import numpy as np

from packviz._args import check_instance
from packviz.choices import LOSS_NORMALIZATIONS, LossNormalization, check_choice
from packviz.limits import as_lengths, check_int
from packviz.plan import PackPlan
from packviz.sft import piece_targets


def _check_batch_rows(batch_rows: object) -> int:
    return check_int("batch_rows", batch_rows, least=1)


def loss_weights(
    plan: PackPlan,
    *,
    batch_rows: int,
    normalize: LossNormalization = "token",
    token_ids: object = None,
) -> np.ndarray:
    """Each document's share of the gradient (float64, one per document, sum 1 when any
    document has a target; 0 for documents with none). ``token_ids``: the ids the plan
    was made for; with trained flags only the trained targets count (see above).

    >>> from packviz import pack
    >>> w = loss_weights(pack([9, 2, 2], 4, strategy="padded", sort="none"), batch_rows=5,
    ...                  normalize="sequence")
    >>> [round(float(x), 3) for x in w]  # 9 -> pieces 4, 4, 1 (no target); 2, 2
    [0.5, 0.25, 0.25]
    """
    check_instance(plan, PackPlan, "loss_weights", "a PackPlan (from pv.pack)")
    # more rows per batch than the plan has: one batch (and no int64 overflow)
    batch_rows = min(_check_batch_rows(batch_rows), max(plan.n_rows, 1))
    normalize = check_choice("loss normalization", normalize, LOSS_NORMALIZATIONS)
    if token_ids is None:
        targets = (plan.length - 1).clip(min=0).astype(np.float64)
    else:
        targets = piece_targets(plan, token_ids).astype(np.float64)
    batch = plan.row // batch_rows
    n_batches = -(-plan.n_rows // batch_rows)
    if normalize == "token":
        per_batch = np.bincount(batch, weights=targets, minlength=n_batches)
        piece_w = np.divide(
            targets, per_batch[batch], out=np.zeros_like(targets), where=targets > 0
        )
        live = int(np.count_nonzero(per_batch))
    else:
        per_row = np.bincount(plan.row, weights=targets, minlength=plan.n_rows)
        row_live = per_row > 0
        rows_per_batch = np.bincount(
            np.arange(plan.n_rows) // batch_rows, weights=row_live, minlength=n_batches
        )
        share_in_row = np.divide(
            targets, per_row[plan.row], out=np.zeros_like(targets), where=targets > 0
        )
        piece_w = np.divide(
            share_in_row,
            rows_per_batch[batch],
            out=np.zeros_like(targets),
            where=share_in_row > 0,
        )
        live = int(np.count_nonzero(rows_per_batch))
    weights = np.bincount(plan.doc, weights=piece_w, minlength=plan.n_docs)
    return weights / live if live else weights


def length_order(lengths: object) -> np.ndarray:
    """Document indices from the shortest to the longest, ties by index (pass it as
    ``order`` to `share_by_length` and `longest_share` to sort a big corpus once).

    >>> length_order([5, 2, 5, 1]).tolist()
    [3, 1, 0, 2]
    """
    return np.argsort(as_lengths(lengths), kind="stable")


def _check_order(order: object, lengths: np.ndarray) -> np.ndarray:
    """``order`` (default: `length_order`) checked to be a permutation of the documents."""
    if order is None:
        return length_order(lengths)
    try:
        arr = np.asarray(order)
    except (ValueError, TypeError):  # ragged nested lists
        arr = np.zeros((0, 0))
    n = lengths.size
    if arr.shape != lengths.shape or (n and (arr.dtype == bool or arr.dtype.kind not in "iu")):
        raise ValueError(
            f"order must be a permutation of the {n} document indices (pv.length_order), got "
            f"shape {arr.shape} of dtype {arr.dtype}"
        )
    if n and (arr.min() < 0 or arr.max() >= n or (np.bincount(arr, minlength=n) != 1).any()):
        raise ValueError(f"order must hold every document index from 0 to {n - 1} once")
    return arr.astype(np.int64, copy=False)


def _weights_in_order(weights, lengths, order) -> np.ndarray:
    if isinstance(weights, (str, bytes, dict)):
        raise TypeError(f"weights must be an array of numbers, got {type(weights).__name__}")
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        raise ValueError(
            "weights must be an array of numbers, one per document (pv.loss_weights)"
        ) from None
    lengths = as_lengths(lengths)
    if w.shape != lengths.shape:
        raise ValueError(
            f"weights and lengths must have one entry per document, got {w.shape} and "
            f"{lengths.shape}"
        )
    if not np.isfinite(w).all():
        i = int(np.flatnonzero(~np.isfinite(w))[0])
        raise ValueError(f"weights must be finite; document {i} has weight {w[i]!r}")
    return w[_check_order(order, lengths)]


def _group_edges(n: int, bins: int) -> np.ndarray:
    """Group boundaries in length order; the longest group holds ``ceil(n / bins)``, as
    `longest_share` with ``fraction = 1 / bins`` counts."""
    top = np.ceil(n * (bins - np.arange(bins + 1)) / bins).astype(np.int64)
    return n - top


def length_groups(
    lengths: object, *, bins: int = 10, order: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """(shortest, longest) length of each group `share_by_length` uses ((0, 0) when a
    group is empty).

    >>> length_groups([4, 1, 3, 2, 9], bins=2)
    [(1, 2), (3, 9)]
    """
    bins = check_int("bins", bins, least=1)
    lengths = as_lengths(lengths)
    ordered = lengths[_check_order(order, lengths)]
    edges = _group_edges(lengths.size, bins)
    return [
        (int(ordered[a]), int(ordered[b - 1])) if b > a else (0, 0)
        for a, b in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True)
    ]


def share_by_length(
    weights: object, lengths: object, *, bins: int = 10, order: np.ndarray | None = None
) -> np.ndarray:
    """The share of the total weight carried by each of ``bins`` equal-count groups of
    documents, from the shortest group to the longest (ties by document index).

    >>> share_by_length([1, 2, 3, 4], [1, 2, 3, 4], bins=2).tolist()
    [0.3, 0.7]
    """
    bins = check_int("bins", bins, least=1)
    w = _weights_in_order(weights, lengths, order)
    total = w.sum()
    edges = _group_edges(w.size, int(bins))
    csum = np.concatenate([[0.0], np.cumsum(w)])
    sums = csum[edges[1:]] - csum[edges[:-1]]
    return sums / total if total > 0 else sums


def longest_share(
    weights: object, lengths: object, *, fraction: float = 0.1, order: np.ndarray | None = None
) -> float:
    """Share of the total weight carried by the longest ``ceil(fraction · n)`` documents.

    >>> longest_share([0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4], fraction=0.25)
    0.4
    """
    ok = not isinstance(fraction, bool) and isinstance(fraction, (int, float, np.number))
    if not ok or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    w = _weights_in_order(weights, lengths, order)
    k = int(np.ceil(fraction * w.size))
    total = w.sum()
    if k == 0 or total <= 0:
        return 0.0
    return float(w[-k:].sum() / total)
