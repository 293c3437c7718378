"""Figures of packed rows: a window of rows slot by slot, and the overview of all rows."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures._style import MARGIN, PAD_COLOR, PALETTE, discrete_colorscale, lighter
from packviz.grids import overview_grid


def _pieces(doc_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row, first slot, last slot, document) of every run of equal non-negative doc ids,
    in row-major order."""
    d = doc_ids.astype(np.int64)
    n, length = d.shape
    real = d >= 0
    first = real.copy()
    first[:, 1:] &= d[:, 1:] != d[:, :-1]
    last = real.copy()
    last[:, :-1] &= d[:, :-1] != d[:, 1:]
    a, b = np.flatnonzero(first), np.flatnonzero(last)
    return a // length, a % length, b % length, d.ravel()[a]


#: Above this many pieces in a window, colours come from a hash (vectorized) instead of
#: the neighbour-aware greedy colouring.
_GREEDY_PIECES = 20_000


def _colour_classes(doc_ids: np.ndarray) -> np.ndarray:
    """Per slot colour class: 0 for padding, 1..K by piece.

    Pieces that touch — side by side in a row, or overlapping slots in the row above —
    never share a colour (greedy colouring in reading order, starting from a colour
    derived from the document so that colours are stable; a piece touching all K
    colours takes the least used). A loop over pieces, never over slots."""
    d = np.atleast_2d(doc_ids).astype(np.int64)
    n, length = d.shape
    k = len(PALETTE)
    if d.size == 0:
        return np.zeros(d.shape, np.uint8)
    row, lo, hi, doc = _pieces(d)
    colour = np.empty(row.size, np.int64)
    if row.size > _GREEDY_PIECES:
        colour[:] = (doc * 2654435761 >> 7) % k
        prev = np.r_[-1, colour[:-1]]
        touch = np.r_[False, (row[1:] == row[:-1]) & (lo[1:] == hi[:-1] + 1)]
        colour = np.where(touch & (colour == prev), (colour + 1) % k, colour)
    else:
        row_first = np.searchsorted(row, np.arange(n + 1))
        for i in range(row.size):
            used = np.zeros(k, np.int64)
            r = row[i]
            if i > row_first[r] and lo[i] == hi[i - 1] + 1:
                used[colour[i - 1]] += 1
            if r > 0:  # pieces of the row above whose slots overlap this one's
                a, b = row_first[r - 1], row_first[r]
                j0 = a + np.searchsorted(hi[a:b], lo[i])
                j1 = a + np.searchsorted(lo[a:b], hi[i], side="right")
                np.add.at(used, colour[j0:j1], 1)
            pref = int((doc[i] * 2654435761 >> 7) % k)
            order = (np.arange(k) + pref) % k
            free = order[used[order] == 0]
            colour[i] = free[0] if free.size else order[np.argmin(used[order])]
    out = np.zeros(d.shape, np.uint8)
    # paint each piece: a difference array over slots, one pass per row block
    flat = out.reshape(-1)
    starts = row * length + lo
    ends = row * length + hi + 1
    paint = np.zeros(flat.size + 1, np.int64)
    np.add.at(paint, starts, colour + 1)
    np.add.at(paint, ends, -(colour + 1))
    flat[:] = np.cumsum(paint[:-1]).astype(np.uint8)
    return out


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
    highlight: int | None = None,
    max_labels: int = 300,
    trained: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> go.Figure:
    """Packed rows × slots, coloured by piece, padding light grey.

    Touching pieces never share a colour (side by side or one above the other), and
    every piece wide enough carries its document as a label (``d<doc>``), so colours
    need no legend. With ``highlight`` the pieces of that document are red and all
    others two shades of blue. Hover gives row, slot, document, position and (when
    ``tokens`` is given, one list of decoded strings per row) the token. When
    ``rows × max_len`` exceeds ``max_cells`` (``max_token_cells`` with tokens) the slots
    are pooled in blocks; hover then gives the slot range, its first document and how
    many slots are padding.

    ``trained`` (bool per slot, `pv.trained_slots`) dims the untrained tokens: their
    piece's colour, washed out. Hover then says "trained · target", "trained · no
    target (first of its piece)" or "not trained" (``labels``, the materialized labels,
    tell targets apart; without them a trained slot is just "trained"); a pooled cell is
    dimmed when fewer than half of its real slots are trained, and says how many are.

    >>> fig = row_heatmap(np.array([[0, 0, 1, -1]]), row_index=np.array([7]))
    >>> [int(v) for v in fig.data[0].y]
    [7]
    >>> fig = row_heatmap(np.array([[0, 0, -1]]), trained=np.array([[False, True, False]]))
    >>> [int(v) for v in fig.data[0].z[0]], fig.data[0].text[0][1]
    ([13, 1, 0], 'position 0<br>trained')
    """
    doc_ids = np.atleast_2d(np.asarray(doc_ids))
    n, length = doc_ids.shape
    rows = np.arange(n) if row_index is None else np.asarray(row_index)
    if highlight is None:
        colours = _colour_classes(doc_ids)
        scale = discrete_colorscale((PAD_COLOR, *PALETTE))
        zmax = len(PALETTE)
    else:
        alt = (_colour_classes(doc_ids) % 2 + 1).astype(np.uint8)
        colours = np.where(doc_ids < 0, 0, np.where(doc_ids == highlight, 3, alt))
        colours = colours.astype(np.uint8)
        scale = discrete_colorscale((PAD_COLOR, "#c6dbef", "#9ecae1", "#d62728"))
        zmax = 3
    if trained is not None and highlight is None:  # untrained: the washed-out colours
        trained = np.asarray(trained, dtype=bool).reshape(doc_ids.shape)
        scale = discrete_colorscale((PAD_COLOR, *PALETTE, *map(lighter, PALETTE)))
        zmax = 2 * len(PALETTE)
    else:
        trained = None
    if tokens is not None:
        max_cells = min(max_cells, max_token_cells)  # hover text costs up to ~80 bytes a cell
    factor = max(1, -(-n * length // max_cells)) if n * length else 1
    if trained is not None and factor == 1:
        colours = np.where(trained | (doc_ids < 0), colours, colours + len(PALETTE))
        colours = colours.astype(np.uint8)
        status = _status(trained, doc_ids, labels)
    elif trained is not None:
        real = _pool_sum((doc_ids >= 0).astype(np.int32), factor)
        n_trained = _pool_sum(trained.astype(np.int32), factor)
        first = colours[:, ::factor]
        dim = (first > 0) & (2 * n_trained < real)
        colours = np.repeat(np.where(dim, first + len(PALETTE), first), factor, axis=1)
        colours = colours[:, :length].astype(np.uint8)
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
        if trained is not None:
            text = [
                [t if not s else f"{t}<br>{s}" for t, s in zip(trow, srow, strict=True)]
                for trow, srow in zip(text, status.tolist(), strict=True)
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
        subtitle = "labels: documents; hover a slot for its position and token"
    else:
        first = doc_ids[:, ::factor]
        z = colours[:, ::factor]
        pad = _pool_sum((doc_ids < 0).astype(np.int32), factor)
        starts = np.arange(0, length, factor)
        ends = np.minimum(starts + factor, length) - 1
        columns = [first.astype(np.int32), pad, np.broadcast_to(ends, first.shape).astype(np.int32)]
        if trained is not None:
            columns.append(_pool_sum(trained.astype(np.int32), factor))
        custom = np.stack(columns, axis=-1)
        trace = go.Heatmap(
            z=z,
            x0=0,
            dx=factor,
            y=rows,
            customdata=custom,
            hovertemplate=(
                "row %{y}<br>slots %{x}–%{customdata[2]}<br>first document %{customdata[0]}"
                f"<br>padding slots %{{customdata[1]}} of {factor}"
                + ("" if trained is None else f"<br>trained slots %{{customdata[3]}} of {factor}")
                + "<extra></extra>"
            ),
            colorscale=scale,
            zmin=-0.5,
            zmax=zmax + 0.5,
            showscale=False,
            ygap=1,
        )
        subtitle = f"{factor} slots per cell; narrow the window for single tokens"
    fig = go.Figure(trace)
    _add_labels(fig, doc_ids, rows, max_labels, highlight)
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


def _add_labels(fig, doc_ids, rows, max_labels: int, highlight) -> None:
    """A text trace with ``d<doc>`` at the middle of every piece wide enough to hold it
    (the widest first, at most ``max_labels``)."""
    row, lo, hi, doc = _pieces(np.atleast_2d(doc_ids))
    if not row.size:
        return
    width = hi - lo + 1
    text = np.array([f"d{x}" for x in doc.tolist()])
    need = np.char.str_len(text) * doc_ids.shape[1] / 90  # ~90 characters per row width
    ok = np.flatnonzero(width >= np.maximum(need, 2))
    ok = ok[np.argsort(-width[ok], kind="stable")[:max_labels]]
    if not ok.size:
        return
    fig.add_scatter(
        x=((lo[ok] + hi[ok]) / 2).tolist(),
        y=np.asarray(rows)[row[ok]].tolist(),
        text=text[ok].tolist(),
        mode="text",
        textfont={
            "size": 10,
            "color": [
                "white" if highlight is not None and d == highlight else "black"
                for d in doc[ok].tolist()
            ],
        },
        hoverinfo="skip",
        showlegend=False,
    )


_STATUS = np.array(
    ["", "not trained", "trained", "trained · no target (first of its piece)", "trained · target"]
)


def _status(trained: np.ndarray, doc_ids: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Per slot: '' (padding), 'not trained', 'trained' (no labels given), or whether a
    trained token is a target (its label is not -100)."""
    code = np.where(trained, 2, 1)
    if labels is not None:
        code = np.where(trained, np.where(np.asarray(labels) >= 0, 4, 3), 1)
    return _STATUS[np.where(doc_ids < 0, 0, code)]


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
    marked: np.ndarray | None = None,
    max_rows: int = 256,
    max_slots: int = 256,
    trained_fill: np.ndarray | None = None,
) -> go.Figure:
    """Overview of all rows: how full each part of each row is (from the plan alone).

    Dark = real tokens, light = padding; ``window`` (first row, stop row) is outlined;
    the lines holding the ``marked`` rows get a red tick on the left edge. With
    ``trained_fill`` (trained tokens per row, `pv.trained_row_fill`) a narrow column on
    the right gives each line's share of slots that hold trained tokens, in green.

    >>> fig = overview_heatmap(np.array([0]), np.array([0]), np.array([3]), 1, 4)
    >>> fig.data[0].type
    'heatmap'
    >>> fig = overview_heatmap(np.array([0]), np.array([0]), np.array([3]), 1, 4,
    ...                        trained_fill=np.array([2]))
    >>> fig.data[-1].z.tolist()
    [[50]]
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
    if trained_fill is None:
        fig = go.Figure()
    else:
        fig = make_subplots(
            rows=1, cols=2, shared_yaxes=True, column_widths=[0.94, 0.06], horizontal_spacing=0.01
        )
    fig.add_trace(
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
    if marked is not None and len(marked):
        lines = np.unique(np.asarray(marked, dtype=np.int64) // rpc)
        fig.add_scatter(
            x=[xlab[0]] * lines.size,
            y=[ylab[i] for i in lines.tolist()],
            mode="markers",
            marker={"symbol": "triangle-right", "size": 9, "color": "#d62728"},
            hovertemplate="rows %{y}: shown above<extra></extra>",
            showlegend=False,
        )
    per = f"{rpc:,} rows per line, " if rpc > 1 else ""
    title = f"Overview of all {n_rows:,} rows ({per}fill from the plan)"
    if trained_fill is not None:
        trained = np.add.reduceat(np.asarray(trained_fill, dtype=np.int64), rstart)
        share = np.round(100 * trained / ((rend - rstart + 1) * max_len)).astype(np.uint8)
        fig.add_trace(
            go.Heatmap(
                z=share[:, None],
                x=["trained"],
                y=ylab,
                zmin=0,
                zmax=100,
                colorscale=[[0, "#ffffff"], [1, "#006d2c"]],
                showscale=False,
                hovertemplate="rows %{y}<br>%{z}% of the slots hold trained tokens<extra></extra>",
            ),
            row=1,
            col=2,
        )
        title += "; right: % of slots trained"
    fig.update_layout(
        title=title,
        xaxis_title="slot",
        yaxis_title="row",
        margin=MARGIN,
        height=360,
    )
    fig.update_yaxes(autorange="reversed", type="category", nticks=12)
    fig.update_xaxes(type="category", nticks=12)
    if trained_fill is not None:  # a title above the narrow column: nothing to collide with
        fig.update_xaxes(showticklabels=False, title_text="trained", side="top", row=1, col=2)
    return fig
