"""Plotly figures for the dashboard, built from plain numpy arrays.

Why a separate module: the pages stay a few lines long, and every figure can be tested
without Streamlit (this module never imports it). Each builder bounds what it sends to
the browser: large grids are reduced before they leave the server (max pooling keeps thin
diagonals and short documents visible, windows give exact detail), so no figure carries
more than about 2 MB of JSON whatever the corpus size or max length.

Example::

    >>> import numpy as np
    >>> from packviz import figures
    >>> doc_ids = np.array([[0, 0, 1, -1]])
    >>> fig = figures.row_heatmap(doc_ids)
    >>> fig.data[0].type
    'heatmap'
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "PAD_COLOR",
    "MaskGrids",
    "block_figure",
    "figure_bytes",
    "length_histogram",
    "mask_figure",
    "mask_grids",
    "overview_grid",
    "overview_heatmap",
    "row_heatmap",
    "strategy_bars",
    "sweep_figure",
    "token_preview_html",
]

PAD_COLOR = "#e6e6e6"
# Qualitative palette (plotly's D3 + a few from Set2): neighbouring pieces never share one.
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#66c2a5",
    "#fc8d62",
    "#8da0cb",
)
_STRATEGY_COLORS = {
    "next_fit": "#8c564b",
    "first_fit": "#2ca02c",
    "best_fit": "#1f77b4",
    "wrapped": "#9467bd",
    "padded": "#7f7f7f",
}
_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def figure_bytes(fig: go.Figure) -> int:
    """Size in bytes of the JSON a figure sends to the browser.

    >>> figure_bytes(go.Figure()) > 0
    True
    """
    return len(fig.to_json().encode())


def _discrete_colorscale(colors: Sequence[str]) -> list[list]:
    """A stepped colorscale: integer ``z`` = i maps to ``colors[i]`` with zmin=0, zmax=n-1."""
    n = len(colors)
    scale: list[list] = []
    for i, c in enumerate(colors):
        scale.append([i / n, c])
        scale.append([(i + 1) / n, c])
    return scale


def _pool_max(a: np.ndarray, fy: int, fx: int) -> np.ndarray:
    """Max-pool a 2-D array by integer factors (edges padded with the array's minimum)."""
    if fy == 1 and fx == 1:
        return a
    h, w = a.shape
    hy, wx = -(-h // fy) * fy, -(-w // fx) * fx
    if (hy, wx) != (h, w):
        fill = a.min() if a.size else 0
        p = np.full((hy, wx), fill, dtype=a.dtype)
        p[:h, :w] = a
        a = p
    return a.reshape(hy // fy, fy, wx // fx, fx).max(axis=(1, 3))


# --------------------------------------------------------------------------- corpus


def length_histogram(
    lengths: np.ndarray,
    max_len: int | None = None,
    *,
    percentiles: Sequence[float] = (50, 90, 99),
    bins: int = 60,
    log_x: bool = True,
) -> go.Figure:
    """Histogram of document lengths (tokens), binned on the server.

    Only the bin counts travel to the browser (``bins`` bars), so a million documents
    cost the same as ten. Percentiles are dashed lines; the current ``max_len`` is a red
    line, and the title says how many documents are longer than it.

    >>> fig = length_histogram(np.array([1, 10, 100, 1000]), 64)
    >>> int(sum(fig.data[0].y))
    4
    """
    lengths = np.asarray(lengths)
    fig = go.Figure()
    if lengths.size == 0:
        fig.update_layout(title="No documents", margin=_MARGIN, height=320)
        return fig
    lo = max(int(lengths.min()), 1)
    hi = max(int(lengths.max()), lo + 1)
    if log_x:
        edges = np.unique(np.round(np.geomspace(lo, hi + 1, bins + 1)).astype(np.int64))
    else:
        edges = np.unique(np.linspace(lo, hi + 1, bins + 1).astype(np.int64))
    if edges.size < 2:
        edges = np.array([lo, hi + 1])
    counts, edges = np.histogram(np.clip(lengths, lo, None), bins=edges)
    left, right = edges[:-1], edges[1:]
    centers = np.sqrt(left * right) if log_x else (left + right) / 2
    fig.add_bar(
        x=centers,
        y=counts,
        width=(right - left),
        customdata=np.stack([left, right - 1], axis=1),
        hovertemplate="length %{customdata[0]}–%{customdata[1]}<br>%{y} documents<extra></extra>",
        marker_color="#1f77b4",
        name="documents",
    )
    pct = np.percentile(lengths, percentiles) if len(percentiles) else []
    for p, v in zip(percentiles, pct, strict=False):
        fig.add_vline(
            x=max(float(v), lo),
            line_dash="dot",
            line_color="#555",
            annotation_text=f"p{p:g}={v:,.0f}",
            annotation_position="top",
        )
    title = f"{lengths.size:,} documents, {int(lengths.sum()):,} tokens"
    if max_len is not None:
        over = int((lengths > max_len).sum())
        fig.add_vline(
            x=max_len,
            line_color="#d62728",
            line_width=2,
            annotation_text=f"max length {max_len:,}",
            annotation_position="bottom right",
        )
        title += f" · {over:,} longer than max length"
    fig.update_layout(
        title=title,
        xaxis_title="document length (tokens)",
        yaxis_title="documents",
        bargap=0,
        margin=_MARGIN,
        height=340,
        showlegend=False,
    )
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def token_preview_html(tokens: Sequence[str], *, limit: int = 400) -> str:
    """HTML of a document's tokens, each in its own shaded box (escaped, safe to show).

    >>> "&lt;b&gt;" in token_preview_html(["<b>", "x"])
    True
    """
    shades = ("#dbe9f6", "#fde2c8")
    parts = []
    for i, t in enumerate(tokens[:limit]):
        shown = html.escape(t).replace("\n", "↵<br>").replace(" ", "&nbsp;")
        parts.append(
            f'<span title="token {i}" style="background:{shades[i % 2]};'
            f'border-radius:3px;padding:0 1px;margin:0 1px;font-family:monospace">{shown}</span>'
        )
    more = len(tokens) - limit
    tail = f"<br><em>… {more:,} more tokens</em>" if more > 0 else ""
    return '<div style="line-height:1.9;word-break:break-all">' + "".join(parts) + tail + "</div>"


# --------------------------------------------------------------------------- packed rows


def _colour_classes(doc_ids: np.ndarray) -> np.ndarray:
    """Per slot colour class: 0 for padding, 1..K by document (neighbours differ)."""
    k = len(_PALETTE)
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
    scale = _discrete_colorscale((PAD_COLOR, *_PALETTE))
    zmax = len(_PALETTE)
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
        margin=_MARGIN,
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


def overview_grid(
    row: np.ndarray,
    offset: np.ndarray,
    length: np.ndarray,
    n_rows: int,
    max_len: int,
    *,
    max_rows: int = 256,
    max_slots: int = 256,
) -> tuple[np.ndarray, int, np.ndarray]:
    """Fill fraction of every (row block, slot block) cell, from piece boundaries only.

    Works on the plan's per-piece arrays (``row``, ``offset``, ``length``), never on
    materialized rows, so a million documents take milliseconds. Returns
    ``(fill, rows_per_cell, slot_edges)`` with ``fill`` in [0, 1] of shape
    ``[ceil(n_rows / rows_per_cell), len(slot_edges) - 1]``.

    >>> fill, rpc, edges = overview_grid(np.array([0, 0, 1]), np.array([0, 2, 0]),
    ...                                  np.array([2, 1, 4]), 2, 4, max_slots=2)
    >>> fill.tolist(), rpc, edges.tolist()
    ([[1.0, 0.5], [1.0, 1.0]], 1, [0, 2, 4])
    """
    row = np.asarray(row, np.int64)
    a = np.asarray(offset, np.int64)
    b = a + np.asarray(length, np.int64)
    rpc = max(1, -(-n_rows // max_rows))
    nrb = max(1, -(-n_rows // rpc))
    ns = min(max_slots, max_len)
    edges = np.round(np.linspace(0, max_len, ns + 1)).astype(np.int64)
    width = np.diff(edges)
    rb = row // rpc
    keep = b > a
    rb, a, b = rb[keep], a[keep], b[keep]
    ka = np.searchsorted(edges, a, side="right") - 1
    kb = np.searchsorted(edges, b - 1, side="right") - 1
    covered = np.zeros(nrb * ns, np.float64)
    same = ka == kb
    # pieces inside a single slot block
    covered += np.bincount(rb[same] * ns + ka[same], weights=(b - a)[same], minlength=nrb * ns)
    m = ~same
    ra, kam, kbm, am, bm = rb[m], ka[m], kb[m], a[m], b[m]
    covered += np.bincount(ra * ns + kam, weights=edges[kam + 1] - am, minlength=nrb * ns)
    covered += np.bincount(ra * ns + kbm, weights=bm - edges[kbm], minlength=nrb * ns)
    # whole blocks strictly between: difference array over slot blocks, per row block
    diff = np.zeros(nrb * (ns + 1), np.int64)
    inner = kbm > kam + 1
    np.add.at(diff, ra[inner] * (ns + 1) + kam[inner] + 1, 1)
    np.add.at(diff, ra[inner] * (ns + 1) + kbm[inner], -1)
    full = np.cumsum(diff.reshape(nrb, ns + 1), axis=1)[:, :ns]
    covered = covered.reshape(nrb, ns) + full * width[None, :]
    rows_in_block = np.minimum(rpc, n_rows - np.arange(nrb) * rpc).clip(min=1)
    fill = covered / (rows_in_block[:, None] * width[None, :])
    return fill, rpc, edges


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
        margin=_MARGIN,
        height=360,
    )
    fig.update_yaxes(autorange="reversed", type="category", nticks=12)
    fig.update_xaxes(type="category", nticks=12)
    return fig


# --------------------------------------------------------------------------- masks


@dataclass(slots=True)
class MaskGrids:
    """Block-pooled views of one row's masks over slots ``[start, stop)``.

    ``causal``, ``document`` and ``cross`` are boolean ``[n, n]`` grids: a cell is True
    when any (query, key) pair in its block is allowed (``cross``: allowed by the plain
    causal mask but not by the document mask). ``block`` slots per cell (1 = exact).
    """

    causal: np.ndarray
    document: np.ndarray
    cross: np.ndarray
    start: int
    stop: int
    block: int


def _piece_starts(d: np.ndarray) -> np.ndarray:
    """Per slot, the first slot of its piece: the library's one definition of a piece
    (`packviz.masks.piece_starts`; a padding slot is its own piece), as numpy."""
    if d.size == 0:
        return np.zeros(0, np.int64)
    from packviz.masks import piece_starts  # lazy: torch costs over a second to import

    return piece_starts(np.ascontiguousarray(d), device="cpu").numpy()


def mask_grids(
    doc_ids_row: np.ndarray, *, start: int = 0, stop: int | None = None, max_size: int = 256
) -> MaskGrids:
    """Max-pooled causal, document and cross-document masks of one row (exact when small).

    Derived from the library's mask rules, never a dense ``[L, L]`` mask, so any length
    works: the document grid is the block layout (`packviz.masks.block_layout`: a cell is
    allowed when it is full or partial), and a causal cell holds cross-document attention
    unless every query in it starts its piece (`packviz.masks.piece_starts`) at or before
    the cell's first key. A padding slot attends to itself only.

    >>> g = mask_grids(np.array([0, 0, 1, -1]))
    >>> g.document.astype(int).tolist()
    [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    >>> int(g.cross.sum())  # 10 causal pairs, 5 within a piece or a padding slot itself
    5
    """
    d = np.asarray(doc_ids_row)
    stop = d.size if stop is None else min(stop, d.size)
    start = max(0, min(start, stop))
    n = stop - start
    block = max(1, -(-n // max_size))
    nb = -(-n // block) if n else 0
    if nb == 0:
        empty = np.zeros((0, 0), bool)
        return MaskGrids(empty, empty, empty.copy(), start, stop, block)
    from packviz.masks import block_layout  # lazy: torch

    # the piece of slot `start` may begin before the window: it starts at 0 inside it,
    # which gives the same cells (a key before the window is not shown)
    w = np.ascontiguousarray(d[start:stop])
    lo = _piece_starts(w)
    full, partial = block_layout(w[None], block_size=block, device="cpu")
    first = np.arange(nb) * block  # first slot of each block
    last = np.minimum(first + block, n) - 1  # last slot of each block
    causal = first[None, :] <= first[:, None]  # key block on or before query block
    document = (full | partial)[0].numpy()
    # every causal pair of the cell allowed: the cell's last query (the latest piece
    # start, starts being nondecreasing) starts its piece at or before the first key
    whole = causal & (lo[last][:, None] <= first[None, :])
    cross = causal & ~whole
    return MaskGrids(causal, document, cross, start, stop, block)


def mask_figure(
    doc_ids_row: np.ndarray,
    *,
    start: int = 0,
    stop: int | None = None,
    max_size: int = 256,
    max_marks: int = 40,
) -> go.Figure:
    """Three panels for one row: plain causal mask, document mask, and their difference.

    The difference (red) is the cross-document attention that packing without a
    document mask would allow. Piece starts are marked on the axes (``d<doc>``).

    >>> fig = mask_figure(np.array([0, 0, 1, -1]))
    >>> len(fig.data)
    3
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
    w = d[g.start : g.stop]
    if w.size:
        starts = np.flatnonzero((_piece_starts(w) == np.arange(w.size)) & (w >= 0))
        if starts.size > max_marks:
            starts = starts[np.linspace(0, starts.size - 1, max_marks).astype(int)]
        vals = (starts + g.start).tolist()
        text = [f"d{int(w[s])}" for s in starts]
        fig.update_xaxes(tickvals=vals, ticktext=text, tickangle=-90, tickfont_size=9)
        fig.update_yaxes(tickvals=vals, ticktext=text, tickfont_size=9)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    for i in (2, 3):
        fig.update_yaxes(scaleanchor=f"x{i}", row=1, col=i)
    note = "exact" if g.block == 1 else f"{g.block}×{g.block} slots per cell, max-pooled"
    fig.update_layout(
        title=f"Slots {g.start}–{g.stop - 1} ({note})",
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
        height=420,
    )
    return fig


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
    z = _pool_max(state, f, f)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x0=0,
            dx=block_size * f,
            y0=0,
            dy=block_size * f,
            zmin=0,
            zmax=2,
            colorscale=_discrete_colorscale(("#ffffff", "#ff7f0e", "#1f77b4")),
            colorbar={
                "tickvals": [0.33, 1, 1.67],
                "ticktext": ["skipped", "partial", "full"],
                "thickness": 12,
            },
            hovertemplate="query block at %{y}<br>key block at %{x}<br>state %{z}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_layout(
        title=(
            f"{nq}×{nk} blocks of {block_size}: {int(full.sum())} full, {int(partial.sum())} partial,"
            f" sparsity {sparsity:.1%} of causal blocks skipped"
        ),
        xaxis_title="key slot",
        yaxis_title="query slot",
        margin=_MARGIN,
        height=420,
    )
    return fig


# --------------------------------------------------------------------------- compare


def strategy_bars(stats: Sequence[Mapping]) -> go.Figure:
    """Every strategy side by side: rows against the lower bound, and efficiency.

    ``stats``: one mapping per strategy with ``strategy``, ``n_rows``,
    ``lower_bound_rows``, ``efficiency`` and ``lost_tokens`` (``PackStats.as_dict()``).

    >>> fig = strategy_bars([{"strategy": "best_fit", "n_rows": 3, "lower_bound_rows": 3,
    ...                       "efficiency": 0.9, "lost_tokens": 0}])
    >>> list(fig.data[0].y)
    [3]
    """
    names = [s["strategy"] for s in stats]
    colors = [_STRATEGY_COLORS.get(n, "#333") for n in names]
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("rows (line: lower bound)", "efficiency"),
        horizontal_spacing=0.12,
    )
    fig.add_bar(
        x=names,
        y=[int(s["n_rows"]) for s in stats],
        marker_color=colors,
        text=[f"{int(s['n_rows']):,}" for s in stats],
        textposition="outside",
        name="rows",
        row=1,
        col=1,
    )
    if stats:
        lb = int(stats[0]["lower_bound_rows"])
        fig.add_hline(
            y=lb,
            line_dash="dash",
            line_color="#333",
            row=1,
            col=1,
            annotation_text=f"lower bound {lb:,}",
            annotation_position="top left",
        )
    fig.add_bar(
        x=names,
        y=[float(s["efficiency"]) for s in stats],
        marker_color=colors,
        text=[f"{float(s['efficiency']):.1%}" for s in stats],
        textposition="outside",
        name="efficiency",
        row=1,
        col=2,
    )
    fig.update_yaxes(tickformat=".0%", range=[0, 1.1], row=1, col=2)
    fig.update_layout(showlegend=False, margin=_MARGIN, height=360)
    return fig


def sweep_figure(stats: Sequence[Mapping]) -> go.Figure:
    """Efficiency, rows and lost tokens against max length, one curve per strategy.

    ``stats``: mappings with ``strategy``, ``max_len``, ``efficiency``, ``n_rows`` and
    ``lost_tokens`` (``[s.as_dict() for s in pv.sweep(...)]``).

    >>> s = [{"strategy": "padded", "max_len": m, "efficiency": 0.5, "n_rows": 4,
    ...       "lost_tokens": 0} for m in (256, 512)]
    >>> [len(t.x) for t in sweep_figure(s).data]
    [2, 2, 2]
    """
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=("efficiency", "rows", "lost tokens"),
        horizontal_spacing=0.07,
    )
    by: dict[str, list[Mapping]] = {}
    for s in stats:
        by.setdefault(s["strategy"], []).append(s)
    for name, items in by.items():
        items = sorted(items, key=lambda s: s["max_len"])
        x = [int(s["max_len"]) for s in items]
        color = _STRATEGY_COLORS.get(name, "#333")
        for col, key in enumerate(("efficiency", "n_rows", "lost_tokens"), 1):
            fig.add_scatter(
                x=x,
                y=[s[key] for s in items],
                mode="lines+markers",
                name=name,
                legendgroup=name,
                showlegend=col == 1,
                line_color=color,
                row=1,
                col=col,
            )
    fig.update_xaxes(type="log", title_text="max length", dtick=np.log10(2))
    fig.update_yaxes(tickformat=".0%", row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(margin=_MARGIN, height=380, legend={"orientation": "h", "y": -0.25})
    return fig
