"""pv.audit: every verdict checked against a known answer, on several architectures.

The known answers (measured in /work/notes/hf.md, transformers 5.24, default configs):
a float additive 4-D mask + position_ids is exact under eager and sdpa; a bool 4-D mask
leaks under eager (added to the scores as 0/1) and is exact under sdpa; the flattened
batch of ``pv.collate_with("flattened")`` is exact (it carries ``use_cache=False``), while
position_ids-only rows leak as long as ``use_cache`` is True (transformers then skips
the boundary search) and are exact with ``use_cache=False``; plain causal rows always
leak; state-space layers leak on every packed path on a CPU, and are exact on
rows of one document each.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import packviz as pv
from packviz.auditing import FIXES, STATE_FIX, load_model, state_layers
from packviz.auditing.core import _alone
from packviz.auditing.inputs import select_rows

LENGTHS = [6, 9, 1, 4, 10, 11]  # two rows of 24 with a 1-token piece and padding
ROWS = ["dense_additive", "dense_bool", "flattened", "position_ids", "causal", "seq_idx"]
EXACT, LEAKS = True, False

#: (architecture, attention) -> path -> verdict, at each model's default config.
KNOWN = {
    ("llama", "eager"): [EXACT, LEAKS, EXACT, LEAKS, LEAKS, EXACT],
    ("llama", "sdpa"): [EXACT, EXACT, EXACT, LEAKS, LEAKS, EXACT],
    ("gpt2", "eager"): [EXACT, LEAKS, EXACT, LEAKS, LEAKS, EXACT],
    ("gpt2", "sdpa"): [EXACT, EXACT, EXACT, LEAKS, LEAKS, EXACT],
    ("qwen2", "eager"): [EXACT, LEAKS, EXACT, LEAKS, LEAKS, EXACT],
    ("mistral", "sdpa"): [EXACT, EXACT, EXACT, LEAKS, LEAKS, EXACT],
}


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(7)
    ids = [rng.integers(3, 64, n) for n in LENGTHS]
    return pv.materialize(pv.pack(LENGTHS, 24, strategy="next_fit", sort="none"), ids, pad_id=0)


def _check(result, exact: bool) -> None:
    """Exact paths sit at float rounding; leaking ones far above the tolerance."""
    assert result.exact is exact, result
    if exact:
        assert result.max_logit_diff < 1e-6 and result.loss_diff < 1e-6, result
        assert result.fix == "" and result.note == ""
    else:
        assert result.max_logit_diff > 1e-2, result
        assert result.loss_diff > 1e-4, result
        assert result.fix == FIXES[result.path]


@pytest.mark.parametrize(("arch", "attn"), list(KNOWN))
def test_known_answers_at_the_default_config(arrays, arch, attn):
    model = load_model(arch, attn_implementation=attn)
    assert model.config.use_cache is True
    results = pv.audit(model, arrays, paths=ROWS)
    assert [r.path for r in results] == ROWS
    for result, exact in zip(results, KNOWN[arch, attn], strict=True):
        _check(result, exact)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_use_cache_false_makes_positions_enough(arrays, arch):
    """What HF Trainer does (config.use_cache = False): the boundary search runs."""
    model = load_model(arch, attn_implementation="sdpa")
    model.config.use_cache = False
    results = pv.audit(model, arrays, paths=["flattened", "position_ids", "causal"])
    for result, exact in zip(results, [EXACT, EXACT, LEAKS], strict=True):
        _check(result, exact)


def test_the_fixes_read_as_one_line_changes(arrays):
    by = {r.path: r for r in pv.audit("llama", arrays, attn_implementation="eager")}
    assert by["dense_bool"].fix == (
        "use pv.collate_with('dense') (float additive mask): eager attention adds the mask to "
        "its scores, so a bool mask blocks nothing"
    )
    assert by["flattened"].exact is True  # pv.collate_with("flattened") carries use_cache=False
    assert by["position_ids"].fix.startswith("use pv.collate_with('flattened') (it passes")
    assert by["causal"].fix.startswith("pass a document mask: pv.collate_with('dense')")


def test_flex_block_mask_is_exact_and_the_model_is_left_as_it_was(arrays):
    model = load_model("llama", attn_implementation="eager")
    model.train()
    (result,) = pv.audit(model, arrays, paths=["flex"])
    _check(result, EXACT)
    assert model.config._attn_implementation == "eager" and model.training


def test_flex_where_it_cannot_run(arrays):
    (gpt2,) = pv.audit("gpt2", arrays, paths=["flex"])
    assert gpt2.exact is None and math.isnan(gpt2.max_logit_diff)
    assert "GPT2LMHeadModel does not support" in gpt2.note and "flex_attention" in gpt2.note
    flex_model = load_model("llama", attn_implementation="flex_attention")
    (dense,) = pv.audit(flex_model, arrays, paths=["dense_additive"])
    assert dense.exact is None and "crashes on a CPU" in dense.note
    assert gpt2.verdict == dense.verdict == "not run"


@pytest.mark.parametrize(
    ("arch", "layer", "attn"),
    [("mamba2", "Mamba2Mixer", None), ("bamba", "BambaMixer", "sdpa")],
)
def test_state_layers_leak_on_every_packed_path(arrays, arch, layer, attn):
    model = load_model(arch, attn_implementation=attn)
    assert state_layers(model) == [layer]
    results = {r.path: r for r in pv.audit(model, arrays)}
    assert list(results) == ROWS  # seq_idx joins the default paths for state layers
    for path in ROWS[:-1]:
        r = results[path]
        assert r.exact is False and r.max_logit_diff > 1e-2, r
        assert r.fix == STATE_FIX
        assert r.note == f"state layers ({layer}) carry a state across documents"
    seq = results["seq_idx"]
    assert seq.fix == STATE_FIX
    if arch == "mamba2":  # its CPU path ignores seq_idx: the state runs on
        assert seq.exact is False and seq.max_logit_diff > 1e-2
    else:  # bamba's refuses it without the CUDA kernels
        assert seq.exact is None
        assert "can't keep packed sequences apart without `causal_conv1d`" in seq.note


def test_state_layers_are_exact_one_document_per_row():
    """The fix the audit gives (strategy='padded') is exact for the same model."""
    padded = pv.materialize(pv.pack(LENGTHS, 12, strategy="padded"), None, pad_id=0)
    results = pv.audit("mamba2", padded, paths=["dense_additive", "causal"])
    for r in results:
        assert r.exact is True and r.max_logit_diff < 1e-6
        assert r.note.startswith("each row audited holds one piece")


def test_pieces_alone_match_a_plain_loop(arrays):
    """The ground truth: every piece through ``model(input_ids=piece, labels=...)``."""
    model = load_model("qwen2").eval()
    r = select_rows(arrays, vocab_size=64)
    with torch.no_grad():
        logits, loss = _alone(model, r)
        expected, total, count = [], 0.0, 0
        for b in range(2):
            for d in np.unique(r.doc_ids[b][r.doc_ids[b] >= 0]):
                slots = np.flatnonzero(r.doc_ids[b] == d)
                ids = torch.from_numpy(r.input_ids[b, slots])[None]
                labels = torch.from_numpy(r.labels[b, slots])[None]
                out = model(input_ids=ids, labels=labels)
                expected.append(out.logits[0])
                n = int((labels[0, 1:] != -100).sum())
                if n:
                    total += out.loss.item() * n
                    count += n
    assert torch.allclose(logits, torch.cat(expected), atol=1e-6)
    assert loss == pytest.approx(total / count, abs=1e-6)


def test_reproducible_and_seeded(arrays):
    def run(seed):
        return [
            {k: v for k, v in r.as_dict().items() if k != "seconds"}
            for r in pv.audit("llama", arrays, paths=["causal", "dense_bool"], seed=seed)
        ]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_progress_and_time_budget(arrays):
    calls = []
    pv.audit("gpt2", arrays, paths=["causal", "flattened"], progress=lambda *a: calls.append(a))
    assert calls == [(1, 3, "pieces alone"), (2, 3, "causal"), (3, 3, "flattened")]
    late = pv.audit("gpt2", arrays, paths=["causal", "flattened"], time_budget=0)
    assert [r.exact for r in late] == [None, None]
    assert late[0].note == "the time budget (0 s) was spent"


def test_synthetic_rows_get_random_ids():
    lengths_only = pv.materialize(
        pv.pack(LENGTHS, 24, strategy="next_fit", sort="none"), None, pad_id=0
    )
    results = pv.audit("llama", lengths_only, paths=["dense_additive", "causal"])
    assert [r.verdict for r in results] == ["exact", "leaks"]


def test_bad_input_says_what_to_change(arrays):
    with pytest.raises(
        ValueError, match="unknown audit path 'dense'; choose one of dense_additive"
    ):
        pv.audit("llama", arrays, paths=["dense"])
    with pytest.raises(TypeError, match="arrays must be PackedArrays, got dict"):
        pv.audit("llama", {"input_ids": []})
    with pytest.raises(
        ValueError, match="unknown model 'lama' .transformers has no such model_type"
    ):
        pv.audit("lama", arrays)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (checked on a GPU machine)")
def test_known_answers_on_cuda_with_flex_by_default(arrays):
    model = load_model("llama", attn_implementation="sdpa", device="cuda")
    results = pv.audit(model, arrays)
    assert [r.path for r in results] == [*ROWS[:4], "flex", "causal"]
    for result, exact in zip(results, [EXACT, EXACT, LEAKS, LEAKS, EXACT, LEAKS], strict=True):
        _check(result, exact)


def test_importing_packviz_does_not_import_transformers():
    code = "import sys, packviz; print('transformers' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_a_half_precision_model_is_judged_in_float32_and_given_back_as_it_was(arrays):
    model = load_model("llama", attn_implementation="sdpa").to(torch.bfloat16)
    by = {r.path: r for r in pv.audit(model, arrays, paths=["dense_additive", "causal"])}
    assert by["dense_additive"].exact is True and by["dense_additive"].max_logit_diff < 1e-6
    assert by["causal"].exact is False
    assert model.dtype == torch.bfloat16
