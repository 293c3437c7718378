"""What every figure shares: colours, margins, a stepped colorscale, pooling for display,
and the size of what a figure sends to the browser."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

PAD_COLOR = "#e6e6e6"
# Qualitative palette (plotly's D3 + a few from Set2): neighbouring pieces never share one.
PALETTE = (
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
STRATEGY_COLORS = {
    "next_fit": "#8c564b",
    "first_fit": "#2ca02c",
    "best_fit": "#1f77b4",
    "wrapped": "#9467bd",
    "padded": "#7f7f7f",
}
MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def figure_bytes(fig: go.Figure) -> int:
    """Size in bytes of the JSON a figure sends to the browser.

    >>> figure_bytes(go.Figure()) > 0
    True
    """
    return len(fig.to_json().encode())


def discrete_colorscale(colors: Sequence[str]) -> list[list]:
    """A stepped colorscale: integer ``z`` = i maps to ``colors[i]`` with zmin=0, zmax=n-1."""
    n = len(colors)
    scale: list[list] = []
    for i, c in enumerate(colors):
        scale.append([i / n, c])
        scale.append([(i + 1) / n, c])
    return scale


def pool_max(a: np.ndarray, fy: int, fx: int) -> np.ndarray:
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
