"""Cached calls into packviz for the pages: plans, comparisons, sweeps, row windows.

Every cache key is a plain string: the corpus key (documents *and* tokenizer, see
`dashboard.corpus.Corpus`) plus the settings that matter. Arguments whose name starts
with ``_`` are not hashed by Streamlit; the keys before them say what they are.

Long work reports progress from outside the cache: a sweep is one cached call per
(max length, strategy) point, and the page updates its progress bar between points, so
nothing but plain values is ever recorded in, or replayed from, the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import streamlit as st

import packviz as pv
from dashboard.corpus import Corpus
from dashboard.errors import stop_with
from dashboard.state import Settings


@st.cache_data(max_entries=24, show_spinner=False)
def _plan(corpus_key: str, settings_key: str, _lengths, _s: Settings):
    plan = pv.pack(
        _lengths, _s.max_len, strategy=_s.strategy, sort=_s.sort, overflow=_s.overflow, seed=_s.seed
    )
    return plan, plan.stats()


def plan_for(corpus: Corpus, s: Settings) -> tuple[pv.PackPlan, pv.PackStats]:
    """(PackPlan, PackStats) for the corpus and settings, cached; stops on bad settings."""
    try:
        return _plan(corpus.key, s.key(), corpus.lengths, s)
    except ValueError as exc:
        stop_with(f"Cannot pack with these settings: {exc}")


#: Above this many documents, Compare leaves out the strategies that are slow with
#: ``sort`` none/random (online first-fit: an O(N log N) Python segment tree; next-fit:
#: O(rows) Python); desc/asc stay fast.
COMPARE_ONLINE_LIMIT = 1_000_000
SLOW_ONLINE_STRATEGIES = ("first_fit", "next_fit")


def compare_strategies_for(corpus: Corpus, s: Settings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(strategies Compare runs, strategies it leaves out) for this corpus and sort."""
    slow = s.sort in ("none", "random") and corpus.lengths.size > COMPARE_ONLINE_LIMIT
    skipped = tuple(x for x in pv.STRATEGIES if slow and x in SLOW_ONLINE_STRATEGIES)
    return tuple(x for x in pv.STRATEGIES if x not in skipped), skipped


@st.cache_data(max_entries=24, show_spinner=False)
def _compare(
    corpus_key: str, settings_key: str, strategies: tuple[str, ...], _lengths, _s: Settings
) -> list[pv.PackStats]:
    return pv.compare_strategies(
        _lengths,
        _s.max_len,
        strategies=strategies,
        sort=_s.sort,
        overflow=_s.overflow,
        seed=_s.seed,
    )


def compare(
    corpus: Corpus, s: Settings, strategies: Sequence[str] = pv.STRATEGIES
) -> list[pv.PackStats]:
    """``PackStats`` of each strategy for the other settings (cached without the strategy)."""
    return _compare(corpus.key, s.key_all_strategies(), tuple(strategies), corpus.lengths, s)


@st.cache_data(max_entries=512, show_spinner=False)
def _sweep_point(
    corpus_key: str, max_len: int, strategy: str, sort: str, overflow: str, seed: int, _lengths
) -> dict:
    plan = pv.pack(_lengths, max_len, strategy=strategy, sort=sort, overflow=overflow, seed=seed)
    return plan.stats().as_dict()


def sweep(
    corpus: Corpus,
    s: Settings,
    max_lens: Sequence[int],
    strategies: Sequence[str],
    progress: Callable[[int, int, int, str], None] | None = None,
) -> list[dict]:
    """``PackStats.as_dict()`` for every (max length, strategy), max length outermost.

    Each point is cached on its own; ``progress(done, total, max_len, strategy)`` runs
    here, between cached calls, so it may update a progress bar."""
    todo = [(m, x) for m in max_lens for x in strategies]
    out = []
    for i, (m, x) in enumerate(todo):
        out.append(_sweep_point(corpus.key, m, x, s.sort, s.overflow, s.seed, corpus.lengths))
        if progress is not None:
            progress(i + 1, len(todo), m, x)
    return out


@st.cache_data(max_entries=16, show_spinner=False)
def _length_summary(corpus_key: str, max_len: int, _lengths) -> pv.LengthSummary:
    return pv.length_summary(_lengths, max_len)


def length_summary(corpus: Corpus, max_len: int) -> pv.LengthSummary:
    """``pv.length_summary`` of the corpus (cached)."""
    return _length_summary(corpus.key, max_len, corpus.lengths)


@st.cache_data(max_entries=16, show_spinner=False)
def _rows_window(
    corpus_key: str,
    settings_key: str,
    lo: int,
    hi: int,
    with_ids: bool,
    pad_id: int,
    _plan,
    _token_ids,
) -> pv.PackedArrays:
    return pv.materialize(
        _plan, _token_ids if with_ids else None, pad_id=pad_id, rows=np.arange(lo, hi)
    )


def rows_window(
    corpus: Corpus, s: Settings, plan: pv.PackPlan, lo: int, hi: int, *, with_ids: bool = True
) -> pv.PackedArrays:
    """Materialize only rows [lo, hi) of the plan (cached).

    ``with_ids=False`` skips ``input_ids`` (a mask needs only ``doc_ids``); the cache key
    says which, so a window cached without ids is never handed to a page that needs them.
    The corpus key names the tokenizer too.
    """
    with_ids = bool(with_ids and corpus.has_text)
    pad_id = corpus.pad_id if with_ids else 0
    return _rows_window(corpus.key, s.key(), lo, hi, with_ids, pad_id, plan, corpus.token_ids)


def decoded_rows(corpus: Corpus, input_ids: np.ndarray) -> list[list[str]]:
    """Per-slot token strings of materialized rows (for hover)."""
    return _decoded(corpus.tokenizer_key, input_ids.tobytes(), input_ids.shape, corpus.tokenizer)


@st.cache_data(max_entries=16, show_spinner=False)
def _decoded(tokenizer_key: str, ids_bytes: bytes, shape: tuple, _tokenizer) -> list[list[str]]:
    ids = np.frombuffer(ids_bytes, dtype=np.int32).reshape(shape)
    flat = pv.decode_tokens(_tokenizer, ids.ravel().tolist())
    w = shape[1]
    return [flat[i * w : (i + 1) * w] for i in range(shape[0])]
