"""The Packing view: statistics are the library's for every setting, the row window
shows exactly the rows asked for, with decoded tokens when there is text."""

from __future__ import annotations

import numpy as np
from apptest import (
    WORDLEVEL_PAD_0,
    app,
    captions,
    errors,
    figures,
    metrics,
    number,
    plotly_array,
    synthetic,
    synthetic_lengths,
)

import packviz as pv


def test_packing_numbers_follow_max_len_and_strategy():
    lengths = synthetic_lengths()
    at = synthetic().run()
    at.switch_page("pages/packing.py").run()
    expected = pv.pack(lengths, 2048).stats()
    m = metrics(at)
    assert number(m["Rows"]) == expected.n_rows
    assert number(m["Lower bound"]) == expected.lower_bound_rows
    assert m["Efficiency"] == f"{expected.efficiency:.2%}"

    at.sidebar.number_input(key="max_len").set_value(512).run()
    expected = pv.pack(lengths, 512).stats()
    m = metrics(at)
    assert number(m["Rows"]) == expected.n_rows
    assert number(m["Split documents"]) == expected.split_docs > 0
    lower = [x for x in at.metric if x.label == "Lower bound"][0]
    assert f"({expected.lower_bound_gap:.2%})" in lower.proto.delta

    at.sidebar.selectbox(key="strategy").set_value("padded").run()
    padded = pv.pack(lengths, 512, strategy="padded").stats()
    m = metrics(at)
    assert number(m["Rows"]) == padded.n_rows > expected.n_rows
    assert number(m["Padding tokens"]) == padded.padding_tokens

    at.sidebar.selectbox(key="overflow").set_value("truncate").run()
    truncated = pv.pack(lengths, 512, strategy="padded", overflow="truncate").stats()
    assert number(metrics(at)["Lost tokens"]) == truncated.lost_tokens > 0


def test_row_window_and_heatmaps():
    at = synthetic().run()
    at.switch_page("pages/packing.py").run()
    figs = figures(at)
    assert [f["data"][0]["type"] for f in figs] == ["heatmap", "heatmap"]
    assert "document %{customdata}" in figs[0]["data"][0]["hovertemplate"]
    at.number_input(key="first_row").set_value(5).run()
    trace = figures(at)[0]["data"][0]
    assert plotly_array(trace["y"]).tolist() == list(range(5, 13))
    rows = pv.materialize(pv.pack(synthetic_lengths(), 2048), None, pad_id=0, rows=np.arange(5, 13))
    assert plotly_array(trace["customdata"]).tolist() == rows.doc_ids.tolist()
    assert "Showing rows 5–12" in " ".join(captions(at))


def test_builtin_row_heatmap_hover_has_decoded_tokens():
    at = app(max_len=256).run()
    at.switch_page("pages/packing.py").run()
    assert not at.exception
    trace = figures(at)[0]["data"][0]
    assert "%{text}" in trace["hovertemplate"]
    real = [t for row in trace["text"] for t in row if t != "padding"]
    assert real and all(t.startswith("position ") and "<br>token " in t for t in real)


def test_mask_row_window_is_not_reused_without_token_ids():
    """Masks materializes a row without ids (pad 0); Packing must not get it for hover."""
    at = app(tokenizer_source="Upload tokenizer.json", mask_row=0, first_row=0, window_rows=1)
    at.run()
    at.file_uploader(key="tokenizer_file").upload(
        "tokenizer.json", WORDLEVEL_PAD_0, "application/json"
    ).run()
    assert not at.exception and not errors(at)
    at.switch_page("pages/masks.py").run()
    assert not at.exception, at.exception
    at.switch_page("pages/packing.py").run()
    assert not at.exception, at.exception
    trace = figures(at)[0]["data"][0]
    assert plotly_array(trace["y"]).tolist() == [0]
    assert any(t.startswith("position 0<br>token ") for t in trace["text"][0])
