"""Tiny configs of the architectures transformers ships, by ``model_type``.

Why a module of its own. "Any architecture" is a long tail: 196 causal-LM model types in
transformers 5.24, each with defaults sized for a real checkpoint. Shrinking them to two
layers of width 32 is mostly the same few keys (`_TINY`), but some families need more,
and getting it wrong is not always an error: a hybrid cut to its first two layers may
keep attention layers only, and the audit would then call it exact while the real model
carries a state across documents. So this module keeps:

- the common sizes, and per-family extras where the defaults do not shrink (state-space
  heads, experts, a rotary dimension larger than a tiny head);
- `layer_kinds`: a hybrid keeps one layer of each kind its family has (the kinds are
  read from the family's default per-layer list, or named in `_HYBRID_KINDS` where the
  default list has one kind only);
- multimodal wrappers (``gemma3``, ``qwen3_5``, …) become their language model, which
  is the part packed rows reach.

    >>> tiny_config("lfm2").layer_types
    ['conv', 'full_attention']
    >>> tiny_config("qwen3_5").model_type
    'qwen3_5_text'
    >>> tiny_config("gptj").rotary_dim
    4
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedConfig

#: Vocabulary of a tiny model when none is asked for.
TINY_VOCAB = 64

#: Architectures the dashboard and CLI name first (any other ``model_type`` that
#: transformers ships is tried too): attention-only first, then state-carrying ones.
ARCHITECTURES: tuple[str, ...] = (
    "llama",
    "qwen2",
    "mistral",
    "gpt2",
    "mamba2",
    "bamba",
    "falcon_h1",
    "jamba",
    "qwen3_next",
)

#: Sizes of a tiny model, under the common config names (GPT-2 maps them to its own).
_TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
}

#: Sizes of experts, latent attention and heads, set where a family's config has them
#: (mixture-of-experts and MLA defaults hold most of a model's parameters).
_TINY_IF_PRESENT = {
    "head_dim": 8,
    "moe_intermediate_size": 16,
    "shared_expert_intermediate_size": 16,
    "moe_shared_expert_intermediate_size": 16,
    "num_experts": 4,
    "num_local_experts": 4,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "n_group": 1,
    "topk_group": 1,
    "kv_lora_rank": 16,
    "q_lora_rank": 16,
    "qk_rope_head_dim": 4,
    "qk_nope_head_dim": 4,
    "v_head_dim": 8,
}

#: Families `_TINY_IF_PRESENT` does not touch: DeepSeek-V4 shrunk that way leaks on
#: every path (its default sizes do not), a tiny-config artefact, not a verdict.
_KEEP_SIZES = frozenset({"deepseek_v4"})

#: The Mamba2 heads of the hybrids (Bamba, FalconH1): 4 heads of 16 = 2 × hidden size.
_TINY_MAMBA = {
    "mamba_n_heads": 4,
    "mamba_d_head": 16,
    "mamba_expand": 2,
    "mamba_d_state": 8,
    "mamba_n_groups": 1,
    "mamba_chunk_size": 8,
}

#: The gated delta-net heads of Qwen3-Next and Qwen3.5.
_TINY_DELTANET = {
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 8,
    "linear_value_head_dim": 8,
}

#: Architectures whose defaults do not shrink with `_TINY` alone (state-space heads,
#: experts, rotary dimensions): what makes them tiny and valid.
_TINY_OVERRIDES: dict[str, dict] = {
    "gpt2": {"attn_pdrop": 0.0, "resid_pdrop": 0.0, "embd_pdrop": 0.0},
    # rotary_dim (64) must fit in a head of 32 / 4 = 8
    "gptj": {"rotary_dim": 4},
    "codegen": {"rotary_dim": 4},
    # transformers 5.24's DBRX attention reads attn_config.rope_theta (not a default
    # there) and clamps by clip_qkv (None crashes); 8 is DBRX's own setting
    "dbrx": {
        "d_model": 32,  # its sub-configs read d_model before hidden_size is mapped onto it
        "attn_config": {"kv_n_heads": 2, "rope_theta": 10000.0, "clip_qkv": 8.0},
        "ffn_config": {
            "hidden_size": 32,
            "ffn_hidden_size": 64,
            "moe_num_experts": 2,
            "moe_top_k": 1,
        },
    },
    # LFM2's short convolutions start so small (std 0.02) that what they carry across a
    # document start moves logits by ~1e-4, under the tolerance at some seeds: a larger
    # init makes the leak plain (0.4-0.6)
    "lfm2": {"initializer_range": 0.1},
    "lfm2_moe": {"initializer_range": 0.1},
    "mamba2": {
        "num_heads": 4,
        "head_dim": 16,
        "expand": 2,
        "state_size": 8,
        "n_groups": 1,
        "chunk_size": 8,
    },
    "bamba": {**_TINY_MAMBA, "attn_layer_indices": [1]},
    "granitemoehybrid": _TINY_MAMBA,
    "gpt_neo": {"attention_types": [[["global", "local"], 1]]},
    "falcon_h1": {**_TINY_MAMBA, "mamba_d_ssm": 64},
    "jamba": {
        "attn_layer_period": 2,
        "attn_layer_offset": 1,
        "expert_layer_period": 2,
        "expert_layer_offset": 1,
        "num_experts": 2,
        "mamba_d_state": 8,
        "mamba_expand": 2,
    },
    "zamba2": {"n_mamba_heads": 4, "mamba_d_state": 8, "chunk_size": 8, "adapter_rank": 8},
    # the gated delta-net heads (experts and head_dim shrink through _TINY_IF_PRESENT)
    "qwen3_next": _TINY_DELTANET,
    "qwen3_5_text": _TINY_DELTANET,
    "qwen3_5_moe_text": _TINY_DELTANET,
}

#: Hybrid families whose default per-layer list has one kind only (the real checkpoints
#: set it): the kinds a tiny one keeps, state layer first.
_HYBRID_KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "lfm2": ("layer_types", "num_hidden_layers", ("conv", "full_attention")),
    "lfm2_moe": ("layer_types", "num_hidden_layers", ("conv", "full_attention")),
    "granitemoehybrid": (
        "layer_types",
        "num_hidden_layers",
        ("linear_attention", "full_attention"),
    ),
}

#: Per-layer lists a config may hold (one entry per layer).
_PER_LAYER = ("layer_types", "layers_block_type", "block_types", "mlp_layer_types")


def tiny_config(
    model_type: str, *, vocab_size: int = TINY_VOCAB, max_positions: int = 4096, **overrides
) -> PreTrainedConfig:
    """A tiny config of any architecture transformers ships, by its ``model_type``.

    Two layers (or one of each kind a hybrid has), hidden size 32, 4 heads (2 key/value
    heads), dropout off (GPT-2), room for ``max_positions`` positions; the default
    ``use_cache`` of the architecture is kept, since that is what users train with. A
    multimodal ``model_type`` gives its language model's config. Encoder models that
    ship a causal-LM head (``bert``, ``roberta``, …) get ``is_decoder=True``, which is
    what makes them causal.
    """
    from transformers import CONFIG_MAPPING, AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if not isinstance(vocab_size, int) or vocab_size < 3:
        raise ValueError(f"vocab_size must be an integer of at least 3, got {vocab_size!r}")
    if model_type not in CONFIG_MAPPING:
        hint = (
            "no such file or directory"
            if any(c in model_type for c in "/\\.")
            else "transformers has no such model_type"
        )
        raise ValueError(
            f"unknown model {model_type!r} ({hint}); pass a model_type such as "
            f"{', '.join(ARCHITECTURES[:6])}, a config.json or a checkpoint directory"
        )
    try:
        default = AutoConfig.for_model(model_type)
    except Exception as exc:  # noqa: BLE001 - transformers' own defaults do not validate
        raise ValueError(_cannot(model_type, exc)) from exc
    text = getattr(default, "text_config", None)
    text_type = getattr(text, "model_type", None)
    if text_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and text_type != model_type:
        return tiny_config(
            text_type, vocab_size=vocab_size, max_positions=max_positions, **overrides
        )
    kwargs = {**_TINY, "vocab_size": vocab_size, "max_position_embeddings": max_positions}
    if getattr(default, "is_decoder", None) is False and not default.is_encoder_decoder:
        kwargs["is_decoder"] = True
    kwargs.update(
        {
            k: v
            for k, v in _TINY_IF_PRESENT.items()
            if model_type not in _KEEP_SIZES
            and isinstance(was := _setting(default, k), int)
            and not isinstance(was, bool)
            and was > v
        }
    )
    kwargs.update(_TINY_OVERRIDES.get(model_type, {}))
    kwargs.update(layer_kinds(model_type, default))
    kwargs.update(overrides)
    try:
        return AutoConfig.for_model(model_type, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a validator of any kind: say which model
        raise ValueError(_cannot(model_type, exc)) from exc


def layer_kinds(model_type: str, default: PreTrainedConfig) -> dict:
    """The per-layer lists of a tiny ``model_type``: one layer of each kind (of each
    combination of kinds, where a config has several lists) its default config has, in
    the order they first appear, at least two layers; {} for one kind of layer.

    >>> from transformers import AutoConfig
    >>> kinds = layer_kinds("zamba2", AutoConfig.for_model("zamba2"))
    >>> kinds["layers_block_type"], kinds["num_hidden_layers"]
    (['linear_attention', 'hybrid'], 2)
    """
    if model_type in _HYBRID_KINDS:
        key, count, kinds = _HYBRID_KINDS[model_type]
        return {key: list(kinds), count: len(kinds)}
    n = _setting(default, "num_hidden_layers")
    lists = {
        k: list(v)
        for k in _PER_LAYER
        if isinstance(v := _setting(default, k), (list, tuple)) and len(v) == n
    }
    if not lists:
        return {}
    combos = list(zip(*lists.values(), strict=True))
    keep = [i for i, c in enumerate(combos) if c not in combos[:i]]
    if len(keep) < 2:
        return {}
    return {**{k: [v[i] for i in keep] for k, v in lists.items()}, "num_hidden_layers": len(keep)}


def _setting(config: PreTrainedConfig, key: str) -> object:
    """``config.key`` where it is a plain setting: None where it is missing, derived (a
    read-only property) or per layer (transformers raises for those)."""
    if isinstance(getattr(type(config), key, None), property):
        return None
    try:
        return getattr(config, key, None)
    except Exception:  # noqa: BLE001 - AmbiguousGlobalPerLayerAttributeError and kin
        return None


def _cannot(model_type: str, exc: BaseException) -> str:
    first = str(exc).strip().splitlines()
    why = first[-1].strip() if first else ""
    return (
        f"cannot build a tiny {model_type!r} ({type(exc).__name__}: {why[:200]}); pass a "
        "transformers config of it (pv.auditing.tiny_config(..., key=value) overrides) "
        "or a checkpoint directory instead"
    )
