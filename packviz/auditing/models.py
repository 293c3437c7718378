"""The models an audit runs: tiny random ones from a name or config, or a checkpoint.

Why tiny random models. Whether documents leak into each other is a property of the
attention implementation, the mask and the way the model is called, not of the weights:
a 2-layer model with a hidden size of 32 leaks exactly where a 7B one does, and runs in
milliseconds on a CPU. Random weights are seeded, so the same audit gives the same
numbers. A local checkpoint directory (``config.json`` and weights) is loaded as it is,
in float32 (rounding in bf16 is larger than the 1e-4 an exact path stays within).

Why state-carrying layers are named. Mamba, linear-attention and short-convolution
layers carry a state along the sequence; no attention mask reaches it. transformers'
CPU fallbacks of those layers do not reset the state at a document start (and refuse
``seq_idx`` / ``cu_seqlens`` without the CUDA kernels), so a packed row of such a model
is not its pieces run alone. `state_layers` finds them by class, so an audit can say
why a path leaks and what to do instead.

    >>> tiny_config("llama").hidden_size
    32
    >>> "mamba2" in ARCHITECTURES and "gpt2" in ARCHITECTURES
    True
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from packviz.choices import ATTN_IMPLEMENTATIONS, check_choice

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedConfig, PreTrainedModel

#: Vocabulary of a tiny model when none is asked for.
TINY_VOCAB = 64

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

#: The Mamba2 heads of the hybrids (Bamba, FalconH1): 4 heads of 16 = 2 × hidden size.
_TINY_MAMBA = {
    "mamba_n_heads": 4,
    "mamba_d_head": 16,
    "mamba_expand": 2,
    "mamba_d_state": 8,
    "mamba_n_groups": 1,
    "mamba_chunk_size": 8,
}

#: Architectures whose defaults do not shrink with `_TINY` alone (state-space heads,
#: experts): what makes them tiny and valid.
_TINY_OVERRIDES: dict[str, dict] = {
    "gpt2": {"attn_pdrop": 0.0, "resid_pdrop": 0.0, "embd_pdrop": 0.0},
    "mamba2": {
        "num_heads": 4,
        "head_dim": 16,
        "expand": 2,
        "state_size": 8,
        "n_groups": 1,
        "chunk_size": 8,
    },
    "bamba": {**_TINY_MAMBA, "attn_layer_indices": [1]},
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
    "qwen3_next": {
        "head_dim": 8,
        "layer_types": ["linear_attention", "full_attention"],
        "linear_num_key_heads": 2,
        "linear_num_value_heads": 4,
        "linear_key_head_dim": 8,
        "linear_value_head_dim": 8,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 16,
        "shared_expert_intermediate_size": 16,
    },
}

#: Named architectures the dashboard and CLI offer (any other ``model_type`` that
#: transformers ships works too): attention-only first, then state-carrying ones.
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

#: Class names of layers that carry a state along the sequence (checked by `state_layers`).
_STATE_CLASS = re.compile(
    r"(Mixer|ShortConv|DeltaNet|DeltaAttention|LinearAttention|LightningAttention|Rglru)$"
)


def tiny_config(
    model_type: str, *, vocab_size: int = TINY_VOCAB, max_positions: int = 4096, **overrides
) -> PreTrainedConfig:
    """A tiny config of any architecture transformers ships, by its ``model_type``.

    Two layers, hidden size 32, 4 heads (2 key/value heads), dropout off (GPT-2), room for
    ``max_positions`` positions; the default ``use_cache`` of the architecture is kept,
    since that is what users train with.
    """
    from transformers import CONFIG_MAPPING, AutoConfig

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
    kwargs = {**_TINY, "vocab_size": vocab_size, "max_position_embeddings": max_positions}
    kwargs.update(_TINY_OVERRIDES.get(model_type, {}))
    kwargs.update(overrides)
    try:
        return AutoConfig.for_model(model_type, **kwargs)
    except ValueError as exc:
        raise ValueError(
            f"cannot build a tiny {model_type!r} config ({str(exc)[:200]}); pass a "
            "transformers config or a checkpoint directory instead"
        ) from exc


def load_model(
    model: object,
    *,
    attn_implementation: str | None = None,
    seed: int = 0,
    vocab_size: int = TINY_VOCAB,
    max_positions: int = 4096,
    device: torch.device | str | None = None,
) -> PreTrainedModel:
    """The causal LM an audit runs, from what the caller has:

    - a transformers model: used as it is (its device, dtype and config);
    - a transformers config: random weights, seeded;
    - a ``model_type`` name (``"llama"``, ``"gpt2"``, ``"mamba2"``, …): a `tiny_config`;
    - a path to a ``config.json``: random weights of that config;
    - a checkpoint directory: its config, and its weights if it has any (else random), in
      float32.

    ``attn_implementation`` (``eager``, ``sdpa``, ``flex_attention``) applies to models
    built here; None is transformers' default (sdpa where supported).
    """
    try:
        from transformers import PreTrainedModel
    except ImportError as exc:
        raise ImportError("the audit needs transformers: pip install 'packviz[hf]'") from exc

    if attn_implementation is not None:
        check_choice("attention implementation", attn_implementation, ATTN_IMPLEMENTATIONS)
    if isinstance(model, PreTrainedModel):
        return model
    with quiet_transformers():
        return _build(model, attn_implementation, seed, vocab_size, max_positions, device)


def _build(model, attn_implementation, seed, vocab_size, max_positions, device):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedConfig

    kwargs = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    device = torch.device("cpu" if device is None else device)
    if isinstance(model, (str, Path)) and Path(model).exists():
        path = Path(model)
        config_path = path / "config.json" if path.is_dir() else path
        if not config_path.is_file():
            raise ValueError(f"{path}: no config.json there; pass a checkpoint directory")
        config = AutoConfig.from_pretrained(config_path)
        has_weights = path.is_dir() and any(
            next(path.glob(p), None) for p in ("*.safetensors", "*.bin", "*.safetensors.index.json")
        )
        if has_weights:
            out = AutoModelForCausalLM.from_pretrained(
                path, dtype=torch.float32, use_safetensors=None, **kwargs
            )
            return out.to(device)
        model = config
    elif isinstance(model, str):
        model = tiny_config(model, vocab_size=vocab_size, max_positions=max_positions)
    if not isinstance(model, PreTrainedConfig):
        raise TypeError(
            f"model must be a transformers model, a config, a model_type name or a path, "
            f"got {type(model).__name__}"
        )
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = AutoModelForCausalLM.from_config(model, dtype=torch.float32, **kwargs)
    except ValueError as exc:  # not a causal LM, or an attention implementation it lacks
        raise ValueError(f"cannot build a causal LM from this config: {str(exc)[:300]}") from exc
    return out.to(device)


@contextmanager
def quiet_transformers():
    """transformers' warnings and progress bars off for a block; both restored after."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def state_layers(model: torch.nn.Module) -> list[str]:
    """Class names of the layers that carry a state along the sequence (Mamba mixers,
    linear / delta-rule attention, short convolutions), sorted; empty for a model with
    attention layers only. Found by class name, or by a ``torch.nn.Conv1d`` inside a layer.
    """
    import torch

    names = set()
    for module in model.modules():
        name = type(module).__name__
        if _STATE_CLASS.search(name) or any(
            isinstance(c, torch.nn.Conv1d) for c in module.children()
        ):
            names.add(name)
    return sorted(names)


def model_label(model: PreTrainedModel) -> str:
    """``LlamaForCausalLM (sdpa, float32, cpu)``: what ran, for tables and logs."""
    impl = getattr(model.config, "_attn_implementation", None) or "default"
    dtype = str(model.dtype).removeprefix("torch.")
    return f"{type(model).__name__} ({impl}, {dtype}, {model.device})"
