"""What packing does to fine-tuning data: trained tokens and targets, completions cut
by the overflow policy, prompt and completion lengths, and which slots of a window of
rows hold trained tokens.

Why a separate step. A plan is made from lengths only; which tokens are trained lives
in the token ids (`TokenIds.trained`). These functions join the two with one prefix sum
over the flags, then a few array operations per piece: exact, and linear in tokens once
plus pieces, without materializing a row.

Counts, for a plan and its token ids (an *example* is a document):

- ``trained_tokens``: tokens flagged trained in the input; ``packed_trained_tokens``:
  those placed in rows (the rest were cut by ``truncate`` or ``drop``);
  ``trained_targets``: labels that are not -100 in the packed rows — the trained tokens
  that are not the first slot of a piece (what the loss averages over).
- ``truncated_completions``: examples that lost some trained tokens to the overflow
  policy but still train; ``lost_completions``: examples with trained tokens in the
  input and no target left — they train nothing (a long prompt that ``truncate`` keeps
  while cutting the whole completion, or a dropped example). Both are warned about.
- ``prompt_lengths`` / ``completion_lengths``: untrained / trained tokens per example
  (for chats: everything outside / inside the trained assistant turns).

Example (max length 4; the second example's completion is cut off by ``truncate``):
    >>> import packviz as pv
    >>> ids = pv.TokenIds.from_sequences([[1, 2, 3], [4, 5, 6, 7, 8]],
    ...     trained=[[False, True, True], [False, False, False, False, True]])
    >>> s = sft_stats(pv.pack(ids.lengths, 4, overflow="truncate"), ids, warn=False)
    >>> s.trained_tokens, s.packed_trained_tokens, s.trained_targets, s.lost_completions
    (3, 2, 2, 1)
    >>> s.completion_lengths.tolist(), s.prompt_lengths.tolist()
    ([2, 1], [1, 4])
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from packviz._args import check_instance
from packviz._ranges import expand_ranges
from packviz.layout import _select_pieces, check_token_ids
from packviz.plan import PackPlan
from packviz.ragged import TokenIds


@dataclass(frozen=True, eq=False)
class SFTStats:
    """Trained tokens and targets of a packed plan (see the module docstring)."""

    n_examples: int
    input_tokens: int
    trained_tokens: int
    packed_trained_tokens: int
    trained_targets: int
    slots: int
    truncated_completions: int
    lost_completions: int
    prompt_lengths: np.ndarray
    completion_lengths: np.ndarray
    lost_examples: np.ndarray

    @property
    def lost_trained_tokens(self) -> int:
        """Trained tokens cut by the overflow policy (truncated or dropped)."""
        return self.trained_tokens - self.packed_trained_tokens

    @property
    def trained_fraction(self) -> float:
        """Share of the input tokens that are trained (0.0 without tokens)."""
        return self.trained_tokens / self.input_tokens if self.input_tokens else 0.0

    @property
    def target_efficiency(self) -> float:
        """Targets per slot: the share of the compute that trains (0.0 without rows)."""
        return self.trained_targets / self.slots if self.slots else 0.0

    def warnings(self) -> list[str]:
        """What an SFT user must hear about: examples that train nothing, or less."""
        out = []
        if self.lost_completions:
            first = ", ".join(map(str, self.lost_examples[:5].tolist()))
            out.append(
                f"{self.lost_completions:,} of {self.n_examples:,} examples train nothing: "
                f"the overflow policy cut all their trained tokens (examples {first}"
                f"{', …' if self.lost_completions > 5 else ''}); raise the max length, or "
                "use overflow='split'"
            )
        if self.truncated_completions:
            out.append(
                f"{self.truncated_completions:,} examples lost part of their trained tokens "
                f"({self.lost_trained_tokens:,} trained tokens in all) to the overflow policy"
            )
        return out

    def length_percentiles(self, qs=(50, 90, 99)) -> dict[str, dict[int, float]]:
        """Percentiles of prompt and completion lengths (0.0 without examples).

        >>> s = sft_stats(__import__("packviz").pack([3], 4), TokenIds.from_sequences(
        ...     [[1, 2, 3]], trained=[[False, True, True]]), warn=False)
        >>> s.length_percentiles((50,))
        {'prompt': {50: 1.0}, 'completion': {50: 2.0}}
        """
        out = {}
        for name, a in (("prompt", self.prompt_lengths), ("completion", self.completion_lengths)):
            pct = np.percentile(a, qs) if a.size else np.zeros(len(qs))
            out[name] = {int(q): float(v) for q, v in zip(qs, pct, strict=True)}
        return out

    def as_dict(self) -> dict:
        """The counts and length percentiles (no per-example arrays), for metadata."""
        names = (
            "n_examples", "input_tokens", "trained_tokens", "packed_trained_tokens",
            "trained_targets", "slots", "truncated_completions", "lost_completions",
            "lost_trained_tokens", "trained_fraction", "target_efficiency",
        )  # fmt: skip
        d = {k: getattr(self, k) for k in names}
        pct = self.length_percentiles()
        d["lengths"] = {k: {str(q): v for q, v in p.items()} for k, p in pct.items()}
        return d


def _prefix(trained: np.ndarray) -> np.ndarray:
    """Running count of trained tokens, with a leading 0 (``cs[j]`` = trained before j)."""
    dtype = np.int32 if trained.size < 2**31 else np.int64
    out = np.zeros(trained.size + 1, dtype=dtype)
    np.cumsum(trained, out=out[1:])
    return out


def _per_piece(plan: PackPlan, ids: TokenIds, cs: np.ndarray | None):
    """(trained tokens placed, trained targets) of every piece."""
    length = plan.length
    if cs is None:  # every token trained
        return length, np.maximum(length - 1, 0)
    src = ids.offsets[plan.doc] + plan.start
    end = cs[src + length].astype(np.int64)
    return end - cs[src], end - cs[np.minimum(src + 1, src + length)]


def piece_targets(plan: PackPlan, token_ids: object) -> np.ndarray:
    """Targets of every piece of ``plan`` (int64, in plan order): its labels that are
    not -100 when materialized with ``token_ids`` — the trained tokens after its first
    slot (every token after the first when ``trained`` is None).

    >>> import packviz as pv
    >>> ids = pv.TokenIds.from_sequences([[1, 2, 3, 4, 5]], trained=[[False, False, True, True, True]])
    >>> piece_targets(pv.pack(ids.lengths, 3), ids).tolist()  # pieces 1 2 3 | 4 5
    [1, 1]
    """
    ids = check_token_ids(plan, token_ids)
    cs = None if ids.trained is None else _prefix(ids.trained)
    return np.asarray(_per_piece(plan, ids, cs)[1], dtype=np.int64)


def trained_targets(plan: PackPlan, token_ids: object) -> int:
    """Labels that are not -100 when ``plan`` is materialized with ``token_ids``
    (`PackStats.trained_targets` with the token ids' trained flags)."""
    return int(piece_targets(plan, token_ids).sum())


def sft_stats(plan: PackPlan, token_ids: object, *, warn: bool = True) -> SFTStats:
    """Trained tokens and targets of ``plan`` packed from ``token_ids`` (the ids it was
    planned for; ``trained`` None counts every token as trained). ``warn=True`` issues a
    `UserWarning` for each of `SFTStats.warnings`."""
    check_instance(plan, PackPlan, "sft_stats", "a PackPlan (from pv.pack)")
    ids = check_token_ids(plan, token_ids)
    lengths = ids.lengths
    if ids.trained is None:
        cs, trained_doc = None, lengths
    else:
        cs = _prefix(ids.trained)
        trained_doc = (cs[ids.offsets[1:]] - cs[ids.offsets[:-1]]).astype(np.int64)
    placed, targets = _per_piece(plan, ids, cs)
    n = plan.n_docs
    placed_doc = np.bincount(plan.doc, weights=placed, minlength=n).astype(np.int64)
    targets_doc = np.bincount(plan.doc, weights=targets, minlength=n).astype(np.int64)
    lost = (trained_doc > 0) & (targets_doc == 0)
    truncated = (placed_doc < trained_doc) & ~lost
    stats = SFTStats(
        n_examples=n,
        input_tokens=ids.n_tokens,
        trained_tokens=int(trained_doc.sum()),
        packed_trained_tokens=int(placed.sum()),
        trained_targets=int(targets.sum()),
        slots=plan.n_rows * plan.max_len,
        truncated_completions=int(truncated.sum()),
        lost_completions=int(lost.sum()),
        prompt_lengths=lengths - trained_doc,
        completion_lengths=trained_doc,
        lost_examples=np.flatnonzero(lost),
    )
    if warn:
        for message in stats.warnings():
            warnings.warn(message, UserWarning, stacklevel=2)
    return stats


def trained_row_fill(plan: PackPlan, token_ids: object) -> np.ndarray:
    """Trained tokens in each row (int64, ``n_rows``): `PackPlan.row_fill` counting only
    trained tokens, for an overview of every row without materializing one.

    >>> import packviz as pv
    >>> ids = pv.TokenIds.from_sequences([[1, 2, 3], [4, 5]],
    ...     trained=[[False, True, True], [True, True]])
    >>> trained_row_fill(pv.pack(ids.lengths, 3), ids).tolist()
    [2, 2]
    """
    check_instance(plan, PackPlan, "trained_row_fill", "a PackPlan (from pv.pack)")
    ids = check_token_ids(plan, token_ids)
    placed, _ = _per_piece(plan, ids, None if ids.trained is None else _prefix(ids.trained))
    return np.bincount(plan.row, weights=placed, minlength=plan.n_rows).astype(np.int64)


def trained_slots(plan: PackPlan, token_ids: object, *, rows: object = None) -> np.ndarray:
    """Per slot of the rows (all, or ``rows`` in the given order, as `materialize`):
    True where the token is trained, False at untrained tokens and padding.

    Unlike ``labels != -100`` this keeps the first token of a piece (it is trained, it
    only has no target in this row): what a view of trained vs untrained tokens shows.

    >>> import packviz as pv
    >>> ids = pv.TokenIds.from_sequences([[1, 2, 3], [4, 5]],
    ...     trained=[[False, True, True], [True, True]])
    >>> trained_slots(pv.pack(ids.lengths, 6, sort="none"), ids).astype(int).tolist()
    [[0, 1, 1, 1, 1, 0]]
    """
    check_instance(plan, PackPlan, "trained_slots", "a PackPlan (from pv.pack)")
    ids = check_token_ids(plan, token_ids)
    pieces, out_row, row_index = _select_pieces(plan, rows)
    out = np.zeros((row_index.size, plan.max_len), dtype=bool)
    length = plan.length[pieces]
    dst = expand_ranges(out_row * plan.max_len + plan.offset[pieces], length)
    if ids.trained is None:
        out.reshape(-1)[dst] = True
    else:
        src = expand_ranges(ids.offsets[plan.doc[pieces]] + plan.start[pieces], length)
        out.reshape(-1)[dst] = ids.trained[src]
    return out
