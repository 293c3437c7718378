"""packviz.auditing.models: tiny models by name, configs, checkpoints, state layers."""

from __future__ import annotations

import json

import pytest
import torch

import packviz as pv
from packviz.auditing import (
    ARCHITECTURES,
    FIXES,
    POSITION_FIX,
    STATE_FIX,
    causal_leak,
    load_model,
    position_gap,
    state_layers,
    tiny_config,
)
from packviz.auditing.models import model_label

STATE = {
    "mamba2": ["Mamba2Mixer"],
    "bamba": ["BambaMixer"],
    "falcon_h1": ["FalconH1Mixer"],
    "jamba": ["JambaMambaMixer"],
    "qwen3_next": ["Qwen3NextGatedDeltaNet"],
}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_named_architecture_is_tiny_and_runs(arch):
    model = load_model(arch, vocab_size=100)
    assert sum(p.numel() for p in model.parameters()) < 400_000
    assert model.get_input_embeddings().num_embeddings == 100
    assert model.dtype == torch.float32 and model.device.type == "cpu"
    assert state_layers(model) == STATE.get(arch, [])
    with torch.no_grad():
        assert model(input_ids=torch.tensor([[5, 6, 7]])).logits.shape == (1, 3, 100)


def test_any_architecture_transformers_ships():
    assert type(load_model("olmo")).__name__ == "OlmoForCausalLM"
    assert tiny_config("gpt2").n_embd == 32 and tiny_config("gpt2").attn_pdrop == 0.0
    assert tiny_config("gpt2", max_positions=9000).n_positions == 9000


