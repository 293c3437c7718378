"""app.py and the shared sidebar: every page renders routed and alone, settings are kept
across pages, bad max lengths are an error box, a million documents stay small."""

from __future__ import annotations

import pytest
from apptest import (
    MB,
    PAGES,
    SYNTH_N,
    app,
    errors,
    figures,
    metrics,
    number,
    payloads,
    synthetic,
    synthetic_lengths,
)

import packviz as pv


def test_app_opens_on_builtin_corpus():
    at = app().run()
    assert not at.exception
    assert at.title[0].value == "Corpus"
    m = metrics(at)
    assert number(m["Documents"]) > 10
    assert number(m["Tokens"]) > 1000
    assert [f["data"][0]["type"] for f in figures(at)] == ["bar"]  # the length histogram
    assert at.sidebar.number_input(key="max_len").value == 2048
    assert not errors(at)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_its_defaults_when_run_alone(page):
    """switch_page runs the file alone (no router): the page draws the same sidebar."""
    at = app().run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert not errors(at)
    sidebar = at.sidebar
    assert sidebar.number_input(key="max_len").value == 2048
    assert sidebar.selectbox(key="strategy").value == "best_fit"
    assert sidebar.selectbox(key="sort").value == "desc"
    assert sidebar.selectbox(key="overflow").value == "split"
    assert all(p < 2 * MB for p in payloads(at))


@pytest.mark.parametrize("page", PAGES[1:])
def test_every_page_renders_on_synthetic_corpus(page):
    at = synthetic().run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert not errors(at)


def test_settings_survive_page_changes():
    at = synthetic().run()
    at.sidebar.number_input(key="max_len").set_value(1024).run()
    at.sidebar.selectbox(key="strategy").set_value("first_fit").run()
    for page in PAGES[1:]:
        at.switch_page(page).run()
        assert not at.exception
        assert at.sidebar.number_input(key="max_len").value == 1024
        assert at.sidebar.selectbox(key="strategy").value == "first_fit"


def test_quick_pick_sets_max_len():
    at = synthetic().run()
    at.switch_page("pages/packing.py").run()
    at.sidebar.button_group(key="max_len_pick").set_value(4096).run()
    assert at.sidebar.number_input(key="max_len").value == 4096
    assert number(metrics(at)["Rows"]) == pv.pack(synthetic_lengths(), 4096).stats().n_rows


@pytest.mark.parametrize(
    ("bad", "says"),
    [(0, "Max length must be at least 1 token"), (1_000_000, "over the dashboard's limit")],
)
def test_bad_max_len_shows_error_not_traceback(bad, says):
    at = synthetic().run()
    at.switch_page("pages/packing.py").run()
    at.sidebar.number_input(key="max_len").set_value(bad).run()
    assert not at.exception
    assert [e for e in errors(at) if says in e]
    # the stopped run leaves the sidebar in place, and a good value recovers
    at.sidebar.number_input(key="max_len").set_value(512).run()
    assert not errors(at)
    assert number(metrics(at)["Rows"]) == pv.pack(synthetic_lengths(), 512).stats().n_rows


@pytest.mark.parametrize("page", ["pages/packing.py", "pages/compare.py"])
def test_million_document_pages_render_small_figures(page):
    """A million documents render, react to settings, and no figure exceeds 2 MB.
    (Re-render times are measured in benchmarks/bench_dashboard.py, not asserted here.)"""
    at = synthetic(n=1_000_000).run()
    at.switch_page(page).run()
    assert not at.exception
    at.sidebar.number_input(key="max_len").set_value(8192).run()
    at.sidebar.selectbox(key="strategy").set_value("first_fit").run()
    assert not at.exception and not errors(at)
    assert max(payloads(at)) < 2 * MB


@pytest.mark.parametrize(
    "page", [p for p in PAGES if p not in ("pages/corpus.py", "pages/recommend.py")]
)
def test_max_len_one_on_the_default_synthetic_corpus_is_an_error_box(page):
    """~49M pieces: every page that plans says so before allocating, with the numbers and
    the smallest max length that fits, instead of dying in a MemoryError."""
    at = app(corpus_source="Synthetic", max_len=1).run()  # the default 100,000 documents
    at.switch_page(page).run()
    assert not at.exception, at.exception
    shown = errors(at)
    assert shown, page
    lengths = pv.synthetic_lengths(100_000, median=300, sigma=1.0, seed=0)
    assert f"into {int(lengths.sum()):,} pieces" in shown[0]
    assert "Set **Max length** to " in shown[0]
    fit = int(shown[0].split("Set **Max length** to ")[1].split(" ")[0].replace(",", ""))
    at.sidebar.number_input(key="max_len").set_value(fit).run()
    assert not at.exception and not [e for e in errors(at) if "pieces: planning" in e]


def test_recommend_at_max_len_one_offers_to_rank_the_lengths_around_it():
    """Recommend does not plan the current settings: it ranks max lengths 16 … 1,024,
    millions of pieces each, so it offers the ranking with its predicted time."""
    at = app(corpus_source="Synthetic", max_len=1).run()
    at.switch_page("pages/recommend.py").run()
    assert not at.exception and not errors(at)
    assert [b for b in at.button if b.label.startswith("Rank (about ")]


def test_settings_go_to_the_url_and_come_back_from_it():
    at = synthetic(max_len=512, strategy="first_fit").run()
    at.switch_page("pages/packing.py").run()
    qp = dict(at.query_params)
    assert qp["max_len"] == "512" and qp["strategy"] == "first_fit"
    assert qp["corpus_source"] == "Synthetic" and qp["synth_n"] == str(SYNTH_N)
    assert "sort" not in qp  # defaults stay out of the link
    # a new session opened on that link has the same settings
    fresh = app()
    for k, v in qp.items():
        fresh.query_params[k] = v
    fresh.run()
    fresh.switch_page("pages/packing.py").run()
    assert not fresh.exception and not errors(fresh)
    assert fresh.sidebar.number_input(key="max_len").value == 512
    assert fresh.sidebar.selectbox(key="strategy").value == "first_fit"
    lengths = synthetic_lengths()
    expected = pv.pack(lengths, 512, strategy="first_fit").stats()
    assert number(metrics(fresh)["Rows"]) == expected.n_rows


def test_bad_url_values_are_named_and_ignored():
    at = app()
    at.query_params["max_len"] = "lots"
    at.query_params["strategy"] = "magic"
    at.query_params["sort"] = "asc"
    at.run()
    assert not at.exception
    warned = [w.value for w in at.warning if w.value.startswith("Ignored in the link")]
    assert warned and "`max_len=lots` (not valid)" in warned[0]
    assert "`strategy=magic` (choose one of next_fit" in warned[0]
    assert at.sidebar.number_input(key="max_len").value == 2048
    assert at.sidebar.selectbox(key="sort").value == "asc"  # the good one is taken
