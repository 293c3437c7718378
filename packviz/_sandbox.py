"""The Jinja environment chat templates run in: transformers' sandbox, plus early limits.

Why its own module. A chat template is code that comes with a model or an upload; it
must render exactly as transformers renders it (same options, filters and globals, so
the text and the ``{% generation %}`` spans are the same) and must not reach Python
objects or mutate its input. jinja2's ``ImmutableSandboxedEnvironment`` does that.

What a template may *cost* is bounded elsewhere: every template but the built-in ChatML
renders in a child process with a memory limit and a time limit per conversation
(`packviz._template_process`). The limits here are cheap early errors inside that
process, so the common blow-ups get a message of their own ("went past the sandbox's
limits") instead of "ran out of memory": ``range`` has a per-rendering budget; ``*``,
``**`` and ``+`` refuse huge results before building them (strings, lists and integers);
every value a ``~``, a call or a filter builds is refused right after it is built when
it is huge (so a chain of doublings stops at its first huge step, not at the last);
calls, filters and ``%`` refuse huge numbers among their arguments, format strings
refuse 7-digit widths, ``lipsum`` is gone, and output stops at `MAX_RENDERED_CHARS`.
They are not a bound: one step can still build a few hundred MB (``indent`` of many
lines, ``replace`` with a long text, nested format widths, ``join``) and loops can spin
the CPU; only the process limits stop those.

`generate` renders with a fresh per-call state (a context variable, so threads never
share one): its length, its generation spans, its range budget and the date
``strftime_now`` sees (frozen per call, so a rendering never depends on the clock).

    >>> import datetime
    >>> template = environment().from_string("a{% generation %}b{% endgeneration %}c")
    >>> generate(template, {}, today=datetime.date(2024, 7, 26))
    ('abc', [(1, 2, 'b')])
    >>> day = environment().from_string("{{ strftime_now('%d %b %Y') }}")
    >>> generate(day, {}, today=datetime.date(2024, 7, 26))[0]
    '26 Jul 2024'
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
#: Most items a list, tuple or dict a template builds may hold (64 MiB of references).
MAX_ITEMS = 1 << 23
#: Largest integer a template may build, in bits (a few thousand digits; Python prints
#: at most 4,300 anyway).
MAX_INT_BITS = 1 << 14
#: The limits above (a child process is given the values of its parent).
LIMITS = ("MAX_RENDERED_CHARS", "MAX_RANGE_ITEMS", "MAX_ITEMS", "MAX_INT_BITS")
#: A format width or precision of 7+ digits ("%10000000s", "{:>9999999}").
_WIDE_FORMAT = re.compile(r"[%:][^%:{}\s]*?\d{7,}")


class Limit(RuntimeError):
    """A rendering went past one of the limits above."""


@dataclass
class _State:
    """What one rendering records: its length so far, generation spans, range budget,
    and the moment ``strftime_now`` reports."""

    now: datetime.datetime
    length: int = 0
    spans: list = field(default_factory=list)
    range_left: int = field(default_factory=lambda: MAX_RANGE_ITEMS)


_STATE: contextvars.ContextVar[_State | None] = contextvars.ContextVar("_STATE", default=None)


def generate(
    compiled, context: dict, *, today: datetime.date
) -> tuple[str, list[tuple[int, int, str]]]:
    """Render ``compiled`` (from `environment`) with ``context``: the text, and the
    ``(start, end, body)`` of each generation block. ``strftime_now`` reports ``today``
    at 00:00. Raises `Limit`, or what jinja2 raises (``SecurityError`` for a reach
    outside the sandbox, ``TemplateError`` ...)."""
    state = _State(datetime.datetime.combine(today, datetime.time()))
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


def _most(value) -> int:
    """How long ``value`` (a text or a collection) may be."""
    return MAX_RENDERED_CHARS if isinstance(value, str) else MAX_ITEMS


def _check_size(value):
    """``value``, unless it is a text or collection past its limit."""
    if isinstance(value, (str, list, tuple, dict)) and len(value) > _most(value):
        raise Limit("a value too large for a chat template")
    return value


def _check_binop(operator: str, left, right) -> None:
    """Refuse a ``*``, ``**``, ``+`` or ``%`` whose result would be huge, before it is built."""
    if operator == "**" and isinstance(right, int):
        if abs(right) > 1024 or isinstance(left, int) and left.bit_length() * right > MAX_INT_BITS:
            raise Limit("an exponent too large for a chat template")
    elif operator == "*":
        for a, b in ((left, right), (right, left)):
            if isinstance(a, (str, list, tuple)) and isinstance(b, int):
                if len(a) * b > _most(a):
                    raise Limit("a value too large for a chat template")
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise Limit("a number too large for a chat template")
    elif operator == "+":
        if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            if len(left) + len(right) > _most(left):
                raise Limit("a value too large for a chat template")
    elif operator == "%":
        _check_format(left)
        _check_numbers(right if isinstance(right, tuple) else (right,))


def _check_format(text) -> None:
    if isinstance(text, str) and _WIDE_FORMAT.search(text):
        raise Limit("a format width too large for a chat template")


@functools.cache
def environment():
    """One sandboxed environment, set up as transformers sets up its own (with its
    ``{% generation %}`` extension), plus the limits of this module."""
    import jinja2
    from jinja2.compiler import CodeGenerator
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

    class Generator(CodeGenerator):
        def visit_Concat(self, node, frame):  # ``a ~ b`` cannot be intercepted otherwise
            self.write("environment.sized(")
            super().visit_Concat(node, frame)
            self.write(")")

    class Sandbox(ImmutableSandboxedEnvironment):
        code_generator_class = Generator
        intercepted_binops = frozenset({"*", "**", "%", "+"})

        def sized(self, value):
            return _check_size(value)

        def call_binop(self, context, operator, left, right):
            _check_binop(operator, left, right)
            return _check_size(super().call_binop(context, operator, left, right))

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja's names)
            _check_numbers(args, kwargs)
            return _check_size(super().call(__context, __obj, *args, **kwargs))

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
            return _check_size(f(*args, **kwargs))

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

    def strftime_now(fmt):
        """transformers' ``strftime_now``, at the frozen moment of this rendering."""
        state = _STATE.get()
        if state is None:
            raise TemplateError("strftime_now is only available while rendering")
        return state.now.strftime(fmt)

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
        strftime_now=strftime_now,
        range=budget_range,
    )
    return env
