"""The Audit view's figure: log-scale bars per path, coloured by verdict, tolerance line."""

from __future__ import annotations

from dashboard.figures import audit_figure
from dashboard.figures._style import figure_bytes
from dashboard.figures.audit import FLOOR, VERDICT_COLORS

NAN = float("nan")
RESULTS = [
    {"path": "dense_additive", "verdict": "exact", "max_logit_diff": 8.9e-8, "loss_diff": 0.0},
    {"path": "causal", "verdict": "leaks", "max_logit_diff": 0.5, "loss_diff": 0.017},
    {"path": "flex", "verdict": "not run", "max_logit_diff": NAN, "loss_diff": NAN},
]


def test_bars_per_path_and_measure():
    fig = audit_figure(RESULTS)
    logit, loss = fig.data
    assert logit.name == "max |Δ logit|" and loss.name == "|Δ loss|"
    assert list(logit.x) == ["dense_additive", "causal", "flex"]
    assert list(logit.y) == [8.9e-8, 0.5, None]
    assert list(loss.y) == [FLOOR, 0.017, None]  # an exact 0 sits on the axis floor
    assert list(loss.text) == ["0.0e+00", "1.7e-02", "not run"]
    assert list(logit.marker.color) == [
        VERDICT_COLORS["exact"],
        VERDICT_COLORS["leaks"],
        VERDICT_COLORS["not run"],
    ]
    assert loss.marker.pattern.shape == "/"


def test_log_axis_and_tolerance_line():
    fig = audit_figure(RESULTS, atol=1e-3)
    assert fig.layout.yaxis.type == "log"
    (line,) = fig.layout.shapes
    assert line.y0 == line.y1 == 1e-3 and line.line.dash == "dash"
    (label,) = fig.layout.annotations
    assert label.text == "exact within 0.001" and label.y == -3  # log10, on a log axis
    assert figure_bytes(fig) < 20_000
