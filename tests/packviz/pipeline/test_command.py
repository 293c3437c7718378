"""`pack_command`: a command line that the command itself parses back to the same
settings, quoted for a shell."""

from __future__ import annotations

import shlex

import pytest

import packviz as pv
from packviz.cli import build_parser


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"max_len": 8192, "strategy": "first_fit", "sort": "asc", "overflow": "truncate"},
        {"sort": "random", "seed": 11, "tokenizer": "my tok.json", "format": "npz"},
        {"train_vocab": 32000, "text_field": "content", "split": "line", "out": "/data/p q"},
    ],
)
def test_the_command_parses_back_to_its_settings(settings):
    command = pv.pack_command(["data/*.jsonl", "more files/"], **settings)
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert args.inputs == ["data/*.jsonl", "more files/"]
    defaults = {"out": "packed", "max_len": 2048, "strategy": "best_fit", "sort": "desc",
                "overflow": "split", "seed": 0, "tokenizer": None, "train_vocab": None,
                "text_field": "text", "split": "paragraph", "format": "parquet"}  # fmt: skip
    for name, value in {**defaults, **settings}.items():
        assert getattr(args, name) == value, name
    assert "'data/*.jsonl'" in command  # quoted: packviz expands globs itself


def test_bad_settings_are_refused_like_everywhere_else():
    with pytest.raises(ValueError, match="unknown strategy 'bfd'; choose one of"):
        pv.pack_command(["x"], strategy="bfd")
    assert pv.pack_command("x.jsonl") == pv.pack_command(["x.jsonl"])  # as pack_corpus
    with pytest.raises(ValueError, match="inputs must be a non-empty list"):
        pv.pack_command([])
    with pytest.raises(TypeError, match="an input must be a path or name"):
        pv.pack_command([3])


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"train_on": "completion"}, "needs the model's tokenizer: give --tokenizer"),
        (
            {"train_on": "completion", "tokenizer": "t.json", "train_vocab": 8000},
            "not --train-vocab",
        ),
        ({"chat_template": "x.jinja", "tokenizer": "t.json"}, "give --train-on too"),
    ],
)
def test_a_command_packviz_pack_would_refuse_is_not_written(kwargs, says):
    """The combinations `pack_corpus` refuses, refused by the same check and words."""
    with pytest.raises(ValueError, match=says):
        pv.pack_command(["sft.jsonl"], **kwargs)
    with pytest.raises(ValueError, match=says):
        pv.pack_corpus(["sft.jsonl"], "out", workers=1, **kwargs)
