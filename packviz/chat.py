"""Chat templates: a conversation rendered to text, and the character spans of its
assistant turns — the parts a fine-tuned model is trained on.

Why characters. Tokens are only known after the whole conversation is tokenized at once
(tokens merge across turn boundaries), so the trained part is found as character spans
of the rendered text; `packviz.records` then flags the tokens whose character offsets
overlap a span. Nothing is ever re-tokenized piece by piece.

Two ways to find the spans:

- The template marks them with ``{% generation %} … {% endgeneration %}`` (the built-in
  `CHATML` does, as do the templates TRL accepts for ``assistant_only_loss``): each block
  is one span, exactly where it was written. This is transformers' own mechanism.
- Otherwise (most ``tokenizer_config.json`` templates) the conversation is rendered a
  second time with every assistant content replaced by a unique placeholder. The text
  around the placeholders must be the real rendering around the contents (a content may
  come out stripped), which places each content exactly even when it also occurs in the
  prompt or the template's own markup. The end-of-turn token the template writes right
  after a content (after optional whitespace) is trained with it, as with generation
  markers: it is what teaches the model to stop.

Templates run in jinja2's ``ImmutableSandboxedEnvironment`` with the same options,
filters and globals as transformers (``trim_blocks``, ``lstrip_blocks``, loop controls,
``tojson``, ``raise_exception``, ``strftime_now``), so a template renders here exactly
as it does there, with one exception: ``strftime_now`` reports the day ``today``
(`DEFAULT_TODAY` unless the caller picks one) at 00:00, never the clock, so the same
records always render to the same text. A template that reaches for private attributes
or mutates its input is stopped by the sandbox (`packviz._sandbox`). Every template but
the built-in `CHATML` renders in a child process with a memory and a time limit per
conversation (`packviz._template_process`): a template from an upload can fail, but
never exhaust the memory or the CPU of the process that renders it.

Example:
    >>> chat = render_chat([{"role": "user", "content": "Hi"},
    ...                     {"role": "assistant", "content": "Hello!"}])
    >>> chat.text
    '<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\nHello!<|im_end|>\\n'
    >>> [chat.text[s:e] for s, e in chat.spans]
    ['Hello!<|im_end|>']
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packviz._args import as_list
from packviz.corpus import CorpusError

#: ChatML with the assistant turns marked for training: each content and its
#: ``<|im_end|>``, not the ``<|im_start|>assistant`` header nor the newline after it
#: (the template TRL's ``assistant_only_loss`` accepts).
CHATML = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
#: The special tokens `CHATML` writes (give them to `packviz.train_tokenizer`).
CHATML_SPECIAL_TOKENS: tuple[str, ...] = ("<|im_start|>", "<|im_end|>")
#: Tokens that end an assistant turn in common templates; the tokenizer's own
#: end-of-text token is added to these when a template has no generation markers.
END_OF_TURN_TOKENS: tuple[str, ...] = (
    "<|im_end|>",
    "<|eot_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "</s>",
    "<｜end▁of▁sentence｜>",
)
ROLES: tuple[str, ...] = ("system", "user", "assistant")

#: Largest template source read.
MAX_TEMPLATE_BYTES = 1 << 20
#: The day ``strftime_now`` reports unless the caller picks one (the date Llama 3.1's
#: template falls back to): fixed, so a rendering never depends on when it ran.
DEFAULT_TODAY = "2024-07-26"
_PLACEHOLDER = "\ue000packviz-turn-{}\ue001"


class ChatTemplateError(ValueError):
    """A chat template (or the file holding it) that cannot be used at all."""


@dataclass(frozen=True)
class ChatTemplate:
    """A Jinja chat template and the special tokens it may refer to (``bos_token``,
    ``eos_token``, ...). ``name`` says where it came from, in messages."""

    source: str
    special_tokens: Mapping[str, str] = field(default_factory=dict)
    name: str = "the chat template"

    def __post_init__(self) -> None:
        if not isinstance(self.source, str):
            raise TypeError(
                f"a chat template's source is a Jinja string, got {type(self.source).__name__}"
            )
        if not isinstance(self.special_tokens, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.special_tokens.items()
        ):
            raise TypeError("special_tokens must map names to token strings ({'eos_token': ...})")
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a string, got {type(self.name).__name__}")


@dataclass(frozen=True)
class RenderedChat:
    """A rendered conversation: its text and the character spans ``(start, end)`` of
    its assistant turns, in order. ``marked``: the spans come from ``{% generation %}``
    blocks (else from placing each assistant content)."""

    text: str
    spans: tuple[tuple[int, int], ...]
    marked: bool


def load_chat_template(source: bytes | str | os.PathLike, *, name: str = "default"):
    """The chat template of a Hugging Face ``tokenizer_config.json`` (bytes or a path),
    with its special tokens; or a ``.jinja`` template file.

    A config may hold one template or a list of named ones (``name`` picks one). The file
    is only parsed as JSON; the template runs in a sandbox when rendered. A template is
    at most `MAX_TEMPLATE_BYTES` (a config at most 64 times that).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be the name of a template (a str), got {name!r}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, where = bytes(source), "the tokenizer config"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ChatTemplateError(f"no chat template file at {path}")
        jinja = path.suffix == ".jinja"
        if path.stat().st_size > (1 if jinja else 64) * MAX_TEMPLATE_BYTES:
            what = "a chat template" if jinja else "a tokenizer config"
            raise ChatTemplateError(f"{path} is too big for {what}")
        data, where = path.read_bytes(), str(path)
        if jinja:
            return _checked(ChatTemplate(_decode(data, where), {}, where))
    else:
        raise TypeError(f"load_chat_template takes bytes or a path, got {type(source).__name__}")
    try:
        config = json.loads(_decode(data, where))
    except (ValueError, RecursionError) as exc:
        raise ChatTemplateError(f"{where} is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or "chat_template" not in config:
        raise ChatTemplateError(
            f"{where} has no chat_template; pass the template itself, or use the built-in "
            "ChatML (chat_template=None)"
        )
    template = config["chat_template"]
    if isinstance(template, list):  # [{"name": ..., "template": ...}, ...]
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        if name not in named:
            shown = ", ".join(map(repr, named)) or "none"
            raise ChatTemplateError(f"{where} has no chat template named {name!r} ({shown})")
        template = named[name]
    if not isinstance(template, str) or not template.strip():
        raise ChatTemplateError(f"{where}: chat_template is not a template string")
    specials = {}
    for key, value in config.items():
        if key.endswith("_token") and isinstance(value, dict):
            value = value.get("content")
        if key.endswith("_token") and isinstance(value, str):
            specials[key] = value
    return _checked(ChatTemplate(template, specials, f"the chat template of {where}"))


def _decode(data: bytes, where: str) -> str:
    if len(data) > 64 * MAX_TEMPLATE_BYTES:
        raise ChatTemplateError(f"{where} is too big for a tokenizer config")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ChatTemplateError(f"{where} is not UTF-8 text") from None


def _checked(template: ChatTemplate) -> ChatTemplate:
    """``template``, unless its source is longer than `MAX_TEMPLATE_BYTES`."""
    if len(template.source) > MAX_TEMPLATE_BYTES:
        raise ChatTemplateError(
            f"{template.name} is too long ({len(template.source):,} characters; a chat "
            f"template is at most {MAX_TEMPLATE_BYTES:,})"
        )
    return template


def render_chat(
    messages: Sequence[Mapping],
    template: ChatTemplate | str | None = None,
    *,
    where: str = "the conversation",
    end_of_turn: Sequence[str] = (),
    find_spans: bool = True,
    today: datetime.date | str = DEFAULT_TODAY,
) -> RenderedChat:
    """Render ``messages`` (checked: a list of ``{"role", "content"}`` with roles system,
    user or assistant) and find its assistant spans.

    ``template``: a `ChatTemplate`, a Jinja source string, or None for `CHATML`.
    ``end_of_turn``: tokens (text) trained with the content they follow when the template
    has no generation markers. ``find_spans=False`` renders only (``spans`` is empty).
    ``today``: the day ``strftime_now`` reports (a ``datetime.date`` or ``"YYYY-MM-DD"``).
    Problems raise `CorpusError` naming ``where``.
    """
    template = _as_template(template)
    end_of_turn = tuple(as_list("end_of_turn", end_of_turn, "token strings"))
    if not all(isinstance(t, str) and t for t in end_of_turn):
        raise TypeError(
            f"end_of_turn must be a list of non-empty token strings, got {end_of_turn!r}"
        )
    if not isinstance(where, str):
        raise TypeError(f"where must be a string (a name for errors), got {type(where).__name__}")
    messages = check_messages(messages, where)
    chat = _Chat(messages, where, bool(find_spans))
    return _render_chats([chat], template, end_of_turn=end_of_turn, today=today)[0]


@dataclass(frozen=True)
class _Chat:
    """One conversation to render: checked messages, the record's name, what to find
    (``last_only``: the spans of the last assistant turn only)."""

    messages: list[dict]
    where: str
    find_spans: bool = True
    last_only: bool = False


def _render_chats(
    chats: Sequence[_Chat],
    template: ChatTemplate,
    *,
    end_of_turn: tuple[str, ...],
    today: datetime.date | str,
) -> list[RenderedChat]:
    """Every chat rendered with ``template``; the first that fails raises, naming its
    record. The built-in ChatML renders here: it only joins the messages with fixed
    markup, so its text is the size of its input and its time linear in it. Every other
    template renders in a child process that a template cannot exhaust."""
    day = _as_day(today)
    _checked(template)
    if template.source == CHATML:
        from packviz._chat_render import render_one

        return [render_one(c, template, end_of_turn, day) for c in chats]
    from packviz import _template_process

    out = _template_process.render(template, chats, end_of_turn=end_of_turn, today=day)
    return [RenderedChat(t, tuple(map(tuple, s)), m) for t, s, m in out]


def _as_day(today: object) -> datetime.date:
    """``today`` (a date, or ISO text ``YYYY-MM-DD``) as a ``datetime.date``.

    >>> _as_day("2024-07-26")
    datetime.date(2024, 7, 26)
    """
    if isinstance(today, datetime.datetime):
        return today.date()
    if isinstance(today, datetime.date):
        return today
    if isinstance(today, str):
        try:
            return datetime.date.fromisoformat(today)
        except ValueError:
            pass
    raise ValueError(f"today must be a date or text like {DEFAULT_TODAY!r}, got {today!r}")


def check_messages(messages: object, where: str) -> list[dict]:
    """``messages`` as a list of dicts with a known role and text content (copies)."""
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Sequence):
        raise CorpusError(f"{where}: messages must be a list of {{role, content}} objects")
    if not messages:
        raise CorpusError(f"{where}: messages is empty")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise CorpusError(f"{where}: message {i} is {type(m).__name__}, not an object")
        for key in ("role", "content"):
            if key not in m or m[key] is None:
                raise CorpusError(f"{where}: message {i} has no {key!r}")
        if m["role"] not in ROLES:
            raise CorpusError(
                f"{where}: message {i} has role {m['role']!r}; use one of {', '.join(ROLES)}"
            )
        if not isinstance(m["content"], str):
            raise CorpusError(
                f"{where}: message {i} content is {type(m['content']).__name__}, not text"
            )
        out.append(dict(m))
    return out


def _as_template(template: object) -> ChatTemplate:
    if template is None:
        return ChatTemplate(CHATML, {}, "the built-in ChatML template")
    if isinstance(template, ChatTemplate):
        return _checked(template)
    if isinstance(template, str):
        return _checked(ChatTemplate(template))
    raise TypeError(f"chat_template must be a string or a ChatTemplate, got {type(template)}")
