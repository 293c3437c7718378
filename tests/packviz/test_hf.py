"""packviz.hf: to_hf_dataset layouts (exact values, any source, in windows), and HF
Trainer on the padded layout with default arguments, exact (column filtering included)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hf_models import max_logit_gap, packed_arrays, packed_logits, reference, tiny

import packviz as pv
from packviz import hf


@pytest.fixture
def arrays():
    return packed_arrays()


def test_padded_layout(arrays):
    ds = pv.to_hf_dataset(arrays)
    assert ds.column_names == ["input_ids", "labels", "position_ids", "attention_mask"]
    assert len(ds) == arrays.n_rows
    got = ds.with_format("numpy")[:]
    for f in ("input_ids", "labels", "position_ids"):
        np.testing.assert_array_equal(got[f], getattr(arrays, f))
    np.testing.assert_array_equal(got["attention_mask"], arrays.doc_ids >= 0)


def test_unpadded_layout_is_what_trl_pack_dataset_writes(arrays):
    ds = pv.to_hf_dataset(arrays, layout="unpadded")
    assert ds.column_names == ["input_ids", "labels", "position_ids", "seq_lengths"]
    row = ds[0]
    assert row["seq_lengths"] == [6, 9, 1, 4] and ds[1]["seq_lengths"] == [10, 11]
    assert row["input_ids"] == arrays.input_ids[0, :20].tolist()
    assert row["labels"] == arrays.labels[0, :20].tolist()
    assert row["position_ids"] == [*range(6), *range(9), 0, *range(4)]
    for r in ds:
        assert sum(r["seq_lengths"]) == len(r["input_ids"]) == len(r["labels"])


@pytest.mark.parametrize("fmt", pv.FORMATS)
@pytest.mark.parametrize("layout", pv.HF_LAYOUTS)
def test_from_files_in_windows(tmp_path, monkeypatch, fmt, layout):
    monkeypatch.setattr(hf, "_WINDOW_SLOTS", 30)  # one row per window
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, 40)
    a = pv.materialize(pv.pack(lengths, 24), [rng.integers(0, 99, n) for n in lengths], pad_id=0)
    path = tmp_path / f"rows.{fmt}"
    pv.save(a, path, metadata={"tokenizer": "abc"})
    want = pv.to_hf_dataset(a, layout=layout)
    for source in (path, str(path), pv.open(path)):
        got = pv.to_hf_dataset(source, layout=layout)
        assert got[:] == want[:]
        assert '"tokenizer": "abc"' in got.info.description


def test_refusals(arrays, tmp_path):
    with pytest.raises(ValueError, match="unknown layout 'flat'; choose one of padded, unpadded"):
        pv.to_hf_dataset(arrays, layout="flat")
    lab = arrays.labels.copy()
    lab[1, 10] = arrays.input_ids[1, 10]
    import dataclasses

    with pytest.raises(ValueError, match="labels at row 1, slot 10"):
        pv.to_hf_dataset(dataclasses.replace(arrays, labels=lab))
    empty = pv.materialize(pv.pack([], 8), [], pad_id=0)
    assert (
        len(pv.to_hf_dataset(empty)) == 0 and len(pv.to_hf_dataset(empty, layout="unpadded")) == 0
    )


@pytest.mark.parametrize("mode", ["dense", "flattened"])
def test_trainer_on_the_padded_layout_is_exact(tmp_path, arrays, mode):
    """`Trainer` with default arguments drops columns a model does not take: all four
    survive, and the first step's logits, loss and gradients equal the pieces alone."""
    from test_readme import Recorder, Reference
    from transformers import Trainer, TrainingArguments

    model = tiny("qwen2", "sdpa")
    model.train()
    ref = Reference(model, arrays)
    seen = Recorder(model)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1)
    dataset = pv.to_hf_dataset(arrays)
    trainer = Trainer(model, args, train_dataset=dataset, data_collator=pv.collate_with(mode))
    trainer.train()
    kwargs, out = seen.calls[0]
    ref.check_forward(kwargs, out.logits, out.loss)
    ref.check_grads(seen.grads)
    assert kwargs["input_ids"].dtype == torch.long


def test_the_padded_layout_is_exact_only_through_pv_collate(arrays):
    """What the docs warn about: HF's default collator hands the 2-D ``attention_mask``
    column to the model as it is, and the documents of a row attend to each other (no
    error, a plausible loss); `pv.collate_with` on the same rows is exact."""
    from transformers import default_data_collator

    model = tiny("llama", "sdpa").eval()
    ds = pv.to_hf_dataset(arrays)
    rows = [ds[i] for i in range(len(ds))]
    with torch.no_grad():
        want, _ = reference(model, arrays)
        naive = default_data_collator(rows)
        assert naive["attention_mask"].shape == (arrays.n_rows, arrays.max_len)  # 2-D
        leaked = packed_logits(model(**naive).logits, arrays, flattened=False)
        assert max_logit_gap(leaked, want) > 1e-2
        for mode in ("dense", "flattened"):
            out = model(**pv.collate_with(mode)(rows)).logits
            assert max_logit_gap(packed_logits(out, arrays, mode == "flattened"), want) < 1e-4
