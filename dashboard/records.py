"""Fine-tuning records in the dashboard: which corpora hold them, the kinds they hold, the
"Train on" choices those kinds allow, the chat template, and the work that encodes them.

Why a module of its own: a records corpus differs from a corpus of documents in three
ways only — its text is *rendered* (a chat template turns ``messages`` into text), its
token ids carry per-token ``trained`` flags (`pv.encode_records`), and the flags depend
on one more setting, **Train on**. Everything else (the tokenizer, the budgets, the
plans) is the same, so `dashboard.corpus` keeps the flow and asks this module for these
three things.

Why the choices are the kinds'. `pv.encode_records` refuses a ``train_on`` a record does
not fit (``"completion"`` on a chat is an error, not a guess), so the sidebar offers only
the values every record kind in the corpus allows, and starts on what SFT trainers
train by default (assistant turns for chats, completions for prompt/completion).

Example:
    >>> train_on_choices({"chat": 79})
    ('all', 'assistant', 'last_assistant')
    >>> natural_train_on({"prompt_completion": 3}), train_on_choices({"chat": 2, "text": 1})
    ('completion', ('all',))
    >>> kinds_text({"chat": 79, "text": 1})
    '79 chats, 1 text record'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

import packviz as pv
from packviz.files import RECORD_SUFFIXES, Record

if TYPE_CHECKING:
    from dashboard.corpus import UploadedFile

#: What each ``train_on`` value is called in the dashboard.
TRAIN_ON_LABELS: dict[str, str] = {
    "all": "all tokens",
    "completion": "completions",
    "assistant": "assistant turns",
    "last_assistant": "last assistant turn",
}
#: The ``train_on`` values each record kind allows (`pv.encode_records` refuses the rest).
FITS: dict[str, tuple[str, ...]] = {
    "chat": ("all", "assistant", "last_assistant"),
    "prompt_completion": ("all", "completion"),
    "text": ("all",),
}
#: What **Train on** starts on for a corpus of one kind (what SFT trainers do by default).
NATURAL: dict[str, str] = {"chat": "assistant", "prompt_completion": "completion"}
_KIND_NAMES = {
    "chat": ("chat", "chats"),
    "prompt_completion": ("prompt/completion record", "prompt/completion records"),
    "text": ("text record", "text records"),
    None: ("unrecognised record", "unrecognised records"),
}
#: Where the chat template comes from.
TEMPLATE_SOURCES = ("Built-in ChatML", "Upload tokenizer_config.json")
#: Seconds per rendered character of `pv.encode_records` (rendering, tokenizing with
#: offsets, flags) on a 2-core machine shared with other work, rounded up: 8.2M
#: characters of chats took 8.3 s.
ENCODE_SECONDS_PER_CHAR = 1.2e-6

_TEMPLATE = "uploads.template"


def train_on_choices(kinds: Mapping[str | None, int] | None) -> tuple[str, ...]:
    """The ``train_on`` values every record kind present allows, in `pv.TRAIN_ON` order
    (only ``"all"`` for documents, ``kinds=None``)."""
    if not kinds:
        return ("all",)
    allowed = set(pv.TRAIN_ON)
    for kind in kinds:
        allowed &= set(FITS.get(kind, ("all",)))
    return tuple(t for t in pv.TRAIN_ON if t in allowed)


def natural_train_on(kinds: Mapping[str | None, int] | None) -> str:
    """What **Train on** starts on: the trained part of the corpus' one kind, else all."""
    choices = train_on_choices(kinds)
    if kinds and len(kinds) == 1:
        want = NATURAL.get(next(iter(kinds)))
        if want in choices:
            return want
    return "all"


def effective_train_on(kept: str | None, kinds: Mapping[str | None, int] | None) -> str:
    """The kept choice when the corpus allows it, else the natural one (the kept choice
    stays kept, and applies again on a corpus that allows it)."""
    return kept if kept in train_on_choices(kinds) else natural_train_on(kinds)


def kinds_text(kinds: Mapping[str | None, int]) -> str:
    """'79 chats, 1 text record' (kinds in `pv.RECORD_KINDS` order)."""
    order = [*pv.RECORD_KINDS, None]
    parts = []
    for kind in sorted(kinds, key=order.index):
        n = kinds[kind]
        parts.append(f"{n:,} {_KIND_NAMES[kind][n != 1]}")
    return ", ".join(parts)


