"""The README's training recipes, run as they stand (each block found by its
``# recipe:`` line), through tiny random HF models at their default config. What the
model received is checked against each piece run alone: logits of every real token,
the model's loss, and the gradients of the first step."""

from __future__ import annotations

import functools
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hf_models import VOCAB, Recorder, Reference, packed_arrays, pieces_of, tiny

import packviz as pv

README = Path(__file__).resolve().parents[1] / "README.md"
TOL = 1e-4


def recipe(name: str) -> str:
    blocks = re.findall(r"```python\n(# recipe: ([\w-]+)\n.*?)```", README.read_text(), re.S)
    found = {n: code for code, n in blocks}
    return found[name]


def test_every_recipe_is_tested():
    names = re.findall(r"^# recipe: ([\w-]+)$", README.read_text(), re.M)
    tested = {"pytorch", "trainer", "trl", "flash-attn", "flex", "streaming"}
    assert sorted(names) == sorted(tested)


@pytest.fixture
def path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the recipes write to "out"
    pv.save(packed_arrays(), tmp_path / "packed.parquet")
    return tmp_path / "packed.parquet"


def run(name, **names):
    exec(compile(recipe(name), f"README.md ({name})", "exec"), names)
    return names


@pytest.mark.parametrize("family, attn", [("llama", "sdpa"), ("gpt2", "eager")])
@pytest.mark.parametrize("name", ["pytorch", "trainer", "streaming"])
def test_training_recipes(path, name, family, attn):
    model = tiny(family, attn)
    model.train()
    ref = Reference(model, pv.load(path))
    seen = Recorder(model)
    torch.manual_seed(0)
    run(name, model=model, path=path)
    kwargs, out = seen.calls[0]
    ref.check_forward(kwargs, out.logits, out.loss)
    ref.check_grads(seen.grads)


def test_trl_recipe(path, monkeypatch):
    import trl
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(VOCAB)}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="t0")),
        pad_token="t0",
        eos_token="t1",
    )
    # the CPU needs these two; nothing else of SFTConfig's defaults is changed
    monkeypatch.setattr(
        trl, "SFTConfig", functools.partial(trl.SFTConfig, bf16=False, use_cpu=True)
    )
    model = tiny("llama", "sdpa")
    model.train()
    ref = Reference(model, pv.load(path), hidden=True)
    seen = Recorder(model, module=model.model)  # TRL may skip the logits: the hidden states
    run("trl", model=model, path=path, tokenizer=tokenizer)
    kwargs, out = seen.calls[0]
    assert kwargs["use_cache"] is False and kwargs["input_ids"].shape[0] == 1
    ref.check_forward(kwargs, out.last_hidden_state)
    ref.check_grads(seen.grads)


def reference_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal=False):
    """flash-attn's varlen contract in torch: each [cu[i], cu[i+1]) span attends to
    itself only (causally); ``[T, heads, dim]`` in and out."""
    assert torch.equal(cu_seqlens_q, cu_seqlens_k) and cu_seqlens_q.dtype == torch.int32
    assert int(cu_seqlens_q[-1]) == q.shape[0]  # the spans cover the tokens exactly
    assert max_seqlen_q == int(cu_seqlens_q.diff().max())
    out = torch.empty_like(q)
    bounds = cu_seqlens_q.tolist()
    for a, b in zip(bounds, bounds[1:], strict=False):
        span = [x[a:b].transpose(0, 1) for x in (q, k, v)]
        out[a:b] = F.scaled_dot_product_attention(*span, is_causal=causal).transpose(0, 1)
    return out


def test_flash_attn_recipe(path, monkeypatch):
    fake = types.ModuleType("flash_attn")
    fake.flash_attn_varlen_func = reference_varlen
    monkeypatch.setitem(sys.modules, "flash_attn", fake)
    torch.manual_seed(0)
    names = run("flash-attn", path=path)
    out, embed = names["out"], names["embed"]
    arrays = pv.load(path)
    at = 0
    for r, s, e in pieces_of(arrays):  # the pieces from the doc ids, each attended alone
        tokens = torch.from_numpy(arrays.input_ids[r, s : e + 1].astype(np.int64))
        x = embed(tokens).view(-1, 4, 16).transpose(0, 1)
        alone = F.scaled_dot_product_attention(x, x, x, is_causal=True).transpose(0, 1)
        assert float((out[at : at + len(tokens)] - alone).abs().max()) < 1e-5
        at += len(tokens)
    assert at == out.shape[0]


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_flex_recipe(path, family):
    model = tiny(family, "sdpa")
    ref = Reference(model.eval(), pv.load(path))
    seen = Recorder(model)
    names = run("flex", model=model, path=path)
    kwargs, out = seen.calls[0]
    assert model.config._attn_implementation == "flex_attention"
    ref.check_forward(kwargs, out.logits, out.loss)
    assert len(names["losses"]) == 1
