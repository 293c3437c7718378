"""Checks of arguments that are not sizes: the kind of object, lists of choices, lists of
documents. (Sizes and lengths live in `packviz.limits`.)

Why. A public function handed the wrong kind of object must say so in its own words —
"tradeoffs takes a PackPlan (from pv.pack), got str" — not fail three calls deeper with
``'str' object has no attribute 'stats'``. And an argument meant to be a list must not
quietly accept a look-alike: a string iterates as its characters, a dict as its keys, a
set in an arbitrary order. One module, so the same mistake gets the same message
everywhere.

    >>> as_choice_list("strategies", ["best_fit"], ("best_fit", "wrapped"))
    ['best_fit']
    >>> as_choice_list("strategies", "best_fit", ("best_fit", "wrapped"))
    Traceback (most recent call last):
    ...
    TypeError: strategies must be a list of choices (from best_fit, wrapped), got the str 'best_fit'; wrap one choice in a list
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set

import numpy as np

from packviz.choices import check_choice


def check_instance(value: object, cls: type | tuple[type, ...], where: str, what: str) -> None:
    """TypeError ``"{where} takes {what}, got {type}"`` unless ``value`` is a ``cls``.

    >>> check_instance("x", int, "why", "a Ranking (from pv.rank)")
    Traceback (most recent call last):
    ...
    TypeError: why takes a Ranking (from pv.rank), got str
    """
    if not isinstance(value, cls):
        raise TypeError(f"{where} takes {what}, got {type(value).__name__}")


def as_list(name: str, values: object, what: str) -> list:
    """``values`` as a list when it is a list-like of items (a list, tuple, array, range,
    generator); a string, bytes, a mapping, a set or a non-iterable is refused with a
    TypeError that names ``what`` the items should be.

    >>> as_list("max_lens", (512, 1024), "integers")
    [512, 1024]
    >>> as_list("max_lens", {512, 1024}, "integers")
    Traceback (most recent call last):
    ...
    TypeError: max_lens must be a list of integers, got a set (unordered); pass a list
    """
    kind = type(values).__name__
    if isinstance(values, (str, bytes, bytearray)):
        raise TypeError(
            f"{name} must be a list of {what}, got the {kind} {values!r:.60}; wrap one item in "
            "a list"
        )
    if isinstance(values, Mapping):
        raise TypeError(f"{name} must be a list of {what}, got a mapping ({kind}); pass a list")
    if isinstance(values, Set):
        raise TypeError(f"{name} must be a list of {what}, got a {kind} (unordered); pass a list")
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise TypeError(f"{name} must be a 1-D list of {what}, got shape {values.shape}")
        return values.tolist()
    if not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a list of {what}, got {kind}")
    return list(values)


def as_choice_list(name: str, values: object, choices: tuple[str, ...]) -> list[str]:
    """A list of choices (each checked), never a bare string read as its letters."""
    if isinstance(values, str):
        raise TypeError(
            f"{name} must be a list of choices (from {', '.join(choices)}), got the str "
            f"{values!r}; wrap one choice in a list"
        )
    items = as_list(name, values, f"choices (from {', '.join(choices)})")
    return [
        check_choice(name.rstrip("s") if name.endswith("s") else name, x, choices) for x in items
    ]


def as_array(name: str, values: object, what: str) -> np.ndarray:
    """``np.asarray(values)``, with a ValueError that names ``name`` and ``what`` it
    should be where numpy cannot make one array (ragged nested lists, a set, a mapping).

    >>> as_array("doc_ids", [[1, 2], [3]], "[L] or [B, L] integers")
    Traceback (most recent call last):
    ...
    ValueError: doc_ids must be [L] or [B, L] integers; got nested lists of unequal lengths (ragged)
    """
    if isinstance(values, (Mapping, Set, str, bytes, bytearray)):
        raise ValueError(f"{name} must be {what}, got {type(values).__name__}")
    try:
        return np.asarray(values)
    except (ValueError, TypeError, OverflowError):
        raise ValueError(
            f"{name} must be {what}; got nested lists of unequal lengths (ragged)"
        ) from None
