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
as it does there. A template that reaches for private attributes or mutates its input
is stopped by the sandbox, and one that would build huge values by its limits
(`packviz._sandbox`).

Example:
    >>> chat = render_chat([{"role": "user", "content": "Hi"},
    ...                     {"role": "assistant", "content": "Hello!"}])
    >>> chat.text
    '<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\nHello!<|im_end|>\\n'
    >>> [chat.text[s:e] for s, e in chat.spans]
    ['Hello!<|im_end|>']
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packviz._sandbox import Limit, environment, generate
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
    is only parsed as JSON; the template runs in a sandbox when rendered.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, where = bytes(source), "the tokenizer config"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ChatTemplateError(f"no chat template file at {path}")
        if path.stat().st_size > 64 * MAX_TEMPLATE_BYTES:
            raise ChatTemplateError(f"{path} is too big for a tokenizer config")
        data, where = path.read_bytes(), str(path)
        if path.suffix == ".jinja":
            return ChatTemplate(_decode(data, where), {}, where)
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
    return ChatTemplate(template, specials, f"the chat template of {where}")


def _decode(data: bytes, where: str) -> str:
    if len(data) > 64 * MAX_TEMPLATE_BYTES:
        raise ChatTemplateError(f"{where} is too big for a tokenizer config")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ChatTemplateError(f"{where} is not UTF-8 text") from None


def render_chat(
    messages: Sequence[Mapping],
    template: ChatTemplate | str | None = None,
    *,
    where: str = "the conversation",
    end_of_turn: Sequence[str] = (),
    find_spans: bool = True,
) -> RenderedChat:
    """Render ``messages`` (checked: a list of ``{"role", "content"}`` with roles system,
    user or assistant) and find its assistant spans.

    ``template``: a `ChatTemplate`, a Jinja source string, or None for `CHATML`.
    ``end_of_turn``: tokens (text) trained with the content they follow when the template
    has no generation markers. ``find_spans=False`` renders only (``spans`` is empty).
    Problems raise `CorpusError` naming ``where``.
    """
    template = _as_template(template)
    messages = check_messages(messages, where)
    compiled, marked = _compile(template.source, template.name)
    variables = {**template.special_tokens, "add_generation_prompt": False}
    text, spans = _render(compiled, messages, variables, where, template.name)
    if not find_spans:
        return RenderedChat(text, (), marked)
    if marked:
        if not spans and any(m["role"] == "assistant" for m in messages):
            raise CorpusError(
                f"{where}: {template.name} has generation markers but marked no part of "
                "this conversation; check its {% generation %} blocks"
            )
        return RenderedChat(text, tuple(spans), True)
    placed = _placed_spans(compiled, messages, variables, text, where, template.name, end_of_turn)
    return RenderedChat(text, placed, False)


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
        return template
    if isinstance(template, str):
        if len(template) > MAX_TEMPLATE_BYTES:
            raise ChatTemplateError("the chat template is too long")
        return ChatTemplate(template)
    raise TypeError(f"chat_template must be a string or a ChatTemplate, got {type(template)}")


# ---------------------------------------------------------------------------- rendering


def _render(compiled, messages, variables, where, name) -> tuple[str, list]:
    from jinja2.exceptions import SecurityError, TemplateError

    context = {"messages": messages, "tools": None, "documents": None, **variables}
    try:
        text, blocks = generate(compiled, context)
    except Limit as exc:
        raise CorpusError(f"{where}: {name} went past the sandbox's limits ({exc})") from None
    except SecurityError as exc:
        raise CorpusError(
            f"{where}: {name} tried to reach outside its sandbox ({exc}); use a template "
            "that only reads messages and special tokens"
        ) from None
    except (
        TemplateError,
        ArithmeticError,
        TypeError,
        ValueError,
        LookupError,
        RecursionError,
        MemoryError,
    ) as exc:
        if isinstance(exc, CorpusError):
            raise
        raise CorpusError(
            f"{where}: {name} failed to render it ({type(exc).__name__}: {exc})"
        ) from None
    for start, end, body in blocks:
        if text[start:end] != body:  # a block inside {% set %} or a macro: not locatable
            raise CorpusError(
                f"{where}: {name} writes a {{% generation %}} block whose place in the "
                "text cannot be known (inside a macro or a set block); move it to the top level"
            )
    return text, [(s, e) for s, e, _ in blocks]


def _placed_spans(compiled, messages, variables, text, where, name, end_of_turn):
    """Spans of the assistant contents, placed by rendering placeholders in their stead."""
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if not turns:
        return ()
    marks = [_PLACEHOLDER.format(k) for k in range(len(turns))]
    if any(mark in m["content"] for mark in marks for m in messages):
        raise CorpusError(f"{where}: a message contains packviz's placeholder text")
    masked = [dict(m) for m in messages]
    for i, mark in zip(turns, marks, strict=True):
        masked[i]["content"] = mark
    skeleton, _ = _render(compiled, masked, variables, where, name)
    around, pos = [], 0
    for k, mark in enumerate(marks):
        at = skeleton.find(mark, pos)
        if at < 0 or skeleton.count(mark) != 1:
            raise CorpusError(
                f"{where}: assistant turn {k} (message {turns[k]}) cannot be found in the "
                f"text {name} renders (the template drops or repeats it); mark the "
                "trained part with {% generation %} … {% endgeneration %}"
            )
        around.append(skeleton[pos:at])
        pos = at + len(mark)
    around.append(skeleton[pos:])
    tail = None
    if end_of_turn:
        ends = sorted(set(end_of_turn), key=len, reverse=True)
        tail = re.compile(r"\s*(?:" + "|".join(map(re.escape, ends)) + ")")
    spans, cursor = [], 0
    for k, i in enumerate(turns):
        if not text.startswith(around[k], cursor):
            raise _not_found(where, k, i, name)
        cursor += len(around[k])
        content = messages[i]["content"]
        variants = (content, content.strip(), content.rstrip(), content.lstrip())
        for variant in dict.fromkeys(variants):
            if text.startswith(variant, cursor) and text.startswith(
                around[k + 1], cursor + len(variant)
            ):
                break
        else:
            raise _not_found(where, k, i, name)
        end = cursor + len(variant)
        match = tail.match(text, end) if tail is not None else None
        spans.append((cursor, match.end() if match else end))
        cursor = end
    if cursor + len(around[-1]) != len(text):
        raise _not_found(where, len(turns) - 1, turns[-1], name)
    return tuple(spans)


def _not_found(where, k, i, name) -> CorpusError:
    return CorpusError(
        f"{where}: assistant turn {k} (message {i}) cannot be found in the text {name} "
        "renders (the template changes the content); mark the trained part with "
        "{% generation %} … {% endgeneration %}"
    )


@functools.lru_cache(maxsize=16)
def _compile(source: str, name: str):
    """The compiled template and whether it has generation markers."""
    from jinja2.exceptions import TemplateSyntaxError

    try:
        compiled = environment().from_string(source)
    except TemplateSyntaxError as exc:
        raise ChatTemplateError(f"{name} is not a valid Jinja template: {exc}") from None
    return compiled, re.search(r"{%-?\s*generation\s*-?%}", source) is not None
