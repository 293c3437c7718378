"""Shared links: any query string opens a page without a traceback, the URL shows the
settings as the run leaves them, and every value a widget can hold comes back."""

from __future__ import annotations

import numpy as np
from apptest import PAGES, app, errors, synthetic
from apptest import synthetic_lengths as lengths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import packviz as pv
from dashboard import state, url


def _text_of(values) -> st.SearchStrategy[str]:
    return st.sampled_from([str(v) for v in values])


# values near and inside what each setting accepts; heavy but valid corpora (millions of
# synthetic documents, the standard-library source) are left out to keep a run short
_VALUES = {
    "max_len": _text_of([0, 1, 7, 64, 512, 2048, 8192, 131072, 131073, 1 << 20]),
    "strategy": _text_of(pv.STRATEGIES),
    "sort": _text_of(pv.SORTS),
    "overflow": _text_of(pv.OVERFLOWS),
    "seed": _text_of([0, 7, state.MAX_SEED, state.MAX_SEED + 1]),
    "corpus_source": _text_of(["Built-in", "Synthetic", "Upload"]),
    "builtin_name": _text_of(["python-docs", *pv.BUILTIN_RECORDS]),
    "split": _text_of(pv.SPLITS),
    "text_field": st.text(max_size=12),
    "synth_n": st.integers(1, 3000).map(str),
    "synth_median": _text_of([1, 300, 1 << 20]),
    "synth_sigma": _text_of([0, 0.5, 4]),
    "synth_distribution": _text_of(pv.DISTRIBUTIONS),
    "tokenizer_source": _text_of(["Train byte-level BPE", "Upload tokenizer.json"]),
    "vocab_size": _text_of([512, 4096]),
    "row_pick": _text_of(pv.ROW_PICKS),
    "window_rows": _text_of([0, 1, 64, 65]),
    "first_row": _text_of([0, 5, 2**40]),
    "mask_row": _text_of([0, 5, 2**40]),
    "preset": _text_of(pv.PRESETS),
    "weights": st.lists(
        st.tuples(st.sampled_from(pv.CRITERIA), _text_of([0, 0.5, 100, 101])), max_size=3
    ).map(lambda kv: ",".join(f"{k}:{v}" for k, v in kv)),
    "rank_sorts": st.lists(st.sampled_from(pv.SORTS), max_size=5).map(",".join),
    "batch_rows": _text_of([0, 1, 4096]),
    "story_doc": _text_of([0, 3, 2**40]),
    "export_format": _text_of(pv.FORMATS),
    "pin": _text_of(["1024,best_fit,desc,split,0", "8,padded,random,drop,3", "1,x"]),
    "train_on": _text_of(pv.TRAIN_ON),
    "template_source": _text_of(["Built-in ChatML", "Upload tokenizer_config.json"]),
}
_QUERY = st.fixed_dictionaries(
    {},
    optional={
        name: st.one_of(values, st.text(max_size=16)) if name != "synth_n" else values
        for name, values in _VALUES.items()
    },
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(_QUERY, st.sampled_from(PAGES))
def test_any_link_opens_without_a_traceback(query, page):
    if query.get("corpus_source") == "Synthetic" and "synth_n" not in query:
        query["synth_n"] = "2000"  # the default 100,000 documents: valid, but slow here
    at = app()
    for name, text in query.items():
        at.query_params[name] = text
    at.run()
    assert not at.exception, (query, at.exception)
    at.switch_page(page).run()
    assert not at.exception, (query, page, at.exception)


def test_a_link_with_some_weights_keeps_the_presets_for_the_rest():
    """``?weights=compute:1`` (a shared link) used to end in KeyError 'padding'."""
    at = synthetic()
    at.query_params["weights"] = "compute:1"
    at.query_params["preset"] = "fine-tuning"
    at.run()
    at.switch_page("pages/recommend.py").run()
    assert not at.exception and not errors(at)
    weights = {**pv.preset_weights("fine-tuning"), "compute": 1.0}
    assert {n: at.number_input(key=f"w_{n}").value for n in pv.CRITERIA} == weights
    max_lens = sorted(set(pv.default_max_lens(2048)) | set(pv.covering_max_lens(lengths())))
    best = pv.recommend(lengths(), max_lens=max_lens, weights=weights).best
    assert f"Use max length {best.max_len:,} · {best.strategy}" in at.success[0].value


def test_the_url_shows_a_row_the_page_chose():
    """Masks opens on the row with the most pieces, set after the settings were written:
    the URL has it after that same run (it used to lag a run behind)."""
    at = synthetic(max_len=1024).run()
    at.switch_page("pages/masks.py").run()
    assert not at.exception and not errors(at)
    row = int(np.argmax(pv.pack(lengths(), 1024).pieces_per_row))
    assert row > 0 and at.query_params["mask_row"] == str(row)


def test_the_url_shows_the_document_a_search_found():
    at = app(max_len=256).run()
    at.switch_page("pages/document.py").run()
    at.text_input(key="story_query").input("Special method names").run()
    assert not at.exception and not errors(at)
    docs = pv.load_builtin("python-docs")
    first = int(pv.find_documents(docs, "Special method names", limit=20)[0])
    assert at.number_input(key="story_doc").value == first
    assert at.query_params["story_doc"] == str(first)


def test_the_seed_widget_holds_what_a_link_can_carry():
    at = app().run()
    seed = at.sidebar.number_input(key="seed")
    assert (seed.min, seed.max) == (0, state.MAX_SEED)
    assert url.parse({"seed": str(int(seed.max))}) == ({"seed": state.MAX_SEED}, [])
