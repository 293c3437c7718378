"""dashboard.figures: real values, hover content and payload bounds (no Streamlit)."""

from __future__ import annotations

import json

import numpy as np
from apptest import plotly_array as _arr
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard import figures
from dashboard.figures import rows

MB = 1_000_000


def _trace(fig, i=0):
    return json.loads(fig.to_json())["data"][i]


# ---------------------------------------------------------------- histogram


def test_length_histogram_counts_all_documents_and_marks_max_len():
    lengths = np.array([1, 5, 5, 100, 3000, 5000])
    fig = figures.length_histogram(lengths, 2048)
    t = _trace(fig)
    assert int(_arr(t["y"]).sum()) == 6
    assert "2 longer than max length" in fig.layout.title.text
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert any(float(s.x0) == 2048 for s in lines)
    assert len(lines) == 4  # three percentiles + max length


def test_length_histogram_payload_is_independent_of_corpus_size():
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.lognormal(np.log(300), 1.0, 1_000_000), 1, 32768).astype(np.int64)
    fig = figures.length_histogram(lengths, 2048)
    assert figures.figure_bytes(fig) < 100_000
    assert int(_arr(_trace(fig)["y"]).sum()) == 1_000_000


def test_length_histogram_empty():
    fig = figures.length_histogram(np.array([], dtype=np.int64), 128)
    assert fig.layout.title.text == "No documents"


def test_token_preview_escapes_html():
    out = figures.token_preview_html(["<script>", "a b", "\n"])
    assert "<script>" not in out
    assert "&lt;script&gt;" in out
    assert out.count("<span") == 3


# ---------------------------------------------------------------- row heatmap


def test_row_heatmap_exact_hover_fields():
    doc = np.array([[3, 3, 8, -1], [8, 8, 8, 8]])
    pos = np.array([[0, 1, 0, 0], [5, 6, 7, 8]])
    toks = [["a", "<b>", "c", ""], ["d", "e", "f", "g"]]
    fig = figures.row_heatmap(doc, row_index=np.array([10, 11]), position_ids=pos, tokens=toks)
    t = _trace(fig)
    assert [int(v) for v in _arr(t["y"])] == [10, 11]
    assert _arr(t["customdata"]).tolist() == doc.tolist()
    assert t["text"][0][1] == "position 1<br>token &lt;b&gt;"
    assert t["text"][0][3] == "padding"
    assert t["text"][1][3] == "position 8<br>token g"
    for field in ("row %{y}", "slot %{x}", "document %{customdata}", "%{text}"):
        assert field in t["hovertemplate"]
    z = _arr(t["z"])
    assert z[0, 3] == 0  # padding has its own colour class
    assert (z[0, :3] > 0).all()
    assert z[0, 0] == z[0, 1] and z[0, 1] != z[0, 2]  # neighbouring pieces differ


@given(st.lists(st.integers(min_value=-1, max_value=50), min_size=2, max_size=60))
@settings(max_examples=200, deadline=None)
def test_row_heatmap_colours_padding_and_neighbours(values):
    doc = np.array([values])
    z = rows._colour_classes(doc)
    assert ((z == 0) == (doc < 0)).all()
    change = (doc[0, 1:] != doc[0, :-1]) & (doc[0, 1:] >= 0) & (doc[0, :-1] >= 0)
    same_piece = (doc[0, 1:] == doc[0, :-1]) & (doc[0, 1:] >= 0)
    assert (z[0, 1:][same_piece] == z[0, :-1][same_piece]).all()
    assert (z[0, 1:][change] != z[0, :-1][change]).all()  # neighbouring pieces differ


