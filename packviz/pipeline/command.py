"""The ``packviz pack`` command line for given settings, ready to copy into a shell.

The dashboard settles the settings on a sample; the full corpus is then packed from a
shell or a scheduler. This renders the one command that does it with the same settings:
the packing settings always (so the command reads on its own), everything else only when
it differs from the command's default, every argument quoted for a POSIX shell.

Example:
    >>> print(pack_command(["my corpus/*.jsonl"], max_len=4096, train_vocab=32000))
    packviz pack 'my corpus/*.jsonl' --out packed --max-len 4096 --strategy best_fit --sort desc --overflow split --train-vocab 32000
    >>> print(pack_command(["sft.jsonl"], tokenizer="tok.json", train_on="completion"))
    packviz pack sft.jsonl --out packed --max-len 2048 --strategy best_fit --sort desc --overflow split --tokenizer tok.json --train-on completion
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from packviz.choices import (
    FORMATS,
    OVERFLOWS,
    SORTS,
    SPLITS,
    STRATEGIES,
    TRAIN_ON,
    Format,
    Overflow,
    Sort,
    Split,
    Strategy,
    TrainOn,
    check_choice,
)
from packviz.limits import check_int, check_max_len
from packviz.pipeline.inputs import check_paths, input_specs
from packviz.pipeline.records import check_settings


def pack_command(
    inputs: Sequence[str],
    *,
    out: str = "packed",
    max_len: int = 2048,
    strategy: Strategy = "best_fit",
    sort: Sort = "desc",
    overflow: Overflow = "split",
    seed: int = 0,
    tokenizer: str | None = None,
    train_vocab: int | None = None,
    text_field: str = "text",
    split: Split = "paragraph",
    format: Format = "parquet",  # noqa: A002 - the command line's name
    train_on: TrainOn | None = None,
    chat_template: str | None = None,
) -> str:
    """``packviz pack INPUT... --out OUT ...`` with these settings (see `pack_corpus`).

    Globs in ``inputs`` are quoted: packviz expands them itself, in sorted order.
    """
    inputs = input_specs(inputs)
    if not inputs:
        raise ValueError("inputs must be a non-empty list of files, folders or globs")
    check_paths(out, tokenizer=tokenizer, chat_template=chat_template, text_field=text_field)
    check_settings(train_on, tokenizer, train_vocab, chat_template)
    seed = check_int("seed", seed, least=0)
    if train_vocab is not None:
        train_vocab = check_int("train_vocab", train_vocab, least=1)
    args = ["packviz", "pack", *map(str, inputs), "--out", str(out)]
    args += ["--max-len", str(check_max_len(max_len))]
    args += ["--strategy", check_choice("strategy", strategy, STRATEGIES)]
    args += ["--sort", check_choice("sort", sort, SORTS)]
    args += ["--overflow", check_choice("overflow", overflow, OVERFLOWS)]
    if sort == "random" or seed != 0:
        args += ["--seed", str(seed)]
    if tokenizer is not None:
        args += ["--tokenizer", str(tokenizer)]
    elif train_vocab is not None:
        args += ["--train-vocab", str(train_vocab)]
    if text_field != "text":
        args += ["--text-field", text_field]
    if check_choice("split", split, SPLITS) != "paragraph":
        args += ["--split", split]
    if check_choice("format", format, FORMATS) != "parquet":
        args += ["--format", format]
    if train_on is not None:
        args += ["--train-on", check_choice("train_on", train_on, TRAIN_ON)]
    if chat_template is not None:
        args += ["--chat-template", str(chat_template)]
    return " ".join(shlex.quote(a) for a in args)
