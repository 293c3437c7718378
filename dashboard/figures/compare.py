"""Figures of the Compare view: strategies side by side, and sweeps over max length."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures._style import MARGIN, STRATEGY_COLORS


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
    colors = [STRATEGY_COLORS.get(n, "#333") for n in names]
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
    fig.update_layout(showlegend=False, margin=MARGIN, height=360)
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
        color = STRATEGY_COLORS.get(name, "#333")
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
    fig.update_layout(margin=MARGIN, height=380, legend={"orientation": "h", "y": -0.25})
    return fig
