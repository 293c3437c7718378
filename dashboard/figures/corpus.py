"""Figures of the Corpus view: the length histogram and the token preview."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.figures._style import MARGIN


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
    cost the same as ten. Percentiles are dotted lines; the current ``max_len`` is a red
    line, and the title says how many documents are longer than it. The x axis spans the
    data and every mark, no further (its range is set, in log10 units on a log axis).

    >>> fig = length_histogram(np.array([1, 10, 100, 1000]), 64)
    >>> int(sum(fig.data[0].y))
    4
    """
    lengths = np.asarray(lengths)
    fig = go.Figure()
    if lengths.size == 0:
        fig.update_layout(title="No documents", margin=MARGIN, height=320)
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
    # x range of the log axis, in log10 units: the data and the max length, with a margin
    marks = [float(max(v, lo)) for v in pct] + ([float(max_len)] if max_len else [])
    x_lo, x_hi = min([lo, *marks]), max([hi + 1, *marks])
    # Shapes on a log axis take data values, annotations take log10 positions: an
    # annotation at x=v would sit at 10**v and stretch the axis out to there.
    span = (np.log10(x_hi) - np.log10(x_lo)) if log_x else (x_hi - x_lo)

    def right_half(x: float) -> bool:  # labels right of the middle hang to the left
        pos = (np.log10(x) - np.log10(x_lo)) if log_x else (x - x_lo)
        return span > 0 and pos / span > 0.75

    for i, (p, v) in enumerate(zip(percentiles, pct, strict=False)):
        x = max(float(v), lo)
        fig.add_vline(x=x, line_dash="dot", line_color="#555")
        fig.add_annotation(
            x=float(np.log10(x)) if log_x else x,
            y=1 - 0.08 * i,
            yref="paper",
            text=f"p{p:g} = {v:,.0f}",
            showarrow=False,
            xanchor="right" if right_half(x) else "left",
            font={"size": 11, "color": "#333"},
            bgcolor="rgba(255,255,255,0.7)",
        )
    title = f"{lengths.size:,} documents, {int(lengths.sum()):,} tokens"
    if max_len is not None:
        over = int((lengths > max_len).sum())
        fig.add_vline(x=max_len, line_color="#d62728", line_width=2)
        fig.add_annotation(
            x=float(np.log10(max_len)) if log_x else max_len,
            y=0.5,
            yref="paper",
            text=f"max length {max_len:,}",
            showarrow=False,
            xanchor="right",
            textangle=-90,
            font={"size": 11, "color": "#d62728"},
            bgcolor="rgba(255,255,255,0.8)",
        )
        title += f" · {over:,} longer than max length"
    fig.update_layout(
        title=title,
        xaxis_title="document length (tokens)",
        yaxis_title="documents",
        bargap=0,
        margin=MARGIN,
        height=340,
        showlegend=False,
    )
    if log_x:
        fig.update_xaxes(type="log", range=[np.log10(x_lo / 1.25), np.log10(x_hi * 1.25)])
    else:
        pad = 0.03 * (x_hi - x_lo)
        fig.update_xaxes(range=[x_lo - pad, x_hi + pad])
    return fig


#: Token preview shades: alternating, so neighbouring tokens stay apart.
TOKEN_SHADES = ("#dbe9f6", "#fde2c8")
TRAINED_SHADES = ("#b7e4b0", "#d5efcf")
UNTRAINED_SHADES = ("#ececec", "#f6f6f6")


def token_preview_html(
    tokens: Sequence[str],
    *,
    limit: int = 400,
    total: int | None = None,
    trained: Sequence[bool] | None = None,
) -> str:
    """HTML of a document's tokens, each in its own shaded box (escaped, safe to show).
    ``total``: the document's token count when only its first tokens are passed.
    ``trained``: a flag per token; trained tokens are green, the others grey (dimmed
    text), and each box's tooltip says which.

    >>> "&lt;b&gt;" in token_preview_html(["<b>", "x"])
    True
    >>> html_ = token_preview_html(["Q", "A"], trained=[False, True])
    >>> html_.count("trained"), html_.count("not trained")
    (2, 1)
    """
    parts = []
    flags = None if trained is None else [bool(x) for x in list(trained)[:limit]]
    for i, t in enumerate(tokens[:limit]):
        shown = html.escape(t).replace("\n", "↵<br>").replace(" ", "&nbsp;")
        if flags is None:
            title, shade, color = f"token {i}", TOKEN_SHADES[i % 2], "inherit"
        elif flags[i]:
            title, shade, color = f"token {i} · trained", TRAINED_SHADES[i % 2], "inherit"
        else:
            title, shade, color = f"token {i} · not trained", UNTRAINED_SHADES[i % 2], "#777"
        parts.append(
            f'<span title="{title}" style="background:{shade};color:{color};'
            f'border-radius:3px;padding:0 1px;margin:0 1px;font-family:monospace">{shown}</span>'
        )
    more = (len(tokens) if total is None else total) - min(limit, len(tokens))
    tail = f"<br><em>… {more:,} more tokens</em>" if more > 0 else ""
    return '<div style="line-height:1.9;word-break:break-all">' + "".join(parts) + tail + "</div>"
