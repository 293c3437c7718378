"""What a plan costs beyond rows and padding: cut context, attention work, mask memory.

Why. With ``overflow="split"`` every strategy reaches ~100 % efficiency at every max
length, so efficiency alone cannot say which max length or strategy to pick. What does
change is what the model sees:

- **context fragmentation** — tokens that lose their preceding context because their
  document was split (or, with ``wrapped``, cut at a row boundary): a token in a piece
  that does not begin its document cannot attend to the document's earlier tokens
  ("Fewer Truncations Improve Language Modeling", Ding et al. 2024). Counted as tokens,
  as documents, and as *severed pairs*: the (query, key) pairs inside one document that
  no piece holds any more;
- **attention work per real token** — query–key pairs a kernel computes: under a
  document mask l(l+1)/2 per piece (quadratic in piece length), under a plain causal
  mask L(L+1)/2 per row (quadratic in row length), divided by the real tokens;
- **mask memory** — bytes of one row's dense bool mask (L²) and of its FlexAttention
  block tables.

`Tradeoffs` puts these next to the `PackStats` numbers, one flat record per plan: one
line of a sweep or of a ranking (`packviz.recommend`).

Example (max length 4: document 0 of 6 tokens becomes pieces of 4 and 2)::

    >>> from packviz import pack
    >>> f = context_fragmentation(pack([6, 3], 4))
    >>> f.fragmented_tokens, f.fragmented_docs, f.severed_pairs  # 21 - (10 + 3)
    (2, 1, 8)
    >>> t = tradeoffs(pack([6, 3], 4))
    >>> t.n_rows, round(t.fragmented_share, 3), round(t.attention_per_token, 2)  # 19 / 9
    (3, 0.222, 2.11)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np

from packviz._args import as_choice_list, as_list, check_instance
from packviz.choices import SORTS, STRATEGIES, Overflow, Sort, Strategy
from packviz.limits import as_lengths, check_max_len
from packviz.masks import mask_memory
from packviz.packing import pack
from packviz.plan import PackPlan
from packviz.stats import PackStats


@dataclass(frozen=True, slots=True)
class Fragmentation:
    """Context that splitting or wrapping takes away (see `context_fragmentation`)."""

    fragmented_tokens: int
    fragmented_docs: int
    severed_pairs: int
    packed_tokens: int

    @property
    def share(self) -> float:
        """Fragmented tokens over packed tokens (0.0 for an empty plan)."""
        return self.fragmented_tokens / self.packed_tokens if self.packed_tokens else 0.0


def _pairs(n: np.ndarray) -> int:
    """Σ n(n+1)/2, exact (Python integers where int64 could overflow)."""
    if n.size == 0:
        return 0
    if int(n.max()) < 2**31:
        return int((n * (n + 1) // 2).sum(dtype=np.int64))
    big = n.astype(object)
    return int((big * (big + 1) // 2).sum())


def context_fragmentation(plan: PackPlan) -> Fragmentation:
    """Tokens, documents and attention pairs that lose their context to splitting.

    A token is *fragmented* when its piece does not begin its document (``start > 0``):
    it cannot see the tokens before the cut. A document is fragmented when it is placed
    as two or more pieces. *Severed pairs* are the (query, key) pairs within the placed
    part of one document (a truncated tail is lost, not fragmented) that are no longer
    in one piece: ``P(P+1)/2 - Σ l(l+1)/2`` over its pieces, ``P`` its placed tokens.

    >>> f = context_fragmentation(pack([10, 3], 4, strategy="wrapped", sort="none"))
    >>> f.fragmented_tokens, f.fragmented_docs, f.share
    (7, 2, 0.5384615384615384)
    """
    check_instance(plan, PackPlan, "context_fragmentation", "a PackPlan (from pv.pack)")
    length, start, doc = plan.length, plan.start, plan.doc
    later = start > 0
    per_doc = np.bincount(doc, minlength=plan.n_docs)
    split = per_doc >= 2
    placed = np.bincount(doc, weights=length, minlength=plan.n_docs).astype(np.int64)
    in_split = split[doc]
    severed = _pairs(placed[split]) - _pairs(length[in_split])
    return Fragmentation(
        fragmented_tokens=int(length[later].sum(dtype=np.int64)),
        fragmented_docs=int(split.sum()),
        severed_pairs=severed,
        packed_tokens=int(length.sum(dtype=np.int64)),
    )


@dataclass(frozen=True, slots=True)
class Tradeoffs:
    """One plan's numbers that trade off against each other: a line of a sweep or a
    ranking. Counts are exact; the properties are ratios of them."""

    max_len: int
    strategy: Strategy
    sort: Sort
    overflow: Overflow
    n_docs: int
    input_tokens: int
    packed_tokens: int
    lost_tokens: int
    n_rows: int
    slots: int
    padding_tokens: int
    split_docs: int
    fragmented_tokens: int
    severed_pairs: int
    attention_pairs_document: int
    attention_pairs_causal: int
    dense_mask_bytes: int
    block_mask_bytes: int

    @property
    def efficiency(self) -> float:
        return self.packed_tokens / self.slots if self.slots else 0.0

    @property
    def padding_share(self) -> float:
        return self.padding_tokens / self.slots if self.slots else 0.0

    @property
    def lost_share(self) -> float:
        return self.lost_tokens / self.input_tokens if self.input_tokens else 0.0

    @property
    def fragmented_share(self) -> float:
        return self.fragmented_tokens / self.packed_tokens if self.packed_tokens else 0.0

    @property
    def attention_per_token(self) -> float:
        """Query–key pairs per real token under a document mask."""
        return self.attention_pairs_document / self.packed_tokens if self.packed_tokens else 0.0

    @property
    def causal_attention_per_token(self) -> float:
        """Query–key pairs per real token under a plain causal mask over whole rows."""
        return self.attention_pairs_causal / self.packed_tokens if self.packed_tokens else 0.0

    def as_dict(self) -> dict:
        """Fields and ratios as a flat dict (a table row)."""
        d = asdict(self)
        for name in (
            "efficiency",
            "padding_share",
            "lost_share",
            "fragmented_share",
            "attention_per_token",
            "causal_attention_per_token",
        ):
            d[name] = getattr(self, name)
        return d


def tradeoffs(plan: PackPlan, stats: PackStats | None = None) -> Tradeoffs:
    """The `Tradeoffs` of a plan (pass its ``stats`` when already computed).

    >>> t = tradeoffs(pack([5, 3, 6, 2], 8))
    >>> t.n_rows, t.padding_tokens, t.fragmented_tokens, t.dense_mask_bytes
    (2, 0, 0, 64)
    """
    check_instance(plan, PackPlan, "tradeoffs", "a PackPlan (from pv.pack)")
    if stats is not None:
        check_instance(stats, PackStats, "tradeoffs", "stats as a PackStats (plan.stats())")
    s = plan.stats() if stats is None else stats
    f = context_fragmentation(plan)
    mem = mask_memory(plan.max_len, 1)
    return Tradeoffs(
        max_len=s.max_len,
        strategy=s.strategy,
        sort=s.sort,
        overflow=s.overflow,
        n_docs=s.n_docs,
        input_tokens=s.input_tokens,
        packed_tokens=s.packed_tokens,
        lost_tokens=s.lost_tokens,
        n_rows=s.n_rows,
        slots=s.slots,
        padding_tokens=s.padding_tokens,
        split_docs=s.split_docs,
        fragmented_tokens=f.fragmented_tokens,
        severed_pairs=f.severed_pairs,
        attention_pairs_document=s.attention_pairs_document,
        attention_pairs_causal=s.attention_pairs_causal,
        dense_mask_bytes=mem["dense_bool"],
        block_mask_bytes=mem["block_mask"],
    )


def evaluate(
    lengths: object,
    max_len: int,
    *,
    strategy: Strategy = "best_fit",
    sort: Sort = "desc",
    overflow: Overflow = "split",
    seed: int = 0,
) -> Tradeoffs:
    """Pack and return the plan's `Tradeoffs` (the plan itself is not kept).

    >>> evaluate([5, 3, 6, 2], 4).split_docs
    2
    """
    plan = pack(lengths, max_len, strategy=strategy, sort=sort, overflow=overflow, seed=seed)
    return tradeoffs(plan)


def sweep_tradeoffs(
    lengths: object,
    max_lens: Iterable[int],
    *,
    strategies: Iterable[Strategy] = STRATEGIES,
    sorts: Iterable[Sort] = ("desc",),
    overflow: Overflow = "split",
    seed: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Tradeoffs]:
    """`Tradeoffs` for every (max length, strategy, sort), max length outermost.

    ``progress(done, total, label)`` is called after each packing.

    >>> [(t.max_len, t.split_docs) for t in sweep_tradeoffs([5, 9], [4, 8], strategies=["best_fit"])]
    [(4, 2), (8, 1)]
    """
    lengths = as_lengths(lengths)
    max_lens = [check_max_len(m) for m in as_list("max_lens", max_lens, "integers")]
    strategies = as_choice_list("strategies", strategies, STRATEGIES)
    sorts = as_choice_list("sorts", sorts, SORTS)
    todo = [(m, x, s) for m in max_lens for x in strategies for s in sorts]
    out = []
    for i, (m, x, s) in enumerate(todo):
        out.append(evaluate(lengths, m, strategy=x, sort=s, overflow=overflow, seed=seed))
        if progress is not None:
            progress(i + 1, len(todo), f"max length {m:,}, {x}, sort {s}")
    return out
