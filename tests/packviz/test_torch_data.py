"""packviz.torch_data: DataLoader batches with long tensors and per-batch attention inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import packviz as pv


@pytest.fixture
def arrays():
    ids = [np.arange(n) + 1 for n in (3, 2, 4, 6, 1)]
    return pv.materialize(pv.pack([len(x) for x in ids], 6), ids, pad_id=0)


def test_varlen_batches(arrays):
    loader = DataLoader(pv.PackedDataset(arrays), batch_size=2, collate_fn=pv.collate)
    batch = next(iter(loader))
    assert batch["input_ids"].dtype == torch.long and batch["input_ids"].shape == (2, 6)
    # best fit, desc, max_len 6: row 0 = [6], row 1 = [4, 2]
    assert arrays.doc_ids[:2].tolist() == [[3] * 6, [2] * 4 + [1] * 2]
    assert batch["cu_seqlens"].tolist() == [0, 6, 10, 12]
    assert batch["cu_seqlens"].dtype == torch.int32
    assert batch["max_seqlen"] == 6
    assert torch.equal(batch["labels"], torch.from_numpy(arrays.labels[:2]).long())


def test_document_mask_batches(arrays):
    loader = DataLoader(
        pv.PackedDataset(arrays), batch_size=3, collate_fn=pv.collate_with("document")
    )
    batch = next(iter(loader))
    assert torch.equal(batch["attention_mask"], pv.document_mask(arrays.doc_ids[:3], device="cpu"))
    plain = pv.collate([pv.PackedDataset(arrays)[0]], attention=None)
    assert set(plain) == {"input_ids", "labels", "position_ids", "doc_ids"}


def test_errors(arrays):
    with pytest.raises(ValueError, match="unknown attention"):
        pv.collate([pv.PackedDataset(arrays)[0]], attention="flash")
    with pytest.raises(ValueError, match="lengths-only"):
        pv.PackedDataset(pv.materialize(pv.pack([3], 4), None, pad_id=0))
