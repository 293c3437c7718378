"""The batches an audit feeds a model: one small function per input path.

Each path is the batch a training setup hands to ``model(**batch)``. The three packviz
recommends are exactly what `packviz.collate` produces (``dense_additive``,
``flattened``, ``flex``), so the audit checks the batches users actually train on; the
others are the common ways of getting it wrong. For two rows
``doc_ids [[4 4 9 -1], [7 7 7 7]]``:

    path            what reaches the model
    dense_additive  collate_with("dense"): input_ids, labels, position_ids [2, 4]; float
                    mask [2, 1, 4, 4] (0 / finfo.min) in the model's dtype
    dense_bool      the same with the bool document mask (True = may attend)
    flattened       collate_with("flattened"): padding removed, input_ids, labels,
                    position_ids [1, 7], cu_seq_lens_q/k [0, 2, 3, 7], max_length_q/k 4
                    (DataCollatorWithFlattening's keys) and use_cache=False
    position_ids    input_ids, labels, position_ids [2, 4] and nothing else (what a
                    padding-free collator gives without use_cache=False)
    flex            collate_with("flex"): a FlexAttention BlockMask as the mask
    causal          input_ids, labels: plain causal attention over the whole row
    seq_idx         flattened + seq_idx [[0 0 1 2 2 2 2]] (what state layers need)

Apart from the flattened batches, no path passes ``use_cache``: at a model's default
config the audit shows what that default does.

    >>> import numpy as np
    >>> r = AuditRows.from_doc_ids(np.array([[4, 4, 9, -1], [7, 7, 7, 7]]), vocab_size=16)
    >>> b = flattened_inputs(r, device="cpu")
    >>> b["position_ids"].tolist(), b["cu_seq_lens_q"].tolist()
    ([[0, 1, 0, 0, 1, 2, 3]], [0, 2, 3, 7])
    >>> seq_idx_inputs(r, device="cpu")["seq_idx"].tolist()
    [[0, 0, 1, 2, 2, 2, 2]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from packviz.layout import IGNORE_INDEX, PackedArrays
from packviz.pieces import piece_lengths, piece_start_slots

if TYPE_CHECKING:
    import torch

#: Rows an audit runs when none are named: the busiest ones (a leak needs two pieces).
DEFAULT_ROWS = 2


@dataclass(frozen=True)
class AuditRows:
    """The packed rows an audit runs: int64 ``[B, L]`` arrays and their plan row numbers."""

    input_ids: np.ndarray
    labels: np.ndarray
    position_ids: np.ndarray
    doc_ids: np.ndarray
    row_index: np.ndarray

    @property
    def real(self) -> np.ndarray:
        """Bool ``[B, L]``: the slots that hold a token (not padding)."""
        return self.doc_ids >= 0

    @classmethod
    def from_doc_ids(
        cls,
        doc_ids: np.ndarray,
        *,
        vocab_size: int,
        input_ids: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        position_ids: np.ndarray | None = None,
        row_index: np.ndarray | None = None,
        seed: int = 0,
    ) -> AuditRows:
        """Rows from their ``doc_ids``; what is missing follows packviz's layout: random
        ids (seeded, below ``vocab_size``) where there are no ``input_ids``, labels = ids
        with -100 at padding and piece starts, positions restarting at 0 in every piece."""
        doc_ids = np.asarray(doc_ids, dtype=np.int64)
        if doc_ids.ndim != 2 or doc_ids.size == 0:
            raise ValueError(f"doc_ids must be a non-empty [rows, L] array, got {doc_ids.shape}")
        real = doc_ids >= 0
        starts = piece_start_slots(doc_ids)
        slot = np.arange(doc_ids.shape[1])
        if input_ids is None:
            rng = np.random.default_rng(seed)
            input_ids = np.where(real, rng.integers(0, vocab_size, doc_ids.shape), 0)
        input_ids = np.asarray(input_ids, dtype=np.int64)
        bad = input_ids[real & ((input_ids < 0) | (input_ids >= vocab_size))]
        if bad.size:
            raise ValueError(
                f"token id {int(bad[0])} is outside the model's vocabulary of {vocab_size}: "
                "audit arrays tokenized for this model, or build the tiny model with a "
                f"vocabulary that large (load_model(name, vocab_size={int(input_ids.max()) + 1}))"
            )
        # padding ids never reach a real token's output; keep them inside the embedding
        input_ids = np.where(real, input_ids, np.clip(input_ids, 0, vocab_size - 1))
        if labels is None:
            labels = np.where(real & (starts != slot), input_ids, IGNORE_INDEX)
        if position_ids is None:
            position_ids = np.where(real, slot - starts, 0)
        if row_index is None:
            row_index = np.arange(doc_ids.shape[0])
        as64 = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
        return cls(as64(input_ids), as64(labels), as64(position_ids), doc_ids, as64(row_index))


def select_rows(arrays: PackedArrays, rows=None, *, vocab_size: int, seed: int = 0) -> AuditRows:
    """The rows of ``arrays`` to audit: ``rows`` (indices into ``arrays``), or by default
    the `DEFAULT_ROWS` rows with the most pieces (ties: lowest row first)."""
    if arrays.doc_ids is None:
        raise ValueError("these arrays have no doc_ids; save the doc_ids field to audit them")
    n = arrays.n_rows
    if n == 0:
        raise ValueError("these arrays have no rows to audit")
    if rows is None:
        per_row = piece_lengths(arrays.doc_ids)[1]
        rows = np.sort(np.argsort(-per_row, kind="stable")[:DEFAULT_ROWS])
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    if rows.size == 0 or rows.min() < -n or rows.max() >= n:
        raise ValueError(f"rows must be indices of the {n} rows given, got {rows.tolist()}")

    def take(a):
        return None if a is None else a[rows]

    return AuditRows.from_doc_ids(
        arrays.doc_ids[rows],
        vocab_size=vocab_size,
        input_ids=take(arrays.input_ids),
        labels=take(arrays.labels),
        position_ids=take(arrays.position_ids),
        row_index=arrays.row_index[rows],
        seed=seed,
    )


def _long(a: np.ndarray, device) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(device)


def _rows(r: AuditRows, device) -> dict:
    return {
        "input_ids": _long(r.input_ids, device),
        "labels": _long(r.labels, device),
        "position_ids": _long(r.position_ids, device),
    }


def _collated(r: AuditRows, mode: str, *, device, dtype=None) -> dict:
    """The batch `packviz.collate` hands a model for these rows (what a trainer gets from
    ``pv.PackedDataset`` + ``pv.collate_with(mode)``), on ``device``."""
    import torch

    from packviz.torch_data import collate

    items = [
        {
            "input_ids": r.input_ids[i],
            "labels": r.labels[i],
            "position_ids": r.position_ids[i],
            "attention_mask": r.real[i].astype(np.int64),
        }
        for i in range(r.doc_ids.shape[0])
    ]
    batch = collate(items, attention=mode, dtype=dtype, device=device)
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def dense_additive_inputs(r: AuditRows, *, device, dtype=None) -> dict:
    """``pv.collate_with("dense")``: rows + a float additive document mask
    ``[B, 1, L, L]`` in the model's dtype."""
    return _collated(r, "dense", device=device, dtype=dtype)


