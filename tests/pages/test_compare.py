"""The Compare view: every strategy's numbers are the library's, the sweep shows what
varies around the current max length, and slow work waits for a click on Run."""

from __future__ import annotations

import pytest
from apptest import (
    app,
    buttons,
    download_labels,
    errors,
    figures,
    metrics,
    number,
    plotly_array,
    records_ids,
    synthetic,
)
from apptest import synthetic_lengths as lengths

import packviz as pv
from dashboard import jobs


def test_compare_matches_library():
    at = synthetic(max_len=1024).run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    expected = {s.strategy: s for s in pv.compare_strategies(lengths(), 1024)}
    trade = {x: pv.evaluate(lengths(), 1024, strategy=x) for x in pv.STRATEGIES}
    bars = figures(at)[0]["data"]
    assert bars[0]["x"] == list(pv.STRATEGIES)
    assert plotly_array(bars[0]["y"]).tolist() == [expected[s].n_rows for s in pv.STRATEGIES]
    assert plotly_array(bars[2]["y"]).tolist() == pytest.approx(
        [trade[s].fragmented_share for s in pv.STRATEGIES]
    )
    m = metrics(at)
    assert number(m["Rows"]) == expected["best_fit"].n_rows
    assert m["Attention / token"] == f"{trade['best_fit'].attention_per_token:,.0f}"
    table = at.dataframe[0].value.set_index("Strategy")
    assert table.loc["wrapped", "Split docs"] == trade["wrapped"].split_docs
    assert table.loc["padded", "Over bound"] == expected["padded"].rows_over_lower_bound
    assert "Download CSV" in download_labels(at)
    assert "Download sweep CSV" in download_labels(at)


def test_metric_deltas_read_the_right_way():
    at = synthetic(max_len=1024).run()
    at.switch_page("pages/compare.py").run()
    by = {m.label: m for m in at.metric}
    lost = by["Lost tokens"].proto
    assert lost.delta == "same as padding"  # no arrow for an equal value
    rows = by["Rows"].proto
    assert rows.delta.startswith("-") and rows.delta.endswith("vs padding")
    attention = by["Attention / token"].proto
    assert attention.delta.startswith("-") and attention.delta.endswith("vs causal")


def test_wrapped_shows_what_it_costs():
    at = synthetic(max_len=2048).run()
    at.switch_page("pages/compare.py").run()
    w = pv.evaluate(lengths(), 2048, strategy="wrapped")
    shown = [i.value for i in at.info if i.value.startswith("**wrapped** uses the fewest rows")]
    assert shown and f"cuts {w.split_docs:,} documents" in shown[0]
    assert f"{w.fragmented_share:.1%} of the tokens" in shown[0]


@pytest.mark.parametrize("max_len", [2048, 131072])
def test_sweep_follows_the_current_max_length_and_marks_it(max_len):
    at = synthetic(max_len=max_len).run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception and not errors(at)
    sweep = figures(at)[1]
    expected = pv.default_max_lens(max_len)
    assert expected[-1] >= max_len
    assert sweep["layout"]["xaxis"]["ticktext"] == [
        f"{v // 1024}k" if v >= 1024 else str(v) for v in expected
    ]
    marks = [s for s in sweep["layout"]["shapes"] if s["type"] == "line"]
    assert marks and all(s["x0"] == max_len for s in marks)
    best = [t for t in sweep["data"] if t["name"] == "best_fit"]
    assert len(best) == 5  # rows, efficiency, split, fragmented, attention (split: no lost)
    splits = {p.max_len: p.split_docs for p in pv.sweep(lengths(), expected)}
    assert plotly_array(best[2]["y"]).tolist() == [splits[m] for m in expected]
    assert plotly_array(best[2]["customdata"]).tolist() == expected


def test_slow_work_waits_for_run_then_runs_in_a_worker(monkeypatch):
    monkeypatch.setattr(jobs, "AUTO_SECONDS", 0.0)  # every computation counts as slow
    at = synthetic(max_len=1024).run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception and not errors(at)
    assert not figures(at)
    run = [b for b in at.button if b.label.startswith("Run (about ")]
    assert run, [b.label for b in at.button]
    run[0].click().run()
    assert not at.exception and not errors(at), errors(at)
    assert figures(at)[0]["data"][0]["x"] == list(pv.STRATEGIES)
    expected = {s.strategy: s.n_rows for s in pv.compare_strategies(lengths(), 1024)}
    assert number(metrics(at)["Rows"]) == expected["best_fit"]
    # the sweep is offered separately, under its own button
    assert "Run the sweep" in " ".join(buttons(at))


def test_huge_unsorted_corpus_is_offered_not_computed():
    """1M documents with sort random: first_fit takes seconds; the page says how long and
    waits for a click instead of blocking."""
    at = synthetic(n=1_000_000, sort="random", strategy="first_fit").run()
    at.switch_page("pages/packing.py").run()
    assert not at.exception and not errors(at)
    labels = [b.label for b in at.button]
    assert [x for x in labels if x.startswith("Pack (about ")], labels
    assert not metrics(at)


def test_sweep_points_too_big_to_plan_are_named(monkeypatch):
    from dashboard import cached

    monkeypatch.setattr(cached, "PLAN_BYTES_LIMIT", 2_000_000)  # max length 512: ~0.8 MB
    at = synthetic(max_len=512).run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception and not errors(at)
    left = [c.value for c in at.caption if c.value.startswith("Left out:")]
    assert left == ["Left out: max length 32, 64, 128 (too many pieces to plan here)."]


def test_fine_tuning_compare_and_sweep_count_trained_targets():
    at = app(builtin_name="python-docs-qa", max_len=256, overflow="truncate").run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception and not errors(at)
    _, ids = records_ids("python-docs-qa", "completion")
    expected = pv.compare_strategies(ids.lengths, 256, overflow="truncate", token_ids=ids)
    table = at.dataframe[0].value.set_index("Strategy")
    assert [int(table.loc[s.strategy, "Trained targets"]) for s in expected] == [
        s.trained_targets for s in expected
    ]
    assert expected[0].trained_targets < pv.compare_strategies(ids.lengths, 256)[0].trained_targets
    sweep = at.dataframe[1].value
    max_lens = sorted(set(sweep["max_len"]))
    lib = pv.sweep(ids.lengths, max_lens, overflow="truncate", token_ids=ids)
    got = {
        (int(m), x): int(t) for m, x, t in sweep[["max_len", "strategy", "trained_targets"]].values
    }
    assert got == {(s.max_len, s.strategy): s.trained_targets for s in lib}