def test_seeded_weights():
    a, b, c = (load_model("llama", seed=s) for s in (1, 1, 2))
    wa, wb, wc = (m.get_input_embeddings().weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_a_model_is_used_as_it_is():
    model = load_model("qwen2", attn_implementation="eager")
    assert load_model(model) is model
    assert model_label(model) == "Qwen2ForCausalLM (eager, float32, cpu)"


def test_config_json_and_checkpoint_directory(tmp_path):
    model = load_model("llama", seed=5, attn_implementation="eager")
    model.save_pretrained(tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    assert torch.equal(loaded.get_input_embeddings().weight, model.get_input_embeddings().weight)
    (tmp_path / "cfg").mkdir()
    cfg = tmp_path / "cfg" / "config.json"
    cfg.write_text(json.dumps(model.config.to_dict()))
    from_json = load_model(str(cfg), seed=5)
    assert type(from_json).__name__ == "LlamaForCausalLM"
    assert from_json.config.hidden_size == 32
    from_dir = load_model(tmp_path / "cfg", seed=5)  # a directory with a config only
    assert torch.equal(
        from_dir.get_input_embeddings().weight, from_json.get_input_embeddings().weight
    )


def test_bad_models_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match=r"unknown model 'ckpt/x' \(no such file or directory\)"):
        load_model("ckpt/x")
    with pytest.raises(ValueError, match=f"{tmp_path}: no config.json there"):
        load_model(tmp_path)
    with pytest.raises(ValueError, match="unknown attention implementation 'flash'; choose one"):
        load_model("llama", attn_implementation="flash")
    with pytest.raises(ValueError, match="cannot build a causal LM from this 'mamba2' config"):
        load_model("mamba2", attn_implementation="sdpa")
    with pytest.raises(TypeError, match="model must be a transformers model, a config, a model"):
        load_model(3)
    with pytest.raises(ValueError, match="vocab_size must be an integer of at least 3"):
        tiny_config("llama", vocab_size=2)


@pytest.fixture(scope="module")
def rows():
    return pv.materialize(
        pv.pack([6, 9, 1, 4, 10, 11, 3, 3], 24, strategy="next_fit", sort="none"), None, pad_id=0
    )


PATHS = ["dense_additive", "flattened", "causal"]


@pytest.mark.parametrize(
    ("arch", "cls", "verdicts"),
    [
        ("gptj", "GPTJForCausalLM", ["exact", "exact", "leaks"]),  # rotary_dim 64 > head 8
        ("codegen", "CodeGenForCausalLM", ["exact", "exact", "leaks"]),
        ("dbrx", "DbrxForCausalLM", ["exact", "exact", "leaks"]),  # attn_config, d_model
        ("qwen2_moe", "Qwen2MoeForCausalLM", ["exact", "exact", "leaks"]),  # experts shrunk
        ("deepseek_v32", "DeepseekV32ForCausalLM", ["exact", "exact", "leaks"]),  # MLA shrunk
        ("bert", "BertLMHeadModel", ["exact", "leaks", "leaks"]),  # is_decoder
    ],
)
def test_more_attention_families_give_verdicts(arch, cls, verdicts, rows):
    res = pv.audit(arch, rows, paths=PATHS)
    assert type(load_model(arch)).__name__ == cls
    assert [r.verdict for r in res] == verdicts
    assert res[0].max_logit_diff < 1e-5 and res[2].max_logit_diff > 1e-2


#: Hybrids keep one layer of each kind: a state layer is always there to be flagged.
HYBRIDS = {
    "lfm2": ("layer_types", ["conv", "full_attention"], ["Lfm2ShortConv"]),
    "zamba2": ("layers_block_type", ["linear_attention", "hybrid"], ["Zamba2MambaMixer"]),
    "qwen3_5": ("layer_types", ["linear_attention", "full_attention"], ["Qwen3_5GatedDeltaNet"]),
    "granitemoehybrid": (
        "layer_types",
        ["linear_attention", "full_attention"],
        ["GraniteMoeHybridMambaLayer"],
    ),
}


@pytest.mark.parametrize("arch", HYBRIDS)
def test_hybrids_keep_a_state_layer_and_leak(arch, rows):
    key, kinds, states = HYBRIDS[arch]
    assert getattr(tiny_config(arch), key) == kinds
    assert state_layers(load_model(arch)) == states
    res = pv.audit(arch, rows, paths=["dense_additive", "causal"])
    assert [r.verdict for r in res] == ["leaks", "leaks"]
    assert res[0].max_logit_diff > 1e-2  # plainly, not by rounding
    assert res[0].note == f"state layers ({states[0]}) carry a state across documents"


def test_multimodal_names_give_their_language_model():
    assert tiny_config("qwen3_5").model_type == "qwen3_5_text"
    assert type(load_model("gemma3")).__name__ == "Gemma3ForCausalLM"


def test_refusals_name_the_architecture_and_the_fix(rows):
    with pytest.raises(ValueError, match="'bart' is an encoder-decoder model; the audit runs "):
        pv.audit("bart", rows)
    bidirectional = tiny_config("bert", is_decoder=False)
    assert causal_leak(load_model(bidirectional)) > 1e-3  # the audit's tolerance is 1e-4
    with pytest.raises(
        ValueError,
        match=r"BertLMHeadModel \(bert\) attends both ways at this config .* the audit checks "
        "causal LMs; set is_decoder=True in its config",
    ):
        pv.audit(bidirectional, rows)
    with pytest.raises(ValueError, match=r"a tiny 'blt' still has [\d,]+ parameters"):
        pv.audit("blt", rows)
    with pytest.raises(ValueError, match=r"cannot build a tiny 'prophetnet' \(NotImplementedError"):
        pv.audit("prophetnet", rows)
    with pytest.raises(ValueError, match=r"a tiny 'xmod' does not run \(ValueError: Input lang"):
        pv.audit("xmod", rows)
    broken = tiny_config("dbrx", attn_config={"kv_n_heads": 2})  # DBRX 5.24 needs rope_theta
    with pytest.raises(
        ValueError, match=r"cannot build a causal LM from this 'dbrx' config \(AttributeError"
    ):
        pv.audit(broken, rows)
    mla = tiny_config("deepseek_v2", num_key_value_heads=2)  # MLA needs kv heads = heads
    with pytest.raises(
        ValueError, match=r"DeepseekV2ForCausalLM \(deepseek_v2\) does not run on a few tokens"
    ):
        pv.audit(mla, rows)


def test_rwkv_time_mixing_is_a_state_layer_and_gets_the_state_fix(rows):
    assert state_layers(load_model("rwkv")) == ["RwkvSelfAttention"]
    (res,) = pv.audit("rwkv", rows, paths=["dense_additive"])
    assert res.verdict == "leaks" and res.max_logit_diff > 1e-2
    assert res.note == "state layers (RwkvSelfAttention) carry a state across documents"
    assert res.fix == STATE_FIX


def test_positions_counted_from_elsewhere_get_the_position_fix_and_it_is_exact():
    """RoBERTa-style embeddings count positions from padding_idx + 1: packed position_ids
    (0 in every piece) move the logits, and the fix the audit gives makes them exact."""
    model = load_model("roberta")
    assert position_gap(model) > 1e-2 and position_gap(load_model("llama")) == 0.0
    ids = pv.TokenIds.from_sequences([list(range(5, 10)), list(range(20, 23))])
    arrays = pv.materialize(pv.pack(ids.lengths, 8), ids, pad_id=0)
    res = {r.path: r for r in pv.audit(model, arrays, paths=["dense_additive", "causal"])}
    assert res["dense_additive"].verdict == "leaks" and res["dense_additive"].fix == POSITION_FIX
    assert res["dense_additive"].note == "this model does not number a sequence's positions from 0"
    assert res["causal"].fix != POSITION_FIX  # no document mask at all: that fix comes first
    batch = pv.collate_with("dense")([pv.PackedDataset(arrays)[0]])
    batch["position_ids"] = batch["position_ids"] + model.config.pad_token_id + 1  # the fix
    del batch["labels"]
    with torch.no_grad():
        packed = model.eval()(**batch).logits[0]
        alone = [
            model(input_ids=torch.tensor([d])).logits[0]
            for d in ([*range(5, 10)], [*range(20, 23)])
        ]
    assert (packed - torch.cat(alone)).abs().max().item() < 1e-4


def test_a_model_that_ignores_the_flattened_pieces_is_told_to_use_the_dense_mask(rows):
    """BERT as a decoder: its attention reads no cu_seq_lens, so the flattened batch (the
    recipe itself, use_cache=False included) leaks, and only the dense mask helps."""
    dense, flat = pv.audit("bert", rows, paths=["dense_additive", "flattened"])
    assert dense.verdict == "exact"
    assert flat.verdict == "leaks" and flat.max_logit_diff > 1e-3
    assert flat.fix == FIXES["flattened"] and "use pv.collate_with('dense')" in flat.fix
