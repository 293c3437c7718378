"""packviz.sft: trained targets and lost completions counted exactly (against the
materialized labels and the slow reference), files and collate keep the mask, and a real
model's loss on packed fine-tuning rows equals the per-example losses and TRL's."""

from __future__ import annotations

import numpy as np
import pytest
from chat_tokenizers import hf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import packviz as pv
from packviz._reference import reference_pack, reference_trained_slots


@st.composite
def flagged(draw):
    max_len = draw(st.sampled_from([1, 2, 5, 16]))
    lengths = draw(st.lists(st.integers(0, 3 * max_len), max_size=20))
    rng = np.random.default_rng(draw(st.integers(0, 20)))
    ids = [rng.integers(0, 1000, n) for n in lengths]
    # prompts then completions, like real records (some with no completion at all)
    cut = [int(rng.integers(0, n + 1)) for n in lengths]
    trained = [np.arange(n) >= c for n, c in zip(lengths, cut, strict=True)]
    if draw(st.booleans()):
        trained = [rng.random(n) < 0.5 for n in lengths]
    return pv.TokenIds.from_sequences(ids, trained=trained), max_len


combos = st.tuples(
    st.sampled_from(pv.STRATEGIES), st.sampled_from(pv.SORTS), st.sampled_from(pv.OVERFLOWS)
)


@given(flagged(), combos)
def test_counts_equal_the_materialized_rows(data, combo):
    ids, max_len = data
    strategy, sort, overflow = combo
    plan = pv.pack(ids.lengths, max_len, strategy=strategy, sort=sort, overflow=overflow)
    s = pv.sft_stats(plan, ids, warn=False)
    a = pv.materialize(plan, ids, pad_id=0)
    target = a.labels != -100
    assert s.trained_targets == target.sum() == plan.stats(ids).trained_targets
    slots = pv.trained_slots(plan, ids)
    rows = reference_pack(ids.lengths, max_len, strategy, sort, overflow)
    flags = [ids.trained[ids.offsets[d] : ids.offsets[d + 1]] for d in range(len(ids))]
    np.testing.assert_array_equal(slots, reference_trained_slots(rows, flags, max_len))
    assert (target <= slots).all() and s.packed_trained_tokens == slots.sum()
    np.testing.assert_array_equal(pv.trained_row_fill(plan, ids), slots.sum(axis=1))
    # per example, from the rows
    n = len(ids)
    trained_doc = np.array([f.sum() for f in flags], dtype=np.int64)
    placed_doc = np.bincount(a.doc_ids[slots], minlength=n)
    targets_doc = np.bincount(a.doc_ids[target], minlength=n)
    lost = (trained_doc > 0) & (targets_doc == 0)
    assert (
        s.lost_completions == lost.sum()
        and s.lost_examples.tolist() == np.flatnonzero(lost).tolist()
    )
    assert s.truncated_completions == ((placed_doc < trained_doc) & ~lost).sum()
    assert (
        s.trained_tokens == ids.n_trained and s.lost_trained_tokens == ids.n_trained - slots.sum()
    )
    np.testing.assert_array_equal(s.completion_lengths, trained_doc)
    np.testing.assert_array_equal(s.prompt_lengths + s.completion_lengths, ids.lengths)
    assert s.slots == plan.n_rows * max_len


def test_without_flags_every_token_is_trained():
    ids = pv.TokenIds.from_sequences([[1, 2, 3], [4] * 9, []])
    plan = pv.pack(ids.lengths, 4)
    s = pv.sft_stats(plan, ids)
    assert s.trained_targets == plan.stats().trained_targets == plan.stats(ids).trained_targets
    assert (s.trained_tokens, s.packed_trained_tokens, s.lost_completions) == (12, 12, 0)
    assert pv.trained_slots(plan, ids).sum() == 12


