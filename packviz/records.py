"""Fine-tuning records to token ids with per-token ``trained`` flags.

A record is a dict (or a `packviz.files.Record` read from a JSONL, CSV or Parquet file):

- ``{"prompt": ..., "completion": ...}``: the text is prompt + completion; with
  ``train_on="completion"`` the completion (and the end-of-text token after it) is trained;
- ``{"messages": [{"role", "content"}, ...]}`` (roles system, user, assistant; in CSV a
  JSON string): rendered by a chat template (`packviz.chat`); ``"assistant"`` trains
  every assistant turn, ``"last_assistant"`` only the last one;
- ``{"text": ...}``: plain text, for ``train_on="all"`` only.

``train_on="all"`` trains every token of any record (``trained`` is then None).

Why offsets. The whole text of a record is tokenized in one call and a token is trained
when its character offsets overlap a trained span (``start < span_end and span_start <
end``, the rule of transformers' ``return_assistant_tokens_mask``): a token that
straddles the prompt/completion boundary is trained, as with TRL's prefix rule, and no
piece is ever tokenized on its own (its merges could differ). Tokenization uses no
special-token post-processing (as `packviz.encode`); text that spells a special token
(``<|im_end|>`` inside a message) becomes that token, as in transformers.

Every problem is a `CorpusError` naming the record (``file line N`` for records read
from files, ``record i`` for dicts): a missing field, an unknown role, a template that
fails or reaches outside its sandbox, a trained part that cannot be found or renders to
no token. Nothing is skipped silently.

Example:
    >>> import packviz as pv
    >>> tok = pv.train_tokenizer(["What is 2+2? Four."], vocab_size=300, cache_dir=False)
    >>> ids = encode_records(tok, [{"prompt": "2+2?", "completion": " 4"}], train_on="completion")
    >>> pv.decode_tokens(tok, ids.values), ids.trained.tolist()
    (['2', '+', '2', '?', ' ', '4', '<|endoftext|>'], [False, False, False, False, True, True, True])
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from packviz.chat import (
    CHATML,
    DEFAULT_TODAY,
    END_OF_TURN_TOKENS,
    ChatTemplate,
    ChatTemplateError,
    _as_day,
    _Chat,
    _render_chats,
    check_messages,
)
from packviz.choices import TRAIN_ON, RecordKind, TrainOn, check_choice
from packviz.corpus import CorpusError
from packviz.files import Record, check_text
from packviz.limits import check_int
from packviz.ragged import TokenIds
from packviz.tokenize import (
    MAX_TOKEN_ID,
    TokenizerError,
    _backend,
    _first_line,
    eos_token_id,
)

_FITS: dict[RecordKind, tuple[TrainOn, ...]] = {
    "chat": ("all", "assistant", "last_assistant"),
    "prompt_completion": ("all", "completion"),
    "text": ("all",),
}


@dataclass(frozen=True)
class RenderedRecord:
    """One record as text: where it came from, its kind, and the character spans
    ``(start, end)`` that are trained (the whole text for ``train_on="all"``)."""

    where: str
    kind: RecordKind
    text: str
    spans: tuple[tuple[int, int], ...]


def record_kind(fields: Mapping) -> RecordKind | None:
    """``"chat"`` (has ``messages``), ``"prompt_completion"`` (``prompt`` or
    ``completion``), ``"text"`` (``text``), or None.

    >>> record_kind({"prompt": "2+2?", "completion": " 4"})
    'prompt_completion'
    """
    if not isinstance(fields, Mapping):
        raise TypeError(f"a record is a dict of fields, got {type(fields).__name__}")
    if "messages" in fields:
        return "chat"
    if "prompt" in fields or "completion" in fields:
        return "prompt_completion"
    if "text" in fields:
        return "text"
    return None


def render_records(
    records: Sequence,
    *,
    train_on: TrainOn,
    chat_template: ChatTemplate | str | None = None,
    tokenizer=None,
    today: datetime.date | str = DEFAULT_TODAY,
) -> list[RenderedRecord]:
    """Each record's text and trained character spans (what `encode_records`
    tokenizes). ``tokenizer`` (optional here) supplies its own chat template, special
    tokens and end-of-turn tokens, as in `encode_records`."""
    check_choice("train_on", train_on, TRAIN_ON)
    template, end_of_turn = _template_for(tokenizer, chat_template)
    return _render_batch(_as_records(records), train_on, template, end_of_turn, _as_day(today))


def encode_records(
    tokenizer,
    records: Sequence,
    *,
    train_on: TrainOn,
    chat_template: ChatTemplate | str | None = None,
    add_eos: bool = True,
    batch_size: int = 1024,
    progress: Callable[[int, int], None] | None = None,
    today: datetime.date | str = DEFAULT_TODAY,
) -> TokenIds:
    """Token ids of every record, with ``trained`` flags (None for ``train_on="all"``).

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` or a transformers fast tokenizer.
        records: dicts or `packviz.files.Record` s (see the module docstring). Call it
            once per batch of a larger stream: each call is independent.
        train_on: ``"completion"`` (prompt/completion records), ``"assistant"`` or
            ``"last_assistant"`` (chat records), ``"all"`` (any record).
        chat_template: a Jinja source, a `packviz.chat.ChatTemplate` (e.g. from
            `packviz.chat.load_chat_template`), or None: the tokenizer's own template when
            it has one (a transformers tokenizer), else the built-in ChatML.
        add_eos: append the end-of-text token unless the record already ends with it
            (trained after a completion, untrained after a chat, whose template ends
            its turns itself).
        today: the day a template's ``strftime_now`` reports (a ``datetime.date`` or
            ``"YYYY-MM-DD"``): fixed, so the same records always give the same ids.
            Record it with the other settings (`rendering_settings`).
    """
    check_choice("train_on", train_on, TRAIN_ON)
    batch_size = check_int("batch_size", batch_size, least=1)
    template, end_of_turn = _template_for(tokenizer, chat_template)
    day = _as_day(today)
    backend = _backend(tokenizer)
    eos = eos_token_id(backend) if add_eos else None
    records = _as_records(records)
    ids: list[np.ndarray] = []
    flags: list[np.ndarray] = []
    for lo in range(0, len(records), batch_size):
        batch = _render_batch(records[lo : lo + batch_size], train_on, template, end_of_turn, day)
        for rec, (i, f) in zip(batch, _tokens(backend, batch, train_on), strict=True):
            if eos is not None and (i.size == 0 or i[-1] != eos):
                i = np.append(i, eos)
                f = np.append(f, rec.kind == "prompt_completion")
            ids.append(i)
            flags.append(f)
        if progress is not None:
            progress(min(lo + batch_size, len(records)), len(records))
    lengths = np.fromiter((a.size for a in ids), dtype=np.int64, count=len(ids))
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.concatenate(ids).astype(np.int32) if ids else np.zeros(0, np.int32)
    trained = None
    if train_on != "all":
        trained = np.concatenate(flags) if flags else np.zeros(0, bool)
    return TokenIds._adopt(values, offsets, trained)


def _as_records(records: object) -> list[Record]:
    if isinstance(records, (str, bytes, Mapping, Record)):
        raise TypeError("records must be a list of records (dicts); wrap one record in a list")
    try:
        items = list(records)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"records must be a list of dicts, got {type(records).__name__}") from None
    out = []
    for i, r in enumerate(items):
        if isinstance(r, Record):
            out.append(r)
        elif isinstance(r, Mapping):
            out.append(Record(f"record {i}", dict(r)))
        else:
            raise TypeError(f"record {i} is a {type(r).__name__}, not a dict")
    return out


def _template_for(tokenizer, chat_template) -> tuple[ChatTemplate, tuple[str, ...]]:
    """The template to render chats with, and the end-of-turn tokens the tokenizer has."""
    specials: dict[str, str] = {}
    own = None
    if tokenizer is not None:
        backend = _backend(tokenizer)
        eos = eos_token_id(backend)
        if eos is not None:
            specials["eos_token"] = backend.id_to_token(eos)
        mapping = getattr(tokenizer, "special_tokens_map", None)
        if isinstance(mapping, Mapping):
            specials.update({k: v for k, v in mapping.items() if isinstance(v, str)})
        own = getattr(tokenizer, "chat_template", None)
    if chat_template is None and isinstance(own, str) and own.strip():
        template = ChatTemplate(own, specials, "the tokenizer's chat template")
    elif chat_template is None:
        template = ChatTemplate(CHATML, specials, "the built-in ChatML template")
    elif isinstance(chat_template, str):
        template = ChatTemplate(chat_template, specials)
    elif isinstance(chat_template, ChatTemplate):
        template = ChatTemplate(
            chat_template.source, {**specials, **chat_template.special_tokens}, chat_template.name
        )
    else:
        raise ChatTemplateError(
            f"chat_template must be a template string or a ChatTemplate, got "
            f"{type(chat_template).__name__}"
        )
    candidates = (*END_OF_TURN_TOKENS, template.special_tokens.get("eos_token"))
    if tokenizer is None:
        return template, tuple(t for t in candidates if t)
    backend = _backend(tokenizer)
    known = tuple(t for t in candidates if t and backend.token_to_id(t) is not None)
    return template, known


def _field(record: Record, name: str) -> str:
    if name not in record.fields:
        keys = ", ".join(map(repr, list(record.fields)[:10])) or "none"
        raise CorpusError(f"{record.where} has no {name!r} (its fields: {keys})")
    if record.fields[name] is None:  # a null cell: an error like a missing field, not ""
        raise CorpusError(
            f"{record.where}: {name!r} is null; give it text (an empty string trains nothing "
            "and is refused too), or leave the record out"
        )
    value = record.fields[name]
    if not isinstance(value, str):
        raise CorpusError(f"{record.where}: {name!r} is {type(value).__name__}, not text")
    return check_text(value, record.where)


def rendering_settings(
    tokenizer=None,
    *,
    train_on: TrainOn,
    chat_template: ChatTemplate | str | None = None,
    add_eos: bool = True,
    today: datetime.date | str = DEFAULT_TODAY,
) -> dict:
    """What decides how records render, as JSON values for metadata or a manifest: the
    same arguments as `encode_records` give the same text, spans and flags (with the
    same tokenizer: record `packviz.tokenizer_fingerprint` beside it).

    >>> s = rendering_settings(train_on="assistant", today="2025-01-31")
    >>> s["template"], s["today"], s["template_sha256"][:12]
    ('the built-in ChatML template', '2025-01-31', '391bc0c861d9')
    """
    check_choice("train_on", train_on, TRAIN_ON)
    template, end_of_turn = _template_for(tokenizer, chat_template)
    return {
        "train_on": train_on,
        "template": template.name,
        "template_sha256": hashlib.sha256(template.source.encode()).hexdigest(),
        "special_tokens": dict(sorted(template.special_tokens.items())),
        "end_of_turn": list(end_of_turn),
        "add_eos": bool(add_eos),
        "today": _as_day(today).isoformat(),
    }


def _render_batch(records, train_on, template, end_of_turn, day) -> list[RenderedRecord]:
    """The records rendered (chats together, in one call to the template's process);
    the first bad record, in order, raises."""
    prepared: list = []
    problem = None
    for record in records:
        try:
            prepared.append(_prepare(record, train_on))
        except ValueError as exc:
            problem = exc  # raised after the chats before it, whose errors come first
            break
    chats = [p for p in prepared if isinstance(p, _Chat)]
    rendered = iter(_render_chats(chats, template, end_of_turn=end_of_turn, today=day))
    if problem is not None:
        raise problem
    out = []
    for p in prepared:
        if isinstance(p, _Chat):
            chat = next(rendered)
            spans = chat.spans if p.find_spans else ((0, len(chat.text)),)
            p = RenderedRecord(p.where, "chat", chat.text, spans)
        out.append(p)
    return out


def _prepare(record: Record, train_on: TrainOn) -> RenderedRecord | _Chat:
    """A record that needs no template rendered, or the chat to render (checked)."""
    where = record.where
    kind = record_kind(record.fields)
    if kind is None:
        keys = ", ".join(map(repr, list(record.fields)[:10])) or "none"
        raise CorpusError(
            f"{where} is not a fine-tuning record: it needs 'messages', or 'prompt' and "
            f"'completion', or 'text' (its fields: {keys})"
        )
    if train_on not in _FITS[kind]:
        fits = " or ".join(repr(t) for t in _FITS[kind])
        what = {
            "chat": "a chat (messages)",
            "prompt_completion": "a prompt/completion record",
            "text": "plain text: nothing in it says what to train",
        }[kind]
        raise CorpusError(f"{where} is {what}; train_on={train_on!r} does not apply: use {fits}")
    if kind == "text":
        text = _field(record, "text")
        return RenderedRecord(where, kind, text, ((0, len(text)),))
    if kind == "prompt_completion":
        prompt, completion = _field(record, "prompt"), _field(record, "completion")
        if not completion and train_on == "completion":
            raise CorpusError(f"{where}: the completion is empty, so nothing would be trained")
        text = prompt + completion
        start = 0 if train_on == "all" else len(prompt)
        return RenderedRecord(where, kind, text, ((start, len(text)),))
    messages = record.fields["messages"]
    if isinstance(messages, str):  # CSV holds nested values as JSON text
        try:
            messages = json.loads(messages)
        except (ValueError, RecursionError):
            raise CorpusError(f"{where}: 'messages' is text that is not JSON") from None
    messages = check_messages(messages, where)
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if train_on == "all":
        return _Chat(messages, where, find_spans=False)
    if not turns:
        raise CorpusError(f"{where} has no assistant turn, so nothing would be trained")
    for i in turns if train_on == "assistant" else turns[-1:]:
        if not messages[i]["content"]:
            raise CorpusError(
                f"{where}: assistant message {i} is empty; it would teach the model to "
                "answer with nothing"
            )
    return _Chat(messages, where, last_only=train_on == "last_assistant")


def _tokens(tokenizer, batch: list[RenderedRecord], train_on: TrainOn):
    """(ids, trained flags) of each rendered record: one tokenizer call for the batch,
    the flags from character offsets against the spans, all records at once."""
    texts = [r.text for r in batch]
    try:
        encs = tokenizer.encode_batch(texts, add_special_tokens=False)
    except Exception as exc:  # the Rust library raises plain Exceptions
        raise TokenizerError(
            f"this tokenizer cannot encode the records ({_first_line(exc)}); use a complete "
            "tokenizer.json (with its unknown/byte fallback tokens)"
        ) from None
    ids = [np.array(e.ids, dtype=np.int64) for e in encs]
    for r, a in zip(batch, ids, strict=True):
        if a.size and int(a.max()) > MAX_TOKEN_ID:
            raise TokenizerError(
                f"{r.where} encodes to the token id {int(a.max()):,}, over {MAX_TOKEN_ID:,}; "
                "this tokenizer's vocabulary is not usable"
            )
    n = np.fromiter((a.size for a in ids), dtype=np.int64, count=len(ids))
    if train_on == "all":
        return [(a, np.ones(a.size, bool)) for a in ids]
    # one coordinate system for the batch: each text starts where the previous one ends
    base = np.zeros(len(batch), dtype=np.int64)
    np.cumsum([len(t) for t in texts[:-1]], out=base[1:])
    offs = [np.array(e.offsets, dtype=np.int64).reshape(-1, 2) for e in encs]
    offs = np.concatenate(offs) if offs else np.zeros((0, 2), np.int64)
    shift = np.repeat(base, n)
    tok_start, tok_end = offs[:, 0] + shift, offs[:, 1] + shift
    owner = [(r, k) for r, rec in enumerate(batch) for k in range(len(rec.spans))]
    spans = np.array([batch[r].spans[k] for r, k in owner], dtype=np.int64).reshape(-1, 2)
    if owner:
        spans += base[[r for r, _ in owner]][:, None]
    starts, ends = spans[:, 0], spans[:, 1]
    overlap = np.flatnonzero(starts[1:] < ends[:-1])
    if overlap.size:  # nested {% generation %} blocks
        where = batch[owner[int(overlap[0]) + 1][0]].where
        raise CorpusError(f"{where}: its trained parts overlap (nested generation blocks?)")
    # the last span that starts before a token ends is the only one it can overlap
    span = np.searchsorted(starts, tok_end, side="left") - 1
    if starts.size:
        trained = (span >= 0) & (tok_start < ends[np.maximum(span, 0)])
    else:
        trained = np.zeros(tok_start.size, bool)
    per_span = np.bincount(span[trained], minlength=starts.size)
    empty = np.flatnonzero(per_span == 0)
    if empty.size:
        r, k = owner[int(empty[0])]
        what = {"completion": "the completion", "last_assistant": "the last assistant turn"}.get(
            train_on, f"assistant turn {k}"
        )
        raise CorpusError(f"{batch[r].where}: {what} renders to zero tokens; nothing to train")
    cut = np.cumsum(n)[:-1]
    return list(zip(ids, np.split(trained, cut), strict=True))
