"""packviz.torch_data: items under names HF models accept; collate modes that are exact
as they come, through stock HF causal LMs at their default config (each piece run alone
is the reference); negative controls show the checks would catch a leak."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hf_models import (
    FAMILIES,
    max_logit_gap,
    packed_arrays,
    packed_logits,
    reference,
    tiny,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

import packviz as pv
from packviz._reference import reference_collate, reference_pool_any
from packviz.torch_data import piece_ids

TOL = 1e-4


@pytest.fixture
def arrays():
    return packed_arrays()


def items_of(arrays):
    ds = pv.PackedDataset(arrays)
    return [ds[i] for i in range(len(ds))]


def test_items_carry_only_names_a_model_accepts(arrays):
    item = pv.PackedDataset(arrays)[0]
    assert list(item) == ["input_ids", "labels", "position_ids", "attention_mask"]
    assert item["attention_mask"].tolist() == [1] * 20 + [0] * 4
    assert item["input_ids"].dtype == np.int32  # as stored; collate widens


def test_pieces_come_back_from_positions_and_the_real_token_mask(arrays):
    # row 0: pieces 6, 9, 1 (one token: position 0, label -100, like padding), 4, then padding
    real = arrays.doc_ids >= 0
    got = piece_ids(arrays.position_ids.astype(np.int64), real)
    assert got[0].tolist() == [0] * 6 + [1] * 9 + [2] + [3] * 4 + [-1] * 4
    assert got[1].tolist() == [0] * 10 + [1] * 11 + [-1] * 3


@given(st.lists(st.integers(0, 20), max_size=20), st.integers(1, 16))
def test_pieces_match_the_doc_id_runs(lengths, max_len):
    a = pv.materialize(pv.pack(lengths, max_len), [np.ones(n, int) for n in lengths], pad_id=0)
    got = piece_ids(a.position_ids.astype(np.int64), a.doc_ids >= 0)
    assert np.array_equal(got < 0, a.doc_ids < 0)
    np.testing.assert_array_equal(
        pv.piece_starts(got, device="cpu"), pv.piece_starts(a.doc_ids, device="cpu")
    )


def test_dense_batches(arrays):
    batch = pv.collate(items_of(arrays), attention="dense")
    assert set(batch) == {"input_ids", "labels", "position_ids", "attention_mask"}
    assert batch["input_ids"].dtype == torch.long and batch["input_ids"].shape == (2, 24)
    mask = batch["attention_mask"]
    assert mask.shape == (2, 1, 24, 24) and mask.dtype == torch.float32
    allowed = pv.document_mask(arrays.doc_ids, device="cpu")
    low = torch.finfo(torch.float32).min
    assert torch.equal(mask[:, 0], torch.where(allowed, 0.0, low))
    half = pv.collate(items_of(arrays), attention="dense", dtype=torch.bfloat16)["attention_mask"]
    assert half.dtype == torch.bfloat16 and half.min() == torch.finfo(torch.bfloat16).min
    assert (
        pv.collate_with("dense", dtype="float16")(items_of(arrays))["attention_mask"].dtype
        == torch.float16
    )


def test_flattened_batches_are_what_transformers_flattening_collator_gives(arrays):
    from transformers import DataCollatorWithFlattening

    batch = pv.collate(items_of(arrays), attention="flattened")
    pieces = []
    for r, s, e in zip(*pv.pieces.piece_spans(arrays.doc_ids), strict=True):
        pieces.append(
            {
                "input_ids": arrays.input_ids[r, s : e + 1].tolist(),
                "labels": arrays.input_ids[r, s : e + 1].tolist(),
            }
        )
    theirs = DataCollatorWithFlattening(return_flash_attn_kwargs=True)(pieces)
    assert set(batch) == set(theirs) | {"use_cache"} and batch["use_cache"] is False
    for key in ("input_ids", "labels", "position_ids", "cu_seq_lens_q", "cu_seq_lens_k"):
        assert batch[key].dtype == theirs[key].dtype, key
        assert torch.equal(batch[key], theirs[key]), key
    assert batch["max_length_q"] == batch["max_length_k"] == theirs["max_length_q"] == 11
    assert batch["cu_seq_lens_q"].tolist() == [0, 6, 15, 16, 20, 30, 41]
    assert "attention_mask" not in batch  # a 2-D mask would switch the piece search off
    varlen = pv.collate(items_of(arrays), attention="varlen")
    assert all(torch.equal(torch.as_tensor(varlen[k]), torch.as_tensor(batch[k])) for k in batch)


def test_flex_batches(arrays):
    batch = pv.collate(items_of(arrays), attention="flex", block_size=8)
    want = pv.flex_block_mask(arrays.doc_ids, device="cpu", block_size=8)
    got = batch["attention_mask"]
    assert got.shape == want.shape
    for name in ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name


def test_errors(arrays):
    items = items_of(arrays)
    with pytest.raises(
        ValueError,
        match="unknown attention 'document'; choose one of dense, flattened, flex, varlen",
    ):
        pv.collate(items, attention="document")
    with pytest.raises(ValueError, match="dtype must be a torch float dtype"):
        pv.collate_with("dense", dtype=torch.int32)
    with pytest.raises(ValueError, match="a batch item has no 'attention_mask'"):
        pv.collate([{k: v for k, v in items[0].items() if k != "attention_mask"}])
    jump = items[0]["position_ids"].copy()
    jump[3] = 7  # neither a restart nor one more than the slot before
    bad = dict(items[0], position_ids=jump)
    with pytest.raises(ValueError, match="position_ids at row 0, slot 3 is 7: in a real token"):
        pv.collate([bad])
    late = dict(
        items[0],
        attention_mask=np.r_[np.ones(20, int), 0, 0, 0, 1],
        position_ids=np.r_[items[0]["position_ids"][:23], 5],
    )
    with pytest.raises(ValueError, match="position_ids at row 0, slot 23 is 5"):
        pv.collate([late])
    with pytest.raises(ValueError, match="an empty batch"):
        pv.collate([])
    with pytest.raises(ValueError, match="lengths-only"):
        pv.PackedDataset(pv.materialize(pv.pack([3], 4), None, pad_id=0))
    with pytest.raises(TypeError, match="PackedDataset takes PackedArrays or pv.open"):
        pv.PackedDataset("rows.npz")


def test_dataset_over_an_open_file(tmp_path, arrays):
    path = tmp_path / "rows.parquet"
    pv.save(arrays, path)
    lazy, eager = pv.PackedDataset(pv.open(path)), pv.PackedDataset(arrays)
    for i in range(len(eager)):
        for k, v in eager[i].items():
            np.testing.assert_array_equal(lazy[i][k], v)
    loader = DataLoader(lazy, batch_size=2, num_workers=2, collate_fn=pv.collate_with("dense"))
    batch = next(iter(loader))  # the file pickles as its path to the workers
    assert torch.equal(batch["input_ids"], torch.from_numpy(arrays.input_ids).long())


# --- through stock HF causal LMs, default config ----------------------------------------


@pytest.fixture(scope="module")
def models():
    return {}


def model_of(models, family, attn):
    key = (family, attn)
    if key not in models:
        models[key] = tiny(family, attn)
    return models[key]


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("family", FAMILIES)
def test_modes_are_exact_through_hf_models(models, family, attn):
    arrays = packed_arrays()
    model = model_of(models, family, attn)
    assert model.config.use_cache is True  # the default, left alone
    items = items_of(arrays)
    for train in (False, True):
        model.train(train)
        with torch.no_grad():
            want, want_loss = reference(model, arrays)
            for mode in ("dense", "flattened"):
                out = model(**pv.collate(items, attention=mode))
                got = packed_logits(out.logits, arrays, flattened=mode == "flattened")
                assert max_logit_gap(got, want) < TOL, (mode, train)
                assert abs(float(out.loss) - float(want_loss)) < TOL, (mode, train)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_the_checks_would_catch_a_leak(models, family):
    """Negative controls: what the modes avoid does leak through these models."""
    arrays = packed_arrays()
    items = items_of(arrays)
    model = model_of(models, family, "eager").eval()
    with torch.no_grad():
        want, _ = reference(model, arrays)
        flat = pv.collate(items, attention="flattened")
        del flat["use_cache"]  # at the default config a cache is built: no piece search
        leaked = packed_logits(model(**flat).logits, arrays, flattened=True)
        assert max_logit_gap(leaked, want) > 1e-2
        dense = pv.collate(items, attention="dense")
        dense["attention_mask"] = dense["attention_mask"] == 0  # a bool mask, added by eager
        leaked = packed_logits(model(**dense).logits, arrays, flattened=False)
        assert max_logit_gap(leaked, want) > 1e-2


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_flex_mode_is_exact(models, family):
    """FlexAttention on the CPU has no backward: checked under no_grad, train and eval.
    The pieces alone run through the same weights with SDPA (one compile, not seven)."""
    arrays = packed_arrays()
    model = model_of(models, family, "sdpa")
    items = items_of(arrays)
    for train in (False, True):
        model.train(train)
        with torch.no_grad():
            model.set_attn_implementation("sdpa")
            want, want_loss = reference(model, arrays)
            model.set_attn_implementation("flex_attention")
            try:
                out = model(**pv.collate(items, attention="flex"))
            finally:
                model.set_attn_implementation("sdpa")
        assert max_logit_gap(packed_logits(out.logits, arrays, False), want) < TOL
        assert abs(float(out.loss) - float(want_loss)) < TOL


@st.composite
def collate_batches(draw):
    """0-3 items of one width: packed rows (pieces, padding, -100 at piece starts and
    here and there), or random values; then, maybe, one slot of one field changed."""
    width = draw(st.integers(1, 8))
    items = []
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.integers(0, 3)) == 0:
            items.append(
                {
                    k: draw(st.lists(st.integers(lo, hi), min_size=width, max_size=width))
                    for k, lo, hi in (
                        ("input_ids", 0, 9),
                        ("labels", -100, 9),
                        ("position_ids", -1, 4),
                        ("attention_mask", 0, 1),
                    )
                }
            )
            continue
        item = {"input_ids": [], "labels": [], "position_ids": [], "attention_mask": []}
        for n in draw(st.lists(st.integers(1, width), max_size=width)):
            if len(item["input_ids"]) + n > width:
                break
            ids = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
            trained = draw(st.lists(st.booleans(), min_size=n, max_size=n))
            item["input_ids"] += ids
            item["labels"] += [
                t if j and keep else -100
                for j, (t, keep) in enumerate(zip(ids, trained, strict=True))
            ]
            item["position_ids"] += list(range(n))
            item["attention_mask"] += [1] * n
        pad = width - len(item["input_ids"])
        for k, v in (
            ("input_ids", 0),
            ("labels", -100),
            ("position_ids", 0),
            ("attention_mask", 0),
        ):
            item[k] += [v] * pad
        items.append(item)
    if items and draw(st.booleans()):
        item = items[draw(st.integers(0, len(items) - 1))]
        key = draw(st.sampled_from(sorted(item)))
        item[key][draw(st.integers(0, width - 1))] = draw(st.integers(-100, 9))
    return items


@given(collate_batches(), st.sampled_from(pv.COLLATE_MODES))
@settings(max_examples=150, deadline=None)
def test_collate_agrees_with_the_slot_by_slot_reference(items, mode):
    """Pieces, the dense mask, the flattened batch and the BlockMask against
    `reference_collate`; what it refuses is a ValueError naming row and slot."""
    want = reference_collate(items)
    arrays = [{k: np.array(v) for k, v in it.items()} for it in items]
    if want is None:
        with pytest.raises(ValueError, match=r"(position_ids|labels) at row \d+, slot \d+|empty"):
            pv.collate(arrays, attention=mode, block_size=4)
        return
    batch = pv.collate(arrays, attention=mode, block_size=4)
    pos = np.array([it["position_ids"] for it in items])
    real = np.array([it["attention_mask"] for it in items]) != 0
    assert piece_ids(pos, real).tolist() == want["pieces"]
    if mode == "dense":
        mask = batch["attention_mask"][:, 0]
        assert torch.equal(mask == 0, torch.from_numpy(want["dense"]))
        assert torch.equal(mask != 0, mask == torch.finfo(torch.float32).min)
    elif mode == "flex":
        bm = batch["attention_mask"]
        b, n = len(items), pos.shape[1]
        ar = torch.arange(n)
        cells = bm.mask_mod(torch.arange(b)[:, None, None], 0, ar[None, :, None], ar[None, None, :])
        assert torch.equal(cells, torch.from_numpy(want["dense"]))
        blocks = [reference_pool_any(want["dense"][r], 4) for r in range(b)]
        assert bm.to_dense()[:, 0].bool().tolist() == np.array(blocks).tolist()
    else:
        for key in ("input_ids", "labels", "position_ids"):
            assert batch[key].tolist() == [want[key]], key
        assert batch["cu_seq_lens_q"].tolist() == want["cu_seqlens"]
        assert batch["max_length_q"] == max(np.diff(want["cu_seqlens"]), default=0)


def test_a_target_across_documents_is_refused():
    """labels == input_ids with positions restarting: token 6 would be trained to predict
    token 7, the first of the next document."""
    item = {
        "input_ids": np.array([5, 6, 7, 8]),
        "labels": np.array([5, 6, 7, 8]),
        "position_ids": np.array([0, 1, 0, 1]),
        "attention_mask": np.array([1, 1, 1, 1]),
    }
    for mode in pv.COLLATE_MODES:
        with pytest.raises(ValueError, match="labels at row 0, slot 0 is 5 where a piece starts"):
            pv.collate([item], attention=mode)
    item["labels"] = np.array([-100, 6, 7, 8])
    with pytest.raises(ValueError, match="labels at row 0, slot 2 is 7 where a piece starts"):
        pv.collate([item])
    item["labels"] = np.array([-100, 6, -100, 8])
    assert pv.collate([item])["labels"].tolist() == [[-100, 6, -100, 8]]
    padded = dict(item, attention_mask=np.array([1, 1, 1, 0]))
    with pytest.raises(ValueError, match="labels at row 0, slot 3 is 8 where .* or at padding"):
        pv.collate([padded], attention="dense")


def test_a_dense_mask_too_large_is_refused_first(arrays, monkeypatch):
    """The size is checked before anything is allocated, and the message points to the
    modes without an L x L mask; the bool mask beside the float one is a block of rows."""
    import packviz.limits
    import packviz.masks
    from packviz import torch_data

    items = items_of(arrays)
    monkeypatch.setattr(packviz.limits, "available_memory", lambda device="cpu": 4000)
    with pytest.raises(
        ValueError,
        match=r'dense \[2, 1, 24, 24\] torch.float32 attention mask needs 5.*collate_with\("flattened"\)',
    ):
        pv.collate(items, attention="dense")
    monkeypatch.undo()
    shapes = []
    real = packviz.masks.document_mask
    monkeypatch.setattr(
        packviz.masks, "document_mask", lambda d, **k: shapes.append(np.shape(d)) or real(d, **k)
    )
    monkeypatch.setattr(torch_data, "_BOOL_CHUNK_BYTES", 24 * 24)  # one row at a time
    mask = pv.collate(items, attention="dense")["attention_mask"]
    assert shapes == [(1, 24), (1, 24)]
    low = torch.finfo(torch.float32).min
    want = torch.where(pv.document_mask(arrays.doc_ids, device="cpu"), 0.0, low)
    assert torch.equal(mask[:, 0], want)


def test_collate_says_what_a_batch_is():
    import packviz as pv

    with pytest.raises(TypeError, match="batch must be a list of items"):
        pv.collate("abc")
    with pytest.raises(TypeError, match="batch item 0 is a str, not a dict"):
        pv.collate(["abc"])
    a = pv.materialize(pv.pack([3, 5, 2], 8), [[1] * 3, [2] * 5, [3] * 2], pad_id=0)
    rows = [pv.PackedDataset(a)[i] for i in range(len(pv.PackedDataset(a)))]
    rows[1] = {k: v[:5] for k, v in rows[1].items()}  # an unpadded row
    with pytest.raises(ValueError, match=r'not rows of one length .*layout="padded"'):
        pv.collate(rows)
