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

    >>> load_model("llama").config.hidden_size
    32
    >>> state_layers(load_model("mamba2"))
    ['Mamba2Mixer']
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from packviz.auditing.tiny import TINY_VOCAB, tiny_config
from packviz.choices import ATTN_IMPLEMENTATIONS, check_choice

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

#: Class names of layers that carry a state along the sequence (checked by `state_layers`).
_STATE_CLASS = re.compile(
    r"(Mixer|ShortConv|DeltaNet|DeltaAttention|LinearAttention|LightningAttention|Rglru"
    r"|RwkvSelfAttention)$"  # RWKV's time mixing: a recurrent state, named as attention
)


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
        try:
            config = AutoConfig.from_pretrained(config_path)
        except Exception as exc:  # noqa: BLE001 - a bad or unknown config.json
            raise ValueError(
                f"{config_path}: not a transformers config ({error_line(exc)})"
            ) from exc
        _check_decoder_only(config)
        has_weights = path.is_dir() and any(
            next(path.glob(p), None) for p in ("*.safetensors", "*.bin", "*.safetensors.index.json")
        )
        if has_weights:
            try:
                out = AutoModelForCausalLM.from_pretrained(
                    path, dtype=torch.float32, use_safetensors=None, **kwargs
                )
            except Exception as exc:  # noqa: BLE001 - say which checkpoint, in one line
                raise ValueError(
                    f"{path}: cannot load it as a causal LM ({error_line(exc)})"
                ) from exc
            return out.to(device)
        model = config
    elif isinstance(model, str):
        return _tiny_model(model, kwargs, seed, vocab_size, max_positions, device)
    if not isinstance(model, PreTrainedConfig):
        raise TypeError(
            f"model must be a transformers model, a config, a model_type name or a path, "
            f"got {type(model).__name__}"
        )
    _check_decoder_only(model)
    return _from_config(model, kwargs, seed).to(device)


#: Parameters a model built by name may have: more means its defaults did not shrink
#: (a vision tower, a codebook) and it would take minutes to build on a CPU.
TINY_MAX_PARAMS = 5_000_000


def _tiny_model(name, kwargs, seed, vocab_size, max_positions, device):
    """A tiny ``name`` that runs: its tiny config, and if that fails to build or to run
    a few tokens, the same with as many key/value heads as heads (latent-attention and
    some MoE families need it)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = tiny_config(name, vocab_size=vocab_size, max_positions=max_positions)
    _check_decoder_only(config)
    error = None
    for extra in ({}, {"num_key_value_heads": config.num_attention_heads}):
        try:
            if extra:
                config = tiny_config(
                    name, vocab_size=vocab_size, max_positions=max_positions, **extra
                )
            with torch.device("meta"):
                n = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
            if n > TINY_MAX_PARAMS:
                raise ValueError(
                    f"a tiny {name!r} still has {n:,} parameters (its defaults do not "
                    "shrink); pass a transformers config of it sized for a CPU"
                )
            model = _from_config(config, kwargs, seed)
            causal_leak(model)  # it runs
            return model.to(device)
        except Exception as exc:  # noqa: BLE001 - the first error is the one to report
            error = error or exc
    if isinstance(error, ValueError) and str(error).startswith(("a tiny", "cannot build")):
        raise error
    raise ValueError(
        f"a tiny {name!r} does not run ({error_line(error)}); pass a transformers config of it "
        "or a checkpoint directory instead"
    ) from error


def _from_config(config, kwargs, seed):
    import torch
    from transformers import AutoModelForCausalLM

    name = getattr(config, "model_type", "") or type(config).__name__
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return AutoModelForCausalLM.from_config(config, dtype=torch.float32, **kwargs)
    except Exception as exc:  # noqa: BLE001 - not a causal LM, an attention it lacks, a bug
        raise ValueError(
            f"cannot build a causal LM from this {name!r} config ({error_line(exc)})"
        ) from exc


def _check_decoder_only(config) -> None:
    """Refuse encoder-decoder configs up front: their causal-LM class is a decoder that
    reads an encoder's output, which packed rows do not have."""
    if getattr(config, "is_encoder_decoder", False):
        name = getattr(config, "model_type", "") or type(config).__name__
        raise ValueError(
            f"{name!r} is an encoder-decoder model; the audit runs decoder-only causal LMs "
            "(pass a decoder-only architecture such as llama, qwen2 or gpt2)"
        )


def causal_leak(model: torch.nn.Module, *, n: int = 6) -> float:
    """Largest |Δ logit| of the first ``n - 1`` tokens when the last token changes: 0 for
    a causal model, above the audit's tolerance for one that attends both ways. Runs the
    model (eval, no grad; its mode restored), so a model that cannot run raises here.

    >>> round(causal_leak(load_model("llama")), 6)
    0.0
    """
    import torch

    ids = _probe_ids(model, n)
    other = ids.clone()
    other[0, -1] = (ids[0, -1] + 1) % model.get_input_embeddings().num_embeddings
    with eval_mode(model), torch.no_grad():
        a, b = (model(input_ids=x).logits[0, :-1].float() for x in (ids, other))
    return (a - b).abs().max().item()


def position_gap(model: torch.nn.Module, *, n: int = 6) -> float:
    """Largest |Δ logit| between a sequence run alone and the same with ``position_ids``
    0 … n-1 passed: 0 for a model that numbers positions from 0, as packed
    ``position_ids`` do in every piece; above the audit's tolerance for one that counts
    from elsewhere (RoBERTa-style embeddings count from ``padding_idx + 1``). 0 for a
    model that takes no ``position_ids``.

    >>> position_gap(load_model("llama"))
    0.0
    """
    import torch

    ids = _probe_ids(model, n)
    positions = torch.arange(n, device=model.device)[None]
    with eval_mode(model), torch.no_grad():
        a = model(input_ids=ids).logits.float()
        try:
            b = model(input_ids=ids, position_ids=positions).logits.float()
        except TypeError:  # no position_ids argument: nothing to compare
            return 0.0
    return (a - b).abs().max().item()


def _probe_ids(model: torch.nn.Module, n: int) -> torch.Tensor:
    """``[1, n]`` token ids 3, 4, … (within the vocabulary) for the probes above."""
    import torch

    vocab = model.get_input_embeddings().num_embeddings
    return torch.arange(3, 3 + n, device=model.device).remainder(vocab)[None]


@contextmanager
def eval_mode(model: torch.nn.Module):
    """``eval()`` (dropout off); the model's mode restored after."""
    training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(training)


def error_line(exc: BaseException) -> str:
    """``Type: last line of the message``, short: what went wrong, for a one-line error."""
    lines = [x.strip() for x in str(exc).strip().splitlines() if x.strip()]
    return f"{type(exc).__name__}: {lines[-1][:200] if lines else ''}".rstrip(": ")


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
