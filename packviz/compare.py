"""Statistics across settings: every strategy on the same corpus, and sweeps over max length.

Each point is a full `pack` followed by `PackPlan.stats`, so it is exact; planning works
on lengths only, so a sweep over a million documents takes seconds, not minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from packviz._args import as_choice_list, as_list
from packviz.choices import STRATEGIES, Overflow, Sort, Strategy
from packviz.limits import as_lengths, check_max_len
from packviz.packing import pack
from packviz.stats import PackStats


def compare_strategies(
    lengths: object,
    max_len: int,
    *,
    strategies: Iterable[Strategy] = STRATEGIES,
    sort: Sort = "desc",
    overflow: Overflow = "split",
    seed: int = 0,
    token_ids: object = None,
) -> list[PackStats]:
    """Statistics of every strategy on the same lengths and settings (``token_ids``: the
    ids of those lengths, so that ``trained_targets`` follows their trained flags).

    >>> [s.n_rows for s in compare_strategies([5, 3, 6, 2], 8)]
    [3, 2, 2, 2, 4]
    """
    lengths = as_lengths(lengths)
    strategies = as_choice_list("strategies", strategies, STRATEGIES)
    return [
        pack(lengths, max_len, strategy=s, sort=sort, overflow=overflow, seed=seed).stats(token_ids)
        for s in strategies
    ]


def sweep(
    lengths: object,
    max_lens: Iterable[int],
    *,
    strategies: Iterable[Strategy] = STRATEGIES,
    sort: Sort = "desc",
    overflow: Overflow = "split",
    seed: int = 0,
    progress: Callable[[int, int, int, str], None] | None = None,
    token_ids: object = None,
) -> list[PackStats]:
    """Statistics for every (max length, strategy) pair, max length outermost.

    ``progress(done, total, max_len, strategy)`` is called after each packing;
    ``token_ids`` as in `compare_strategies`.

    >>> [(s.max_len, s.strategy, s.n_rows) for s in sweep([5, 3, 6], [4, 8], strategies=["best_fit"])]
    [(4, 'best_fit', 4), (8, 'best_fit', 2)]
    """
    lengths = as_lengths(lengths)
    max_lens = [check_max_len(m) for m in as_list("max_lens", max_lens, "integers")]
    strategies = as_choice_list("strategies", strategies, STRATEGIES)
    todo = [(m, s) for m in max_lens for s in strategies]
    out = []
    for i, (m, strategy) in enumerate(todo):
        plan = pack(lengths, m, strategy=strategy, sort=sort, overflow=overflow, seed=seed)
        out.append(plan.stats(token_ids))
        if progress is not None:
            progress(i + 1, len(todo), m, strategy)
    return out