def test_hand_computed_losses_and_warnings():
    # 0: prompt 2 + completion 2; 1: prompt 5 + completion 1; 2: prompt 1 + completion 4
    flags = [[0, 0, 1, 1], [0, 0, 0, 0, 0, 1], [0, 1, 1, 1, 1]]
    ids = pv.TokenIds.from_sequences(
        [[1] * 4, [2] * 6, [3] * 5], trained=[np.array(f, dtype=bool) for f in flags]
    )
    with pytest.warns(UserWarning) as caught:
        s = pv.sft_stats(pv.pack(ids.lengths, 4, overflow="truncate"), ids)
    assert [str(w.message) for w in caught] == s.warnings()
    assert s.warnings()[0].startswith("1 of 3 examples train nothing: the overflow policy cut")
    assert "(examples 1)" in s.warnings()[0]
    assert (s.trained_tokens, s.packed_trained_tokens, s.trained_targets) == (7, 5, 5)
    assert (s.lost_completions, s.truncated_completions, s.lost_trained_tokens) == (1, 1, 2)
    assert s.warnings()[1].startswith("1 examples lost part of their trained tokens (2 trained")
    assert s.length_percentiles((50,)) == {"prompt": {50: 2.0}, "completion": {50: 2.0}}
    d = s.as_dict()
    assert d["target_efficiency"] == 5 / 12 and d["lengths"]["completion"]["99"] == pytest.approx(
        3.96
    )
    # dropped: whole examples lost; split: nothing lost, one target per extra piece start
    dropped = pv.sft_stats(pv.pack(ids.lengths, 4, overflow="drop"), ids, warn=False)
    assert (dropped.lost_completions, dropped.lost_examples.tolist()) == (2, [1, 2])
    split = pv.sft_stats(pv.pack(ids.lengths, 4), ids, warn=False)
    assert (split.lost_completions, split.truncated_completions, split.trained_targets) == (0, 0, 6)
    assert split.warnings() == []


def test_windows_and_comparisons_follow_the_flags():
    ids = pv.TokenIds.from_sequences(
        [[1] * 5, [2] * 3, [3] * 7], trained=[[False] * 2 + [True] * 3, [True] * 3, [False] * 7]
    )
    plan = pv.pack(ids.lengths, 8)
    full = pv.trained_slots(plan, ids)
    np.testing.assert_array_equal(pv.trained_slots(plan, ids, rows=[1, 0]), full[[1, 0]])
    stats = pv.compare_strategies(ids.lengths, 8, token_ids=ids)
    for st_ in stats:
        p = pv.pack(ids.lengths, 8, strategy=st_.strategy)
        assert st_.trained_targets == pv.sft_stats(p, ids, warn=False).trained_targets
    assert [
        s.trained_targets for s in pv.sweep(ids.lengths, [4], strategies=["padded"], token_ids=ids)
    ] == [4]
    with pytest.raises(ValueError, match="token_ids has 3 documents but the plan was made for 4"):
        pv.sft_stats(pv.pack([5, 3, 7, 1], 8), ids)


@pytest.mark.parametrize("fmt", pv.FORMATS)
def test_files_and_collate_keep_the_mask(tmp_path, fmt):
    ids = pv.TokenIds.from_sequences(
        [[5, 6, 7, 8], [9, 10, 11]], trained=[[False, False, True, True], [False, True, True]]
    )
    a = pv.materialize(pv.pack(ids.lengths, 8), ids, pad_id=0)
    assert a.labels.tolist() == [[-100, -100, 7, 8, -100, 10, 11, -100]]
    pv.save(a, tmp_path / f"p.{fmt}")
    back = pv.load(tmp_path / f"p.{fmt}")
    np.testing.assert_array_equal(back.labels, a.labels)
    item = pv.PackedDataset(back)[0]
    flat = pv.collate_with("flattened")([item])  # padding removed: the real slots
    assert flat["labels"].tolist() == [a.labels[a.doc_ids >= 0].tolist()]
    dense = pv.collate_with("dense")([item])
    assert dense["labels"].tolist() == a.labels.tolist()


# ---------------------------------------------------------------------------- a real model

PAIRS = [
    {"prompt": "What is two plus two?", "completion": " Two plus two is four."},
    {"prompt": "Hello", "completion": " world!"},
    {"prompt": "The quick brown fox", "completion": " jumps over the lazy dog."},
    {"prompt": "café", "completion": " résumé ✓"},
    {"prompt": "Packing documents", "completion": " into rows saves compute."},
]
CHATS = [
    {"messages": [
        {"role": "user", "content": "What is two plus two?"},
        {"role": "assistant", "content": "Four."},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "Six ✓"},
    ]},
    {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hello world!"},
    ]},
    {"messages": [
        {"role": "user", "content": "café?"},
        {"role": "assistant", "content": " résumé — naïve"},
    ]},
]  # fmt: skip


