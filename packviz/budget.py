"""What a piece of work will cost before it is done: pieces, rows, bytes, seconds.

Why. A plan's memory follows its number of *pieces*, not its number of documents: max
length 1 on a 100k-document corpus makes ~49M pieces, and a page that simply calls
`pack` then dies in a ``MemoryError``. And the same plan costs nanoseconds per piece with
a sorted order but microseconds with ``sort="none"``/``"random"`` (the fit engines then
place pieces one by one). So a caller that must stay responsive — the dashboard, a script
about to pack a corpus — asks here first, and refuses, defers or offers the work with the
numbers in its message.

- `count_pieces` is exact (O(documents), no allocation per piece); `plan_cost` adds an
  upper bound on rows, the peak bytes of planning and a time model.
- `smallest_max_len` answers "what max length would fit this budget?".
- `arrays_bytes` is the memory `materialize` fills; `estimate_file_bytes` measures the
  file `packviz.export.to_bytes` would write by building it for a sample of rows
  (`estimate_file_slots` of them: what measuring costs).

The time model (``_SECONDS``) was fitted on the project's 2-core machine with 1M synthetic
documents (log-normal, median 300) at max lengths 64 to 2048, for `pack`, `stats` and
`packviz.tradeoffs` together, rounded up (predictions ran 0.9–3× the times measured): it
tells "instant" from "seconds" from "minutes"; it is not a promise.

Example:
    >>> count_pieces([5, 3, 0, 12], 4)  # 2 + 1 + 0 + 3
    6
    >>> c = plan_cost([5, 3, 0, 12], 4, strategy="best_fit", sort="desc")
    >>> c.pieces, c.rows
    (6, 6)
    >>> smallest_max_len([5, 3, 0, 12], 4)  # at most 4 pieces: 12 must be 2 pieces
    6
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from packviz._args import as_choice_list, check_instance
from packviz.choices import (
    FIELDS,
    FORMATS,
    OVERFLOWS,
    SORTS,
    STRATEGIES,
    Field,
    Format,
    Overflow,
    Sort,
    Strategy,
    check_choice,
)
from packviz.limits import MAX_LEN_LIMIT, as_lengths, check_int, check_max_len

if TYPE_CHECKING:
    from collections.abc import Iterable

    from packviz.plan import PackPlan

#: Peak bytes of `pack` + `PackPlan.stats` per piece, per row and per document (measured
#: 112–120 bytes per piece at 3M pieces; rounded up).
BYTES_PER_PIECE = 128
BYTES_PER_ROW = 32
BYTES_PER_DOC = 24

# seconds of pack + stats: (per piece, per row) by strategy, for sorted (desc/asc) and
# online (none/random) orders; plus a fixed cost per call
_SECONDS = {
    "sorted": {**{s: (1.5e-7, 1.5e-7) for s in STRATEGIES}, "next_fit": (1.5e-7, 4e-7)},
    "online": {
        "next_fit": (2e-7, 2.5e-6),
        "first_fit": (6e-6, 0.0),
        "best_fit": (4.5e-6, 0.0),
        "wrapped": (5e-7, 0.0),
        "padded": (4e-7, 0.0),
    },
}
_SECONDS_FIXED = 2e-3


def count_pieces(
    lengths: object,
    max_len: int,
    *,
    strategy: Strategy = "best_fit",
    overflow: Overflow = "split",
) -> int:
    """Number of pieces `pack` makes (for ``wrapped``: an upper bound).

    ``split`` cuts a document of length ``l`` into ``ceil(l / max_len)`` pieces,
    ``truncate`` keeps one piece per non-empty document, ``drop`` one per document that
    fits. ``wrapped`` cuts the concatenation: each row boundary inside a document adds a
    piece, so at most ``non-empty documents + ceil(tokens / max_len) - 1``.

    >>> count_pieces([5, 3, 0, 12], 4, overflow="drop"), count_pieces([5, 3], 4, strategy="wrapped")
    (1, 3)
    """
    check_choice("strategy", strategy, STRATEGIES)
    check_choice("overflow", overflow, OVERFLOWS)
    max_len = check_max_len(max_len)
    lengths = as_lengths(lengths)
    nonempty = int(np.count_nonzero(lengths))
    if strategy == "wrapped":
        tokens = int(lengths.sum())
        return nonempty + max(0, -(-tokens // max_len) - 1) if nonempty else 0
    if overflow == "truncate":
        return nonempty
    if overflow == "drop":
        return nonempty - int(np.count_nonzero(lengths > max_len))
    long = lengths > max_len
    extra = (lengths[long] + (max_len - 1)) // max_len - 1  # pieces beyond the first
    return nonempty + int(extra.sum())


@dataclass(frozen=True, slots=True)
class PlanCost:
    """Predicted size and time of ``pack(...)`` followed by ``.stats()``.

    ``pieces`` is exact (an upper bound for ``wrapped``), ``rows`` an upper bound,
    ``bytes`` the predicted peak memory, ``seconds`` the time model's estimate on the
    project's 2-core machine.
    """

    pieces: int
    rows: int
    bytes: int
    seconds: float


def plan_cost(
    lengths: object,
    max_len: int,
    *,
    strategy: Strategy = "best_fit",
    sort: Sort = "desc",
    overflow: Overflow = "split",
) -> PlanCost:
    """Predict what planning these lengths costs, without planning them.

    >>> c = plan_cost([300] * 1000, 2048, strategy="first_fit", sort="random")
    >>> c.pieces, c.rows, c.seconds < 0.1
    (1000, 1000, True)
    """
    check_choice("sort", sort, SORTS)
    lengths = as_lengths(lengths)
    pieces = count_pieces(lengths, max_len, strategy=strategy, overflow=overflow)
    tokens = int(lengths.sum())
    if strategy == "padded":
        rows = pieces
    else:
        rows = min(pieces, -(-tokens // max_len) if strategy == "wrapped" else pieces)
    # rows for the time model: fit strategies end near the lower bound (next fit ~1.2x)
    rows_likely = min(rows, math.ceil(1.3 * tokens / max_len) + 1)
    per_piece, per_row = _SECONDS["sorted" if sort in ("desc", "asc") else "online"][strategy]
    seconds = _SECONDS_FIXED + per_piece * pieces + per_row * rows_likely
    nbytes = BYTES_PER_PIECE * pieces + BYTES_PER_ROW * rows + BYTES_PER_DOC * lengths.size
    return PlanCost(pieces=pieces, rows=rows, bytes=nbytes, seconds=seconds)


def smallest_max_len(
    lengths: object,
    max_pieces: int,
    *,
    strategy: Strategy = "best_fit",
    overflow: Overflow = "split",
) -> int | None:
    """The smallest max length whose plan has at most ``max_pieces`` pieces (None: no
    max length up to ``MAX_LEN_LIMIT`` does, e.g. more documents than the budget).

    >>> smallest_max_len([1000] * 10, 40), smallest_max_len([5] * 10, 9)
    (250, None)
    """
    lengths = as_lengths(lengths)
    max_pieces = check_int("max_pieces", max_pieces, least=0)

    def fits(m: int) -> bool:
        return count_pieces(lengths, m, strategy=strategy, overflow=overflow) <= max_pieces

    if fits(1):
        return 1
    if overflow in ("truncate", "drop") and strategy != "wrapped":
        # truncate: pieces do not depend on max length; drop: they grow with it
        return None
    if not fits(MAX_LEN_LIMIT):
        return None
    lo, hi = 1, MAX_LEN_LIMIT  # fits(lo) is False, fits(hi) is True; pieces fall with m
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    return hi


def arrays_bytes(n_rows: int, max_len: int, *, n_fields: int = 4) -> int:
    """Bytes of the int32 ``[n_rows, max_len]`` arrays `packviz.materialize` fills
    (``n_fields`` of ``input_ids``, ``labels``, ``position_ids``, ``doc_ids``).

    >>> arrays_bytes(1000, 2048) / 2**20
    31.25
    """
    for name, x in (("n_rows", n_rows), ("max_len", max_len), ("n_fields", n_fields)):
        check_int(name, x)
    if n_rows < 0 or max_len < 0 or n_fields < 0:
        raise ValueError(
            f"sizes must be non-negative, got n_rows={n_rows}, max_len={max_len}, "
            f"n_fields={n_fields}"
        )
    return 4 * int(n_rows) * int(max_len) * int(n_fields)


#: Slots in the sample of rows `estimate_file_bytes` builds (about; whole rows).
FILE_SAMPLE_SLOTS = 1 << 21


def _file_sample(n_rows: int, max_len: int, sample_slots: int) -> tuple[int, int, int]:
    """(rows per sample k, blocks, rows per block) of `estimate_file_bytes`."""
    k = max(1, int(sample_slots) // max(int(max_len), 1))
    n_blocks = min(8, k)
    return k, n_blocks, max(1, k // n_blocks)


def estimate_file_slots(n_rows: int, max_len: int, *, sample_slots: int = FILE_SAMPLE_SLOTS) -> int:
    """Slots `estimate_file_bytes` materializes and writes for a plan of ``n_rows`` rows
    of ``max_len`` (what its time follows): every slot when the plan has at most four
    samples' worth of rows, else its two samples of blocks (about 3 × ``sample_slots``,
    whatever the plan's size).

    >>> estimate_file_slots(100, 512), estimate_file_slots(100_000, 2048)
    (51200, 6291456)
    """
    k, n_blocks, b = _file_sample(n_rows, max_len, sample_slots)
    if n_rows <= 4 * k:
        return int(n_rows) * int(max_len)
    return 3 * n_blocks * b * int(max_len)


def estimate_file_bytes(
    plan: PackPlan,
    token_ids: object,
    fmt: Format,
    *,
    pad_id: int = 0,
    fields: Iterable[Field] | None = None,
    metadata: dict | None = None,
    sample_slots: int = FILE_SAMPLE_SLOTS,
) -> int:
    """Size of the file ``to_bytes(materialize(plan, token_ids), fmt, ...)`` would give,
    measured rather than guessed: the file is built for a sample of ``k`` rows (about
    ``sample_slots`` slots, in 8 blocks of consecutive rows spread over the plan, so that
    runs, deltas and dictionaries see neighbouring rows as in the whole file) and for
    blocks twice as long, and the size is extrapolated linearly to all rows (a fixed part
    plus a part per row). ``.npz`` and ``.pt`` come out within a fraction of a percent;
    compressed ``.parquet`` within about 20 % (its encodings and compression do not grow
    linearly with the rows). With fewer than ``4k`` rows the file is built whole and the
    size is exact.

    >>> from packviz import pack
    >>> plan = pack([3, 2, 4], 4)
    >>> from packviz.export import to_bytes
    >>> from packviz.layout import materialize
    >>> exact = len(to_bytes(materialize(plan, None, pad_id=0), "npz"))
    >>> estimate_file_bytes(plan, None, "npz") == exact
    True
    """
    from packviz.export import to_bytes
    from packviz.layout import materialize
    from packviz.plan import PackPlan

    check_instance(plan, PackPlan, "estimate_file_bytes", "a PackPlan (from pv.pack)")
    check_choice("format", fmt, FORMATS)
    if fields is not None:
        fields = tuple(as_choice_list("fields", fields, FIELDS))
    sample_slots = check_int("sample_slots", sample_slots, least=1)
    n = plan.n_rows
    k, n_blocks, b = _file_sample(n, plan.max_len, sample_slots)

    def size(rows) -> int:
        arrays = materialize(plan, token_ids, pad_id=pad_id, rows=rows)
        return len(to_bytes(arrays, fmt, fields=fields, metadata=metadata))

    if n <= 4 * k:
        return size(None)
    # blocks of consecutive rows spread over the plan: the file stores rows in order, so
    # runs, deltas and dictionaries see neighbouring rows, as in the whole file
    starts = np.linspace(0, n - 2 * b, n_blocks).round().astype(np.int64)
    small = np.unique((starts[:, None] + np.arange(b)).ravel())
    large = np.unique((starts[:, None] + np.arange(2 * b)).ravel())
    s1, s2 = size(small), size(large)
    per_row = max(0.0, (s2 - s1) / (large.size - small.size))
    fixed = max(0.0, s1 - per_row * small.size)
    return int(round(fixed + per_row * n))
