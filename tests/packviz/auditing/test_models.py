"""packviz.auditing.models: tiny models by name, configs, checkpoints, state layers."""

from __future__ import annotations

import json

import pytest
import torch

from packviz.auditing.models import (
    ARCHITECTURES,
    load_model,
    model_label,
    state_layers,
    tiny_config,
)

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
    with pytest.raises(ValueError, match="cannot build a causal LM from this config: Mamba2"):
        load_model("mamba2", attn_implementation="sdpa")
    with pytest.raises(TypeError, match="model must be a transformers model, a config, a model"):
        load_model(3)
    with pytest.raises(ValueError, match="vocab_size must be an integer of at least 3"):
        tiny_config("llama", vocab_size=2)
