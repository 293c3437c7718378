"""PyTorch ``Dataset`` and ``collate`` for packed rows.

Each item is one packed row; ``collate`` stacks rows into int64 (``long``) tensors, which
embeddings and ``cross_entropy`` expect, and adds what the attention implementation needs:

- ``attention="document"``: a dense bool mask ``[B, L, L]`` (`packviz.masks.document_mask`)
  for eager / SDPA attention;
- ``attention="varlen"``: ``cu_seqlens`` (int32) and ``max_seqlen`` recomputed for this
  batch, for flash-attn varlen and transformers' padding-free path (with ``position_ids``);
- ``attention=None``: nothing beyond ids, labels and positions.

Example:
    >>> from torch.utils.data import DataLoader
    >>> from packviz.packing import pack
    >>> from packviz.layout import materialize
    >>> a = materialize(pack([3, 2, 4], 4), [[1, 2, 3], [4, 5], [6, 7, 8, 9]], pad_id=0)
    >>> batch = next(iter(DataLoader(PackedDataset(a), batch_size=2, collate_fn=collate)))
    >>> batch["input_ids"].tolist(), batch["cu_seqlens"].tolist()
    ([[6, 7, 8, 9], [1, 2, 3, 0]], [0, 4, 7])
"""

from __future__ import annotations

from functools import partial

import numpy as np

from packviz.layout import PackedArrays, cu_seqlens_from_doc_ids

ATTENTION = (None, "document", "varlen")


class PackedDataset:
    """Map-style dataset over `PackedArrays` rows (numpy views, no copies until collate)."""

    def __init__(self, arrays: PackedArrays) -> None:
        if arrays.input_ids is None or arrays.labels is None:
            raise ValueError("these arrays have no input_ids/labels (a lengths-only plan?)")
        if arrays.doc_ids is None or arrays.position_ids is None:
            raise ValueError("these arrays need doc_ids and position_ids (save all fields)")
        self.arrays = arrays

    def __len__(self) -> int:
        return self.arrays.n_rows

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        a = self.arrays
        return {
            "input_ids": a.input_ids[i],
            "labels": a.labels[i],
            "position_ids": a.position_ids[i],
            "doc_ids": a.doc_ids[i],
        }


def collate(batch: list[dict], *, attention: str | None = "varlen") -> dict:
    """Stack rows into long tensors and add the attention inputs (see module docstring);
    `collate_with` fixes the choice for a ``DataLoader``."""
    import torch

    if attention not in ATTENTION:
        raise ValueError(f"unknown attention {attention!r}; choose one of {ATTENTION}")
    doc_ids = np.stack([b["doc_ids"] for b in batch])
    out = {
        k: torch.from_numpy(np.stack([b[k] for b in batch]).astype(np.int64))
        for k in ("input_ids", "labels", "position_ids")
    }
    out["doc_ids"] = torch.from_numpy(doc_ids.astype(np.int64))
    if attention == "document":
        from packviz.masks import document_mask

        out["attention_mask"] = document_mask(doc_ids, device="cpu")
    elif attention == "varlen":
        cu, max_seqlen = cu_seqlens_from_doc_ids(doc_ids)
        out["cu_seqlens"] = torch.from_numpy(cu)
        out["max_seqlen"] = max_seqlen
    return out


def collate_with(attention: str | None):
    """``collate`` with a fixed ``attention`` choice (picklable, for worker processes)."""
    return partial(collate, attention=attention)
