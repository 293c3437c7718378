"""Two vectorized building blocks on integer arrays, shared by planning and materializing.

``expand_ranges`` turns (start, count) pairs into the concatenated ranges without a
Python loop; ``runs`` is run-length encoding. Both are O(output) numpy passes.

    >>> expand_ranges([5, 0], [3, 2]).tolist()
    [5, 6, 7, 0, 1]
    >>> [a.tolist() for a in runs(np.array([4, 4, 4, 2, 2, 9]))]
    [[4, 2, 9], [3, 2, 1]]
"""

from __future__ import annotations

import numpy as np


def expand_ranges(starts, counts) -> np.ndarray:
    """Concatenate ``arange(s, s + c)`` for each (s, c), vectorized (int64)."""
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    keep = counts > 0
    if not keep.all():
        starts, counts = starts[keep], counts[keep]
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    steps = np.ones(total, dtype=np.int64)
    steps[0] = starts[0]
    heads = np.cumsum(counts[:-1])
    steps[heads] = starts[1:] - (starts[:-1] + counts[:-1] - 1)
    return np.cumsum(steps)


def runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run-length encoding: (value, count) of consecutive equal entries."""
    if values.size == 0:
        return values, values
    heads = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    counts = np.diff(np.append(heads, values.size))
    return values[heads], counts
