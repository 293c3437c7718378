"""dashboard.url: every URL value is checked as a widget would check it."""

from __future__ import annotations

import pytest

from dashboard import url


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
