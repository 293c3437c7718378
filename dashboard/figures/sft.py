"""Figures of fine-tuning data: prompt and completion lengths side by side."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from dashboard.figures._style import MARGIN

PROMPT_COLOR = "#9e9e9e"
COMPLETION_COLOR = "#2ca02c"


def sft_length_histogram(
    prompt_lengths: np.ndarray,
    completion_lengths: np.ndarray,
    *,
    completion_label: str = "completion",
    bins: int = 40,
) -> go.Figure:
    """Histograms of the untrained (prompt) and trained (completion) tokens per example
    (`pv.SFTStats.prompt_lengths` / ``completion_lengths``) on one log axis, binned on
    the server (only ``bins`` counts per trace travel). Examples with zero tokens on a
    side are counted in the title, not drawn (a log axis has no 0).

    >>> fig = sft_length_histogram(np.array([5, 10, 0]), np.array([20, 40, 60]))
    >>> [int(sum(t.y)) for t in fig.data]
    [2, 3]
    """
    prompt = np.asarray(prompt_lengths, dtype=np.int64)
    completion = np.asarray(completion_lengths, dtype=np.int64)
    fig = go.Figure()
    both = np.concatenate([prompt[prompt > 0], completion[completion > 0]])
    if both.size == 0:
        fig.update_layout(title="No tokens", margin=MARGIN, height=300)
        return fig
    lo, hi = int(both.min()), int(both.max())
    edges = np.unique(np.round(np.geomspace(lo, hi + 1, bins + 1)).astype(np.int64))
    if edges.size < 2:
        edges = np.array([lo, hi + 1])
    left, right = edges[:-1], edges[1:]
    for name, a, color in (
        ("prompt (not trained)", prompt, PROMPT_COLOR),
        (f"{completion_label} (trained)", completion, COMPLETION_COLOR),
    ):
        counts, _ = np.histogram(a[a > 0], bins=edges)
        fig.add_bar(
            x=np.sqrt(left * right),
            y=counts,
            width=right - left,
            name=name,
            marker_color=color,
            opacity=0.65,
            customdata=np.stack([left, right - 1], axis=1),
            hovertemplate=f"{name}<br>%{{customdata[0]}}–%{{customdata[1]}} tokens"
            "<br>%{y} examples<extra></extra>",
        )
    zero = int((prompt == 0).sum())
    title = (
        f"Tokens per example: prompt median {np.median(prompt):,.0f}, "
        f"{completion_label} median {np.median(completion):,.0f}"
    )
    if zero:
        title += f" · {zero:,} examples without untrained tokens"
    fig.update_layout(
        title=title,
        barmode="overlay",
        bargap=0,
        xaxis_title="tokens per example",
        yaxis_title="examples",
        margin=MARGIN,
        height=320,
        legend={"orientation": "h", "y": -0.25},
    )
    fig.update_xaxes(type="log")
    return fig
