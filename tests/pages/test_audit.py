"""The Audit view: pick a model and attention, run (in a worker, with progress and Stop),
see each path's verdict and fix."""

from __future__ import annotations

import math

import numpy as np
import pytest
from apptest import app, captions, errors, figures, markdown, synthetic

import packviz as pv
from dashboard import jobs

AUDIT = "pages/audit.py"


@pytest.fixture
def inline(monkeypatch):
    """Run the audit in this process, at once (the page offers it, with its predicted
    time, and runs it in a worker; the worker path is tested once, below)."""
    monkeypatch.setattr(jobs, "AUTO_SECONDS", 1e9)


def _rows(at):
    assert not at.exception, at.exception
    return {row["path"]: row for row in at.dataframe[0].value.to_dict("records")}


def _run_button(at):
    return [b for b in at.button if b.label.startswith("Run the audit (about ")]


def test_audit_runs_the_plans_busiest_rows_in_a_worker():
    at = app(max_len=512).run()
    at.switch_page(AUDIT).run()
    assert not at.exception and not errors(at)
    assert "**Auditing 2 rows with a tiny llama (sdpa)** takes about" in markdown(at)
    assert not at.dataframe
    _run_button(at)[0].click().run()
    rows = _rows(at)
    verdicts = {p: r["verdict"] for p, r in rows.items()}
    assert verdicts == {  # llama, sdpa, at its default config
        "dense_additive": "exact",
        "dense_bool": "exact",
        "flattened": "exact",
        "position_ids": "leaks",
        "causal": "leaks",
    }
    assert rows["dense_additive"]["max_logit_diff"] < 1e-6
    assert rows["causal"]["max_logit_diff"] > 1e-2
    assert rows["causal"]["fix"].startswith("pass a document mask")
    assert at.subheader[0].value == "3 exact, 2 leaking"
    (fig,) = figures(at)
    assert fig["layout"]["yaxis"]["type"] == "log"
    assert fig["layout"]["shapes"][0]["y0"] == 1e-4
    # the caption names the busiest rows of the plan
    corpus_caption = [c for c in captions(at) if c.startswith("Rows ")][0]
    assert "LlamaForCausalLM, vocabulary 4,096" in corpus_caption
    # a rerun keeps the result; a new choice asks for a new run
    at.run()
    assert at.dataframe[0].value.shape[0] == 5
    at.selectbox(key="audit_attn").set_value("eager").run()
    assert not at.dataframe and _run_button(at)


def test_gpt2_eager_bool_mask_leaks(inline):
    at = app(max_len=256, audit_arch="gpt2", audit_attn="eager", audit_rows=1).run()
    at.switch_page(AUDIT).run()
    rows = _rows(at)
    assert rows["dense_bool"]["verdict"] == "leaks"
    assert "bool mask blocks nothing" in rows["dense_bool"]["fix"]
    assert rows["dense_additive"]["verdict"] == "exact"


def test_synthetic_corpus_and_state_layers(inline):
    at = synthetic(max_len=256, audit_arch="mamba2", audit_attn="eager").run()
    at.switch_page(AUDIT).run()
    assert any("random token ids (seeded)" in c for c in captions(at))
    rows = _rows(at)
    assert list(rows) == [
        "dense_additive",
        "dense_bool",
        "flattened",
        "position_ids",
        "causal",
        "seq_idx",
    ]
    assert {r["verdict"] for r in rows.values()} == {"leaks"}
    assert rows["causal"]["note"] == "state layers (Mamba2Mixer) carry a state across documents"
    assert rows["causal"]["fix"].startswith("train one document per row (strategy='padded')")


def test_time_budget_leaves_paths_not_run(monkeypatch, inline):
    at = app(max_len=256, audit_budget=5).run()
    monkeypatch.setattr(pv.auditing.core, "_now", _clock())
    at.switch_page(AUDIT).run()
    rows = _rows(at)
    assert {r["verdict"] for r in rows.values()} == {"not run"}
    assert math.isnan(rows["causal"]["max_logit_diff"])
    assert rows["causal"]["note"] == "the time budget (5 s) was spent"


def _clock():
    """A clock that jumps 10 s per reading: any budget is spent after the first look."""
    t = iter(np.arange(0, 1e6, 10.0))
    return lambda: float(next(t))


def test_problems_are_error_boxes():
    at = app(max_len=256, audit_arch="mamba2", audit_attn="sdpa").run()
    at.switch_page(AUDIT).run()
    assert not at.exception
    assert errors(at)[0].startswith("Cannot build a tiny mamba2 with sdpa attention")
    at = app(max_len=16384).run()
    at.switch_page(AUDIT).run()
    assert not at.exception
    assert errors(at)[0].startswith("The audit view runs rows of up to 8,192 slots")
