"""One conversation rendered in this process: its text, and its assistant spans from
``{% generation %}`` blocks or placed by a second rendering (see `packviz.chat`).

Why its own module. This is what runs inside the child process of
`packviz._template_process` (and, for the built-in ChatML only, in the caller's): the
part of `packviz.chat` that executes a template, kept apart from loading templates,
checking conversations and choosing where to render.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Sequence

from packviz._sandbox import Limit, environment, generate
from packviz.chat import _PLACEHOLDER, ChatTemplate, ChatTemplateError, RenderedChat, _Chat
from packviz.corpus import CorpusError


def render_one(
    chat: _Chat, template: ChatTemplate, end_of_turn: Sequence[str], day: datetime.date
) -> RenderedChat:
    """One chat rendered in this process (the child's work, or ChatML's)."""
    messages, where, name = chat.messages, chat.where, template.name
    compiled, marked = _compile(template.source, name)
    variables = {**template.special_tokens, "add_generation_prompt": False}
    text, spans = _render(compiled, messages, variables, where, name, day)
    if not chat.find_spans:
        return RenderedChat(text, (), marked)
    if not marked:
        placed = _placed_spans(
            compiled, messages, variables, text, where, name, end_of_turn, day, chat.last_only
        )
        return RenderedChat(text, placed, False)
    if not spans and any(m["role"] == "assistant" for m in messages):
        raise CorpusError(
            f"{where}: {name} has generation markers but marked no part of "
            "this conversation; check its {% generation %} blocks"
        )
    if chat.last_only:
        spans = _last_turn_blocks(compiled, messages, variables, text, spans, where, name, day)
    return RenderedChat(text, tuple(spans), True)


def _last_turn_blocks(compiled, messages, variables, text, spans, where, name, day):
    """The generation blocks written for the last assistant turn. A template may mark
    several blocks per turn (or none for some turns), so they are counted: the blocks of
    the conversation rendered up to that turn, then up to and with it; the blocks in
    between are the turn's own. The earlier blocks must be the same in both renderings."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")

    def blocks(n: int) -> list[str]:
        if n == 0:
            return []
        if n == len(messages):
            return [text[s:e] for s, e in spans]
        try:
            part, found = _render(compiled, messages[:n], variables, where, name, day)
        except CorpusError as exc:
            raise CorpusError(
                f"{where}: train_on='last_assistant' needs the conversation up to its last "
                f"assistant turn (message {last}) rendered alone, and {name} fails on it "
                f"({exc}); use train_on='assistant'"
            ) from None
        return [part[s:e] for s, e in found]

    before, through = blocks(last), blocks(last + 1)
    everything = [text[s:e] for s, e in spans]
    if through[: len(before)] != before or everything[: len(through)] != through:
        raise CorpusError(
            f"{where}: {name} marks earlier turns differently once later messages follow, "
            "so the blocks of the last assistant turn cannot be told apart; use "
            "train_on='assistant'"
        )
    own = spans[len(before) : len(through)]
    if not own:
        raise CorpusError(
            f"{where}: {name} marks no part of the last assistant turn (message {last}); "
            "check its {% generation %} blocks"
        )
    return own


def _render(compiled, messages, variables, where, name, day) -> tuple[str, list]:
    from jinja2.exceptions import SecurityError, TemplateError

    context = {"messages": messages, "tools": None, "documents": None, **variables}
    try:
        text, blocks = generate(compiled, context, today=day)
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
    ) as exc:  # not MemoryError: the child process reports it as such
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


def _placed_spans(
    compiled, messages, variables, text, where, name, end_of_turn, day, last_only=False
):
    """Spans of the assistant contents, placed by rendering placeholders in their stead.

    ``last_only``: only the last assistant turn gets a placeholder; the earlier ones
    render as they are, so a template may change or drop them (strip ``<think>`` blocks
    from earlier turns, show only the last answer) as long as it renders the last turn's
    content unchanged."""
    every = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if not every:
        return ()
    turns = every[-1:] if last_only else every
    number = {i: k for k, i in enumerate(every)}  # turn k of the conversation, for messages
    marks = [_PLACEHOLDER.format(k) for k in range(len(turns))]
    if any(mark in m["content"] for mark in marks for m in messages):
        raise CorpusError(f"{where}: a message contains packviz's placeholder text")
    masked = [dict(m) for m in messages]
    for i, mark in zip(turns, marks, strict=True):
        masked[i]["content"] = mark
    skeleton, _ = _render(compiled, masked, variables, where, name, day)
    around, pos = [], 0
    for k, mark in enumerate(marks):
        at = skeleton.find(mark, pos)
        if at < 0 or skeleton.count(mark) != 1:
            i = turns[k]
            how = "drops or transforms it" if at < 0 else "writes it more than once"
            raise CorpusError(
                f"{where}: assistant turn {number[i]} (message {i}) cannot be found in the "
                f"text {name} renders (the template {how}){_fix(i, every, last_only)}"
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
            raise _not_found(where, number[i], i, name, _fix(i, every, last_only))
        cursor += len(around[k])
        content = messages[i]["content"]
        variants = (content, content.strip(), content.rstrip(), content.lstrip())
        for variant in dict.fromkeys(variants):
            if text.startswith(variant, cursor) and text.startswith(
                around[k + 1], cursor + len(variant)
            ):
                break
        else:
            raise _not_found(where, number[i], i, name, _fix(i, every, last_only))
        end = cursor + len(variant)
        match = tail.match(text, end) if tail is not None else None
        spans.append((cursor, match.end() if match else end))
        cursor = end
    if cursor + len(around[-1]) != len(text):
        raise _not_found(
            where, number[turns[-1]], turns[-1], name, _fix(turns[-1], every, last_only)
        )
    return tuple(spans)


def _fix(i: int, every: list[int], last_only: bool) -> str:
    """What to do when assistant message ``i`` cannot be placed."""
    marks = "mark the trained part with {% generation %} … {% endgeneration %}"
    if i != every[-1] and not last_only:
        return (
            f"; it is an earlier turn, which some templates change or leave out (reasoning "
            f"stripped from past turns): train_on='last_assistant' trains only the last "
            f"turn and lets the template render earlier ones as it likes, or {marks}"
        )
    return f"; {marks}"


def _not_found(where, k, i, name, fix) -> CorpusError:
    return CorpusError(
        f"{where}: assistant turn {k} (message {i}) cannot be found in the text {name} "
        f"renders (the template changes its content){fix}"
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
