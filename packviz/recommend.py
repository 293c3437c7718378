"""Which (max length, strategy, sort) to use: candidates ranked by weighted trade-offs.

Why. The numbers that matter pull in different directions — a longer max length cuts
fewer documents but costs more attention per token and more mask memory; ``wrapped``
has no padding but cuts documents at every row boundary; a sorted order packs tighter
than a random one. Which trade is right depends on the job, so the ranking takes
*weights*, and three presets give sensible starting points:

- ``pretraining``: compute (token slots), lost tokens and cut context first; a little
  weight on attention work per token;
- ``fine-tuning``: never lose or cut an example (lost and fragmented tokens weigh most),
  then compute;
- ``long context``: keep documents whole (fragmented context weighs most), attention
  work per token matters little.

Each criterion is turned into a *penalty in points* against the best candidate on that
criterion, so that weights compare like with like: shares (padding, lost, fragmented
tokens) count their difference in percentage points; costs (slots, attention pairs per
token, mask bytes per row) count ``100 · ln(value / best)``, about "percent worse" for
small differences and growing slowly for large ones (a 64× bigger mask is 416 points,
not 6,300). The score is the weighted sum of penalties; the lowest wins. `why` says
which criteria decided between two candidates.

Example:
    >>> import packviz as pv
    >>> lengths = pv.synthetic_lengths(2000, seed=1)
    >>> r = recommend(lengths, max_lens=[512, 2048], strategies=["best_fit", "wrapped"])
    >>> best = r.best
    >>> (best.max_len, best.strategy, best.sort)
    (2048, 'best_fit', 'desc')
    >>> [w.criterion for w in why(r)][:1]
    ['fragmented']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from packviz._args import as_choice_list, as_list, check_instance
from packviz.choices import (
    CRITERIA,
    PRESETS,
    SORTS,
    Criterion,
    Overflow,
    Preset,
    Sort,
    Strategy,
    check_choice,
)
from packviz.limits import MAX_LEN_LIMIT, as_lengths, check_int, check_max_len
from packviz.tradeoffs import Tradeoffs, sweep_tradeoffs

#: What each criterion measures (lower is better for all of them).
CRITERION_LABELS: dict[Criterion, str] = {
    "compute": "token slots (rows × max length)",
    "padding": "padding share of the slots",
    "lost": "tokens lost (truncated or dropped)",
    "fragmented": "tokens that lose their preceding context",
    "attention": "attention pairs per real token (document mask)",
    "mask_memory": "dense mask bytes per row",
}
#: Criteria measured as shares (penalty: percentage points); the rest are costs
#: (penalty: 100 · ln(value / best)).
SHARE_CRITERIA: tuple[Criterion, ...] = ("padding", "lost", "fragmented")

#: Strategies in order of preference when candidates tie (the library's default first).
PREFERENCE: tuple[Strategy, ...] = ("best_fit", "first_fit", "next_fit", "wrapped", "padded")

#: Starting weights of each preset (the user may change them).
PRESET_WEIGHTS: dict[Preset, dict[Criterion, float]] = {
    "pretraining": {
        "compute": 1.0,
        "padding": 0.5,
        "lost": 1.0,
        "fragmented": 1.0,
        "attention": 0.1,
        "mask_memory": 0.01,
    },
    "fine-tuning": {
        "compute": 0.5,
        "padding": 0.5,
        "lost": 3.0,
        "fragmented": 2.0,
        "attention": 0.2,
        "mask_memory": 0.01,
    },
    "long context": {
        "compute": 0.5,
        "padding": 0.25,
        "lost": 2.0,
        "fragmented": 3.0,
        "attention": 0.02,
        "mask_memory": 0.0,
    },
}


def preset_weights(preset: Preset) -> dict[Criterion, float]:
    """A copy of a preset's weights.

    >>> preset_weights("fine-tuning")["lost"]
    3.0
    """
    return dict(PRESET_WEIGHTS[check_choice("preset", preset, PRESETS)])


def criterion_values(t: Tradeoffs) -> dict[Criterion, float]:
    """The raw value of every criterion for one candidate (lower is better)."""
    return {
        "compute": float(t.slots),
        "padding": t.padding_share,
        "lost": t.lost_share,
        "fragmented": t.fragmented_share,
        "attention": t.attention_per_token,
        "mask_memory": float(t.dense_mask_bytes),
    }


def _check_weights(weights: Mapping[str, float]) -> dict[Criterion, float]:
    if isinstance(weights, str):
        raise TypeError(
            f"weights must be a mapping of criterion to weight, got the str {weights!r}; "
            f"for a preset pass preset_weights({weights!r})"
        )
    if not isinstance(weights, Mapping):
        raise TypeError(
            "weights must be a mapping of criterion to weight (e.g. "
            f"preset_weights('pretraining')), got {type(weights).__name__}"
        )
    out: dict[Criterion, float] = {}
    for name, w in weights.items():
        check_choice("criterion", name, CRITERIA)
        if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)):
            raise ValueError(f"weight of {name} must be a number, got {w!r}")
        try:
            f = float(w)
        except OverflowError:  # an int too large for a float
            f = math.inf
        if not math.isfinite(f) or f < 0:
            raise ValueError(f"weight of {name} must be finite and non-negative, got {w!r}")
        out[name] = f
    return out


def penalties(candidates: Sequence[Tradeoffs]) -> np.ndarray:
    """``[n_candidates, len(CRITERIA)]`` points behind the best candidate, per criterion.

    >>> from packviz.tradeoffs import evaluate
    >>> p = penalties([evaluate([5, 3], 8), evaluate([5, 3], 8, strategy="padded")])
    >>> [round(float(x), 1) for x in p[1]]  # padded: 2 rows instead of 1, 50 % padding
    [69.3, 50.0, 0.0, 0.0, 0.0, 0.0]
    """
    values = np.array(
        [[criterion_values(t)[c] for c in CRITERIA] for t in candidates], dtype=np.float64
    ).reshape(len(candidates), len(CRITERIA))
    if not len(candidates):
        return values
    best = values.min(axis=0)
    out = np.empty_like(values)
    for j, c in enumerate(CRITERIA):
        v, b = values[:, j], best[j]
        if c in SHARE_CRITERIA:
            out[:, j] = 100.0 * (v - b)
        elif b > 0:
            out[:, j] = 100.0 * np.log(v / b)
        else:  # costs of zero (an empty corpus): nothing to compare
            out[:, j] = 0.0
    return out


@dataclass(frozen=True)
class Ranking:
    """Candidates best first, with their scores and penalties (rows follow ``ranked``).

    ``weights`` are the ones used; ``penalty[i, j]`` is candidate ``i``'s points behind
    the best on ``CRITERIA[j]``; ``score[i]`` is ``Σ_j weights[j] · penalty[i, j]``.
    """

    ranked: tuple[Tradeoffs, ...]
    score: np.ndarray
    penalty: np.ndarray
    weights: dict[Criterion, float]

    @property
    def best(self) -> Tradeoffs:
        if not self.ranked:
            raise ValueError("the ranking is empty: there were no candidates")
        return self.ranked[0]

    def runner_up(self, *, tolerance: float = 1e-9) -> int | None:
        """Index of the best candidate that scores worse than the winner (candidates that
        tie with it are the same choice for these weights), or None when all tie."""
        worse = np.flatnonzero(self.score > self.score[0] + tolerance) if self.ranked else []
        return int(worse[0]) if len(worse) else None

    def position(self, max_len: int, strategy: str, sort: str) -> int | None:
        """Index of a candidate in the ranking, or None when it was not ranked."""
        for i, t in enumerate(self.ranked):
            if (t.max_len, t.strategy, t.sort) == (max_len, strategy, sort):
                return i
        return None

    def table(self) -> list[dict]:
        """One dict per candidate, best first: rank, settings, numbers, score."""
        out = []
        for i, t in enumerate(self.ranked):
            out.append(
                {
                    "rank": i + 1,
                    "score": float(self.score[i]),
                    **t.as_dict(),
                    **{f"penalty_{c}": float(self.penalty[i, j]) for j, c in enumerate(CRITERIA)},
                }
            )
        return out


def rank(candidates: Sequence[Tradeoffs], weights: Mapping[str, float]) -> Ranking:
    """Rank candidates by weighted penalty (ties keep the candidates' order).

    Criteria missing from ``weights`` weigh 0.

    >>> from packviz.tradeoffs import evaluate
    >>> r = rank([evaluate([5, 3], 8, strategy="padded"), evaluate([5, 3], 8)], {"compute": 1})
    >>> [t.strategy for t in r.ranked], [round(float(s), 1) for s in r.score]
    (['best_fit', 'padded'], [0.0, 69.3])
    """
    candidates = as_list("candidates", candidates, "Tradeoffs (from pv.evaluate)")
    for i, t in enumerate(candidates):
        check_instance(t, Tradeoffs, f"rank (candidate {i})", "Tradeoffs (from pv.evaluate)")
    w = _check_weights(weights)
    wv = np.array([w.get(c, 0.0) for c in CRITERIA])
    pen = penalties(candidates)
    score = pen @ wv if len(candidates) else np.zeros(0)
    order = np.argsort(score, kind="stable")
    return Ranking(
        ranked=tuple(candidates[i] for i in order),
        score=score[order],
        penalty=pen[order],
        weights={c: float(wv[j]) for j, c in enumerate(CRITERIA)},
    )


@dataclass(frozen=True, slots=True)
class Reason:
    """One criterion in a comparison of two ranked candidates.

    ``points`` = weight × (other's penalty − winner's penalty): positive where the
    winner is better, negative where it pays for its win.
    """

    criterion: Criterion
    winner_value: float
    other_value: float
    points: float


def why(ranking: Ranking, *, winner: int = 0, other: int | None = None) -> list[Reason]:
    """Why candidate ``winner`` ranks above ``other``: the weighted criteria, the ones
    that decided most first (criteria where both are equal are left out).

    ``other`` defaults to `Ranking.runner_up` — the best candidate that scores worse
    than the winner (candidates that tie with it are the same choice for these weights,
    so comparing with one would say nothing) — or, when every candidate ties, to the
    second one.

    >>> from packviz.tradeoffs import evaluate
    >>> r = rank([evaluate([5, 3], 8, strategy="padded"), evaluate([5, 3], 8)],
    ...          preset_weights("pretraining"))
    >>> [(x.criterion, round(x.points, 1)) for x in why(r)]
    [('compute', 69.3), ('padding', 25.0)]
    """
    check_instance(ranking, Ranking, "why", "a Ranking (from pv.rank or pv.recommend)")
    n = len(ranking.ranked)
    winner = check_int("winner", winner, least=0)
    if other is None:
        up = ranking.runner_up() if winner == 0 else None
        other = up if up is not None else (1 if winner == 0 else 0)
    other = check_int("other", other, least=0)
    if not (winner < n and other < n):
        raise ValueError(f"candidates {winner} and {other} are not both in a ranking of {n}")
    a, b = ranking.ranked[winner], ranking.ranked[other]
    va, vb = criterion_values(a), criterion_values(b)
    out = []
    for j, c in enumerate(CRITERIA):
        w = ranking.weights[c]
        if w == 0 or va[c] == vb[c]:
            continue
        pts = w * float(ranking.penalty[other, j] - ranking.penalty[winner, j])
        out.append(Reason(c, va[c], vb[c], pts))
    out.sort(key=lambda r: -abs(r.points))
    return out


def default_max_lens(
    current: int, *, count: int = 7, lower: int = 16, upper: int = 131_072
) -> list[int]:
    """Max lengths to compare around ``current``: ``count`` powers of two in
    ``[lower, upper]``, the two above ``current`` (the powers of two greater than it)
    and the rest below it where there is room, plus ``current`` itself, always — also
    when it is not a power of two or lies outside ``[lower, upper]`` — so a sweep can
    mark it. Follows the current value: at 131,072 the range is 2,048 … 131,072.

    >>> default_max_lens(2048)
    [128, 256, 512, 1024, 2048, 4096, 8192]
    >>> default_max_lens(3000)  # two above: 4,096 and 8,192
    [128, 256, 512, 1024, 2048, 3000, 4096, 8192]
    >>> default_max_lens(131072)[-2:], default_max_lens(8)
    ([65536, 131072], [8, 16, 32, 64, 128, 256, 512, 1024])
    """
    current = check_max_len(current)
    count = check_int("count", count, least=1)
    lower = check_int("lower", lower, least=1)
    upper = min(check_int("upper", upper, least=lower), MAX_LEN_LIMIT)
    lo_e, hi_e = max(0, math.ceil(math.log2(lower))), math.floor(math.log2(upper))
    count = max(1, min(int(count), hi_e - lo_e + 1))
    floor_e = current.bit_length() - 1  # 2**floor_e <= current < 2**(floor_e + 1)
    top = min(hi_e, max(floor_e + 2, lo_e + count - 1))
    return sorted({*(1 << e for e in range(top - count + 1, top + 1)), current})


def covering_max_lens(
    lengths: object, *, quantiles: Sequence[float] = (99, 100), upper: int = 131_072
) -> list[int]:
    """The powers of two (at least 16, at most ``upper``) that hold the documents up to
    each length percentile whole: with the defaults, the max lengths that keep 99 % and
    all of the documents in one piece. A fine-tuning or long-context choice may lie far
    from the current max length; a ranking adds these to `default_max_lens`.

    >>> covering_max_lens([100, 300, 5000])
    [8192]
    >>> covering_max_lens([10] * 99 + [70_000], quantiles=(50, 100))
    [16, 131072]
    """
    lengths = as_lengths(lengths)
    upper = check_int("upper", upper, least=1)
    quantiles = as_list("quantiles", quantiles, "percentiles from 0 to 100")
    for q in quantiles:
        ok = not isinstance(q, bool) and isinstance(q, (int, float, np.integer, np.floating))
        if not ok or not 0 <= q <= 100:
            raise ValueError(f"quantiles must be percentiles from 0 to 100, got {q!r}")
    if lengths.size == 0:
        return []
    values = np.percentile(lengths, quantiles)
    out = {1 << max(4, math.ceil(math.log2(max(float(v), 1.0)))) for v in values}
    return sorted(m for m in out if m <= min(upper, MAX_LEN_LIMIT))


def recommend(
    lengths: object,
    *,
    max_lens: Iterable[int],
    strategies: Iterable[Strategy] = PREFERENCE,
    sorts: Iterable[Sort] = ("desc",),
    overflow: Overflow = "split",
    seed: int = 0,
    weights: Mapping[str, float] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Ranking:
    """Evaluate every (max length, strategy, sort) on the lengths and rank them
    (``weights`` default to the ``pretraining`` preset). Ties keep the candidates' order:
    max length, then ``strategies`` (by default `PREFERENCE`), then ``sorts``."""
    sorts = as_choice_list("sorts", sorts, SORTS)
    if weights is not None:
        _check_weights(weights)
    candidates = sweep_tradeoffs(
        lengths,
        max_lens,
        strategies=strategies,
        sorts=sorts,
        overflow=overflow,
        seed=seed,
        progress=progress,
    )
    return rank(candidates, preset_weights("pretraining") if weights is None else weights)
