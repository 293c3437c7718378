"""Plans, evaluations, row windows and files for the pages: sized first, then computed once.

Every result is keyed by plain strings: the corpus key (documents *and* tokenizer, and for
fine-tuning records the **Train on** choice, see `dashboard.corpus.Corpus`) plus the
settings that matter. With trained flags, statistics count ``trained_targets`` from them
(`pv.PackPlan.stats` with the token ids).

Before any plan is made its size is predicted (`packviz.plan_cost`): a plan that would
need more than `PLAN_BYTES_LIMIT` is refused with an error box that gives the numbers and
the smallest max length that fits (max length 1 on the default synthetic corpus is ~49M
pieces, several GiB). Its predicted time then decides how it runs (`dashboard.jobs`):
at once when cheap, else on request with a progress bar and a Stop button. Sweeps and
rankings are lists of points; each point is stored on its own, so the points a page has
already seen are never computed twice, and points too big to plan are left out and named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import streamlit as st

import packviz as pv
from dashboard import jobs, work
from dashboard.corpus import Corpus
from dashboard.errors import stop_with
from dashboard.state import Settings
from packviz.budget import BYTES_PER_DOC, BYTES_PER_PIECE, BYTES_PER_ROW
from packviz.limits import format_bytes

#: Largest predicted peak memory of one plan (pack + stats) the dashboard makes.
PLAN_BYTES_LIMIT = 1 << 30


def too_big(corpus: Corpus, max_len: int, strategy: str, overflow: str) -> str | None:
    """Why a plan with these settings is too big for the dashboard, or None when it fits."""
    cost = pv.plan_cost(corpus.lengths, max_len, strategy=strategy, overflow=overflow)
    if cost.bytes <= PLAN_BYTES_LIMIT:
        return None
    budget = (PLAN_BYTES_LIMIT - BYTES_PER_DOC * corpus.lengths.size) // (
        BYTES_PER_PIECE + BYTES_PER_ROW
    )
    fit = pv.smallest_max_len(corpus.lengths, budget, strategy=strategy, overflow=overflow)
    if fit is not None and fit <= pv.MAX_LEN_LIMIT:
        fix = f"Set **Max length** to {fit:,} or more"
    else:
        fix = "Use fewer documents"
    return (
        f"Max length {max_len:,} cuts this corpus ({corpus.lengths.size:,} documents, "
        f"{int(corpus.lengths.sum()):,} tokens) into {cost.pieces:,} pieces: planning them "
        f"needs about {format_bytes(cost.bytes)}, more than the dashboard's "
        f"{format_bytes(PLAN_BYTES_LIMIT)} per plan. {fix}, or plan it with the library "
        "(`pv.pack(lengths, max_len)`) on a machine with the memory."
    )


def _point_key(corpus: Corpus, m: int, strategy: str, sort: str, overflow: str, seed: int) -> str:
    return f"point|{corpus.key}|{m}|{strategy}|{sort}|{overflow}|{seed}"


def _plan_key(corpus: Corpus, s: Settings) -> str:
    return f"plan|{corpus.key}|{s.key()}"


def plan_work(corpus: Corpus, s: Settings) -> jobs.Work:
    cost = pv.plan_cost(
        corpus.lengths, s.max_len, strategy=s.strategy, sort=s.sort, overflow=s.overflow
    )
    return jobs.Work(
        key=_plan_key(corpus, s),
        label=f"Packing {corpus.lengths.size:,} documents ({s.strategy}, sort {s.sort})",
        seconds=cost.seconds,
        fn=work.plan,
        args=(corpus.lengths, s.max_len, s.strategy, s.sort, s.overflow, s.seed, _flagged(corpus)),
    )


def _flagged(corpus: Corpus) -> pv.TokenIds | None:
    """The token ids when their trained flags change the statistics, else None."""
    return corpus.token_ids if corpus.flagged else None


def plan_for(
    corpus: Corpus, s: Settings, *, slot: str = "plan"
) -> tuple[pv.PackPlan, pv.PackStats, pv.Tradeoffs]:
    """(plan, statistics, trade-offs) for the corpus and settings. Stops the page with an
    error box when the plan is too big, and after the Run offer when it is slow.
    ``slot``: what the plan is for (`dashboard.jobs.run`; "plan A" for a pinned plan)."""
    reason = too_big(corpus, s.max_len, s.strategy, s.overflow)
    if reason:
        stop_with(reason)
    out = jobs.run(plan_work(corpus, s), action="Pack", slot=slot)
    if out is None:
        st.stop()
    plan, stats, t = out
    key = _point_key(corpus, s.max_len, s.strategy, s.sort, s.overflow, s.seed)
    if jobs.cached(key) is None:
        jobs.put(key, (stats, t))
    return out


@dataclass(frozen=True)
class Points:
    """Evaluated points (None where not computed) and the points left out as too big."""

    points: list[tuple[int, str, str]]
    results: list[tuple[pv.PackStats, pv.Tradeoffs] | None]
    too_big: list[tuple[int, str, str]]

    @property
    def complete(self) -> bool:
        return all(r is not None for r in self.results)

    @property
    def left_out(self) -> str | None:
        """What a view says of the max lengths left out (None when none was)."""
        if not self.too_big:
            return None
        left = ", ".join(f"{m:,}" for m in sorted({p[0] for p in self.too_big}))
        return f"Left out: max length {left} (too many pieces to plan here)."

    def tradeoffs(self) -> list[pv.Tradeoffs]:
        return [r[1] for r in self.results if r is not None]

    def stats(self) -> list[pv.PackStats]:
        return [r[0] for r in self.results if r is not None]


def evaluate_points(
    corpus: Corpus,
    points: Sequence[tuple[int, str, str]],
    overflow: str,
    seed: int,
    *,
    label: str,
    action: str = "Run",
) -> Points:
    """(PackStats, Tradeoffs) of every (max length, strategy, sort) point. Points already
    known come from the store; the rest run at once when cheap, else behind a Run button
    (their results are then None until run). Points too big to plan are left out.

    The job is named by the whole request, not by the points still missing, so a page
    that comes back while it runs (other pages having computed some of its points in
    the meantime) finds the same job; ``label`` is its slot (`dashboard.jobs.run`)."""
    fits, big = [], []
    for p in points:
        (big if too_big(corpus, p[0], p[1], overflow) else fits).append(p)
    keys = {p: _point_key(corpus, *p, overflow, seed) for p in fits}
    request = "points|" + corpus.key + "|" + repr((fits, overflow, seed))
    for attempt in range(2):  # the stored answer to an earlier request may lack some points
        missing = [p for p in fits if jobs.cached(keys[p]) is None]
        if not missing:
            break
        if attempt and jobs.cached(request) is not None:
            jobs.discard(request)  # it answered for fewer points: ask afresh
        seconds = sum(
            pv.plan_cost(corpus.lengths, m, strategy=x, sort=o, overflow=overflow).seconds
            for m, x, o in missing
        )
        w = jobs.Work(
            key=request,
            label=f"{label}: {len(missing)} packing{'s' * (len(missing) != 1)} of "
            f"{corpus.lengths.size:,} documents",
            seconds=seconds,
            fn=work.evaluations,
            args=(corpus.lengths, missing, overflow, seed, _flagged(corpus)),
        )
        out = jobs.run(w, action=action, slot=label)
        if out is None:
            break
        for p, r in out:
            jobs.put(keys[p], r)
    results = [jobs.cached(keys[p]) for p in fits]
    return Points(points=list(fits), results=results, too_big=big)


def sft_stats(corpus: Corpus, s: Settings, plan: pv.PackPlan) -> pv.SFTStats:
    """``pv.sft_stats`` of a records corpus' plan (stored; a prefix sum over the flags and
    a few operations per piece). Its warnings are shown, not issued."""
    key = f"sft|{corpus.key}|{s.key()}"
    hit = jobs.cached(key)
    if hit is None:
        hit = pv.sft_stats(plan, corpus.token_ids, warn=False)
        jobs.put(key, hit)
    return hit


@st.cache_data(max_entries=16, show_spinner=False)
def _length_summary(corpus_key: str, max_len: int, _lengths) -> pv.LengthSummary:
    return pv.length_summary(_lengths, max_len)


def length_summary(corpus: Corpus, max_len: int) -> pv.LengthSummary:
    """``pv.length_summary`` of the corpus (cached)."""
    return _length_summary(corpus.key, max_len, corpus.lengths)


@st.cache_data(max_entries=32, show_spinner=False)
def _rows(
    corpus_key: str,
    settings_key: str,
    rows_key: bytes,
    with_ids: bool,
    pad_id: int,
    _plan,
    _token_ids,
) -> pv.PackedArrays:
    rows = np.frombuffer(rows_key, dtype=np.int64)
    return pv.materialize(_plan, _token_ids if with_ids else None, pad_id=pad_id, rows=rows)


#: Most slots the dashboard materializes for one view (64 rows × 131,072 is 8.4M).
ROWS_SLOTS_LIMIT = 1 << 23


def rows(
    corpus: Corpus, s: Settings, plan: pv.PackPlan, rows: np.ndarray, *, with_ids: bool = True
) -> pv.PackedArrays:
    """Materialize only the given rows of the plan, in that order (cached).

    ``with_ids=False`` skips ``input_ids`` (a mask needs only ``doc_ids``); the cache key
    says which, so rows cached without ids are never handed to a page that needs them.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size * plan.max_len > ROWS_SLOTS_LIMIT:
        keep = max(1, ROWS_SLOTS_LIMIT // plan.max_len)
        rows = rows[:keep]
    with_ids = bool(with_ids and corpus.has_text)
    pad_id = corpus.pad_id if with_ids else 0
    return _rows(corpus.key, s.key(), rows.tobytes(), with_ids, pad_id, plan, corpus.token_ids)


def decoded_rows(corpus: Corpus, input_ids: np.ndarray) -> list[list[str]]:
    """Per-slot token strings of materialized rows (for hover)."""
    return _decoded(corpus.tokenizer_key, input_ids.tobytes(), input_ids.shape, corpus.tokenizer)


@st.cache_data(max_entries=16, show_spinner=False)
def _decoded(tokenizer_key: str, ids_bytes: bytes, shape: tuple, _tokenizer) -> list[list[str]]:
    ids = np.frombuffer(ids_bytes, dtype=np.int32).reshape(shape)
    flat = pv.decode_tokens(_tokenizer, ids.ravel().tolist())
    w = shape[1]
    return [flat[i * w : (i + 1) * w] for i in range(shape[0])]


@st.cache_data(max_entries=4, show_spinner=False)
def _length_order(corpus_key: str, _lengths) -> np.ndarray:
    return pv.length_order(_lengths)


def length_order(corpus: Corpus) -> np.ndarray:
    """Documents shortest first (``pv.length_order``), sorted once per corpus."""
    return _length_order(corpus.key, corpus.lengths)


def loss_weights(
    corpus: Corpus, s: Settings, plan: pv.PackPlan, batch_rows: int, normalize: str
) -> np.ndarray:
    """``pv.loss_weights`` of a plan made for ``s`` (stored; O(pieces)); with trained
    flags only the trained targets count (the corpus key names the flags)."""
    key = f"loss|{corpus.key}|{s.key()}|{batch_rows}|{normalize}"
    hit = jobs.cached(key)
    if hit is None:
        hit = pv.loss_weights(
            plan, batch_rows=batch_rows, normalize=normalize, token_ids=_flagged(corpus)
        )
        jobs.put(key, hit)
    return hit


@st.cache_resource(max_entries=4, show_spinner=False)
def tiny_model(arch: str, attn: str, seed: int, vocab: int, max_positions: int, device: str):
    """The Audit view's tiny model (`packviz.auditing.load_model`), built and checked to
    run once per setting, not on every rerun: the page reads only its class and layers
    (the audit builds its own in the worker). Shared read-only across sessions."""
    from packviz.auditing import load_model

    return load_model(
        arch,
        attn_implementation=attn,
        seed=seed,
        vocab_size=vocab,
        max_positions=max_positions,
        device=device,
    )