def count_kinds(records: Sequence) -> dict[str | None, int]:
    """How many records of each kind (`pv.record_kind`; None: none of them)."""
    fields = (r.fields if isinstance(r, Record) else r for r in records)
    return dict(Counter(pv.record_kind(f) for f in fields))


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class RecordSet:
    """A corpus of fine-tuning records, before rendering: the records (dicts, or
    `packviz.files.Record` s named by file and line) and how many of each kind."""

    records: list
    kinds: dict[str | None, int]


@st.cache_data(max_entries=4, show_spinner=False)
def builtin(name: str) -> RecordSet:
    """A built-in records corpus (`pv.BUILTIN_RECORDS`)."""
    records = pv.load_builtin_records(name)
    return RecordSet(records, count_kinds(records))


def _is_finetuning(kinds: Mapping) -> bool:
    return any(k in ("chat", "prompt_completion") for k in kinds)


@st.cache_data(max_entries=4, show_spinner=False)
def uploaded(key: str, split: str, _files) -> RecordSet | None:
    """The uploads as records when any record file holds chats or prompt/completion
    records, else None (the uploads are documents). Text files then join as ``text``
    records, one per document as **Documents are** splits them; records that are
    neither kind stay, and `pv.encode_records` names them."""
    read: list[tuple[str, bytes, list | None]] = []
    for name, data in _files:
        if Path(name).suffix.lower() in RECORD_SUFFIXES:
            read.append((name, data, pv.read_records(name, data)))
        else:
            read.append((name, data, None))
    if not any(r is not None and _is_finetuning(count_kinds(r)) for _, _, r in read):
        return None
    records: list = []
    for name, data, recs in read:
        if recs is None:
            docs = pv.read_documents(name, data, split=split)
            recs = [Record(f"{name} document {i}", {"text": d}) for i, d in enumerate(docs, 1)]
        records.extend(recs)
    return RecordSet(records, count_kinds(records))


@st.cache_data(max_entries=4, show_spinner=False)
def rendered_texts(key: str, _records, _template) -> list[str]:
    """Each record's whole text (``train_on="all"``): the documents the pages show, and
    what the byte-level BPE is trained on."""
    return [r.text for r in pv.render_records(_records, train_on="all", chat_template=_template)]


# ----------------------------------------------------------------------------- template


def store_template_upload() -> None:
    """on_change of the tokenizer_config.json uploader: keep the file across pages."""
    from dashboard.corpus import UploadedFile, digest  # here: dashboard.corpus imports us

    f = st.session_state.get("template_file")
    data = None if f is None else f.getvalue()
    st.session_state[_TEMPLATE] = None if f is None else UploadedFile(f.name, data, digest(data))


def remove_template_upload() -> None:
    st.session_state[_TEMPLATE] = None


def uploaded_template() -> UploadedFile | None:
    return st.session_state.get(_TEMPLATE)


@st.cache_data(max_entries=4, show_spinner=False)
def _loaded_template(digest: str, _data: bytes) -> pv.ChatTemplate:
    return pv.load_chat_template(_data)


@dataclass(frozen=True)
class Template:
    """The chat template in use: None for the built-in ChatML; a key for caches; a name
    for people and the export's metadata; the special tokens a trained BPE gets."""

    template: pv.ChatTemplate | None
    key: str
    name: str
    special_tokens: tuple[str, ...]


BUILTIN_TEMPLATE = Template(None, "chatml", "built-in ChatML", pv.CHATML_SPECIAL_TOKENS)


def template(source: str) -> Template:
    """The template for ``source`` (one of `TEMPLATE_SOURCES`); ValueError (an error box)
    when an upload is asked for and missing or unusable."""
    if source != TEMPLATE_SOURCES[1]:
        return BUILTIN_TEMPLATE
    upload = uploaded_template()
    if upload is None:
        raise ValueError(
            "Upload a tokenizer_config.json with a chat_template on the **Corpus** page, or "
            "choose **Built-in ChatML**"
        )
    loaded = _loaded_template(upload.digest, upload.data)
    specials = tuple(dict.fromkeys(v for v in loaded.special_tokens.values() if v))
    return Template(loaded, "config:" + upload.digest, f"chat template of {upload.name}", specials)


# ----------------------------------------------------------------------------- encoding


def encode_seconds(texts: Sequence[str]) -> float:
    """Predicted seconds of `pv.encode_records` on these rendered texts."""
    return ENCODE_SECONDS_PER_CHAR * sum(map(len, texts))
