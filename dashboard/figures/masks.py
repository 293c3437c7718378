"""Figures of the Masks view: one row's causal, document and cross-document masks, and
the FlexAttention block view."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures._style import MARGIN, discrete_colorscale, pool_max
from packviz.grids import mask_grids, piece_marks


def spaced_marks(slots: np.ndarray, span: int, max_labels: int) -> np.ndarray:
    """Indices of the marks to label so that labels never crowd: a mark is kept only
    when it is at least ``span / max_labels`` slots after the last kept one.

    >>> spaced_marks(np.array([0, 1, 2, 50, 51, 99]), 100, 4).tolist()
    [0, 3, 5]
    """
    gap = span / max(max_labels, 1)
    keep, last = [], None
    for i, x in enumerate(slots.tolist()):
        if last is None or x - last >= gap:
            keep.append(i)
            last = x
    return np.array(keep, dtype=np.int64)


def mask_figure(
    doc_ids_row: np.ndarray,
    *,
    start: int = 0,
    stop: int | None = None,
    max_size: int = 256,
    max_marks: int = 40,
    max_labels: int = 16,
    trained: np.ndarray | None = None,
) -> go.Figure:
    """Three panels for one row: plain causal mask, document mask, and their difference.

    The difference (red) is the cross-document attention that packing without a
    document mask would allow. Piece starts are marked on the axes (``d<doc>``), at most
    ``max_labels`` per axis and never closer than ``span / max_labels`` slots, so labels
    do not overlap however many pieces the row holds (hover gives every cell).

    ``trained`` (bool per slot of the row, `pv.trained_slots`) draws a dark green bar
    along the top and left edge of each panel over the trained tokens (pooled cells:
    any trained slot), so the queries and keys that carry the loss can be read off.

    >>> fig = mask_figure(np.array([0, 0, 1, -1]))
    >>> len(fig.data)
    3
    >>> fig = mask_figure(np.array([0, 0, 1, -1]), trained=np.array([0, 1, 1, 0], bool))
    >>> len(fig.data), list(fig.data[3].x)
    (9, [0.5, 2.5, None])
    """
    d = np.asarray(doc_ids_row)
    g = mask_grids(d, start=start, stop=stop, max_size=max_size)
    titles = (
        "causal (no document mask)",
        "document mask (packed)",
        "cross-document attention it blocks",
    )
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles, horizontal_spacing=0.04)
    colors = ("#1f77b4", "#2ca02c", "#d62728")
    for col, (grid, c) in enumerate(zip((g.causal, g.document, g.cross), colors, strict=True), 1):
        fig.add_trace(
            go.Heatmap(
                z=grid.astype(np.uint8),
                x0=g.start,
                dx=g.block,
                y0=g.start,
                dy=g.block,
                zmin=0,
                zmax=1,
                colorscale=[[0, "#ffffff"], [1, c]],
                showscale=False,
                hovertemplate=(
                    "query %{y}<br>key %{x}<br>"
                    + ("allowed: %{z}" if g.block == 1 else f"any of {g.block}² allowed: %{{z}}")
                    + "<extra></extra>"
                ),
            ),
            row=1,
            col=col,
        )
    # mark the row's pieces on the axes
    slots, docs = piece_marks(d, start=g.start, stop=g.stop, max_marks=max_marks)
    keep = spaced_marks(slots, g.stop - g.start, max_labels)
    slots, docs = slots[keep] if slots.size else slots, docs[keep] if docs.size else docs
    if slots.size:
        vals, text = slots.tolist(), [f"d{x}" for x in docs.tolist()]
        fig.update_xaxes(tickvals=vals, ticktext=text, tickangle=-90, tickfont_size=9)
        fig.update_yaxes(tickvals=vals, ticktext=text, tickfont_size=9)
    nb = g.causal.shape[0]
    lo, hi = g.start - 0.5 * g.block, g.start + (nb - 0.5) * g.block
    if trained is not None:
        band = 0.04 * (hi - lo)  # room for the bars, inside each panel's axes
        _trained_bars(fig, np.asarray(trained, bool), g, lo - band / 2)
        lo -= band
    fig.update_xaxes(range=[lo, hi], constrain="domain")
    fig.update_yaxes(range=[hi, lo], scaleanchor="x", constrain="domain")
    for i in (2, 3):
        fig.update_yaxes(scaleanchor=f"x{i}", row=1, col=i)
    note = "exact" if g.block == 1 else f"{g.block}×{g.block} slots per cell, max-pooled"
    if trained is not None:
        note += "; green bars: trained tokens"
    fig.update_layout(
        title=f"Slots {g.start}–{g.stop - 1} ({note})",
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
        height=420,
    )
    return fig


def _trained_bars(fig: go.Figure, trained: np.ndarray, g, at: float) -> None:
    """Dark green bars over the runs of trained slots of the window, along the top (keys)
    and the left edge (queries) of each panel, at coordinate ``at``."""
    cells = trained[g.start : g.stop]
    nb = -(-cells.size // g.block)
    padded = np.zeros(nb * g.block, bool)
    padded[: cells.size] = cells
    on = padded.reshape(nb, g.block).any(axis=1).astype(np.int8)
    edges = np.diff(np.r_[0, on, 0])
    first, stop = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    x0 = g.start + first * g.block - 0.5 * g.block
    x1 = g.start + stop * g.block - 0.5 * g.block
    ends = np.minimum(g.start + stop * g.block, g.stop) - 1
    seg: list = []  # None between runs: one line trace, broken between them
    text: list = []
    starts = g.start + first * g.block
    for a, b, s, e in zip(x0.tolist(), x1.tolist(), starts.tolist(), ends.tolist(), strict=True):
        seg += [a, b, None]
        text += [f"trained tokens: slots {s}–{e}"] * 2 + [None]
    flat = [None if x is None else at for x in seg]
    line = {"color": "#006d2c", "width": 5}
    for col in (1, 2, 3):
        for x, y in ((seg, flat), (flat, seg)):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines",
                    line=line,
                    text=text,
                    hovertemplate="%{text}<extra></extra>",
                    showlegend=False,
                ),
                row=1,
                col=col,
            )


def block_figure(
    full: np.ndarray, partial: np.ndarray, *, block_size: int = 128, max_size: int = 256
) -> go.Figure:
    """Block-level view (FlexAttention ``BlockMask``): full, partial and skipped blocks.

    ``full``/``partial`` are ``[nq, nk]`` booleans for one row (``pv.block_layout(...)[0]``).
    The title gives the sparsity: the share of causal blocks the kernel skips.

    >>> f = np.array([[True, False], [False, False]])
    >>> p = np.array([[False, False], [False, True]])
    >>> "33.3%" in block_figure(f, p).layout.title.text
    True
    """
    full = np.asarray(full, bool)
    partial = np.asarray(partial, bool) & ~full
    state = np.where(full, 2, np.where(partial, 1, 0)).astype(np.uint8)
    nq, nk = state.shape
    causal_blocks = int(np.tril(np.ones((nq, nk), bool)).sum()) if nq and nk else 0
    visited = int((full | partial).sum())
    sparsity = 1 - visited / causal_blocks if causal_blocks else 0.0
    f = max(1, -(-max(nq, nk) // max_size))
    z = pool_max(state, f, f)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x0=block_size * f / 2,
            dx=block_size * f,
            y0=block_size * f / 2,
            dy=block_size * f,
            zmin=0,
            zmax=2,
            colorscale=discrete_colorscale(("#ffffff", "#ff7f0e", "#1f77b4")),
            colorbar={
                "tickvals": [0.33, 1, 1.67],
                "ticktext": ["skipped", "partial", "full"],
                "thickness": 12,
            },
            hovertemplate="queries around slot %{y}<br>keys around slot %{x}<br>state %{z}"
            "<extra></extra>",
        )
    )
    w = block_size * f  # slots per cell: cells tile [0, cells * w) exactly
    fig.update_xaxes(range=[0, z.shape[1] * w], constrain="domain")
    fig.update_yaxes(range=[z.shape[0] * w, 0], scaleanchor="x", constrain="domain")
    fig.update_layout(
        title=(
            f"{nq}×{nk} blocks of {block_size}: {int(full.sum())} full, {int(partial.sum())} partial,"
            f" sparsity {sparsity:.1%} of causal blocks skipped"
        ),
        xaxis_title="key slot",
        yaxis_title="query slot",
        margin=MARGIN,
        height=420,
    )
    return fig
