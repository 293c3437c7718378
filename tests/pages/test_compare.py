"""The Compare view: every strategy's numbers are the library's, and slow online
strategies are left out of huge unsorted corpora with a warning that says why."""

from __future__ import annotations

from apptest import SYNTH_N, errors, figures, metrics, number, plotly_array, synthetic
from apptest import synthetic_lengths as lengths

import packviz as pv
from dashboard import cached


def test_compare_matches_library():
    at = synthetic(max_len=1024).run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    expected = {s.strategy: s for s in pv.compare_strategies(lengths(), 1024)}
    bars = figures(at)[0]["data"][0]
    assert bars["x"] == list(pv.STRATEGIES)
    assert plotly_array(bars["y"]).tolist() == [expected[s].n_rows for s in pv.STRATEGIES]
    assert number(metrics(at)["Rows"]) == expected["best_fit"].n_rows
    assert len(figures(at)) == 2  # bars + sweep (small corpus: automatic)
    assert len(figures(at)[1]["data"]) == 15  # 5 strategies × efficiency, rows, lost


def test_compare_attention_saved_is_the_library_value():
    at = synthetic(max_len=1024).run()
    at.switch_page("pages/compare.py").run()
    expected = {s.strategy: s for s in pv.compare_strategies(lengths(), 1024)}
    metric = [m for m in at.metric if m.label == "Attention work saved"][0]
    assert metric.value == f"{expected['best_fit'].attention_saved:.1%}"
    assert f"{expected['padded'].attention_saved:.1%}" in metric.proto.delta


def test_compare_leaves_out_slow_online_strategies_on_huge_unsorted_corpora(monkeypatch):
    at = synthetic(sort="none", strategy="first_fit").run()
    monkeypatch.setattr(cached, "COMPARE_ONLINE_LIMIT", SYNTH_N - 1)  # a "huge" corpus
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert not errors(at)
    warnings = [w.value for w in at.warning]
    assert [w for w in warnings if "`next_fit` and `first_fit`" in w and "**desc**" in w]
    bars, sweep = figures(at)
    assert bars["data"][0]["x"] == ["best_fit", "wrapped", "padded"]
    assert {t["name"] for t in sweep["data"]} == {"best_fit", "wrapped", "padded"}
    assert at.subheader[0].value == "Padding vs packing (best_fit)"

    at.sidebar.selectbox(key="sort").set_value("desc").run()  # desc: every strategy
    assert not at.exception and not at.warning
    assert figures(at)[0]["data"][0]["x"] == list(pv.STRATEGIES)
