"""Fine-tuning records through ``packviz pack``: ``--train-on`` and ``--chat-template``.

With ``train_on`` every JSONL line, parquet row or CSV row is a fine-tuning record
(``prompt`` + ``completion``, ``messages``, or ``text``; see `packviz.records`), encoded
by the library's own `packviz.encode_records` — chats rendered by the chat template in
its sandboxed child process, one per worker, as the library does — so the token store
holds the ids *and* their trained flags, and the shards' labels are -100 wherever a
token is not trained. Nothing here renders or tokenizes by itself: this module only
carries the settings from the driver to the workers (`spec_entry`, `template`) and says
what the manifest records (`manifest_entry`: `packviz.rendering_settings`).

The chat template is ``--chat-template`` (a ``.jinja`` file or a ``tokenizer_config.json``,
`packviz.chat.load_chat_template`, or ``chatml`` for the built-in ChatML), else the
``tokenizer_config.json`` next to the tokenizer file when it has one, else the built-in
ChatML. Records need the model's
tokenizer (``--tokenizer``): a tokenizer trained on the corpus would not match a model.

Example:
    >>> entry = spec_entry("completion", None, None, add_eos=True)
    >>> entry["train_on"], entry["template"] is None
    ('completion', True)
    >>> identity_entry(entry)["template"]
    'the built-in ChatML template'
    >>> spec_entry("assistant", "chatml", "tok/tokenizer.json", add_eos=True)["template"] is None
    True
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from packviz.choices import TRAIN_ON, check_choice
from packviz.corpus import CorpusError

#: Parquet columns a fine-tuning record may have (`packviz.records.record_kind`).
RECORD_COLUMNS = ("messages", "prompt", "completion", "text")
#: ``--chat-template`` value that names the built-in ChatML template (so that a
#: ``tokenizer_config.json`` next to the tokenizer is not used).
CHATML = "chatml"
#: Kinds of input that hold records.
RECORD_KINDS = ("jsonl", "jsonl.gz", "parquet", "csv")


def spec_entry(train_on, chat_template, tokenizer: str | None, *, add_eos: bool) -> dict:
    """What workers need to encode records the same way: ``train_on``, the template
    (source, special tokens, name; None = the built-in ChatML) and ``add_eos``."""
    from packviz.chat import load_chat_template

    check_choice("train_on", train_on, TRAIN_ON)
    source = None if chat_template == CHATML else chat_template
    if chat_template is None and tokenizer is not None:
        config = Path(tokenizer).with_name("tokenizer_config.json")
        if config.is_file() and b'"chat_template"' in config.read_bytes():
            source = config
    template = None
    if source is not None:
        t = load_chat_template(os.fspath(Path(source).resolve()))
        template = {"source": t.source, "special_tokens": dict(t.special_tokens), "name": t.name}
    return {"train_on": train_on, "template": template, "add_eos": bool(add_eos)}


def template(entry: dict):
    """The `packviz.chat.ChatTemplate` of a spec entry (None: the built-in ChatML)."""
    from packviz.chat import ChatTemplate

    t = entry["template"]
    return None if t is None else ChatTemplate(t["source"], t["special_tokens"], t["name"])


def identity_entry(entry: dict) -> dict:
    """The rendering settings that make a job's identity (without the tokenizer, whose
    sha256 is there already)."""
    import packviz as pv

    return pv.rendering_settings(
        train_on=entry["train_on"], chat_template=template(entry), add_eos=entry["add_eos"]
    )


def manifest_entry(entry: dict, tok) -> dict:
    """`packviz.rendering_settings` of the job, with its tokenizer, for the manifest."""
    import packviz as pv

    return pv.rendering_settings(
        tok, train_on=entry["train_on"], chat_template=template(entry), add_eos=entry["add_eos"]
    )


def check_settings(train_on, tokenizer, train_vocab, chat_template) -> None:
    """Records need the model's tokenizer, and a chat template needs records: what
    ``packviz pack`` refuses, for `pack_corpus` and `pack_command` alike."""
    if chat_template is not None and train_on is None:
        raise ValueError("--chat-template renders fine-tuning records: give --train-on too")
    if train_on is not None and (tokenizer is None or train_vocab is not None):
        raise ValueError(
            "--train-on needs the model's tokenizer: give --tokenizer tokenizer.json "
            "(not --train-vocab: a tokenizer trained on the records would fit no model)"
        )


def check_inputs(files) -> None:
    """Records come from record files."""
    for f in files:
        if f.kind not in RECORD_KINDS:
            what = "pre-tokenized ids" if f.kind == "tokens" else "documents, not records"
            raise CorpusError(
                f"{f.path} holds {what}; --train-on reads fine-tuning records from "
                ".jsonl, .jsonl.gz, .parquet and .csv files"
            )


def encode(tok, entry: dict, records: list, path: str):
    """(ids, lengths, trained) of a batch of records (`packviz.encode_records`); trained
    is None for ``train_on="all"``."""
    import packviz as pv

    ids = pv.encode_records(
        tok,
        records,
        train_on=entry["train_on"],
        chat_template=template(entry),
        add_eos=entry["add_eos"],
    )
    return ids.values, np.asarray(ids.lengths, dtype=np.int64), ids.trained


def close_children() -> None:
    """Stop this process's idle template children (`packviz.encode_records` keeps one
    for the next call): none outlives the job."""
    from packviz import _template_process

    _template_process._close_all()
