"""`audit`: run a model on packed rows through each input path, and on every piece alone.

Why this is a proof. packviz knows where every piece of a row starts, so the ground
truth is at hand: run each piece alone through the same model (``model(input_ids=piece)``,
nothing else) and compare. A path is *exact* when the largest |Δ logit| over all real
tokens and the difference between the model's loss on the packed batch and the
token-weighted mean of the pieces' losses are both within ``atol`` (1e-4 in float32;
an exact path measures ~1e-7). Anything above that means a token saw something it should
not have: another document through attention, a shared recurrent state, or the wrong
positions. Each leaking path gets the one-line change that makes it exact.

What is measured is the model as given, at its own config: a model whose
``config.use_cache`` is True (every stock causal LM's default) makes transformers skip
the document boundaries it would otherwise find in ``position_ids``; HF ``Trainer`` sets
it to False, which is why the same batch can be exact inside a Trainer and leak outside.

Cost. One forward per path and one per distinct piece length, in ``eval()`` mode under
``no_grad`` (dropout off; the model's mode is restored). The ``flex`` path compiles
FlexAttention for each new shape (seconds on a CPU, which has no FlexAttention backward
either), so on a CPU it runs only when asked; ``time_budget`` stops starting new paths
once spent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from packviz.auditing.inputs import BUILDERS, AuditRows, select_rows
from packviz.auditing.models import (
    TINY_VOCAB,
    causal_leak,
    error_line,
    eval_mode,
    load_model,
    position_gap,
    quiet_transformers,
    state_layers,
)
from packviz.choices import AUDIT_PATHS, AuditPath, check_choice
from packviz.layout import PackedArrays, cu_seqlens_from_doc_ids
from packviz.pieces import piece_lengths, piece_spans

if TYPE_CHECKING:
    import torch

#: The clock of the time budget and of each path's seconds.
_now = time.perf_counter
#: Largest |Δ| (logit and loss) of an exact path.
ATOL = 1e-4
#: The fix for a model whose state layers run across document starts (Mamba, hybrids).
STATE_FIX = (
    "train one document per row (strategy='padded'), or on CUDA with the mamba_ssm / "
    "causal_conv1d / flash-linear-attention kernels pass seq_idx "
    "(DataCollatorWithFlattening(return_seq_idx=True)) and use_cache=False"
)

#: The one-line change that makes each path exact (for a model with attention layers only).
#: The fix for a model that does not number a sequence's positions from 0.
POSITION_FIX = (
    "pass position_ids the way this model numbers positions: packed position_ids count "
    "from 0 in every piece (for RoBERTa-style embeddings add padding_idx + 1)"
)

FIXES: dict[str, str] = {
    "dense_additive": "build the float mask in the model's dtype and keep a padding query "
    "attending to itself (pv.collate_with('dense'))",
    "dense_bool": "use pv.collate_with('dense') (float additive mask): eager attention adds "
    "the mask to its scores, so a bool mask blocks nothing",
    "flattened": "this model's attention reads neither cu_seq_lens nor packed position_ids "
    "(the audited batch is pv.collate_with('flattened')'s, use_cache=False included): use "
    "pv.collate_with('dense')",
    "position_ids": "use pv.collate_with('flattened') (it passes use_cache=False: without it "
    "transformers never reads the pieces from position_ids), or pv.collate_with('dense')",
    "flex": "pass pv.flex_block_mask(doc_ids) as attention_mask to a model loaded with "
    "attn_implementation='flex_attention'",
    "causal": "pass a document mask: pv.collate_with('dense') (float additive mask + position_ids)",
    "seq_idx": STATE_FIX,
}


@dataclass(frozen=True)
class AuditResult:
    """One input path's verdict.

    Attributes:
        path: one of `packviz.choices.AUDIT_PATHS`.
        max_logit_diff: largest |packed − alone| logit over every real token (nan: not run).
        loss_diff: |model loss on the packed batch − token-weighted mean of the pieces'
            losses| (nan: not run).
        exact: both within ``atol``; False: the path leaks; None: it did not run (``note``).
        fix: the one-line change that makes the path exact ("" when it is).
        note: why it leaks or did not run (state layers, an error, the time budget).
        seconds: wall time of the path's forward.
    """

    path: AuditPath
    max_logit_diff: float
    loss_diff: float
    exact: bool | None
    fix: str
    note: str = ""
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        """``exact``, ``leaks`` or ``not run``."""
        return {True: "exact", False: "leaks", None: "not run"}[self.exact]

    def as_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict}


def default_paths(model: torch.nn.Module) -> tuple[AuditPath, ...]:
    """Every path but ``flex`` on a CPU (it compiles for seconds there), plus ``seq_idx``
    for a model with state layers."""
    out = [p for p in AUDIT_PATHS if p != "seq_idx"]
    if model.device.type == "cpu":
        out.remove("flex")
    if state_layers(model):
        out.append("seq_idx")
    return tuple(out)


def audit(
    model: object,
    arrays: PackedArrays,
    *,
    rows: Sequence[int] | np.ndarray | None = None,
    paths: Sequence[str] | None = None,
    attn_implementation: str | None = None,
    atol: float = ATOL,
    seed: int = 0,
    device: torch.device | str | None = None,
    time_budget: float | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[AuditResult]:
    """Whether each input path keeps the documents of packed rows apart in ``model``.

    Args:
        model: a transformers causal LM (used as it is), a config, a ``model_type`` name
            (a tiny random model: ``"llama"``, ``"gpt2"``, ``"mamba2"``, …), a
            ``config.json`` path or a checkpoint directory (`packviz.auditing.load_model`).
        arrays: packed rows (`packviz.materialize`, `packviz.load`). Arrays without
            ``input_ids`` get seeded random ids (leaks do not depend on the text).
        rows: which rows of ``arrays``; default: the two with the most pieces.
        paths: which input paths (`packviz.choices.AUDIT_PATHS`); default `default_paths`.
        attn_implementation, seed, device: for models built here (``device`` default CPU).
        atol: the largest |Δ| of an exact path.
        time_budget: seconds; paths not started when it is spent are reported not run.
        progress: called as ``progress(done, total, what)`` after each step.

    Returns:
        One `AuditResult` per path, in the order asked.

    Example:
        >>> import packviz as pv
        >>> a = pv.materialize(pv.pack([5, 3, 6, 2], 8), None, pad_id=0)
        >>> res = pv.audit("llama", a, paths=["dense_additive", "causal"])
        >>> [(r.path, r.verdict) for r in res]
        [('dense_additive', 'exact'), ('causal', 'leaks')]
        >>> res[1].fix
        "pass a document mask: pv.collate_with('dense') (float additive mask + position_ids)"
    """
    import torch

    t0 = _now()
    if not isinstance(arrays, PackedArrays):
        raise TypeError(f"arrays must be PackedArrays, got {type(arrays).__name__}")
    vocab = TINY_VOCAB  # a tiny model gets room for every id of the arrays
    if arrays.input_ids is not None and arrays.input_ids.size:
        vocab = max(vocab, int(arrays.input_ids.max()) + 1)
    with quiet_transformers():
        m = load_model(
            model,
            attn_implementation=attn_implementation,
            seed=seed,
            vocab_size=vocab,
            max_positions=max(arrays.max_len, 1024),
            device=device,
        )
        r = select_rows(arrays, rows, vocab_size=m.get_input_embeddings().num_embeddings, seed=seed)
        paths = default_paths(m) if paths is None else tuple(paths)
        for p in paths:
            check_choice("audit path", p, AUDIT_PATHS)
        states = state_layers(m)
        out: list[AuditResult] = []
        with eval_mode(m), _float32(m), torch.no_grad():
            _check_runs_causally(m, atol)
            offset = position_gap(m) > atol
            try:
                ref_logits, ref_loss = _alone(m, r)
            except Exception as exc:  # noqa: BLE001 - no reference, no audit: say so
                raise ValueError(
                    f"{_name(m)} fails on a piece run alone ({error_line(exc)}); audit another "
                    "architecture, or pass a config or checkpoint it runs with"
                ) from exc
            if progress is not None:
                progress(1, len(paths) + 1, "pieces alone")
            for i, path in enumerate(paths):
                if time_budget is not None and _now() - t0 > time_budget:
                    out.append(_not_run(path, f"the time budget ({time_budget:g} s) was spent"))
                else:
                    out.append(_run_path(m, r, path, ref_logits, ref_loss, atol, states, offset))
                if progress is not None:
                    progress(i + 2, len(paths) + 1, path)
    if piece_lengths(r.doc_ids)[1].max() < 2:
        note = "each row audited holds one piece: nothing could leak (pick rows with several)"
        out = [_with_note(x, note) for x in out]
    return out


def _check_runs_causally(m, atol: float) -> None:
    """A ValueError unless ``m`` runs and no token sees a later one: the pieces-alone
    reference is causal, so a model that attends both ways would "leak" on every path,
    and no fix of the input path would help."""
    try:
        leak = causal_leak(m)
    except Exception as exc:  # noqa: BLE001 - whatever breaks, say which model, one line
        raise ValueError(
            f"{_name(m)} does not run on a few tokens ({error_line(exc)}); audit another "
            "architecture, or pass a config or checkpoint it runs with"
        ) from exc
    if not leak <= atol:
        hint = (
            "; set is_decoder=True in its config to train it as a causal LM"
            if getattr(m.config, "is_decoder", None) is False
            else ""
        )
        raise ValueError(
            f"{_name(m)} attends both ways at this config (changing the last token moves "
            f"earlier logits by {leak:.1e}): the audit checks causal LMs{hint}"
        )


def _name(m) -> str:
    return f"{type(m).__name__} ({getattr(m.config, 'model_type', '') or 'no model_type'})"


def _run_path(
    m, r: AuditRows, path, ref_logits, ref_loss, atol, states, offset=False
) -> AuditResult:
    """One path: build its batch, run it, compare with the pieces alone. ``offset``: the
    model does not number positions from 0 (`position_gap`)."""
    import torch

    impl = getattr(m.config, "_attn_implementation", None)
    dense = path in ("dense_additive", "dense_bool")
    if dense and impl == "flex_attention" and m.device.type == "cpu":
        return _not_run(
            path,
            "a dense tensor mask under flex_attention crashes on a CPU (torch 2.13); "
            "the flex path passes a BlockMask",
        )
    t = _now()
    try:
        with _attn_implementation(m, "flex_attention" if path == "flex" else impl):
            res = m(**BUILDERS[path](r, device=m.device, dtype=m.dtype))
    except Exception as exc:  # whatever the model does with this batch is its answer
        msg = str(exc).split("\n")[0][:300]
        refused = "packed sequences apart" in msg  # a state layer without its kernels
        fix = STATE_FIX if refused or (states and path == "seq_idx") else ""
        return _not_run(path, f"{type(exc).__name__}: {msg}", fix=fix)
    seconds = _now() - t
    logits = res.logits.float()
    flat = path in ("flattened", "seq_idx")
    logits = logits[0] if flat else logits[torch.from_numpy(r.real).to(logits.device)]
    d = (logits - ref_logits).abs().max().item() if logits.numel() else 0.0
    dl = abs(res.loss.item() - ref_loss) if math.isfinite(ref_loss) else 0.0
    exact = bool(d <= atol and dl <= atol)  # NaN compares False: a NaN is no proof
    if exact:
        return AuditResult(path, d, dl, True, "", seconds=seconds)
    if states:
        note = f"state layers ({', '.join(states)}) carry a state across documents"
        return AuditResult(path, d, dl, False, STATE_FIX, note, seconds)
    if offset and path not in ("causal",):
        note = "this model does not number a sequence's positions from 0"
        return AuditResult(path, d, dl, False, POSITION_FIX, note, seconds)
    return AuditResult(path, d, dl, False, FIXES[path], seconds=seconds)


def _alone(m, r: AuditRows) -> tuple[torch.Tensor, float]:
    """Logits ``[T, V]`` of every real token, each piece run alone (pieces of one length
    in one batch: no mask, no positions, nothing shared), and the token-weighted mean
    loss of the pieces (nan when no token has a target)."""
    import torch
    import torch.nn.functional as F

    rows, first, last = piece_spans(r.doc_ids)
    lengths = last - first + 1
    cu, _ = cu_seqlens_from_doc_ids(r.doc_ids)
    cu = cu.astype(np.int64)
    out = None
    total, count = 0.0, 0
    with _attn_implementation(m, _reference_impl(m)):
        for n in np.unique(lengths):
            k = np.nonzero(lengths == n)[0]
            slots = first[k, None] + np.arange(n)
            ids = torch.from_numpy(r.input_ids[rows[k, None], slots]).to(m.device)
            logits = m(input_ids=ids).logits.float()
            if out is None:
                out = torch.empty(int(cu[-1]), logits.shape[-1], device=logits.device)
            where = torch.from_numpy((cu[k, None] + np.arange(n)).reshape(-1))
            out[where.to(out.device)] = logits.reshape(-1, logits.shape[-1])
            if n > 1:
                target = torch.from_numpy(r.labels[rows[k, None], slots[:, 1:]]).to(m.device)
                total += F.cross_entropy(
                    logits[:, :-1].transpose(1, 2), target, ignore_index=-100, reduction="sum"
                ).item()
                count += int((target != -100).sum())
    return out, (total / count if count else math.nan)


def _reference_impl(m) -> str | None:
    """The attention implementation pieces run alone under: the model's own, except
    flex_attention, which would compile once per piece length (eager: same result)."""
    impl = getattr(m.config, "_attn_implementation", None)
    return "eager" if impl == "flex_attention" else impl


@contextmanager
def _attn_implementation(m, impl: str | None):
    """``m`` switched to ``impl`` for a block, and back (a no-op when it uses it already)."""
    before = getattr(m.config, "_attn_implementation", None)
    try:
        if impl is not None and impl != before:
            m.set_attn_implementation(impl)
        yield m
    finally:
        if getattr(m.config, "_attn_implementation", None) != before:
            m.set_attn_implementation(before)


@contextmanager
def _float32(m):
    """A half-precision model run in float32 for the audit, its dtype restored after
    (bfloat16/float16 -> float32 -> back is exact). The audit asks which tokens see which;
    in half precision a kernel's rounding alone moves logits past any tolerance that
    would still tell a leak apart, so exactness is judged in float32."""
    import torch

    dtype = m.dtype
    half = dtype in (torch.float16, torch.bfloat16)
    if half:
        m.float()
    try:
        yield m
    finally:
        if half:
            m.to(dtype)


def _not_run(path: str, note: str, *, fix: str = "") -> AuditResult:
    return AuditResult(path, math.nan, math.nan, None, fix, note)


def _with_note(x: AuditResult, note: str) -> AuditResult:
    return AuditResult(
        x.path,
        x.max_logit_diff,
        x.loss_diff,
        x.exact,
        x.fix,
        f"{x.note}; {note}" if x.note else note,
        x.seconds,
    )
