"""PyTorch ``Dataset`` and ``collate`` for packed rows: batches a model takes as they come.

Each item is one packed row under names every Hugging Face causal LM's ``forward``
accepts — ``input_ids``, ``labels``, ``position_ids`` and ``attention_mask`` (1 = real
token, 0 = padding) — so HF ``Trainer``'s column filter keeps them all. The collate
finds the pieces again from what survives: a piece starts at a real token with position
0 (a padding slot also has position 0 and label -100; the real-token mask tells a
one-token piece from padding). For the row ``[a b c x y _ _]``::

    attention_mask  1 1 1 1 1 0 0      position_ids  0 1 2 0 1 0 0
    pieces          0 0 0 1 1 . .      (a new piece wherever a real position is 0)

``collate(batch, attention=...)`` then hands the model one of (`collate_with` fixes
the choice for a ``DataLoader``):

- ``"dense"``: ``[B, L]`` ids, labels and positions, and ``attention_mask`` as a 4-D
  additive float ``[B, 1, L, L]`` in ``dtype`` (0 = may attend, ``finfo(dtype).min``
  = blocked; a padding query sees itself; `packviz.additive_mask` with ``fill="min"``,
  built a row at a time so no bool copy of the whole batch sits beside it, and its size
  checked against free memory first). HF passes a 4-D mask through untouched, so it is
  exact for eager and SDPA attention at any config. Never a bool mask: eager attention
  adds the mask to its scores, and a bool one blocks nothing.
- ``"flattened"`` (alias ``"varlen"``): padding removed, ``[1, T]`` ``input_ids``,
  ``labels``, ``position_ids``; ``cu_seq_lens_q/k`` (int32) and ``max_length_q/k``, the
  keys of transformers' ``DataCollatorWithFlattening(return_flash_attn_kwargs=True)``
  (flash-attn reads them); and ``use_cache=False``. Why the last: for eager / SDPA /
  flex, transformers finds the pieces from ``position_ids`` only when no 2-D mask is
  given *and* no KV cache is built (``masking_utils._preprocess_mask_arguments``), and a
  model builds a cache whenever ``use_cache`` is on — the default in every config. An
  explicit ``use_cache=False`` overrides the config, so the batch is exact as it is; a
  training batch never needs a cache. No ``attention_mask`` here, ever: any 2-D mask
  (even all ones) turns the piece search off.
- ``"flex"``: ``[B, L]`` tensors and ``attention_mask`` = a FlexAttention ``BlockMask``
  (`packviz.flex_block_mask`) on ``device``, for ``attn_implementation="flex_attention"``.

Whatever the mode, a batch that would train a target across documents is refused: a
label that is not -100 at a piece start (it would be predicted from the previous
document's last token once the model shifts its labels) or at padding is a ValueError
naming the row and slot. Items from `PackedDataset` always pass.

Example:
    >>> from torch.utils.data import DataLoader
    >>> from packviz.packing import pack
    >>> from packviz.layout import materialize
    >>> a = materialize(pack([3, 2, 4], 4), [[1, 2, 3], [4, 5], [6, 7, 8, 9]], pad_id=0)
    >>> loader = DataLoader(PackedDataset(a), batch_size=2, collate_fn=collate_with("flattened"))
    >>> batch = next(iter(loader))
    >>> batch["input_ids"].tolist(), batch["cu_seq_lens_q"].tolist(), batch["use_cache"]
    ([[6, 7, 8, 9, 1, 2, 3]], [0, 4, 7], False)
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from packviz._args import as_list
from packviz.choices import COLLATE_MODES, CollateMode, check_choice
from packviz.layout import PackedArrays
from packviz.limits import check_fits
from packviz.reader import PackedFile
from packviz.validate import IGNORE_INDEX, check_arrays

if TYPE_CHECKING:
    import torch

#: The names of an item (all accepted by HF causal LMs' ``forward``).
ITEM_KEYS = ("input_ids", "labels", "position_ids", "attention_mask")


def _need_training_fields(fields, name: str) -> None:
    missing = [f for f in ("input_ids", "labels", "position_ids", "doc_ids") if f not in fields]
    if missing:
        raise ValueError(
            f"{name} lack {', '.join(missing)}; training needs all four fields "
            "(save them all; a lengths-only plan has no input_ids/labels)"
        )


def item_of(arrays: PackedArrays, j: int) -> dict[str, np.ndarray]:
    """Row ``j`` of ``arrays`` as a dataset item (`ITEM_KEYS`; numpy, dtypes kept)."""
    return {
        "input_ids": arrays.input_ids[j],
        "labels": arrays.labels[j],
        "position_ids": arrays.position_ids[j],
        "attention_mask": (arrays.doc_ids[j] >= 0).astype(np.int64),
    }


class PackedDataset:
    """Map-style dataset over packed rows: `PackedArrays` in memory (checked once), or a
    lazily read file (`packviz.open`; each window checked as it is read).

    Any row of a memory-mapped ``.npz`` / ``.pt`` costs the same, so a shuffling sampler
    is fine there; a parquet file is read by row groups, so shuffle it with
    `packviz.PackedIterableDataset` (row groups, then rows within) instead."""

    def __init__(self, source: PackedArrays | PackedFile) -> None:
        if isinstance(source, PackedFile):
            _need_training_fields(source.fields, f"the rows of {source.name}")
        elif isinstance(source, PackedArrays):
            present = [f for f in ITEM_KEYS[:3] + ("doc_ids",) if getattr(source, f) is not None]
            _need_training_fields(present, "the arrays")
            check_arrays(source)
        else:
            raise TypeError(
                f"PackedDataset takes PackedArrays or pv.open(path), got {type(source).__name__}"
            )
        self.source = source

    def __len__(self) -> int:
        return self.source.n_rows

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        if isinstance(self.source, PackedFile):
            window, j = self.source.row(i)
            return item_of(window, j)
        return item_of(self.source, i)


def _check_batch(batch: object) -> list:
    """``batch`` as a list of item dicts, or a TypeError saying what an item is."""
    if isinstance(batch, Mapping):
        raise TypeError(
            "collate takes a list of items (dicts, one per row), got one dict; wrap it in a "
            "list, or pass the rows of pv.PackedDataset"
        )
    items = as_list("batch", batch, "items (dicts from pv.PackedDataset)")
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise TypeError(
                f"batch item {i} is a {type(item).__name__}, not a dict with "
                f"{', '.join(ITEM_KEYS)} (the items of pv.PackedDataset)"
            )
    return items


def _stack(batch: list[dict], key: str) -> np.ndarray:
    try:
        rows = [np.asarray(b[key]) for b in batch]
    except KeyError:
        raise ValueError(
            f"a batch item has no {key!r}; items need {', '.join(ITEM_KEYS)} "
            "(pv.PackedDataset and pv.to_hf_dataset give them)"
        ) from None
    shapes = {r.shape for r in rows}
    if len(shapes) > 1 or any(r.ndim != 1 for r in rows):
        widths = ", ".join(sorted({str(r.shape) for r in rows})[:4])
        raise ValueError(
            f"{key} of the batch items are not rows of one length (shapes {widths}); collate "
            'stacks padded rows: use pv.to_hf_dataset(..., layout="padded") or '
            "pv.PackedDataset (an unpadded layout gives rows of different lengths)"
        )
    out = np.stack(rows)
    if out.ndim != 2 or out.dtype == bool or out.dtype.kind not in "iu":
        raise ValueError(f"{key} must be equal-length integer rows, got {out.dtype} {out.shape}")
    return out.astype(np.int64, copy=False)


def piece_ids(position_ids: np.ndarray, real: np.ndarray) -> np.ndarray:
    """``[B, L]`` piece numbers (from 0 in each row; -1 at padding) from positions and the
    real-token mask: a piece starts at every real slot whose position is 0.

    >>> piece_ids(np.array([[0, 1, 0, 0, 1, 0]]), np.array([[1, 1, 1, 1, 1, 0]])).tolist()
    [[0, 0, 1, 2, 2, -1]]
    """
    real = real.astype(bool)
    start = real & (position_ids == 0)
    cont = np.zeros_like(real)  # continues the piece of the slot before
    cont[:, 1:] = real[:, :-1] & (position_ids[:, 1:] == position_ids[:, :-1] + 1)
    bad = real & ~start & ~cont
    if bad.any():
        r, s = np.unravel_index(int(np.argmax(bad)), bad.shape)
        raise ValueError(
            f"position_ids at row {r}, slot {s} is {position_ids[r, s]}: in a real token "
            "a position is 0 (a new piece) or one more than the slot before"
        )
    return np.where(real, np.cumsum(start, axis=1) - 1, -1)


def collate(
    batch: list[dict],
    *,
    attention: CollateMode = "flattened",
    dtype: torch.dtype | str | None = None,
    device: torch.device | str = "cpu",
    block_size: int = 128,
) -> dict:
    """Stack rows into int64 tensors plus what the attention needs (module docstring).

    Args:
        attention: ``"dense"``, ``"flattened"`` (``"varlen"``) or ``"flex"``.
        dtype: the dense mask's float dtype: the model's (default float32).
        device: where the flex ``BlockMask`` is built (a DataLoader worker: keep "cpu"
            and move it; in the main process, the model's device).
        block_size: the flex ``BlockMask`` block size.
    """
    import torch

    mode = check_choice("attention", attention, COLLATE_MODES)
    _check_options(dtype, device, block_size)
    batch = _check_batch(batch)
    if not batch:
        raise ValueError("an empty batch")
    ids, labels, pos = (_stack(batch, k) for k in ("input_ids", "labels", "position_ids"))
    real = _stack(batch, "attention_mask") != 0
    if not ids.shape == labels.shape == pos.shape == real.shape:
        raise ValueError("input_ids, labels, position_ids and attention_mask differ in shape")
    pieces = piece_ids(pos, real)
    _check_labels(labels, real & (pos == 0) | ~real)
    if mode in ("flattened", "varlen"):
        return _flattened(ids, labels, pos, real, pieces)
    out = {k: torch.from_numpy(v) for k, v in (("input_ids", ids), ("labels", labels))}
    out["position_ids"] = torch.from_numpy(pos)
    if mode == "dense":
        out["attention_mask"] = _dense_mask(pieces, _float_dtype(dtype))
    else:
        from packviz.blockmask import flex_block_mask

        out["attention_mask"] = flex_block_mask(pieces, device=device, block_size=block_size)
    return out


def _flattened(ids, labels, pos, real, pieces) -> dict:
    import torch

    flat = real.reshape(-1)
    starts = (real & (pos == 0)).reshape(-1)[flat]
    cu = np.append(np.flatnonzero(starts), flat.sum()).astype(np.int32)
    longest = int(np.diff(cu).max(initial=0))
    cu_t = torch.from_numpy(cu)
    return {
        "input_ids": torch.from_numpy(ids.reshape(-1)[flat][None]),
        "labels": torch.from_numpy(labels.reshape(-1)[flat][None]),
        "position_ids": torch.from_numpy(pos.reshape(-1)[flat][None]),
        "cu_seq_lens_q": cu_t,
        "cu_seq_lens_k": cu_t,
        "max_length_q": longest,
        "max_length_k": longest,
        "use_cache": False,
    }


def _check_labels(labels: np.ndarray, untrained: np.ndarray) -> None:
    """Refuse a target at a piece start or at padding (``untrained`` slots)."""
    bad = untrained & (labels != IGNORE_INDEX)
    if bad.any():
        r, s = np.unravel_index(int(np.argmax(bad)), bad.shape)
        raise ValueError(
            f"labels at row {r}, slot {s} is {labels[r, s]} where a piece starts or at "
            "padding; it must be -100 (a target there trains across documents). "
            "pv.PackedDataset items always have it."
        )


#: What the message of a dense mask too large for memory suggests.
_DENSE_FIX = (
    'use collate_with("flattened") (no L x L mask: memory grows with the tokens) or '
    'collate_with("flex") (a BlockMask), or fewer rows per batch'
)


#: The bool mask beside the float one is built for this many bytes of rows at a time
#: (one row at least): small batches in one call, long rows one by one.
_BOOL_CHUNK_BYTES = 8 << 20


def _dense_mask(pieces: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """The document mask of ``[B, L]`` piece ids as a 4-D additive float mask
    ``[B, 1, L, L]`` (0 = may attend, ``finfo(dtype).min`` = blocked), a row at a time.

    >>> import torch
    >>> _dense_mask(np.array([[0, 0, -1]]), torch.float32)[0, 0].tolist()
    [[0.0, -3.4028234663852886e+38, -3.4028234663852886e+38], [0.0, 0.0, -3.4028234663852886e+38], [-3.4028234663852886e+38, -3.4028234663852886e+38, 0.0]]
    """
    import torch

    from packviz.masks import additive_mask, document_mask

    b, n = pieces.shape
    step = max(1, _BOOL_CHUNK_BYTES // max(n * n, 1))  # rows per bool mask
    nbytes = b * n * n * torch.finfo(dtype).bits // 8 + min(b, step) * n * n
    check_fits(nbytes, f"a dense [{b}, 1, {n}, {n}] {dtype} attention mask", _DENSE_FIX)
    out = torch.empty((b, 1, n, n), dtype=dtype)
    for r in range(0, b, step):  # a loop over blocks of rows
        allowed = document_mask(pieces[r : r + step], device="cpu")
        additive_mask(allowed, fill="min", out=out[r : r + step, 0])
    return out


def _check_options(dtype, device, block_size) -> None:
    """The options of every mode, checked whichever mode uses them (a wrong one is a
    mistake even where it is ignored)."""
    from packviz.masks import _resolve
    from packviz.pieces import check_block_size

    _float_dtype(dtype)
    _resolve(device)
    check_block_size(block_size)


def _float_dtype(dtype) -> torch.dtype:
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a torch float dtype (the model's), got {dtype!r}")
    return dtype


def collate_with(
    attention: CollateMode,
    *,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str = "cpu",
    block_size: int = 128,
):
    """``collate`` with its options fixed, for ``DataLoader(collate_fn=...)`` or
    ``Trainer(data_collator=...)`` (picklable, for worker processes)."""
    check_choice("attention", attention, COLLATE_MODES)
    _check_options(dtype, device, block_size)
    return partial(collate, attention=attention, dtype=dtype, device=device, block_size=block_size)
