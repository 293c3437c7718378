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


def check_int(
    name: str,
    value: object,
    *,
    least: int | None = None,
    most: int | None = None,
    error: type[Exception] = ValueError,
) -> int:
    """``value`` as an int when it is an integer (a Python or numpy one, never a bool)
    within ``[least, most]``; else ``error`` saying what is allowed. The one check of
    integer arguments across the library.

    >>> check_int("block_size", np.int64(64), least=1)
    64
    >>> check_int("seed", -1, least=0)
    Traceback (most recent call last):
    ...
    ValueError: seed must be a non-negative integer, got -1
    """
    ok = not isinstance(value, bool) and isinstance(value, (int, np.integer))
    if ok and (least is None or value >= least) and (most is None or value <= most):
        return int(value)
    if least == 0 and most is None:
        want = "a non-negative integer"
    elif least == 1 and most is None:
        want = "a positive integer"
    elif least is not None and most is not None:
        want = f"an integer from {least:,} to {most:,}"
    elif least is not None:
        want = f"an integer >= {least:,}"
    elif most is not None:
        want = f"an integer <= {most:,}"
    else:
        want = "an integer"
    raise error(f"{name} must be {want}, got {value!r}")


def check_max_len(max_len: object) -> int:
    """Return ``max_len`` as an int, or raise ValueError saying what is allowed."""
    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)):
        raise ValueError(f"max_len must be an integer, got {max_len!r}")
    if not 1 <= int(max_len) <= MAX_LEN_LIMIT:
        raise ValueError(f"max_len must be between 1 and {MAX_LEN_LIMIT:,}, got {int(max_len):,}")
    return int(max_len)


def as_lengths(lengths: object) -> np.ndarray:
    """Validate document lengths: a 1-D array-like of non-negative integers -> int64.

    Booleans are not lengths (``[True, 3]`` is refused, not read as ``[1, 3]``), nor are
    strings, mappings or ragged nested lists."""
    if isinstance(lengths, (str, bytes, dict)):
        raise ValueError(f"lengths must be a 1-D array of integers, got {type(lengths).__name__}")
    if isinstance(lengths, (list, tuple)) and any(isinstance(x, (bool, np.bool_)) for x in lengths):
        i = next(i for i, x in enumerate(lengths) if isinstance(x, (bool, np.bool_)))
        raise ValueError(f"lengths must be integers; document {i} has length {lengths[i]!r}")
    try:
        arr = np.asarray(lengths)
    except (ValueError, TypeError):  # ragged nested sequences
        raise ValueError(
            "lengths must be a 1-D array of integers; got nested lists of unequal lengths"
        ) from None
    if arr.ndim != 1:
        raise ValueError(f"lengths must be 1-D (one entry per document), got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        if arr.dtype.kind == "O":  # Python ints too large for int64, or mixed objects
            raise ValueError("lengths must be integers that fit in 64 bits")
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


def available_memory(device: object = "cpu") -> int | None:
    """Bytes that can still be allocated on ``device`` (a torch device or its name):
    ``MemAvailable`` for the CPU, the free memory of a CUDA device; None when unknown."""
    kind = getattr(device, "type", None) or str(device).split(":")[0]
    if kind == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    if kind != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(nbytes: int, what: str, fix: str, device: object = "cpu") -> None:
    """A ValueError saying ``what`` needs ``nbytes`` and what to do instead, when that is
    more than ``device`` has free — raised before anything is allocated.

    >>> check_fits(2**70, "a [1, 2**35, 2**35] mask", "use a BlockMask")
    Traceback (most recent call last):
    ...
    ValueError: a [1, 2**35, 2**35] mask needs 1,073,741,824.0 TiB, more than the memory available on cpu (...); use a BlockMask
    """
    free = available_memory(device)
    if free is not None and nbytes > free:
        raise ValueError(
            f"{what} needs {format_bytes(nbytes)}, more than the memory available on "
            f"{device} ({format_bytes(free)}); {fix}"
        )


def format_bytes(n: int) -> str:
    """``n`` bytes in the largest binary unit that keeps it >= 1.

    >>> format_bytes(512), format_bytes(3 * 2**30)
    ('512 B', '3.0 GiB')
    """
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{int(value)} B" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} TiB"
