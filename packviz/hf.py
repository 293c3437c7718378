"""Packed rows as a Hugging Face ``datasets.Dataset``, laid out for the trainer that reads it.

Two layouts, because HF's trainers find piece boundaries in different places:

- ``"padded"``: full rows, columns ``input_ids``, ``labels``, ``position_ids`` and
  ``attention_mask`` (1 = real token). Every name is in a causal LM's ``forward``, so
  ``Trainer`` with default arguments keeps them all; ``data_collator=
  pv.collate_with("dense" | "flattened" | "flex")`` rebuilds the pieces from them.
  **The collator is not optional.** ``attention_mask`` here is the 2-D real-token mask:
  HF's default collator (no ``data_collator``, or ``DataCollatorWithPadding``) hands it
  to the model as it is, and with a 2-D mask the documents of a row attend to each other
  — no error, a plausible loss (tested: ``tests/packviz/test_hf.py``).
- ``"unpadded"``: the real tokens of each row only, columns ``input_ids``, ``labels``,
  ``position_ids`` and ``seq_lengths`` (the row's piece lengths, summing to the row's
  length), as TRL's ``pack_dataset`` writes them. ``SFTTrainer`` with
  ``padding_free=True, packing=False, max_length=None`` flattens the batch and restarts
  positions at every ``seq_lengths`` boundary: no attention across documents. (Padded
  rows there fail or leak: TRL's ``seq_lengths`` must cover every token of a row.)

Rows are converted a window at a time (numpy to Arrow, no Python loop over rows or
tokens); the dataset is held in memory as Arrow.

Example:
    >>> import packviz as pv
    >>> a = pv.materialize(pv.pack([3, 2], 4), [[1, 2, 3], [4, 5]], pad_id=0)
    >>> ds = to_hf_dataset(a, layout="unpadded")
    >>> ds[1]
    {'input_ids': [4, 5], 'labels': [-100, 5], 'position_ids': [0, 1], 'seq_lengths': [2]}
    >>> to_hf_dataset(a)[1]["attention_mask"]
    [1, 1, 0, 0]
"""

from __future__ import annotations

import json
import os
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from packviz._formats import large_lists, seq_lengths_column
from packviz.choices import HF_LAYOUTS, HFLayout, check_choice
from packviz.layout import PackedArrays
from packviz.reader import PackedFile
from packviz.reader import open as open_file
from packviz.torch_data import PackedDataset

if TYPE_CHECKING:
    import datasets

#: Slots converted per window.
_WINDOW_SLOTS = 1 << 22


def to_hf_dataset(
    source: PackedArrays | PackedFile | str | os.PathLike, *, layout: HFLayout = "padded"
) -> datasets.Dataset:
    """``source`` (arrays, an open file, or a path) as a ``datasets.Dataset`` in
    ``layout`` (module docstring); the packviz metadata goes in ``info.description``.

    Train the ``"padded"`` layout with ``data_collator=pv.collate_with(...)`` only: HF's
    default collator passes its 2-D ``attention_mask`` on, and documents attend across.
    The ``"unpadded"`` layout is for TRL's ``SFTTrainer(padding_free=True)``."""
    import datasets
    import pyarrow as pa

    check_choice("layout", layout, HF_LAYOUTS)
    if isinstance(source, (str, os.PathLike)):
        source = open_file(source)
    PackedDataset(source)  # the checks: training fields present, arrays valid
    n = source.n_rows
    step = max(1, _WINDOW_SLOTS // max(source.max_len, 1))
    if isinstance(source, PackedFile):
        step = max(step, source.read_unit)
        window = source.rows
    else:
        window = partial(_slice, source)
    convert = _padded if layout == "padded" else _unpadded
    # (an empty source still gives one empty batch: the columns)
    batches = [convert(window(r, r + step)) for r in range(0, n, step) or [0]]
    table = pa.Table.from_batches(batches)
    info = datasets.DatasetInfo(description=json.dumps(source.metadata, sort_keys=True))
    return datasets.Dataset(table, info=info)


def _slice(a: PackedArrays, start: int, stop: int) -> PackedArrays:
    return PackedArrays(
        input_ids=a.input_ids[start:stop],
        doc_ids=a.doc_ids[start:stop],
        position_ids=a.position_ids[start:stop],
        labels=a.labels[start:stop],
        cu_seqlens=a.cu_seqlens,  # not used here
        max_seqlen=a.max_seqlen,
        row_index=a.row_index[start:stop],
    )


def _padded(w: PackedArrays):
    import pyarrow as pa

    width = w.max_len
    real = (w.doc_ids >= 0).astype(np.int8)
    columns = {
        "input_ids": w.input_ids,
        "labels": w.labels,
        "position_ids": w.position_ids,
        "attention_mask": real,
    }
    arrays = [
        pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(v).reshape(-1)), width)
        for v in columns.values()
    ]
    return pa.RecordBatch.from_arrays(arrays, names=list(columns))


def _unpadded(w: PackedArrays):
    import pyarrow as pa

    real = w.doc_ids >= 0
    offsets = np.zeros(w.n_rows + 1, dtype=np.int64)
    np.cumsum(real.sum(axis=1), out=offsets[1:])
    names = ("input_ids", "labels", "position_ids")
    arrays = [large_lists(getattr(w, f)[real], offsets) for f in names]
    arrays.append(seq_lengths_column(w.doc_ids))
    return pa.RecordBatch.from_arrays(arrays, names=[*names, "seq_lengths"])