def dense_bool_inputs(r: AuditRows, *, device, dtype=None) -> dict:
    """Rows + the bool document mask ``[B, 1, L, L]`` (True = may attend)."""
    from packviz.masks import document_mask

    return {**_rows(r, device), "attention_mask": document_mask(r.doc_ids, device=device)[:, None]}


def flattened_inputs(r: AuditRows, *, device, dtype=None) -> dict:
    """``pv.collate_with("flattened")``: padding removed, one ``[1, T]`` sequence with
    transformers' varlen keys and ``use_cache=False``."""
    return _collated(r, "flattened", device=device)


def position_ids_inputs(r: AuditRows, *, device, dtype=None) -> dict:
    """Rows with their ``position_ids`` and no mask (transformers' padding-free path)."""
    return _rows(r, device)


def flex_inputs(r: AuditRows, *, device, dtype=None) -> dict:
    """``pv.collate_with("flex")``: rows + a FlexAttention ``BlockMask`` as the
    ``attention_mask``."""
    return _collated(r, "flex", device=device)


def causal_inputs(r: AuditRows, *, device, dtype=None) -> dict:
    """Rows as if each were one sequence: ids and labels only."""
    return {"input_ids": _long(r.input_ids, device), "labels": _long(r.labels, device)}


def seq_idx_inputs(r: AuditRows, *, device, dtype=None) -> dict:
    """Flattened + ``seq_idx`` (int32, piece number per token) + ``use_cache=False``, as
    ``DataCollatorWithFlattening(return_seq_idx=True)`` and TRL hand them to state layers."""
    import torch

    lengths, _ = piece_lengths(r.doc_ids)
    seq_idx = np.repeat(np.arange(lengths.size), lengths)
    out = flattened_inputs(r, device=device)  # carries use_cache=False
    out["seq_idx"] = _long(seq_idx[None], device).to(torch.int32)
    return out


#: path -> the function that builds its batch (all take ``(rows, *, device, dtype)``).
BUILDERS: dict[str, Callable[..., dict]] = {
    "dense_additive": dense_additive_inputs,
    "dense_bool": dense_bool_inputs,
    "flattened": flattened_inputs,
    "position_ids": position_ids_inputs,
    "flex": flex_inputs,
    "causal": causal_inputs,
    "seq_idx": seq_idx_inputs,
}