def _tiny_llama(vocab: int):
    """A random 2-layer Llama at its default config (use_cache=True and all)."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    config = tf.LlamaConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2,
    )  # fmt: skip
    return tf.LlamaForCausalLM(config).eval()


def _packed_loss(model, arrays: pv.PackedArrays, *, mask: bool) -> float:
    """The README's recipes, as a trainer gets them: ``collate_with("dense")`` (a 4-D
    additive document mask) or ``collate_with("flattened")`` (padding removed, with
    ``use_cache=False`` so transformers finds the pieces in the position ids)."""
    import torch

    items = [pv.PackedDataset(arrays)[i] for i in range(arrays.n_rows)]
    batch = pv.collate_with("dense" if mask else "flattened")(items)
    with torch.no_grad():
        return model(**batch).loss.item()


def _alone_loss(model, ids: pv.TokenIds) -> float:
    """Token-weighted mean of each example's own loss, run alone, trained tokens only."""
    import torch
    import torch.nn.functional as F

    total, count = 0.0, 0
    for i in range(len(ids)):
        x = torch.from_numpy(ids[i].astype(np.int64))[None]
        flags = torch.from_numpy(ids.trained[ids.offsets[i] : ids.offsets[i + 1]])
        with torch.no_grad():
            logits = model(input_ids=x).logits[0, :-1]
        target = torch.where(flags[1:], x[0, 1:], -100)
        total += F.cross_entropy(logits, target, ignore_index=-100, reduction="sum").item()
        count += int(flags[1:].sum())
    return total / count


def _trl_loss(model, tok, records, tmp_path, **options):
    """TRL's own loss on its own batch holding every example (trl.md §2's recipe), and
    its prepared examples."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=len(records), bf16=False,
        use_cpu=True, max_length=None, report_to=[],
        save_strategy="no", **options,
    )  # fmt: skip
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(records), processing_class=tok
    )
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, dict(batch)).item()
    return loss, trainer.train_dataset.to_list()


def _pack(ids: pv.TokenIds, max_len: int, pad_id: int) -> pv.PackedArrays:
    plan = pv.pack(ids.lengths, max_len)
    assert plan.n_rows < len(ids) and plan.stats().split_docs == 0  # packed, nothing split
    return pv.materialize(plan, ids, pad_id=pad_id)


@pytest.mark.parametrize(
    ("records", "train_on", "options"),
    [
        (PAIRS, "completion", {}),  # completion_only_loss is TRL's default for these
        (CHATS, "assistant", {"assistant_only_loss": True}),
        (CHATS, "last_assistant", None),  # no TRL counterpart
    ],
)
def test_packed_loss_equals_per_example_losses_and_trl(tmp_path, records, train_on, options):
    tok = hf()
    model = _tiny_llama(len(tok))
    ids = pv.encode_records(tok, records, train_on=train_on)
    arrays = _pack(ids, 128, pv.pad_token_id(tok))
    alone = _alone_loss(model, ids)
    for mask in (False, True):
        assert _packed_loss(model, arrays, mask=mask) == pytest.approx(alone, abs=1e-5)
    if options is None:
        return
    trl, prepared = _trl_loss(model, tok, records, tmp_path, **options)
    assert trl == pytest.approx(alone, abs=1e-5)
    # and the very same tokens and targets (TRL appends no end of text to chats)
    mine = pv.encode_records(tok, records, train_on=train_on, add_eos=train_on == "completion")
    for i, ex in enumerate(prepared):
        flags = mine.trained[mine.offsets[i] : mine.offsets[i + 1]]
        assert ex["input_ids"] == mine[i].tolist()
        assert ex["labels"] == np.where(flags, mine[i], -100).tolist()


anything = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 30), st.floats(), st.text(max_size=3)),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.integers(0, 6), max_size=5),
    anything,
    anything | st.lists(st.lists(st.booleans(), max_size=6), max_size=5),
    anything,
)
def test_sft_entry_points_fuzzed(lengths, values, trained, rows):
    """A checked result or a ValueError / TypeError with a message."""
    plan = pv.pack(lengths, 4)
    for call in (
        lambda: pv.TokenIds.from_sequences(values, trained=trained),
        lambda: pv.sft_stats(plan, values, warn=False),
        lambda: pv.trained_slots(plan, values, rows=rows),
        lambda: pv.trained_row_fill(plan, values),
        lambda: pv.sft_stats(values, plan),
        lambda: plan.stats(values),
    ):
        try:
            out = call()
        except (ValueError, TypeError) as exc:
            assert str(exc).strip()
            continue
        if isinstance(out, pv.SFTStats):
            assert out.trained_targets <= out.packed_trained_tokens <= out.trained_tokens
