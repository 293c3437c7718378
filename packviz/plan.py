"""`PackPlan`: which piece of which document goes to which row — the value `pack` returns.

A plan is small (five integers per piece) and immutable: its arrays are read-only and
never alias the caller's input, so a plan made once can be cached, shared between
threads and materialized any number of times with the same result.

Example (``max_len=8``, lengths ``[5, 3, 6, 2]``, best fit, descending)::

    piece   row  doc  start  length  offset
      0      0    2     0      6       0      row 0: [2 2 2 2 2 2 3 3]
      1      0    3     0      2       6
      2      1    0     0      5       0      row 1: [0 0 0 0 0 1 1 1]
      3      1    1     0      3       5
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from packviz.choices import Overflow, Sort, Strategy
from packviz.stats import PackStats, plan_stats

#: The per-piece arrays of a plan, in order.
PIECE_FIELDS = ("row", "doc", "start", "length", "offset")


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
        strategy, sort, overflow, seed: the settings that made the plan.

    Arrays are read-only; writable arrays handed to the constructor are copied first.

    >>> plan = PackPlan(4, 1, 1, *([np.array([0])] * 3), np.array([3]), np.array([0]),
    ...                 doc_lengths=np.array([3]))
    >>> plan.length.flags.writeable, plan.row_fill.tolist()
    (False, [3])
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
    strategy: Strategy = "best_fit"
    sort: Sort = "desc"
    overflow: Overflow = "split"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (*PIECE_FIELDS, "doc_lengths"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

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

    def stats(self, token_ids: object = None) -> PackStats:
        """Efficiency statistics of this plan (see `packviz.stats.PackStats`); with the
        ``token_ids`` it was planned for, ``trained_targets`` follows their trained flags."""
        return plan_stats(self, token_ids)


def _frozen(value) -> np.ndarray:
    """``value`` as a read-only int64 array that no one else can write to."""
    a = np.asarray(value, dtype=np.int64)
    if a.flags.writeable:
        if isinstance(value, np.ndarray) and np.may_share_memory(a, value):
            a = a.copy()
        a.flags.writeable = False
    return a
