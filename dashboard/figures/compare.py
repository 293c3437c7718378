"""Figures of the Compare view: strategies side by side, and what varies with max length."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures._style import MARGIN, STRATEGY_COLORS, length_text

#: Line dash and marker per strategy, so coinciding curves stay distinguishable.
STRATEGY_LINES = {
    "next_fit": ("dot", "triangle-up"),
    "first_fit": ("dash", "square"),
    "best_fit": ("solid", "circle"),
    "wrapped": ("dashdot", "diamond"),
    "padded": ("longdash", "x"),
}


def strategy_bars(stats: Sequence[Mapping]) -> go.Figure:
    """Every strategy side by side: rows against the lower bound, efficiency, and the
    share of tokens that lose their preceding context (what ``wrapped`` pays for its
    rows).

    ``stats``: one mapping per strategy with ``strategy``, ``n_rows``,
    ``lower_bound_rows``, ``efficiency`` and ``fragmented_share``.

    >>> fig = strategy_bars([{"strategy": "best_fit", "n_rows": 3, "lower_bound_rows": 3,
    ...                       "efficiency": 0.9, "fragmented_share": 0.0}])
    >>> list(fig.data[0].y), fig.layout.annotations[0].text
    ([3], 'rows (dashed: lower bound 3)')
    """
    names = [s["strategy"] for s in stats]
    colors = [STRATEGY_COLORS.get(n, "#333") for n in names]
    lb = int(stats[0]["lower_bound_rows"]) if stats else 0
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=(
            f"rows (dashed: lower bound {lb:,})",
            "efficiency",
            "tokens that lose their context",
        ),
        horizontal_spacing=0.08,
    )
    rows = [int(s["n_rows"]) for s in stats]
    frag = [float(s["fragmented_share"]) for s in stats]
    panels = (
        (rows, [f"{r:,}" for r in rows], "rows", "%{x}: %{y:,} rows"),
        (
            [float(s["efficiency"]) for s in stats],
            [f"{float(s['efficiency']):.1%}" for s in stats],
            "efficiency",
            "%{x}: %{y:.2%}",
        ),
        (
            frag,
            [f"{v:.1%}" for v in frag],
            "fragmented",
            "%{x}: %{y:.2%} of the tokens cannot see their document's start",
        ),
    )
    for col, (values, labels, name, hover) in enumerate(panels, start=1):
        fig.add_bar(
            x=names,
            y=values,
            marker_color=colors,
            text=labels,
            textposition="outside",
            cliponaxis=False,
            name=name,
            hovertemplate=hover + "<extra></extra>",
            row=1,
            col=col,
        )
    if stats:
        fig.add_hline(y=lb, line_dash="dash", line_color="#333", row=1, col=1)
    fig.update_yaxes(range=[0, 1.18 * max(rows + [1])], tickformat=",", row=1, col=1)
    fig.update_yaxes(tickformat=".0%", range=[0, 1.18], row=1, col=2)
    fig.update_yaxes(tickformat=".0%", range=[0, max(0.05, 1.25 * max(frag + [0]))], row=1, col=3)
    fig.update_xaxes(tickangle=-30)
    fig.update_layout(showlegend=False, margin={**MARGIN, "t": 50}, height=380)
    return fig


#: (key, panel title, y tick format, log y) of the sweep panels, in order.
SWEEP_PANELS = (
    ("n_rows", "rows", ",", True),
    ("efficiency", "efficiency", ".0%", False),
    ("split_docs", "documents split", ",", False),
    ("fragmented_share", "tokens that lose their context", ".0%", False),
    ("attention_per_token", "attention pairs per token", ",", True),
    ("lost_tokens", "tokens lost", ",", False),
)


def sweep_figure(
    stats: Sequence[Mapping], *, current: int | None = None, show_lost: bool = True
) -> go.Figure:
    """What varies with max length, one curve per strategy: rows, efficiency, split
    documents, tokens that lose their context, attention pairs per token (and lost
    tokens when ``show_lost``; with ``overflow="split"`` nothing is lost and that panel
    holds the legend instead). ``current`` is marked in every panel.

    ``stats``: mappings with ``strategy``, ``max_len`` and the panels' keys
    (``pv.Tradeoffs.as_dict()``).

    >>> keys = ("n_rows", "efficiency", "split_docs", "fragmented_share",
    ...         "attention_per_token", "lost_tokens")
    >>> s = [{"strategy": "padded", "max_len": m, **dict.fromkeys(keys, 1)} for m in (256, 512)]
    >>> fig = sweep_figure(s, current=512, show_lost=False)
    >>> len(fig.data), list(fig.layout.xaxis.ticktext), list(fig.data[0].customdata)
    (5, ['256', '512'], [256, 512])
    """
    panels = SWEEP_PANELS if show_lost else SWEEP_PANELS[:5]
    fig = make_subplots(
        rows=2,
        cols=3,
        subplot_titles=[p[1] for p in panels],
        horizontal_spacing=0.07,
        vertical_spacing=0.2,
    )
    by: dict[str, list[Mapping]] = {}
    for s in stats:
        by.setdefault(s["strategy"], []).append(s)
    xs = sorted({int(s["max_len"]) for s in stats} | ({current} if current else set()))
    for k, (name, items) in enumerate(by.items()):
        items = sorted(items, key=lambda s: s["max_len"])
        x = [int(s["max_len"]) for s in items]
        # strategies are drawn side by side around each max length (a few % apart on the
        # log axis), so curves that coincide stay visible; hover gives the true value
        dodge = 2 ** (0.07 * (k - (len(by) - 1) / 2))
        color = STRATEGY_COLORS.get(name, "#333")
        dash, symbol = STRATEGY_LINES.get(name, ("solid", "circle"))
        for i, (key, title, fmt, _) in enumerate(panels):
            fig.add_scatter(
                x=[v * dodge for v in x],
                y=[s[key] for s in items],
                customdata=x,
                mode="lines+markers",
                name=name,
                legendgroup=name,
                showlegend=i == 0,
                line={"color": color, "dash": dash, "width": 2},
                marker={"symbol": symbol, "size": 8, "color": color},
                opacity=0.85,
                hovertemplate=f"{name}<br>max length %{{customdata:,}}<br>{title}: %{{y:{fmt}}}"
                "<extra></extra>",
                row=i // 3 + 1,
                col=i % 3 + 1,
            )
    for i, (key, _, fmt, log) in enumerate(panels):
        r, c = i // 3 + 1, i % 3 + 1
        values = [float(s[key]) for s in stats]
        fig.update_xaxes(
            type="log",
            tickvals=xs,
            ticktext=[length_text(v) for v in xs],
            tickangle=0 if len(xs) <= 8 else -45,
            row=r,
            col=c,
        )
        if log and values and min(values) > 0:
            fig.update_yaxes(type="log", tickformat="~s", dtick="D2", row=r, col=c)
        elif values and max(values) <= 0:
            fig.update_yaxes(range=[0, 1], tickformat=fmt, row=r, col=c)
        else:
            fig.update_yaxes(rangemode="tozero", tickformat=fmt, row=r, col=c)
        if current:
            fig.add_vline(x=current, line_color="#d62728", line_width=1.5, row=r, col=c)
    if current:
        fig.add_annotation(
            x=0.0,
            y=1.12,
            xref="paper",
            yref="paper",
            showarrow=False,
            xanchor="left",
            text=f"<span style='color:#d62728'>│</span> current max length {current:,}",
        )
    legend = (
        {"orientation": "h", "x": 0, "y": -0.12, "yanchor": "top"}
        if show_lost
        else {"x": 0.72, "y": 0.38, "yanchor": "top", "title": {"text": "strategy"}}
    )
    fig.update_layout(margin={**MARGIN, "t": 70, "b": 40}, height=620, legend=legend)
    return fig