def test_row_heatmap_pools_large_windows_under_2mb():
    n, length = 64, 32768
    doc = np.repeat(np.arange(n * 16), length // 16).reshape(n, length)
    doc[:, -100:] = -1
    toks = None
    fig = figures.row_heatmap(doc, row_index=np.arange(1000, 1000 + n), tokens=toks)
    t = _trace(fig)
    z = _arr(t["z"])
    assert z.shape[0] == n and z.size <= 32_768
    factor = t["dx"]
    assert factor == -(-n * length // 32_768)
    cd = _arr(t["customdata"])
    assert cd[0, 0, 0] == 0 and cd[0, -1, 1] > 0  # first document, padding count
    assert figures.figure_bytes(fig) < 2 * MB


def test_row_heatmap_with_tokens_stays_under_2mb():
    n, length = 16, 2048
    doc = np.repeat(np.arange(n * 4), length // 4).reshape(n, length)
    pos = np.tile(np.arange(length // 4), 4 * n).reshape(n, length)
    toks = [["'<&>\"\n\tlong-token-text"] * length for _ in range(n)]
    fig = figures.row_heatmap(doc[:8], position_ids=pos[:8], tokens=toks[:8])
    assert "text" in _trace(fig)  # 8 × 2048 cells: exact, with tokens
    assert figures.figure_bytes(fig) < 2 * MB
    fig = figures.row_heatmap(doc, position_ids=pos, tokens=toks)
    assert _trace(fig)["dx"] == 2  # 16 rows with tokens: pooled by 2
    assert figures.figure_bytes(fig) < 2 * MB


# ---------------------------------------------------------------- overview


def test_overview_heatmap_of_a_million_pieces_is_small():
    rng = np.random.default_rng(0)
    n_rows, max_len = 150_000, 2048
    per_row = 7
    row = np.repeat(np.arange(n_rows), per_row)
    length = rng.integers(1, max_len // per_row, row.size)
    off = np.cumsum(length) - length
    first = np.r_[0, np.flatnonzero(np.diff(row)) + 1]
    off = off - np.repeat(off[first], per_row)
    fig = figures.overview_heatmap(row, off, length, n_rows, max_len, window=(0, 16))
    assert figures.figure_bytes(fig) < 2 * MB
    z = _arr(_trace(fig)["z"])
    assert z.shape == (-(-n_rows // -(-n_rows // 256)), 256)
    assert 0 < z.mean() < 100


# ---------------------------------------------------------------- masks


def test_mask_figure_marks_every_piece_start():
    d = np.array([0, 0, 0, 5, 5, -1, -1, 7])
    fig = figures.mask_figure(d, max_marks=100)
    assert list(fig.layout.xaxis.tickvals) == [0, 3, 7]
    assert list(fig.layout.xaxis.ticktext) == ["d0", "d5", "d7"]
    causal = _arr(_trace(fig, 0)["z"])
    document = _arr(_trace(fig, 1)["z"])
    cross = _arr(_trace(fig, 2)["z"])
    assert causal.tolist() == np.tril(np.ones((8, 8), int)).tolist()
    assert (cross == causal - document).all()  # red: what the document mask blocks
    assert document[5].tolist() == [0] * 5 + [1, 0, 0]  # padding attends to itself only


def test_mask_figure_bounded_for_long_rows():
    length = 32768
    d = np.repeat(np.arange(64), length // 64)
    fig = figures.mask_figure(d, max_size=256)
    assert len(fig.data) == 3
    z = _arr(_trace(fig)["z"])
    assert z.shape == (256, 256)
    assert figures.figure_bytes(fig) < 2 * MB
    ticks = fig.layout.xaxis.ticktext
    assert len(ticks) == 40 and ticks[0] == "d0" and ticks[-1] == "d63"


def test_block_figure_sparsity_and_pooling():
    nq = 512
    full = np.eye(nq, dtype=bool)
    partial = np.zeros((nq, nq), bool)
    fig = figures.block_figure(full, partial, block_size=128)
    causal = nq * (nq + 1) // 2
    expected = 1 - nq / causal
    assert f"{expected:.1%}" in fig.layout.title.text
    z = _arr(_trace(fig)["z"])
    assert z.shape == (256, 256)
    assert z[0, 0] == 2 and z[1, 0] == 0
    assert figures.figure_bytes(fig) < 2 * MB


# ---------------------------------------------------------------- compare


def _stats(strategy, max_len, eff, rows, lost):
    return {
        "strategy": strategy,
        "max_len": max_len,
        "efficiency": eff,
        "n_rows": rows,
        "lower_bound_rows": 10,
        "lost_tokens": lost,
    }


def test_strategy_bars_values():
    stats = [_stats("best_fit", 512, 0.98, 10, 0), _stats("padded", 512, 0.4, 25, 0)]
    fig = figures.strategy_bars(stats)
    rows, eff = fig.data
    assert list(rows.x) == ["best_fit", "padded"]
    assert list(rows.y) == [10, 25]
    assert list(eff.text) == ["98.0%", "40.0%"]
    assert any("lower bound 10" in a.text for a in fig.layout.annotations)


def test_sweep_figure_one_curve_per_strategy_and_metric():
    stats = [
        _stats(s, m, 0.5, 100 // m, 0 if s != "padded" else m)
        for s in ("best_fit", "padded")
        for m in (1024, 256, 512)
    ]
    fig = figures.sweep_figure(stats)
    assert len(fig.data) == 6
    best_eff = fig.data[0]
    assert best_eff.name == "best_fit" and list(best_eff.x) == [256, 512, 1024]
    padded_lost = [t for t in fig.data if t.name == "padded"][2]
    assert list(padded_lost.y) == [256, 512, 1024]
    assert sum(t.showlegend for t in fig.data) == 2
