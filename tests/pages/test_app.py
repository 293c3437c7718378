"""app.py and the shared sidebar: every page renders routed and alone, settings are kept
across pages, bad max lengths are an error box, a million documents stay small."""

from __future__ import annotations

import pytest
from apptest import (
    MB,
    PAGES,
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
