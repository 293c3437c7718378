"""The memory budget: how many workers, how big a batch, how many shards at once.

``--memory-budget`` bounds the resident memory of the whole job — the driver and every
worker process, summed — except the lengths and the plan, which the driver must hold
(8 bytes per document and ~40 per piece; planning adds ~24 per piece). Memory-mapped
token store pages are file cache, not counted.

Every process costs a *base*, `PROCESS_BASE`: the interpreter with numpy, pyarrow,
tokenizers and packviz loaded (measured: the fork server 74 MiB VmHWM, a fresh driver
80–90 MiB). The driver, the workers, the fork server they are forked from and the
resource tracker Python starts next to them are each counted at it — not what the calling
process held before (a notebook's own data is not the job's) and each task a working set proportional to its work:
tokenizing costs `TOKENIZE_FIXED` plus about `TOKENIZE_BYTES_PER_BYTE` bytes per byte of
text in a batch (the parsed text, the tokenizer's encodings of 1,024 documents at a time,
the ids; measured 14.5 at 6.8 MB batches), writing a shard about `SHARD_BYTES_PER_SLOT`
bytes per token slot (four int32 arrays, the gathered tokens, the encoded file; measured
29 for parquet and 21 for npz at 4M slots). From these the budget decides the batch
size, the number of workers that fit, and how many shards are written at once. None of
these choices changes an output byte.

Example:
    >>> parse_bytes("2GB"), parse_bytes("512 MiB"), parse_bytes(1000)
    (2000000000, 536870912, 1000)
    >>> plan = plan_memory(2 * 10**9, workers=4, base=100 * 2**20, shard_slots=2**22)
    >>> plan.workers, plan.batch_bytes // 2**20, plan.shards_at_once
    (4, 8, 4)
    >>> plan_memory(700 * 10**6, workers=4, base=100 * 2**20, shard_slots=2**22).workers
    2
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

PROCESS_BASE = 96 << 20
TOKENIZE_FIXED = 48 << 20
TOKENIZE_BYTES_PER_BYTE = 16
SHARD_BYTES_PER_SLOT = 40
MIN_BATCH_BYTES = 64 << 10
MAX_BATCH_BYTES = 8 << 20
_UNITS = {
    "": 1,
    "B": 1,
    "K": 10**3,
    "KB": 10**3,
    "M": 10**6,
    "MB": 10**6,
    "G": 10**9,
    "GB": 10**9,
    "T": 10**12,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def parse_bytes(value: object) -> int:
    """``2GB``, ``1.5G``, ``512MiB``, ``300000000`` -> bytes (decimal units, *iB binary)."""
    if isinstance(value, bool):
        raise ValueError(f"memory budget must be a size like 2GB, got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)) and 0 < value < 2**63:
        return int(value)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
    unit = m.group(2).upper() if m else None
    if m is None or unit not in _UNITS or float(m.group(1)) <= 0:
        raise ValueError(f"memory budget must be a size like 2GB, 512MB or 1.5GiB, got {value!r}")
    return int(float(m.group(1)) * _UNITS[unit])


@dataclass(frozen=True)
class MemoryPlan:
    """Workers, text bytes per tokenizer batch, and shards written at once."""

    workers: int
    batch_bytes: int
    shards_at_once: int
    base: int


def plan_memory(
    budget: int, *, workers: int, base: int, shard_slots: int, helper: int = 0
) -> MemoryPlan:
    """Fit the job into ``budget`` bytes; fewer workers when all of them do not fit.
    ``helper``: what each worker's helper process costs (the chat template's child that
    renders fine-tuning records), counted for every worker.

    Raises ValueError when even one worker cannot tokenize a minimal batch and write one
    shard within the budget, saying what would fit.
    """
    shard_need = shard_slots * SHARD_BYTES_PER_SLOT
    batch_need = TOKENIZE_FIXED + MIN_BATCH_BYTES * TOKENIZE_BYTES_PER_BYTE
    for w in range(max(1, workers), 0, -1):
        # the driver, w workers, the fork server and multiprocessing's resource tracker;
        # or the driver alone
        processes = w + 3 if w > 1 else 1
        free = budget - processes * base - w * helper
        if free >= max(shard_need, w * batch_need):
            batch = min(MAX_BATCH_BYTES, (free // w - TOKENIZE_FIXED) // TOKENIZE_BYTES_PER_BYTE)
            return MemoryPlan(w, int(batch), int(max(1, min(w, free // shard_need))), base)
    need = base + helper + max(shard_need, batch_need)
    raise ValueError(
        f"--memory-budget {budget / 2**20:,.0f} MiB is too small: one worker needs about "
        f"{need / 2**20:,.0f} MiB ({base / 2**20:,.0f} MiB to start, then "
        f"{batch_need / 2**20:,.0f} MiB to tokenize or {shard_need / 2**20:,.0f} MiB per shard "
        f"of {shard_slots:,} token slots); raise the budget or lower --rows-per-shard"
    )
