"""What a plan costs and loses (`PackStats`), and what a corpus looks like before packing
(`LengthSummary`).

Everything here is computed from lengths and placements, never from token arrays, so it
is exact and instant even for millions of documents. Comparisons across strategies and
max lengths live in `packviz.compare`.

Example:
    >>> from packviz import pack
    >>> s = pack([5, 3, 6, 2, 12], 8).stats()
    >>> s.n_rows, s.lower_bound_rows, s.packed_tokens, s.lost_tokens, s.split_docs
    (4, 4, 28, 0, 1)
    >>> round(s.efficiency, 3)
    0.875
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from packviz.choices import Overflow, Sort, Strategy
from packviz.limits import as_lengths, check_int, check_max_len

if TYPE_CHECKING:
    from packviz.plan import PackPlan


@dataclass(frozen=True, slots=True)
class PackStats:
    """What a plan costs and what it loses.

    ``packed_tokens + lost_tokens == input_tokens`` always holds; lost tokens are the
    truncated tails and the dropped documents. ``efficiency`` is packed tokens over all
    slots (``n_rows * max_len``), 0.0 for an empty plan. The attention work counts
    (query, key) pairs a kernel must compute: with a document mask, l(l+1)/2 per piece;
    with a plain causal mask over the whole row, L(L+1)/2 per row.
    """

    strategy: Strategy
    sort: Sort
    overflow: Overflow
    max_len: int
    n_docs: int
    n_empty_docs: int
    input_tokens: int
    packed_tokens: int
    lost_tokens: int
    truncated_docs: int
    dropped_docs: int
    n_rows: int
    n_pieces: int
    lower_bound_rows: int
    lower_bound_rows_input: int
    efficiency: float
    padding_tokens: int
    split_docs: int
    max_pieces_per_row: int
    mean_pieces_per_row: float
    trained_targets: int
    attention_pairs_document: int
    attention_pairs_causal: int

    @property
    def rows_over_lower_bound(self) -> int:
        """Rows beyond ``lower_bound_rows`` (0 means no packing could do better)."""
        return self.n_rows - self.lower_bound_rows

    @property
    def lower_bound_gap(self) -> float:
        """``rows_over_lower_bound`` as a fraction of the lower bound (0.0 when it is 0)."""
        lb = self.lower_bound_rows
        return self.rows_over_lower_bound / lb if lb else 0.0

    @property
    def slots(self) -> int:
        return self.n_rows * self.max_len

    @property
    def attention_saved(self) -> float:
        """Fraction of the causal-mask attention pairs a document mask skips (0 .. 1)."""
        c = self.attention_pairs_causal
        return 1.0 - self.attention_pairs_document / c if c else 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["rows_over_lower_bound"] = self.rows_over_lower_bound
        d["lower_bound_gap"] = self.lower_bound_gap
        return d


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def plan_stats(plan: PackPlan, token_ids: object = None) -> PackStats:
    """Statistics of ``plan`` (also available as ``plan.stats()``).

    ``trained_targets`` counts the labels that are not -100: Σ (piece length − 1), or,
    given ``token_ids`` with ``trained`` flags (fine-tuning), only the trained tokens
    that are not a piece's first (`packviz.sft.trained_targets`).
    """
    lengths = plan.doc_lengths
    input_tokens = int(lengths.sum())
    packed = int(plan.length.sum())
    placed = np.bincount(plan.doc, weights=plan.length, minlength=plan.n_docs)
    pieces_per_doc = np.bincount(plan.doc, minlength=plan.n_docs)
    pieces_per_row = np.bincount(plan.row, minlength=plan.n_rows)
    # exact in int64: the sum is at most packed_tokens * max_len / 2
    pairs_doc = int((plan.length * (plan.length + 1) // 2).sum(dtype=np.int64))
    L = plan.max_len
    slots = plan.n_rows * L
    return PackStats(
        strategy=plan.strategy,
        sort=plan.sort,
        overflow=plan.overflow,
        max_len=L,
        n_docs=plan.n_docs,
        n_empty_docs=int((lengths == 0).sum()),
        input_tokens=input_tokens,
        packed_tokens=packed,
        lost_tokens=input_tokens - packed,
        truncated_docs=int(((placed > 0) & (placed < lengths)).sum()),
        dropped_docs=int(((lengths > 0) & (placed == 0)).sum()),
        n_rows=plan.n_rows,
        n_pieces=plan.n_pieces,
        lower_bound_rows=_ceil_div(packed, L),
        lower_bound_rows_input=_ceil_div(input_tokens, L),
        efficiency=packed / slots if slots else 0.0,
        padding_tokens=slots - packed,
        split_docs=int((pieces_per_doc >= 2).sum()),
        max_pieces_per_row=int(pieces_per_row.max(initial=0)),
        mean_pieces_per_row=plan.n_pieces / plan.n_rows if plan.n_rows else 0.0,
        trained_targets=packed - plan.n_pieces if token_ids is None else _targets(plan, token_ids),
        attention_pairs_document=pairs_doc,
        attention_pairs_causal=plan.n_rows * (L * (L + 1) // 2),
    )


def _targets(plan: PackPlan, token_ids: object) -> int:
    from packviz.sft import trained_targets  # sft builds on layout, which imports plan

    return trained_targets(plan, token_ids)


@dataclass(frozen=True, slots=True)
class LengthSummary:
    """What a corpus looks like before packing (see `length_summary`)."""

    n_docs: int
    n_empty_docs: int
    tokens: int
    median: float
    percentiles: dict[int, float]
    longest: int
    over_max_len: int
    tokens_over_max_len: int
    top_docs: np.ndarray


def length_summary(lengths: object, max_len: int, *, top: int = 10) -> LengthSummary:
    """Document count, tokens, percentiles, how many documents exceed ``max_len`` (and by
    how many tokens), and the ``top`` longest documents (indices, longest first).

    >>> s = length_summary([5, 0, 12, 3], 8, top=2)
    >>> s.tokens, s.median, s.over_max_len, s.tokens_over_max_len, s.top_docs.tolist()
    (20, 4.0, 1, 4, [2, 0])
    """
    lengths = as_lengths(lengths)
    max_len = check_max_len(max_len)
    top = check_int("top", top, least=0)
    n = lengths.size
    qs = (50, 90, 99)
    pct = np.percentile(lengths, qs) if n else np.zeros(len(qs))
    over = lengths > max_len
    k = min(top, n)
    top_docs = np.argsort(-lengths, kind="stable")[:k] if k else np.zeros(0, np.int64)
    return LengthSummary(
        n_docs=n,
        n_empty_docs=int((lengths == 0).sum()),
        tokens=int(lengths.sum()),
        median=float(pct[0]),
        percentiles={q: float(v) for q, v in zip(qs, pct, strict=True)},
        longest=int(lengths.max(initial=0)),
        over_max_len=int(over.sum()),
        tokens_over_max_len=int((lengths[over] - max_len).sum()),
        top_docs=top_docs,
    )
