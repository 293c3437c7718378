"""The Jinja environment chat templates run in: transformers' sandbox, plus limits.

Why its own module. A chat template is code that comes with a model or an upload; it
must render exactly as transformers renders it (same options, filters and globals, so
the text and the ``{% generation %}`` spans are the same) and must not reach Python
objects, mutate its input or build unbounded values. jinja2's
``ImmutableSandboxedEnvironment`` does the first two; the limits here do the rest:
``range`` has a per-rendering budget, ``*`` and ``**`` refuse huge results, calls and
filters refuse huge numbers, format strings refuse 7-digit widths, ``lipsum`` is gone,
and output stops at `MAX_RENDERED_CHARS`. A template can still be slow (nested loops
over long messages) but cannot build a huge value in one step.

`generate` renders with a fresh per-call state (a context variable, so threads never
share one) and returns the text and the ``(start, end, body)`` of every generation block.

    >>> template = environment().from_string("a{% generation %}b{% endgeneration %}c")
    >>> generate(template, {})
    ('abc', [(1, 2, 'b')])
"""

from __future__ import annotations

import contextvars
import datetime
import functools
import json
import re
from dataclasses import dataclass, field

#: Largest rendered conversation, in characters.
MAX_RENDERED_CHARS = 1 << 26
#: Items all ``range()`` calls of one rendering may produce together.
MAX_RANGE_ITEMS = 1 << 20
#: A format width or precision of 7+ digits ("%10000000s", "{:>9999999}").
_WIDE_FORMAT = re.compile(r"[%:][^%:{}\s]*?\d{7,}")


class Limit(RuntimeError):
    """A rendering went past one of the limits above."""


@dataclass
class _State:
    """What one rendering records: its length so far, generation spans, range budget."""

    length: int = 0
    spans: list = field(default_factory=list)
    range_left: int = MAX_RANGE_ITEMS


_STATE: contextvars.ContextVar[_State | None] = contextvars.ContextVar("_STATE", default=None)


def generate(compiled, context: dict) -> tuple[str, list[tuple[int, int, str]]]:
    """Render ``compiled`` (from `environment`) with ``context``: the text, and the
    ``(start, end, body)`` of each generation block. Raises `Limit`, or what jinja2
    raises (``SecurityError`` for a reach outside the sandbox, ``TemplateError`` ...)."""
    state = _State()
    token = _STATE.set(state)
    parts = []
    try:
        for chunk in compiled.generate(**context):
            parts.append(chunk)
            state.length += len(chunk)
            if state.length > MAX_RENDERED_CHARS:
                raise Limit(f"more than {MAX_RENDERED_CHARS:,} characters")
    finally:
        _STATE.reset(token)
    return "".join(parts), state.spans


def _check_numbers(args, kwargs=None) -> None:
    for a in (*args, *(kwargs or {}).values()):
        if isinstance(a, int) and abs(a) > MAX_RENDERED_CHARS:
            raise Limit("a number too large for a chat template")


def _check_format(text) -> None:
    if isinstance(text, str) and _WIDE_FORMAT.search(text):
        raise Limit("a format width too large for a chat template")


@functools.cache
def environment():
    """One sandboxed environment, set up as transformers sets up its own (with its
    ``{% generation %}`` extension), plus the limits of this module."""
    import jinja2
    from jinja2.exceptions import TemplateError
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(Extension):
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            call = self.call_method("_span")
            return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

        def _span(self, caller):
            body = caller()
            state = _STATE.get()
            if state is not None:
                state.spans.append((state.length, state.length + len(body), body))
            return body

    class Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "%"})

        def call_binop(self, context, operator, left, right):
            if operator == "**" and isinstance(right, int) and abs(right) > 1024:
                raise Limit("an exponent too large for a chat template")
            if operator == "*":
                for a, b in ((left, right), (right, left)):
                    if isinstance(a, (str, list, tuple)) and isinstance(b, int):
                        if len(a) * b > MAX_RENDERED_CHARS:
                            raise Limit("a value too large for a chat template")
            if operator == "%":
                _check_format(left)
            return super().call_binop(context, operator, left, right)

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja's names)
            _check_numbers(args, kwargs)
            return super().call(__context, __obj, *args, **kwargs)

        def wrap_str_format(self, value):  # every attribute read passes here
            if getattr(value, "__name__", None) in ("format", "format_map"):
                _check_format(getattr(value, "__self__", None))
            return super().wrap_str_format(value)

    def guarded(name, f):
        """``f`` refusing huge numbers among its arguments (not the value it filters)."""
        skip = 2 if getattr(f, "jinja_pass_arg", None) else 1

        def filter_(*args, **kwargs):
            _check_numbers(args[skip:], kwargs)
            if name == "format":
                _check_format(args[skip - 1] if len(args) >= skip else None)
            return f(*args, **kwargs)

        if hasattr(f, "jinja_pass_arg"):
            filter_.jinja_pass_arg = f.jinja_pass_arg
        return filter_

    def raise_exception(message):
        raise TemplateError(message)

    def budget_range(*args):
        r = range(*args)
        state = _STATE.get()
        if state is not None:
            state.range_left -= len(r)
            if state.range_left < 0:
                raise Limit(f"range() past {MAX_RANGE_ITEMS:,} items in one rendering")
        return r

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env = Sandbox(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
    env.filters["tojson"] = tojson
    env.filters = {name: guarded(name, f) for name, f in env.filters.items()}
    env.globals.pop("lipsum", None)  # builds any amount of text on request
    env.globals.update(
        raise_exception=raise_exception,
        strftime_now=lambda fmt: datetime.datetime.now().strftime(fmt),
        range=budget_range,
    )
    return env
