"""The Packing view: statistics are the library's for every setting, the rows shown are
the ones asked for (spread over the plan by default, not rows 0–7), and A/B shows both
settings side by side."""

from __future__ import annotations

import numpy as np
from apptest import (
    WORDLEVEL_PAD_0,
    app,
    buttons,
    captions,
    errors,
    figures,
    metrics,
    number,
    plotly_array,
    records_ids,
    synthetic,
    synthetic_lengths,
    train_on,
)

import packviz as pv
from dashboard.figures._style import PALETTE


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
    plan = pv.pack(lengths, 512)
    expected = plan.stats()
    m = metrics(at)
    assert number(m["Rows"]) == expected.n_rows
    assert number(m["Split documents"]) == expected.split_docs > 0
    lower = [x for x in at.metric if x.label == "Lower bound"][0]
    assert f"({expected.lower_bound_gap:.2%})" in lower.proto.delta
    t = pv.tradeoffs(plan)
    assert m["Tokens that lose context"] == f"{t.fragmented_share:.2%}"
    assert m["Attention pairs per token"] == f"{t.attention_per_token:,.0f}"

    at.sidebar.selectbox(key="strategy").set_value("padded").run()
    padded = pv.pack(lengths, 512, strategy="padded").stats()
    m = metrics(at)
    assert number(m["Rows"]) == padded.n_rows > expected.n_rows
    assert number(m["Padding tokens"]) == padded.padding_tokens

    at.sidebar.selectbox(key="overflow").set_value("truncate").run()
    truncated = pv.pack(lengths, 512, strategy="padded", overflow="truncate").stats()
    assert number(metrics(at)["Lost tokens"]) == truncated.lost_tokens > 0


def _rows_shown(at) -> list[int]:
    return plotly_array(figures(at)[0]["data"][0]["y"]).tolist()


def test_rows_open_spread_over_the_plan_not_on_rows_0_to_7():
    plan = pv.pack(synthetic_lengths(), 2048)
    at = synthetic().run()
    at.switch_page("pages/packing.py").run()
    assert _rows_shown(at) == pv.pick_rows(plan, 8).tolist()
    assert _rows_shown(at)[-1] == plan.n_rows - 1
    trace = figures(at)[0]["data"][0]
    rows = pv.materialize(plan, None, pad_id=0, rows=pv.pick_rows(plan, 8))
    assert plotly_array(trace["customdata"]).tolist() == rows.doc_ids.tolist()
    labels = figures(at)[0]["data"][1]  # d<doc> on every wide piece
    assert labels["mode"] == "text" and all(t.startswith("d") for t in labels["text"])

    at.selectbox(key="row_pick").set_value("most_pieces").run()
    assert _rows_shown(at) == pv.pick_rows(plan, 8, how="most_pieces").tolist()
    at.selectbox(key="row_pick").set_value("first").run()
    at.number_input(key="first_row").set_value(5).run()
    assert _rows_shown(at) == list(range(5, 13))
    assert "Showing 8 of" in " ".join(captions(at))


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
    at = app(
        tokenizer_source="Upload tokenizer.json",
        mask_row=0,
        row_pick="first",
        first_row=0,
        window_rows=1,
    )
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


def test_a_b_pins_the_settings_and_shows_both():
    lengths = synthetic_lengths()
    at = synthetic(max_len=1024).run()
    at.switch_page("pages/packing.py").run()
    buttons(at)["Pin as A"].click().run()
    assert not at.exception
    assert [i for i in at.info if "A and B are the same" in i.value]
    assert at.query_params["pin"] == "1024,best_fit,desc,split,0"  # shareable
    at.sidebar.selectbox(key="strategy").set_value("next_fit").run()
    at.sidebar.number_input(key="max_len").set_value(512).run()
    assert not at.exception and not errors(at)
    table = at.dataframe[0].value
    a, b = pv.pack(lengths, 1024).stats(), pv.pack(lengths, 512, strategy="next_fit").stats()
    row = table.set_index("")
    assert row.loc["rows", "A"] == f"{a.n_rows:,}" and row.loc["rows", "B"] == f"{b.n_rows:,}"
    assert row.loc["rows", "B − A"] == f"{b.n_rows - a.n_rows:+,}"
    titles = [f["layout"]["title"]["text"] for f in figures(at)]
    assert f"A: {a.n_rows:,} rows" in titles and f"B: {b.n_rows:,} rows" in titles
    shown = " ".join(c.value for c in at.caption)
    assert "**A**: 1,024 · best_fit" in shown and "**B**: 512 · next_fit" in shown
    buttons(at)["Unpin A"].click().run()
    assert not [f for f in figures(at) if f["layout"]["title"]["text"].startswith("A: ")]


def test_fine_tuning_numbers_rows_and_overview_follow_train_on():
    """On the built-in chats, each Train on choice gives the library's SFT numbers and
    warnings, dims exactly the untrained slots, and the overview counts trained slots."""
    at = app(builtin_name="python-docs-chat", max_len=512, overflow="truncate").run()
    at.switch_page("pages/packing.py").run()
    k = len(PALETTE)
    for choice in ("assistant", "last_assistant"):
        train_on(at, choice)
        assert not at.exception and not errors(at)
        _, ids = records_ids("python-docs-chat", choice)
        plan = pv.pack(ids.lengths, 512, overflow="truncate")
        sft = pv.sft_stats(plan, ids, warn=False)
        m = metrics(at)
        assert number(m["Trained tokens"]) == sft.trained_tokens
        assert number(m["Trained targets"]) == sft.trained_targets
        assert sft.trained_targets == plan.stats(ids).trained_targets
        assert m["Target efficiency"] == f"{sft.target_efficiency:.2%}"
        assert number(m["Examples that train nothing"]) == sft.lost_completions
        shown = [w.value for w in at.warning]
        assert shown == [w[0].upper() + w[1:] + "." for w in sft.warnings()]
        hist, heat, overview = figures(at)[:3]
        assert [int(plotly_array(t["y"]).sum()) for t in hist["data"]] == [
            int((sft.prompt_lengths > 0).sum()),
            int((sft.completion_lengths > 0).sum()),
        ]
        trace = heat["data"][0]
        rows = plotly_array(trace["y"]).astype(np.int64)
        doc = plotly_array(trace["customdata"])
        trained = pv.trained_slots(plan, ids, rows=rows)
        assert np.array_equal(plotly_array(trace["z"]) > k, (doc >= 0) & ~trained)
        text = trace["text"]
        labels = pv.materialize(plan, ids, pad_id=1, rows=rows).labels
        r, c = np.argwhere(labels >= 0)[0]
        assert text[r][c].endswith("trained · target")
        fill = pv.trained_row_fill(plan, ids)
        share = plotly_array(overview["data"][-1]["z"]).ravel()
        assert share.tolist() == np.round(100 * fill / 512).astype(int).tolist()
    assert number(metrics(at)["Examples that train nothing"]) > 0  # last turns cut away


def test_documents_have_no_fine_tuning_panel():
    at = synthetic().run()
    at.switch_page("pages/packing.py").run()
    assert "Trained tokens" not in metrics(at)
    assert len(figures(at)[1]["data"]) <= 2  # overview: no trained column
