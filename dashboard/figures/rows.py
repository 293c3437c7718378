"""Figures of packed rows: a window of rows slot by slot, and the overview of all rows."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.figures._style import MARGIN, PAD_COLOR, PALETTE, discrete_colorscale
from packviz.grids import overview_grid


def _colour_classes(doc_ids: np.ndarray) -> np.ndarray:
    """Per slot colour class: 0 for padding, 1..K by document (neighbours differ)."""
    k = len(PALETTE)
    d = doc_ids.astype(np.int64)
    cls = ((d * 2654435761) >> 7) % k
    if d.shape[1] > 1:
        # a piece whose colour equals the previous piece's (same row) takes the next
        # colour; repeat until no neighbours share one (bumps only move rightwards)
        prev_doc = np.concatenate([np.full((d.shape[0], 1), -2), d[:, :-1]], axis=1)
        starts = (d != prev_doc) & (d >= 0) & (prev_doc >= 0)
        run_start = np.maximum.accumulate(
            np.where(d != prev_doc, np.arange(d.shape[1])[None, :], 0), axis=1
        )
        for _ in range(64):
            prev_cls = np.concatenate([np.full((d.shape[0], 1), -1), cls[:, :-1]], axis=1)
            bump = starts & (cls == prev_cls)
            if not bump.any():
                break
            cls = np.where(np.take_along_axis(bump, run_start, axis=1), (cls + 1) % k, cls)
    return np.where(d < 0, 0, cls + 1).astype(np.uint8)


def _clean_token(t: str) -> str:
    t = t.replace("\n", "↵").replace("\t", "⇥").replace("\r", "␍").replace(" ", "·")
    if len(t) > 12:
        t = t[:11] + "…"
    return html.escape(t)


def row_heatmap(
    doc_ids: np.ndarray,
    *,
    row_index: np.ndarray | None = None,
    position_ids: np.ndarray | None = None,
    tokens: Sequence[Sequence[str]] | None = None,
    max_cells: int = 32_768,
    max_token_cells: int = 16_384,
    title: str | None = None,
) -> go.Figure:
    """Packed rows × slots, coloured by document, padding light grey.

    Hover gives row, slot, document, position and (when ``tokens`` is given, one list of
    decoded strings per row) the token. When ``rows × max_len`` exceeds ``max_cells``
    (``max_token_cells`` with tokens) the slots are pooled in blocks; hover then gives the slot range, its first document and
    how many slots are padding.

    >>> fig = row_heatmap(np.array([[0, 0, 1, -1]]), row_index=np.array([7]))
    >>> [int(v) for v in fig.data[0].y]
    [7]
    """
    doc_ids = np.atleast_2d(np.asarray(doc_ids))
    n, length = doc_ids.shape
    rows = np.arange(n) if row_index is None else np.asarray(row_index)
    colours = _colour_classes(doc_ids) if doc_ids.size else np.zeros((n, length), np.uint8)
    scale = discrete_colorscale((PAD_COLOR, *PALETTE))
    zmax = len(PALETTE)
    if tokens is not None:
        max_cells = min(max_cells, max_token_cells)  # hover text costs up to ~80 bytes a cell
    factor = max(1, -(-n * length // max_cells)) if n * length else 1
    if factor == 1:
        pos = (
            np.asarray(position_ids)
            if position_ids is not None
            else np.zeros_like(doc_ids, dtype=np.int64)
        )
        if tokens is not None:
            text = [
                [
                    f"position {p}<br>token {_clean_token(t)}" if d >= 0 else "padding"
                    for p, t, d in zip(prow, trow, drow, strict=False)
                ]
                for prow, trow, drow in zip(pos.tolist(), tokens, doc_ids.tolist(), strict=False)
            ]
        else:
            text = [
                [f"position {p}" if d >= 0 else "padding" for p, d in zip(prow, drow, strict=False)]
                for prow, drow in zip(pos.tolist(), doc_ids.tolist(), strict=False)
            ]
        trace = go.Heatmap(
            z=colours,
            x0=0,
            dx=1,
            y=rows,
            customdata=doc_ids.astype(np.int32),
            text=text,
            hovertemplate=(
                "row %{y}<br>slot %{x}<br>document %{customdata}<br>%{text}<extra></extra>"
            ),
            colorscale=scale,
            zmin=-0.5,
            zmax=zmax + 0.5,
            showscale=False,
            xgap=0,
            ygap=1,
        )
        subtitle = "hover a slot for its document, position and token"
    else:
        first = doc_ids[:, ::factor]
        z = colours[:, ::factor]
        pad = _pool_sum((doc_ids < 0).astype(np.int32), factor)
        starts = np.arange(0, length, factor)
        ends = np.minimum(starts + factor, length) - 1
        custom = np.stack(
            [first.astype(np.int32), pad, np.broadcast_to(ends, first.shape).astype(np.int32)],
            axis=-1,
        )
        trace = go.Heatmap(
            z=z,
            x0=0,
            dx=factor,
            y=rows,
            customdata=custom,
            hovertemplate=(
                "row %{y}<br>slots %{x}–%{customdata[2]}<br>first document %{customdata[0]}"
                f"<br>padding slots %{{customdata[1]}} of {factor}<extra></extra>"
            ),
            colorscale=scale,
            zmin=-0.5,
            zmax=zmax + 0.5,
            showscale=False,
            ygap=1,
        )
        subtitle = f"{factor} slots per cell; narrow the window for single tokens"
    fig = go.Figure(trace)
    fig.update_layout(
        title=title or f"Packed rows ({subtitle})",
        xaxis_title="slot",
        yaxis_title="row",
        margin=MARGIN,
        height=min(900, 120 + 22 * max(n, 1)),
        plot_bgcolor=PAD_COLOR,
    )
    fig.update_yaxes(autorange="reversed", type="category" if n <= 64 else "linear")
    fig.update_xaxes(range=[-0.5, length - 0.5])
    return fig


def _pool_sum(a: np.ndarray, factor: int) -> np.ndarray:
    n, length = a.shape
    w = -(-length // factor) * factor
    if w != length:
        a = np.concatenate([a, np.zeros((n, w - length), a.dtype)], axis=1)
    return a.reshape(n, w // factor, factor).sum(axis=2).astype(np.int32)


def overview_heatmap(
    row: np.ndarray,
    offset: np.ndarray,
    length: np.ndarray,
    n_rows: int,
    max_len: int,
    *,
    window: tuple[int, int] | None = None,
    max_rows: int = 256,
    max_slots: int = 256,
) -> go.Figure:
    """Overview of all rows: how full each part of each row is (from the plan alone).

    Dark = real tokens, light = padding; ``window`` (first row, stop row) is outlined.

    >>> fig = overview_heatmap(np.array([0]), np.array([0]), np.array([3]), 1, 4)
    >>> fig.data[0].type
    'heatmap'
    """
    fill, rpc, edges = overview_grid(
        row, offset, length, n_rows, max_len, max_rows=max_rows, max_slots=max_slots
    )
    pct = np.round(fill * 100).astype(np.uint8)
    nrb = fill.shape[0]
    rstart = np.arange(nrb) * rpc
    rend = np.minimum(rstart + rpc, n_rows) - 1
    # category labels instead of per-cell customdata: a few kB instead of a MB
    ylab = [
        f"{a}" if a == b else f"{a}–{b}"
        for a, b in zip(rstart.tolist(), rend.tolist(), strict=True)
    ]
    xlab = [
        f"{a}" if a == b - 1 else f"{a}–{b - 1}"
        for a, b in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=pct,
            x=xlab,
            y=ylab,
            zmin=0,
            zmax=100,
            colorscale=[[0, PAD_COLOR], [1, "#08306b"]],
            colorbar={"title": {"text": "% real"}, "thickness": 12},
            hovertemplate="rows %{y}<br>slots %{x}<br>%{z}% real tokens<extra></extra>",
        )
    )
    if window is not None:
        lo, hi = window
        fig.add_shape(
            type="rect",
            xref="x domain",
            x0=0,
            x1=1,
            y0=lo // rpc - 0.5,
            y1=(max(hi, lo + 1) - 1) // rpc + 0.5,
            line={"color": "#d62728", "width": 2},
        )
    per = f"{rpc:,} rows per line, " if rpc > 1 else ""
    fig.update_layout(
        title=f"Overview of all {n_rows:,} rows ({per}fill from the plan)",
        xaxis_title="slot",
        yaxis_title="row",
        margin=MARGIN,
        height=360,
    )
    fig.update_yaxes(autorange="reversed", type="category", nticks=12)
    fig.update_xaxes(type="category", nticks=12)
    return fig
