"""Tiny random Hugging Face causal LMs and the per-piece reference the training tests
compare packed batches with: every piece run alone through the same model.

Models are built from configs at their defaults (``use_cache=True`` and all) with only
the sizes shrunk, float32. GPT-2 is the one exception: its dropout (0.1 by default) is
set to 0, since no comparison of train-mode outputs can hold under random dropout.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import packviz as pv

VOCAB = 64
FAMILIES = ("llama", "qwen2", "gpt2")
#: pieces [6, 9, 1, 4] + 4 padding, and [10, 11] + 3 padding: a one-token piece and
#: padding side by side, at max_len 24 (next fit, input order)
LENGTHS = (6, 9, 1, 4, 10, 11)
MAX_LEN = 24


def tiny(family: str, attn: str = "sdpa", seed: int = 0):
    """A 2-layer random model of ``family`` with attention ``attn``, at its default config."""
    import transformers as tf

    torch.manual_seed(seed)
    small = dict(vocab_size=VOCAB, attn_implementation=attn)
    if family == "llama":
        config = tf.LlamaConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, **small,
        )  # fmt: skip
        return tf.LlamaForCausalLM(config)
    if family == "qwen2":
        config = tf.Qwen2Config(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, **small,
        )  # fmt: skip
        return tf.Qwen2ForCausalLM(config)
    if family == "gpt2":
        config = tf.GPT2Config(
            n_embd=32, n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0,
            attn_pdrop=0.0, bos_token_id=1, eos_token_id=1, **small,
        )  # fmt: skip
        return tf.GPT2LMHeadModel(config)
    raise ValueError(family)


def packed_arrays(lengths=LENGTHS, max_len=MAX_LEN, seed: int = 0) -> pv.PackedArrays:
    rng = np.random.default_rng(seed)
    ids = [rng.integers(1, VOCAB, n) for n in lengths]
    plan = pv.pack(list(lengths), max_len, strategy="next_fit", sort="none")
    return pv.materialize(plan, ids, pad_id=0)


def pieces_of(arrays: pv.PackedArrays) -> list[tuple[int, int, int]]:
    """(row, first slot, last slot) of every piece."""
    from packviz.pieces import piece_spans

    return list(zip(*(x.tolist() for x in piece_spans(arrays.doc_ids)), strict=True))


def reference(model, arrays: pv.PackedArrays):
    """Per piece, run alone: its logits, and the summed loss and target count."""
    logits, loss_sum, count = [], 0.0, 0
    for r, s, e in pieces_of(arrays):
        ids = torch.from_numpy(arrays.input_ids[r, s : e + 1].astype(np.int64))[None]
        out = model(input_ids=ids).logits[0]
        logits.append(out)
        target = torch.from_numpy(arrays.labels[r, s + 1 : e + 1].astype(np.int64))
        if target.numel():
            loss_sum = loss_sum + F.cross_entropy(
                out[:-1], target, ignore_index=-100, reduction="sum"
            )
            count += int((target != -100).sum())
    return logits, loss_sum / count


def packed_logits(logits: torch.Tensor, arrays: pv.PackedArrays, flattened: bool):
    """The packed logits of every piece, in `pieces_of` order."""
    out, offset = [], 0
    for r, s, e in pieces_of(arrays):
        n = e - s + 1
        out.append(logits[0, offset : offset + n] if flattened else logits[r, s : e + 1])
        offset += n
    return out


def max_logit_gap(got: list, want: list) -> float:
    return max(float((g - w).abs().max()) for g, w in zip(got, want, strict=True))
