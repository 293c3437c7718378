"""Plotly figures for the dashboard, built from plain numpy arrays, one module per view.

Why a separate package: the pages stay a few lines long, and every figure can be tested
without Streamlit (nothing here imports it). Each builder bounds what it sends to the
browser: the reductions come from the library (`packviz.grids`: pooled mask grids, the
fill overview from the plan; max pooling keeps thin diagonals and short documents
visible, windows give exact detail), so no figure carries more than about 2 MB of JSON
whatever the corpus size or max length.

Example::

    >>> import numpy as np
    >>> from dashboard import figures
    >>> fig = figures.row_heatmap(np.array([[0, 0, 1, -1]]))
    >>> fig.data[0].type
    'heatmap'
"""

from __future__ import annotations

from dashboard.figures._style import (
    PAD_COLOR,
    bytes_text,
    figure_bytes,
    length_text,
    png_config,
)
from dashboard.figures.audit import audit_figure
from dashboard.figures.compare import strategy_bars, sweep_figure
from dashboard.figures.corpus import length_histogram, token_preview_html
from dashboard.figures.decide import candidate_label, loss_share_figure, score_bars
from dashboard.figures.masks import block_figure, mask_figure
from dashboard.figures.rows import overview_heatmap, row_heatmap
from dashboard.figures.sft import sft_length_histogram

__all__ = [
    "PAD_COLOR",
    "audit_figure",
    "block_figure",
    "bytes_text",
    "candidate_label",
    "length_text",
    "loss_share_figure",
    "png_config",
    "score_bars",
    "sft_length_histogram",
    "figure_bytes",
    "length_histogram",
    "mask_figure",
    "overview_heatmap",
    "row_heatmap",
    "strategy_bars",
    "sweep_figure",
    "token_preview_html",
]
