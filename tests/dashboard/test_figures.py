"""dashboard.figures: real values, hover content and payload bounds (no Streamlit)."""

from __future__ import annotations

import json

import numpy as np
from apptest import plotly_array as _arr
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard import figures
from dashboard.figures import rows
from dashboard.figures import rows as rows_module
from dashboard.figures._style import PALETTE

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
    assert len(ticks) == 16 and ticks[0] == "d0"  # at most 16 labels, never crowded
    vals = list(fig.layout.xaxis.tickvals)
    assert min(b - a for a, b in zip(vals, vals[1:], strict=False)) >= length / 16


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


KEYS = (
    "n_rows",
    "efficiency",
    "split_docs",
    "fragmented_share",
    "attention_per_token",
    "lost_tokens",
)


def _point(strategy, max_len, **values):
    return {
        "strategy": strategy,
        "max_len": max_len,
        "lower_bound_rows": 10,
        **dict.fromkeys(KEYS, 0),
        **values,
    }


def test_strategy_bars_values():
    stats = [
        _point("best_fit", 512, efficiency=0.98, n_rows=10),
        _point("wrapped", 512, efficiency=0.99, n_rows=10, fragmented_share=0.25),
    ]
    fig = figures.strategy_bars(stats)
    rows, eff, frag = fig.data
    assert list(rows.x) == ["best_fit", "wrapped"]
    assert list(rows.y) == [10, 10]
    assert list(rows.text) == ["10", "10"]
    assert list(eff.text) == ["98.0%", "99.0%"]
    assert list(frag.y) == [0.0, 0.25]  # what wrapped pays for its rows
    # the lower bound is named in the panel title, not printed over the bar labels
    assert fig.layout.annotations[0].text == "rows (dashed: lower bound 10)"
    assert len(fig.layout.annotations) == 3


