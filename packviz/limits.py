"""What the library accepts as sizes: a row length (``max_len``) and document lengths.

Every entry point that takes lengths (`pack`, `compare_strategies`, `length_summary`, …)
checks them here, so the same input gets the same message everywhere.

    >>> as_lengths([3, 0, 5.0]).tolist()
    [3, 0, 5]
    >>> check_max_len(0)
    Traceback (most recent call last):
    ...
    ValueError: max_len must be between 1 and 1,048,576, got 0
"""

from __future__ import annotations

import numpy as np

#: Largest ``max_len`` the library accepts (2**20 token slots per row).
MAX_LEN_LIMIT = 1 << 20
#: Longest document the library accepts (2**40 tokens).
MAX_DOC_LENGTH = 1 << 40


def check_max_len(max_len: object) -> int:
    """Return ``max_len`` as an int, or raise ValueError saying what is allowed."""
    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)):
        raise ValueError(f"max_len must be an integer, got {max_len!r}")
    if not 1 <= int(max_len) <= MAX_LEN_LIMIT:
        raise ValueError(f"max_len must be between 1 and {MAX_LEN_LIMIT:,}, got {int(max_len):,}")
    return int(max_len)


def as_lengths(lengths: object) -> np.ndarray:
    """Validate document lengths: a 1-D array-like of non-negative integers -> int64."""
    arr = np.asarray(lengths)
    if arr.ndim != 1:
        raise ValueError(f"lengths must be 1-D (one entry per document), got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise ValueError(f"lengths must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.floor(arr))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"lengths must be integers; document {i} has length {arr[i].item()!r}")
    if arr.min() < 0:
        i = int(np.argmin(arr))
        raise ValueError(f"lengths must be non-negative; document {i} has length {arr[i].item()!r}")
    if arr.max() > MAX_DOC_LENGTH:
        i = int(np.argmax(arr))
        raise ValueError(
            f"document {i} has length {arr[i].item():,}; lengths above {MAX_DOC_LENGTH:,} "
            "tokens are not supported"
        )
    out = arr.astype(np.int64, copy=False)
    if int(out.sum(dtype=np.float64)) >= 2**62:
        raise ValueError("the lengths add up to more tokens than an int64 can count")
    return out
