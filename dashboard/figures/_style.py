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


def lighter(color: str, amount: float = 0.7) -> str:
    """``color`` (``#rrggbb``) mixed with white: the washed-out shade of untrained tokens.

    >>> lighter("#000000", 0.5)
    '#808080'
    """
    rgb = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in rgb)


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


def png_config(filename: str) -> dict:
    """Plotly config for a chart: the modebar (shown when the pointer is over the chart, so
    it never covers a title) has a camera button saving a PNG named ``filename`` at twice
    the screen resolution.

    >>> png_config("sweep")["toImageButtonOptions"]["filename"]
    'sweep'
    """
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
        "modeBarButtonsToRemove": ["lasso2d", "select2d"],
    }


def length_text(n: int) -> str:
    """A max length for an axis: '512', '2k', '128k' (k = 1,024), else with separators.

    >>> [length_text(v) for v in (512, 2048, 16384, 131072, 3000)]
    ['512', '2k', '16k', '128k', '3,000']
    """
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}k"
    return f"{n:,}"


def bytes_text(n: float) -> str:
    """Bytes for people: '512 B', '4.0 KiB', '64.0 MiB', '1.5 GiB'.

    >>> bytes_text(512), bytes_text(64 * 2**20), bytes_text(3 * 2**29)
    ('512 B', '64.0 MiB', '1.5 GiB')
    """
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"