def test_sweep_figure_one_curve_per_strategy_and_panel():
    stats = [
        _point(s, m, n_rows=100 // m + 1, lost_tokens=0 if s != "padded" else m)
        for s in ("best_fit", "padded")
        for m in (1024, 256, 512)
    ]
    fig = figures.sweep_figure(stats, current=512)
    assert len(fig.data) == 12  # 2 strategies × 6 panels (lost tokens shown)
    best_rows = fig.data[0]
    assert best_rows.name == "best_fit" and list(best_rows.customdata) == [256, 512, 1024]
    padded_lost = [t for t in fig.data if t.name == "padded"][5]
    assert list(padded_lost.y) == [256, 512, 1024]
    assert sum(t.showlegend for t in fig.data) == 2
    assert list(fig.layout.xaxis.ticktext) == ["256", "512", "1k"]
    marks = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(marks) == 6 and all(s.x0 == 512 for s in marks)
    # coinciding strategies are drawn side by side, never on top of each other
    padded_rows = [t for t in fig.data if t.name == "padded"][0]
    assert all(a != b for a, b in zip(best_rows.x, padded_rows.x, strict=True))


def test_sweep_all_zero_panel_runs_from_zero():
    stats = [_point("best_fit", m, n_rows=4) for m in (256, 512)]
    fig = figures.sweep_figure(stats)
    assert list(fig.layout.yaxis6.range) == [0, 1]  # lost tokens: not -1 … 1


# ---------------------------------------------------------------- histogram on a log axis


def test_histogram_annotations_sit_in_log10_units_inside_the_axis():
    lengths = np.array([3, 5, 8, 40, 90, 250])
    fig = figures.length_histogram(lengths, 16)
    lo, hi = fig.layout.xaxis.range
    assert lo <= np.log10(3) and hi >= np.log10(251) and hi < 3
    xs = [a.x for a in fig.layout.annotations]
    assert all(lo <= x <= hi for x in xs)
    assert np.log10(16) in xs  # the max length label, at its log10 position
    assert [s.x0 for s in fig.layout.shapes if s.line.color == "#d62728"] == [16]  # data units


# ---------------------------------------------------------------- row colours


def test_touching_pieces_never_share_a_colour_across_rows():
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(12):
        lengths = rng.integers(1, 9, 20)
        row = np.repeat(np.arange(lengths.size) + 100 * len(rows), lengths)[:64]
        rows.append(np.pad(row, (0, 64 - row.size), constant_values=-1))
    doc = np.array(rows)
    z = rows_module._colour_classes(doc)
    assert ((z == 0) == (doc < 0)).all()
    side = (doc[:, 1:] != doc[:, :-1]) & (doc[:, 1:] >= 0) & (doc[:, :-1] >= 0)
    assert (z[:, 1:][side] != z[:, :-1][side]).all()
    below = (doc[1:] >= 0) & (doc[:-1] >= 0)
    assert (z[1:][below] != z[:-1][below]).all()  # the row above: different pieces


def test_row_heatmap_labels_and_highlight():
    doc = np.array([[0] * 31 + [1] + [-1] * 4, [2] * 36])
    fig = figures.row_heatmap(doc, row_index=np.array([4, 9]))
    labels = fig.data[1]
    assert labels.mode == "text" and set(labels.text) == {"d0", "d2"}  # d1 is too narrow
    fig = figures.row_heatmap(doc, highlight=2)
    z = _arr(_trace(fig)["z"])
    assert (z[1] == 3).all() and (z[0, :32] < 3).all() and (z[0, 32:] == 0).all()


def test_overview_marks_the_rows_shown():
    fig = figures.overview_heatmap(
        np.array([0, 1, 2]), np.zeros(3, int), np.array([3, 2, 1]), 3, 4, marked=np.array([0, 2])
    )
    assert list(fig.data[1].y) == ["0", "2"]


# ---------------------------------------------------------------- deciding views


def test_score_bars_stack_the_weighted_penalties():
    table = [
        {
            "max_len": 2048,
            "strategy": "best_fit",
            "sort": "desc",
            "penalty_compute": 0.0,
            "penalty_fragmented": 2.0,
        },
        {
            "max_len": 512,
            "strategy": "wrapped",
            "sort": "asc",
            "penalty_compute": 4.0,
            "penalty_fragmented": 10.0,
        },
    ]
    fig = figures.score_bars(table, {"compute": 1.0, "fragmented": 0.5, "lost": 0.0})
    assert [t.name for t in fig.data] == ["compute", "fragmented"]  # weight 0: left out
    assert list(fig.data[1].x) == [1.0, 5.0]
    assert list(fig.data[0].y) == ["1. 2k · best_fit · desc", "2. 512 · wrapped · asc"]


def test_loss_share_figure():
    fig = figures.loss_share_figure({"a": np.full(10, 0.1), "b": np.linspace(0, 0.2, 10)})
    assert [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[0].x)[-1] == "10th"


def test_every_chart_has_a_png_button():
    cfg = figures.png_config("packviz-sweep")
    assert cfg["toImageButtonOptions"] == {"format": "png", "filename": "packviz-sweep", "scale": 2}


# ---------------------------------------------------------------- trained tokens


def test_row_heatmap_dims_untrained_tokens_and_says_what_each_slot_is():
    doc = np.array([[0, 0, 0, 1, 1, -1]])
    trained = np.array([[False, True, True, True, True, False]])
    labels = np.array([[-100, 5, 6, -100, 8, -100]])
    fig = figures.row_heatmap(doc, trained=trained, labels=labels)
    z = _arr(_trace(fig)["z"])[0]
    k = len(PALETTE)
    assert z[0] == z[1] + k and z[1] == z[2] and z[5] == 0  # untrained: the washed-out shade
    assert 0 < z[3] <= k and z[3] == z[4]
    text = fig.data[0].text[0]
    assert text[0].endswith("not trained") and text[2].endswith("trained · target")
    assert text[3].endswith("trained · no target (first of its piece)")
    assert text[5] == "padding"
    plain = figures.row_heatmap(doc)  # without flags: no washed-out shades
    assert _arr(_trace(plain)["z"]).max() <= k


def test_row_heatmap_pooled_cells_count_trained_slots():
    doc = np.zeros((2, 4096), np.int64)
    trained = np.zeros((2, 4096), bool)
    trained[0, :3000] = True  # row 0 mostly trained, row 1 not at all
    fig = figures.row_heatmap(doc, trained=trained, max_cells=1024)
    t = _trace(fig)
    factor = int(t["dx"])
    custom = _arr(t["customdata"])
    assert custom.shape[-1] == 4
    assert int(custom[0, :, 3].sum()) == 3000 and int(custom[1, :, 3].sum()) == 0
    z = _arr(t["z"])
    k = len(PALETTE)
    assert (z[0, : 3000 // factor] <= k).all() and (z[1] > k).all()
    assert "trained slots" in t["hovertemplate"]


def test_overview_trained_column_is_the_share_of_slots_trained():
    import packviz as pv

    ids = pv.TokenIds.from_sequences(
        [[1] * 5, [2] * 3, [3] * 4],
        trained=[np.arange(5) > 0, np.zeros(3, bool), np.ones(4, bool)],
    )
    plan = pv.pack(ids.lengths, 8)
    fill = pv.trained_row_fill(plan, ids)
    fig = figures.overview_heatmap(
        plan.row, plan.offset, plan.length, plan.n_rows, 8, trained_fill=fill
    )
    share = _arr(_trace(fig, len(fig.data) - 1)["z"]).ravel()
    assert share.tolist() == np.round(100 * fill / 8).astype(int).tolist()
    assert "% of slots trained" in fig.layout.title.text


def test_mask_figure_marks_the_trained_runs_on_both_axes():
    d = np.array([0] * 6 + [1] * 6 + [-1] * 4)
    trained = np.zeros(16, bool)
    trained[[2, 3, 4, 9, 10]] = True
    fig = figures.mask_figure(d, trained=trained)
    bars = [t for t in fig.data if t.type == "scatter" and t.mode == "lines"]
    assert len(bars) == 6  # along the top and the left of each of the three panels
    top, left = bars[0], bars[1]
    assert list(top.x) == [1.5, 4.5, None, 8.5, 10.5, None]
    assert list(left.y) == list(top.x) and len(set(x for x in top.y if x is not None)) == 1
    assert top.text[0] == "trained tokens: slots 2–4"
    assert fig.layout.xaxis.range[0] < -0.5  # room for the bars inside the axes
    pooled = figures.mask_figure(np.zeros(1024, int), trained=np.arange(1024) < 300, max_size=64)
    bar = [t for t in pooled.data if t.type == "scatter"][0]
    assert bar.text[0] == "trained tokens: slots 0–303"  # any trained slot marks its 16-slot cell


def test_token_preview_marks_trained_tokens():
    html = figures.token_preview_html(["Q", ":", " A"], trained=[False, False, True])
    assert html.count("· not trained") == 2 and html.count("· trained") == 1
    assert figures.corpus.TRAINED_SHADES[0] in html


def test_sft_length_histogram_counts_every_example():
    prompt = np.array([0, 10, 20, 400])
    completion = np.array([5, 50, 60, 70])
    fig = figures.sft_length_histogram(prompt, completion, completion_label="assistant turns")
    counts = [int(_arr(_trace(fig, i)["y"]).sum()) for i in range(2)]
    assert counts == [3, 4]
    assert fig.data[1].name == "assistant turns (trained)"
    assert "1 examples without untrained tokens" in fig.layout.title.text
