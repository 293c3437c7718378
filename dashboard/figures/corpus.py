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
    cost the same as ten. Percentiles are dashed lines; the current ``max_len`` is a red
    line, and the title says how many documents are longer than it.

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
        margin=MARGIN,
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
