"""Tiny random Hugging Face causal LMs and the per-piece reference the training tests
compare packed batches with: every piece run alone through the same model (`Reference`),
and what a model actually received during training (`Recorder`).

Models are built from configs at their defaults (``use_cache=True`` and all) with only
the sizes shrunk, float32. GPT-2 is the one exception: its dropout (0.1 by default) is
set to 0, since no comparison of train-mode outputs can hold under random dropout.
"""

from __future__ import annotations

import copy
import functools
from collections import Counter

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
TOL = 1e-4


def tiny(family: str, attn: str = "sdpa", seed: int = 0):
    """A 2-layer random model of ``family`` with attention ``attn``, at its default config."""
    import transformers as tf

    torch.manual_seed(seed)
    small = dict(vocab_size=VOCAB, attn_implementation=attn)
    if family in ("llama", "qwen2"):
        config_class, model_class = {
            "llama": (tf.LlamaConfig, tf.LlamaForCausalLM),
            "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM),
        }[family]
        config = config_class(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, **small,
        )  # fmt: skip
        return model_class(config)
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


class Recorder:
    """The first forward's inputs and outputs of ``module``, and the first gradients."""

    def __init__(self, model, module=None):
        self.calls, self.grads = [], {}
        (module or model).register_forward_hook(self._forward, with_kwargs=True)
        for name, p in model.named_parameters():
            p.register_post_accumulate_grad_hook(functools.partial(self._grad, name))

    def _forward(self, module, args, kwargs, out):
        if not self.calls:
            self.calls.append((dict(kwargs), out))

    def _grad(self, name, p):
        self.grads.setdefault(name, p.grad.detach().clone())


class Reference:
    """Each piece of the file run alone through a copy of the untrained model."""

    def __init__(self, model, arrays, hidden=False):
        ref = copy.deepcopy(model)
        ref.train(model.training)
        self.arrays = arrays
        self.out, total, count = {}, 0.0, 0
        for r, s, e in pieces_of(arrays):
            tokens = arrays.input_ids[r, s : e + 1].astype(np.int64)
            ids = torch.from_numpy(tokens)[None]
            logits = ref(input_ids=ids).logits[0]
            self.out[tuple(tokens.tolist())] = (
                ref.model(input_ids=ids).last_hidden_state[0] if hidden else logits
            ).detach()
            target = torch.from_numpy(arrays.labels[r, s + 1 : e + 1].astype(np.int64))
            if target.numel():
                total = total + F.cross_entropy(logits[:-1], target, reduction="sum")
                count += int((target != -100).sum())
        self.loss = total / count
        self.loss.backward()
        self.grads = {n: p.grad.clone() for n, p in ref.named_parameters()}

    def check_forward(self, kwargs, got, loss=None):
        """``got``: logits (or hidden states) of the batch the model received."""
        ids, pos = kwargs["input_ids"], kwargs["position_ids"]
        seen = []
        if "cu_seq_lens_q" in kwargs:  # flattened: the pieces are where positions restart
            starts = torch.nonzero(pos[0] == 0).flatten().tolist() + [ids.shape[1]]
            spans = [(0, a, b - 1) for a, b in zip(starts, starts[1:], strict=False)]
        else:  # rows: their pieces from the file's doc ids (rows may come shuffled)
            rows = {tuple(r): i for i, r in enumerate(self.arrays.input_ids.tolist())}
            spans = []
            for b, row in enumerate(ids.tolist()):
                r = rows[tuple(row)]
                spans += [(b, s, e) for rr, s, e in pieces_of(self.arrays) if rr == r]
        for b, s, e in spans:
            tokens = tuple(ids[b, s : e + 1].tolist())
            want = self.out[tokens]  # a KeyError: a piece the file does not have
            assert float((got[b, s : e + 1] - want).abs().max()) < TOL
            seen.append(tokens)
        assert Counter(seen) == Counter(list(self.out))  # every piece, once
        if loss is not None:
            assert abs(float(loss) - float(self.loss)) < TOL

    def check_grads(self, grads):
        assert set(grads) == set(self.grads)
        for name, g in grads.items():
            assert float((g - self.grads[name]).abs().max()) < 1e-6, name
