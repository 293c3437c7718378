"""The Audit view's figure: how far each input path moves the model's outputs.

A log scale, because the answer spans eight orders of magnitude: an exact path measures
~1e-7 (float rounding), a leaking one 1e-3 … 1. The dashed line at the tolerance (1e-4)
separates the two; bars are green below it and red above, and a path that did not run
(unsupported, refused, out of time) gets no bar, only its name in grey.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from dashboard.figures._style import MARGIN

VERDICT_COLORS = {"exact": "#2ca02c", "leaks": "#d62728", "not run": "#bbbbbb"}
#: Where a difference of exactly 0 is drawn (a log axis has no 0).
FLOOR = 1e-12


def audit_figure(results: Sequence[Mapping], *, atol: float = 1e-4) -> go.Figure:
    """Grouped bars per path: max |Δ logit| (solid) and |Δ loss| (hatched), log scale,
    with the tolerance line.

    ``results``: mappings with ``path``, ``verdict``, ``max_logit_diff`` and
    ``loss_diff`` (`packviz.AuditResult.as_dict()`); NaN = not run.

    >>> fig = audit_figure([
    ...     {"path": "causal", "verdict": "leaks", "max_logit_diff": 0.5, "loss_diff": 0.01},
    ...     {"path": "flex", "verdict": "not run", "max_logit_diff": float("nan"),
    ...      "loss_diff": float("nan")}])
    >>> [list(t.y) for t in fig.data]
    [[0.5, None], [0.01, None]]
    >>> fig.layout.yaxis.type
    'log'
    """
    paths = [str(r["path"]) for r in results]
    colors = [VERDICT_COLORS.get(str(r["verdict"]), "#333") for r in results]

    def shown(key: str) -> list[float | None]:
        return [None if math.isnan(float(r[key])) else max(float(r[key]), FLOOR) for r in results]

    def text(key: str) -> list[str]:
        return ["not run" if math.isnan(float(r[key])) else f"{float(r[key]):.1e}" for r in results]

    fig = go.Figure()
    for key, name, pattern in (
        ("max_logit_diff", "max |Δ logit|", ""),
        ("loss_diff", "|Δ loss|", "/"),
    ):
        fig.add_bar(
            x=paths,
            y=shown(key),
            name=name,
            marker={"color": colors, "pattern": {"shape": pattern}},
            text=text(key),
            textposition="outside",
            hovertemplate="%{x}<br>" + name + " %{text}<extra></extra>",
        )
    fig.add_hline(y=atol, line_dash="dash", line_color="#333")
    fig.add_annotation(  # on a log axis an annotation's y is log10 of the value
        text=f"exact within {atol:g}",
        x=0,
        xref="paper",
        xanchor="left",
        y=math.log10(atol),
        yanchor="bottom",
        showarrow=False,
    )
    fig.update_yaxes(type="log", title_text="difference from each piece alone", exponentformat="e")
    fig.update_layout(
        barmode="group",
        margin=MARGIN,
        height=380,
        legend={"orientation": "h", "y": -0.2},
    )
    return fig
