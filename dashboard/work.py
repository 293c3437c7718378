"""The dashboard's units of work: plain functions of plain values, calling packviz.

Why a module of its own, without Streamlit: the same functions run inline when they are
cheap, and in a worker process (`dashboard.worker`, started by `dashboard.jobs`) when
they are not. The worker imports this module by name, so it must import nothing heavier
than packviz; and every function takes a ``report(done, total, text)`` callback (or
None) for the progress bar.

Every function returns values that pickle small or as arrays (plans, statistics,
``Tradeoffs``, file bytes), never Streamlit objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

import packviz as pv

Report = Callable[[int, int, str], None] | None


def plan(
    lengths: np.ndarray,
    max_len: int,
    strategy: str,
    sort: str,
    overflow: str,
    seed: int,
    token_ids: pv.TokenIds | None = None,
    report: Report = None,
) -> tuple[pv.PackPlan, pv.PackStats, pv.Tradeoffs]:
    """One plan with its statistics and trade-offs (``token_ids`` with trained flags:
    ``trained_targets`` counts the flagged targets)."""
    p = pv.pack(lengths, max_len, strategy=strategy, sort=sort, overflow=overflow, seed=seed)
    s = p.stats(token_ids)
    t = pv.tradeoffs(p, s)
    if report is not None:
        report(1, 1, "planned")
    return p, s, t


def evaluations(
    lengths: np.ndarray,
    points: Sequence[tuple[int, str, str]],
    overflow: str,
    seed: int,
    token_ids: pv.TokenIds | None = None,
    report: Report = None,
) -> list[tuple[pv.PackStats, pv.Tradeoffs]]:
    """(PackStats, Tradeoffs) of every (max length, strategy, sort) point, in order
    (``token_ids`` with trained flags: as in `plan`)."""
    out = []
    for i, (m, x, s) in enumerate(points):
        p = pv.pack(lengths, m, strategy=x, sort=s, overflow=overflow, seed=seed)
        stats = p.stats(token_ids)
        out.append((stats, pv.tradeoffs(p, stats)))
        del p
        if report is not None:
            report(i + 1, len(points), f"max length {m:,}, {x}, sort {s}")
    return out


def encode_records(
    tokenizer,
    records: Sequence,
    train_on: str,
    chat_template: pv.ChatTemplate | None,
    report: Report = None,
) -> pv.TokenIds:
    """`pv.encode_records`: token ids with trained flags (the tokenizer pickles as its
    JSON definition, built by the dashboard itself)."""

    def progress(done: int, total: int) -> None:
        if report is not None:
            report(done, total, f"{done:,} of {total:,} records")

    return pv.encode_records(
        tokenizer, records, train_on=train_on, chat_template=chat_template, progress=progress
    )


def export_file(
    the_plan: pv.PackPlan,
    token_ids: pv.TokenIds | None,
    pad_id: int,
    fmt: str,
    fields: Sequence[str],
    metadata: dict,
    report: Report = None,
) -> bytes:
    """The file's bytes (materialize every row, then serialize)."""
    arrays = pv.materialize(the_plan, token_ids, pad_id=pad_id)
    if report is not None:
        report(1, 2, "rows built; writing the file")
    data = pv.to_bytes(arrays, fmt, fields=list(fields), metadata=metadata)
    if report is not None:
        report(2, 2, "written")
    return data


def file_size(
    the_plan: pv.PackPlan,
    token_ids: pv.TokenIds | None,
    pad_id: int,
    fmt: str,
    fields: Sequence[str],
    metadata: dict,
    report: Report = None,
) -> int:
    """The file's size, measured on a sample of rows (`packviz.estimate_file_bytes`)."""
    return pv.estimate_file_bytes(
        the_plan, token_ids, fmt, pad_id=pad_id, fields=list(fields), metadata=metadata
    )
