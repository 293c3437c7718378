"""The Recommend view: the ranking is the library's for the page's candidates and
weights, presets and edited weights change it, the reasons name what decided, and the
top choice can be applied in one click."""

from __future__ import annotations

from apptest import download_labels, errors, markdown, synthetic
from apptest import synthetic_lengths as lengths

import packviz as pv
from packviz.recommend import PREFERENCE


def candidate_max_lens(max_len):
    return sorted(set(pv.default_max_lens(max_len)) | set(pv.covering_max_lens(lengths())))


def ranking(max_len=2048, sorts=("desc",), weights=None, preset="pretraining"):
    return pv.recommend(
        lengths(),
        max_lens=candidate_max_lens(max_len),
        strategies=PREFERENCE,
        sorts=sorts,
        weights=weights or pv.preset_weights(preset),
    )


def test_ranking_is_the_librarys():
    at = synthetic().run()
    at.switch_page("pages/recommend.py").run()
    assert not at.exception and not errors(at)
    r = ranking()
    best = r.best
    assert at.success[0].value == (
        f"**Use max length {best.max_len:,} · {best.strategy} · sort {best.sort}.**"
    )
    table = at.dataframe[0].value
    assert table["score"].round(6).tolist() == [round(float(x), 6) for x in r.score]
    assert table["candidate"].iloc[0] == (
        f"{best.max_len // 1024}k · {best.strategy} · {best.sort}"
        if best.max_len >= 1024
        else f"{best.max_len} · {best.strategy} · {best.sort}"
    )
    assert "Download CSV" in download_labels(at)
    other = r.runner_up()
    reason = pv.why(r, other=other)[0]
    assert pv.CRITERION_LABELS[reason.criterion] in markdown(at)


def test_presets_and_weights_change_the_ranking():
    at = synthetic().run()
    at.switch_page("pages/recommend.py").run()
    at.button_group(key="preset").set_value("long context").run()
    assert not at.exception
    best = ranking(preset="long context").best
    assert f"Use max length {best.max_len:,} · {best.strategy}" in at.success[0].value
    assert at.query_params["preset"] == "long context"
    at.number_input(key="w_mask_memory").set_value(50.0).run()  # memory above all
    weights = {**pv.preset_weights("long context"), "mask_memory": 50.0}
    best = ranking(weights=weights).best
    assert best.max_len == min(candidate_max_lens(2048))
    assert f"Use max length {best.max_len:,}" in at.success[0].value
    assert "mask_memory:50" in at.query_params["weights"]


def test_use_these_settings_applies_the_top_choice():
    at = synthetic(max_len=256, strategy="next_fit").run()
    at.switch_page("pages/recommend.py").run()
    best = ranking(max_len=256).best
    assert "Why it beats your current settings" in markdown(at)
    [b for b in at.button if b.label == "Use these settings"][0].click().run()
    assert not at.exception
    assert at.sidebar.number_input(key="max_len").value == best.max_len
    assert at.sidebar.selectbox(key="strategy").value == best.strategy


def test_sort_orders_to_try():
    at = synthetic(sort="random").run()
    at.switch_page("pages/recommend.py").run()
    assert at.multiselect(key="rank_sorts").value == ["desc", "random"]
    table = at.dataframe[0].value
    assert set(table["candidate"].str.split(" · ").str[2]) == {"desc", "random"}
