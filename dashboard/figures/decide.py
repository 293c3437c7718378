"""Figures of the deciding views: why the ranking ranks as it does, and where the gradient
goes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.figures._style import MARGIN, length_text

CRITERION_COLORS = {
    "compute": "#1f77b4",
    "padding": "#aec7e8",
    "lost": "#d62728",
    "fragmented": "#ff7f0e",
    "attention": "#2ca02c",
    "mask_memory": "#9467bd",
}


def candidate_label(t: Mapping) -> str:
    """'2k · best_fit · desc'.

    >>> candidate_label({"max_len": 2048, "strategy": "best_fit", "sort": "desc"})
    '2k · best_fit · desc'
    """
    return f"{length_text(int(t['max_len']))} · {t['strategy']} · {t['sort']}"


def score_bars(
    table: Sequence[Mapping], weights: Mapping[str, float], *, top: int = 12
) -> go.Figure:
    """The ``top`` candidates of a ranking, each bar split into the weighted penalty of
    every criterion (points behind the best candidate on it): the shorter, the better,
    and the colours say what a candidate pays for.

    ``table``: ``pv.Ranking.table()`` rows (``penalty_<criterion>`` keys).

    >>> rows = [{"max_len": 512, "strategy": "best_fit", "sort": "desc", "score": 1.0,
    ...          "penalty_compute": 1.0, "penalty_lost": 0.0}]
    >>> [t.name for t in score_bars(rows, {"compute": 1.0, "lost": 2.0}).data]
    ['compute', 'lost']
    """
    rows = list(table[:top])
    labels = [f"{i + 1}. {candidate_label(t)}" for i, t in enumerate(rows)]
    fig = go.Figure()
    for c, w in weights.items():
        if w == 0:
            continue
        pts = [w * float(t.get(f"penalty_{c}", 0.0)) for t in rows]
        fig.add_bar(
            y=labels,
            x=pts,
            orientation="h",
            name=c,
            marker_color=CRITERION_COLORS.get(c, "#777"),
            hovertemplate=f"%{{y}}<br>{c}: %{{x:.1f}} points<extra></extra>",
        )
    fig.update_layout(
        barmode="stack",
        title="Weighted points behind the best on each criterion (shorter is better)",
        xaxis_title="points",
        margin={**MARGIN, "l": 10},
        height=max(260, 60 + 26 * len(rows)),
        legend={"orientation": "h", "y": -0.18, "yanchor": "top"},
    )
    fig.update_yaxes(autorange="reversed", automargin=True)
    return fig


def loss_share_figure(shares: Mapping[str, np.ndarray], *, bins: int = 10) -> go.Figure:
    """Share of the gradient carried by each tenth of the documents (shortest tenth on
    the left), one bar group per loss normalization.

    >>> fig = loss_share_figure({"token mean": np.full(10, 0.1)})
    >>> list(fig.data[0].x)[:2], fig.data[0].y[0]
    (['1st', '2nd'], 0.1)
    """
    names = [_ordinal(i + 1) for i in range(bins)]
    colors = ("#1f77b4", "#ff7f0e", "#7f7f7f")
    fig = go.Figure()
    for (label, y), color in zip(shares.items(), colors, strict=False):
        fig.add_bar(
            x=names,
            y=[float(v) for v in y],
            name=label,
            marker_color=color,
            hovertemplate=f"{label}<br>%{{x}} tenth by length: %{{y:.1%}} of the gradient"
            "<extra></extra>",
        )
    fig.add_hline(y=1 / bins, line_dash="dot", line_color="#555")
    fig.update_layout(
        barmode="group",
        title="Share of the gradient by document length",
        xaxis_title="tenth of the documents by length",
        yaxis_title="share of the gradient",
        yaxis_tickformat=".0%",
        margin=MARGIN,
        height=380,
        legend={"orientation": "h", "y": -0.22, "yanchor": "top"},
    )
    return fig


def _ordinal(i: int) -> str:
    suffix = "th" if 10 <= i % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(i % 10, "th")
    return f"{i}{suffix}"
