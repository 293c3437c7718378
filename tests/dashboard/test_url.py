"""dashboard.url: every URL value is checked as a widget would check it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import packviz as pv
from dashboard import state, url


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("max_len", "512", 512),
        ("strategy", "wrapped", "wrapped"),
        ("synth_sigma", "1.5", 1.5),
        ("vocab_size", "8192", 8192),
        ("pin", "1024,best_fit,desc,split,0", (1024, "best_fit", "desc", "split", 0)),
        ("weights", "compute:1,lost:2.5", {"compute": 1.0, "lost": 2.5}),
        ("rank_sorts", "desc,random", ["desc", "random"]),
        ("preset", "long context", "long context"),
        ("train_on", "last_assistant", "last_assistant"),
        ("builtin_name", "python-docs-chat", "python-docs-chat"),
        ("template_source", "Upload tokenizer_config.json", "Upload tokenizer_config.json"),
    ],
)
def test_good_values_round_trip(name, text, value):
    assert url.PARSERS[name](text) == value
    assert url._text(name, value) == text


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("max_len", "-3", "must be between 0 and 1,048,576"),
        ("strategy", "magic", "choose one of next_fit"),
        ("synth_n", "100000000", "must be between 1 and 20,000,000"),
        ("vocab_size", "1000", "choose one of 512"),
        ("weights", "speed:1", "choose one of compute"),
        ("pin", "1024,best_fit,desc,split,0,extra", "too many values"),
        ("train_on", "prompts", "choose one of all, completion, assistant, last_assistant"),
    ],
)
def test_bad_values_raise_a_message(name, text, says):
    with pytest.raises(ValueError, match=says):
        url.PARSERS[name](text)


# every text a query string can carry, and texts near what the parsers accept
_NEAR = st.sampled_from(
    ["", ",", ":", "0", "-1", "1e9", "nan", "inf", "2048", "4294967296", "１２", "desc,desc"]
)
_TEXTS = st.one_of(st.text(max_size=40), _NEAR)


@given(st.dictionaries(st.sampled_from([*url.PARSERS, "utm_source"]), _TEXTS))
def test_any_query_string_parses_without_raising(params):
    values, bad = url.parse(params)
    assert set(values) | {b.split("=")[0].strip("`") for b in bad} == set(params) & set(url.PARSERS)
    for name, value in values.items():  # what is kept writes back to the same value
        assert url.parse({name: url._text(name, value)}) == ({name: value}, [])


def test_partial_weights_and_repeated_sorts_parse():
    values, bad = url.parse({"weights": "compute:1", "rank_sorts": "desc,random,desc"})
    assert values == {"weights": {"compute": 1.0}, "rank_sorts": ["desc", "random"]} and not bad


def test_seed_widget_and_link_agree():
    """The URL takes every seed the Seed widget can hold, and no other."""
    assert url.parse({"seed": str(state.MAX_SEED)})[0] == {"seed": state.MAX_SEED}
    _, bad = url.parse({"seed": str(state.MAX_SEED + 1)})
    assert bad == [f"`seed={state.MAX_SEED + 1}` (must be between 0 and {state.MAX_SEED:,})"]


_VALID = {
    "weights": st.dictionaries(st.sampled_from(pv.CRITERIA), st.floats(0, 100), min_size=1),
    "synth_sigma": st.floats(0, 4),
    "rank_sorts": st.lists(st.sampled_from(pv.SORTS), min_size=1, unique=True),
    "seed": st.integers(0, state.MAX_SEED),
    "pin": st.tuples(
        st.integers(1, state.DASHBOARD_MAX_LEN),
        st.sampled_from(pv.STRATEGIES),
        st.sampled_from(pv.SORTS),
        st.sampled_from(pv.OVERFLOWS),
        st.integers(0, state.MAX_SEED),
    ),
}


@given(st.sampled_from(list(_VALID)).flatmap(lambda n: st.tuples(st.just(n), _VALID[n])))
def test_every_value_a_widget_can_hold_comes_back_from_its_link(name_value):
    name, value = name_value
    assert url.parse({name: url._text(name, value)}) == ({name: value}, [])
